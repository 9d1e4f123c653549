#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# End-to-end: `xbd image` of a running sim VM's disk, raw.  Checks: the
# image equals the disk and its sha256/md5 are the reported ones; the
# JSON report's fields are there with their types; --verify; an
# existing image is refused without --force; --sparse keeps the bytes;
# --skip-errors over sectors the backend cannot read lists exactly
# those and exits 4, without it the copy stops naming the first; a
# copy stopped (SIGSTOP) longer than the I/O timeout finishes when
# continued; SIGINT mid-copy leaves no image under FILE's name and no
# xenstore nodes.
. "$(dirname "$0")/attach_common.inc"
requires_prog xenstore-read xenstore-utils
requires_prog jq
random_vm1 64

out=$T/vm1.raw
if "$xbd" image vm1 -o "$out" --verify --sha1 >"$T/out" 2>"$T/err"; then
	ok "xbd image: $(head -n1 "$T/out")"
else
	die "xbd image failed: $(cat "$T/err")"
fi
cmp -s "$out" "$img" && ok "the image equals the disk" || fail "the image differs from the disk"
j=$T/vm1.raw.report.json
[ -s "$T/vm1.raw.report.txt" ] && ok "text report written" || fail "no text report"
[ "$(jq -r .hashes.sha256 "$j")  -" = "$sum" ] && ok "reported SHA-256 equals the disk's" ||
	fail "SHA-256 $(jq -r .hashes.sha256 "$j") vs $sum"
[ "$(jq -r .hashes.md5 "$j")  -" = "$(md5sum <"$img")" ] && ok "reported MD5 equals the disk's" ||
	fail "MD5 differs"
[ "$(jq -r .hashes.sha1 "$j")  -" = "$(sha1sum <"$img")" ] && ok "reported SHA-1 equals the disk's" ||
	fail "SHA-1 differs"
