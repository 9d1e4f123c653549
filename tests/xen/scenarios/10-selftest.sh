#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# `xbd selftest` on the xen platform in dom0: grants shared with dom0
# itself and mapped back, grant copy, an event channel bound to itself
# and notified (with the masking contract), xenstore and a watch.
# timeout: 60
. "$(dirname "$0")/lib.sh"

xbd --platform xen selftest 2>&1 | tee "$W/selftest.out"
rc=${PIPESTATUS[0]}
grep -q '^xbd selftest: xen platform, we are domain 0$' "$W/selftest.out" ||
	fail "selftest did not run on the xen platform as domain 0"
if [ "$rc" -ne 0 ]; then
	first=$(grep -m1 -E 'FAILED|^xbd: ' "$W/selftest.out" | tr -s ' ')
	fail "xbd selftest exited $rc: ${first:-no failed check printed}"
fi
grep -q '^selftest: [1-9][0-9]* checks, 0 failed$' "$W/selftest.out" ||
	fail "xbd selftest printed no summary"
