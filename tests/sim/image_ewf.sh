#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# End-to-end: `xbd image --format ewf` of a running sim VM's disk.
# Checks: the E01 passes ewfverify (the MD5 and SHA-1 xbd stored are
# where it looks), ewfinfo shows the case metadata given, ewfexport of
# it equals the disk, --verify agrees, the report names the E01 and its
# case data; case options without --format ewf are a usage error;
# SIGTERM mid-copy leaves no segment and no xenstore nodes.
. "$(dirname "$0")/attach_common.inc"
requires_prog xenstore-read xenstore-utils
requires_prog jq
requires_prog ewfverify ewf-tools
requires_prog ewfinfo ewf-tools
requires_prog ewfexport ewf-tools
random_vm1 48

out=$T/case1
if "$xbd" image vm1 -o "$out" --format ewf --sha1 --verify --case-number "C-2026-42" \
	--evidence-number "E7" --examiner "Ann Smith" --description "vm1 system disk" \
	--notes "imaged live" >"$T/out" 2>"$T/err"; then
	ok "xbd image --format ewf: $(head -n1 "$T/out")"
else
	die "xbd image --format ewf failed: $(cat "$T/err")"
fi
[ -s "$out.E01" ] && [ ! -e "$out.partial.E01" ] && ok "case1.E01 written, no partial left" ||
	fail "files: $(ls "$T")"
if ewfverify -q -d sha1 "$out.E01" >"$T/verify" 2>&1 && grep -q SUCCESS "$T/verify"; then
	ok "ewfverify: SUCCESS"
else
	fail "ewfverify: $(cat "$T/verify")"
fi
md5=$(md5sum <"$img" | cut -d' ' -f1)
grep -q "MD5 hash stored in file:[[:space:]]*$md5" "$T/verify" &&
	ok "the stored MD5 is the disk's" || fail "stored MD5: $(grep MD5 "$T/verify")"
grep -qi "SHA1.*$(sha1sum <"$img" | cut -d' ' -f1)" "$T/verify" &&
	ok "the stored SHA-1 is the disk's" || fail "stored SHA-1: $(grep -i sha1 "$T/verify")"
ewfinfo "$out.E01" >"$T/info" 2>&1
for kv in "Case number:.*C-2026-42" "Evidence number:.*E7" "Examiner name:.*Ann Smith" \
	"Description:.*vm1 system disk" "Notes:.*imaged live" "MD5:.*$md5"; do
	grep -q "$kv" "$T/info" && ok "ewfinfo shows $kv" || fail "ewfinfo lacks $kv"
done
if ewfexport -q -u -f raw -t "$T/export" "$out.E01" >"$T/export.out" 2>&1 &&
	cmp -s "$T/export.raw" "$img"; then
	ok "ewfexport of the E01 equals the disk"
else
	fail "ewfexport: $(tail -n3 "$T/export.out"; ls "$T")"
fi
j=$out.report.json
jq -e --arg s "$(sha256sum <"$img" | cut -d' ' -f1)" '
	.image.format == "ewf" and (.image.path | endswith("case1.E01")) and
	.image.case.case_number == "C-2026-42" and .image.case.examiner == "Ann Smith" and
	.hashes.sha256 == $s and .verified == true' "$j" >/dev/null &&
	ok "report: ewf, case data, SHA-256, verified" || fail "report: $(cat "$j")"
python3 "$(dirname "$0")/image_report_check.py" "$j" >"$T/schema.out" &&
	ok "the report is valid against tests/sim/image_report.schema.json" || fail "schema: $(cat "$T/schema.out")"
"$xbd" image vm1 -o "$T/x" --examiner me >/dev/null 2>"$T/err"
[ $? = 2 ] && grep -q "for --format ewf" "$T/err" && ok "case options need --format ewf" ||
	fail "case option on raw: $(cat "$T/err")"
"$xbd" image vm1 -o "$out" --format ewf >/dev/null 2>"$T/err" &&
	fail "an existing E01 was overwritten" || ok "existing E01 refused: $(cat "$T/err")"
wait_for 3 no_attach_nodes && ok "no nodes left in xenstore" ||
	fail "nodes left: $(xenstore-ls -f /local/domain/0 | grep -E 'device|vbd/0')"

# SIGTERM mid-copy: no segment left under either name
make_random_image "$T/big.img" 256
vm_create vm2 "$T/big.img,xvda"
"$xbd" image vm2 -o "$T/int" --format ewf 2>"$T/int.err" >/dev/null &
pid=$!
wait_for 20 test -e "$T/int.partial.E01" || fail "no partial E01 appeared"
kill -TERM "$pid"
wait "$pid"
st=$?
[ "$st" = 143 ] && ok "SIGTERM: exit 143" || fail "SIGTERM: exit $st: $(cat "$T/int.err")"
left=$(ls "$T" | grep '^int\.' | grep -vx 'int\.err')
[ -n "$left" ] && fail "SIGTERM left: $left" ||
	ok "SIGTERM: no E01, partial segment or report left"
wait_for 3 no_attach_nodes && ok "SIGTERM: no nodes left in xenstore" ||
	fail "SIGTERM: nodes left: $(xenstore-ls -f /local/domain/0 | grep -E 'device|vbd/0')"
finish