# the schema: every field and its type
if jq -e '
	(.tool == "xbd") and (.xbd_version | type == "string") and
	(.command_line | type == "array" and length > 0) and (.host | type == "string") and
	(.vm.name == "vm1") and (.vm.domid | type == "number") and
	(.vm.uuid | type == "string" or type == "null") and
	(.disk.vdev == "xvda") and (.disk.sectors == 131072) and (.disk.sector_size == 512) and
	(.disk.size_bytes == 67108864) and (.disk.backend.type == "vbd") and
	(.disk.backend.served_by | type == "string") and (.disk.backend.params | type == "string") and
	(.image.format == "raw") and (.image.path | type == "string") and
	(.start_utc | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$")) and
	(.end_utc | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$")) and
	(.bytes_read == 67108864) and (.read_error_sectors == 0) and
	(.read_errors == []) and (.verified == true) and (.skip_errors == false) and
	(.hashes.sha256 | test("^[0-9a-f]{64}$")) and (.hashes.md5 | test("^[0-9a-f]{32}$"))
	' "$j" >/dev/null; then
	ok "report JSON fields present and typed"
else
	fail "report JSON: $(cat "$j")"
fi
python3 "$(dirname "$0")/image_report_check.py" "$j" >"$T/schema.out" &&
	ok "the report is valid against tests/sim/image_report.schema.json" || fail "schema: $(cat "$T/schema.out")"
# --no-md5: SHA-256 alone, and the report has no MD5
if "$xbd" image vm1 -o "$T/nomd5.raw" --no-md5 >"$T/out" 2>"$T/err"; then
	jq -e --arg s "${sum%% *}" '(.hashes | keys) == ["sha256"] and .hashes.sha256 == $s' \
		"$T/nomd5.raw.report.json" >/dev/null && ! grep -q "^md5 " "$T/out" &&
		ok "--no-md5: SHA-256 alone" || fail "--no-md5: $(jq -c .hashes "$T/nomd5.raw.report.json"; cat "$T/out")"
else
	fail "--no-md5: $(cat "$T/err")"
fi
# the validator does reject: a hash of the wrong length, a missing domid
jq '.hashes.sha256 = "abc" | del(.vm.domid)' "$j" >"$T/bad.json"
python3 "$(dirname "$0")/image_report_check.py" "$T/bad.json" >"$T/schema.out"
[ $? = 1 ] && grep -q "sha256" "$T/schema.out" && grep -q "domid" "$T/schema.out" &&
	ok "the validator rejects a broken report: $(tr '\n' ' ' <"$T/schema.out")" ||
	fail "broken report: $(cat "$T/schema.out")"
grep -q "^SHA-256: *$(jq -r .hashes.sha256 "$j")" "$T/vm1.raw.report.txt" &&
	ok "text report names the SHA-256" || fail "text report: $(cat "$T/vm1.raw.report.txt")"
wait_for 3 no_attach_nodes && ok "no nodes left in xenstore" ||
	fail "nodes left: $(xenstore-ls -f /local/domain/0 | grep -E 'device|vbd/0')"

# an existing image is not overwritten
before=$(stat -c %Y.%i "$out")
if "$xbd" image vm1 -o "$out" >/dev/null 2>"$T/err"; then
	fail "an existing image was overwritten"
else
	grep -q "exists; --force" "$T/err" && ok "refused: $(cat "$T/err")" ||
		fail "refusal unclear: $(cat "$T/err")"
fi
[ "$(stat -c %Y.%i "$out")" = "$before" ] && ok "the image is untouched" || fail "the image changed"
"$xbd" image vm1 -o "$out" --force >/dev/null 2>"$T/err" && cmp -s "$out" "$img" &&
	ok "--force replaces it" || fail "--force: $(cat "$T/err")"

# --sparse: same bytes, holes where zeros were
"$xbd" image vm1 -o "$T/sparse.raw" --sparse >/dev/null 2>"$T/err" &&
	cmp -s "$T/sparse.raw" "$img" && ok "--sparse image equals the disk" ||
	fail "--sparse: $(cat "$T/err")"

# the usage errors name the problem
"$xbd" image vm1 -o "$T/x" --format qcow2 >/dev/null 2>"$T/err"
[ $? = 2 ] && grep -q "expected raw or ewf" "$T/err" && ok "bad --format: usage error" ||
	fail "bad --format: $(cat "$T/err")"
"$xbd" image nosuchvm -o "$T/x" >/dev/null 2>"$T/err"
[ $? = 1 ] && grep -q "no such domain" "$T/err" && [ ! -e "$T/x" ] &&
	ok "unknown VM: one error line, no file" || fail "unknown VM: $(cat "$T/err")"

# Unreadable sectors: the VM's backend node names the same file behind
# the sim blkback's error injection; our second instance copies params
# (the VM's own connection, made before, is untouched).
be=/local/domain/0/backend/vbd/$DOMID/51712
xenstore-write "$be/params" "errinject:100-107,5000,131071:$img" ||
	die "cannot rewrite $be/params"
"$xbd" image vm1 -o "$T/bad.raw" >/dev/null 2>"$T/err"
st=$?
[ "$st" = 1 ] && grep -q "sector 100 cannot be read" "$T/err" && [ ! -e "$T/bad.raw" ] &&
	[ ! -e "$T/bad.raw.partial" ] && ok "a read error stops it: $(cat "$T/err")" ||
	fail "read error without --skip-errors: exit $st: $(cat "$T/err")"
"$xbd" image vm1 -o "$T/skip.raw" --skip-errors >/dev/null 2>"$T/err"
st=$?
[ "$st" = 4 ] && ok "--skip-errors: exit 4: $(cat "$T/err")" ||
	fail "--skip-errors: exit $st: $(cat "$T/err")"
jq -e '.read_error_sectors == 10 and .read_errors == [{"start":100,"end":107},
	{"start":5000,"end":5000},{"start":131071,"end":131071}] and .skip_errors == true' \
	"$T/skip.raw.report.json" >/dev/null && ok "the report lists exactly the injected sectors" ||
	fail "read errors reported: $(jq -c '.read_errors' "$T/skip.raw.report.json")"
if python3 - "$T/skip.raw" "$img" <<'PY'
import sys
a, b = open(sys.argv[1], "rb").read(), bytearray(open(sys.argv[2], "rb").read())
for s, e in ((100, 107), (5000, 5000), (131071, 131071)):
    b[s * 512:(e + 1) * 512] = bytes((e + 1 - s) * 512)
sys.exit(a != bytes(b))
PY
then
	ok "unreadable sectors are zeros, the rest equals the disk"
else
	fail "--skip-errors image content is wrong"
fi
[ "$(jq -r .hashes.sha256 "$T/skip.raw.report.json")  -" = "$(sha256sum <"$T/skip.raw")" ] &&
	ok "--skip-errors: reported SHA-256 is the image's" || fail "--skip-errors: SHA-256"
grep -q "^ *100-107$" "$T/skip.raw.report.txt" && ok "text report lists 100-107" ||
	fail "text report: $(cat "$T/skip.raw.report.txt")"

# Ctrl-Z mid-copy: time the process is stopped does not count against
# the backend's I/O timeout (3 s).  The first read takes the backend
# 5 s; xbd is stopped for 3.5 s of it (from 1 s after its image file
# appears, by when that read is on the ring), so once continued it waits
# at most 1.5 s more: the copy must finish.  It used to fail the disk as
# soon as it was continued ("backend did not answer for 3000 ms").
xenstore-write "$be/params" "errinject:delay=5000000@0-7:$img" || die "cannot rewrite $be/params"
"$xbd" image vm1 -o "$T/stop.raw" >/dev/null 2>"$T/stop.err" &
pid=$!
wait_for 20 test -e "$T/stop.raw.partial" || fail "stopped copy: no partial image appeared"
sleep 1
kill -STOP "$pid"
sleep 3.5
kill -CONT "$pid"
wait "$pid"
st=$?
[ "$st" = 0 ] && cmp -s "$T/stop.raw" "$img" && ok "stopped 3.5 s while a read waited, continued: the image equals the disk" ||
	fail "stopped and continued: exit $st: $(cat "$T/stop.err")"

# SIGINT mid-copy: a slow progress (ticks) gives time to interrupt
big=$T/big.img
head -c $((512 << 20)) /dev/zero >"$big"
vm_create vm2 "$big,xvda"
"$xbd" image vm2 -o "$T/int.raw" --progress 2>"$T/int.err" >/dev/null &
pid=$!
wait_for 20 test -e "$T/int.raw.partial" || fail "no partial image appeared"
sleep 0.3
kill -INT "$pid"
wait "$pid"
st=$?
[ "$st" = 130 ] && ok "SIGINT: exit 130" || fail "SIGINT: exit $st: $(cat "$T/int.err")"
[ ! -e "$T/int.raw" ] && [ ! -e "$T/int.raw.partial" ] && [ ! -e "$T/int.raw.report.json" ] &&
	ok "SIGINT: no image, partial or report left" || fail "SIGINT left: $(ls "$T" | grep int.raw)"
wait_for 3 no_attach_nodes && ok "SIGINT: no nodes left in xenstore" ||
	fail "SIGINT: nodes left: $(xenstore-ls -f /local/domain/0 | grep -E 'device|vbd/0')"
finish
