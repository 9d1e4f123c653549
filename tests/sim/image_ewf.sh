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

# Every compression level on a disk of mixed chunks (random, zeros, one
# repeated non-zero byte, text) whose size is no multiple of the 32 KiB
# chunk, ending in a short chunk of zeros.  The chunks are packed by
# xbd's threads, not libewf: the sectors sections must be byte for byte
# what ewfacquire writes at the same level.
requires_prog ewfacquire ewf-tools
mixed=$T/mixed.img
{
	head -c 1M /dev/urandom
	head -c 1M /dev/zero
	head -c 512K /dev/zero | tr '\0' '\252'
	seq 1 300000 | head -c 1M
	head -c 1M /dev/urandom
	head -c 7K /dev/zero
} >"$mixed"
vm_create vm3 "$mixed,xvda"
wait_for 10 guest_connected "$DOMID" 51712 || fail "vm3's guest did not connect xvda"
sections() { python3 "$(dirname "$0")/image_ewf_sections.py" "$1"; }
for level in fast best none empty-block; do
	o=$T/lvl-$level
	if ! "$xbd" image vm3 -o "$o" --format ewf --compression "$level" >/dev/null 2>"$T/err"; then
		fail "--compression $level: $(cat "$T/err")"
		continue
	fi
	ewfverify -q "$o.E01" 2>&1 | grep -q SUCCESS && ok "$level: ewfverify SUCCESS" ||
		fail "$level: ewfverify: $(ewfverify -q "$o.E01" 2>&1 | tail -n3)"
	rm -f "$T/exp.raw"
	ewfexport -q -u -f raw -t "$T/exp" "$o.E01" >/dev/null 2>&1 && cmp -s "$T/exp.raw" "$mixed" &&
		ok "$level: ewfexport equals the disk" || fail "$level: ewfexport differs from the disk"
	case $level in
	fast) want="good (fast) compression" ;;
	best) want="best compression" ;;
	*) want="no compression" ;;
	esac
	ewfinfo "$o.E01" 2>&1 | grep -q "Compression level:.*$want" && ok "$level: ewfinfo: $want" ||
		fail "$level: ewfinfo: $(ewfinfo "$o.E01" 2>&1 | grep -i compression)"
	c=$level
	[ "$level" = empty-block ] || c=deflate:$level
	ewfacquire -u -q -c "$c" -f encase6 -t "$T/acq-$level" "$mixed" </dev/null >/dev/null 2>&1 ||
		fail "ewfacquire -c $c failed"
	a=$(sections "$T/acq-$level.E01") x=$(sections "$o.E01")
	[ -n "$x" ] && [ "$x" = "$a" ] && ok "$level: the chunks are byte for byte ewfacquire's" ||
		fail "$level: chunks differ from ewfacquire's: xbd $x, ewfacquire $a"
	jq -e --arg l "$level" '.image.compression == $l' "$o.report.json" >/dev/null &&
		ok "$level: in the report" || fail "$level: report: $(jq -c .image "$o.report.json")"
	rm -f "$T/acq-$level".E*
done
"$xbd" image vm3 -o "$T/t1" --format ewf --threads 1 >/dev/null 2>"$T/err" || fail "--threads 1: $(cat "$T/err")"
[ "$(sections "$T/t1.E01")" = "$(sections "$T/lvl-fast.E01")" ] &&
	ok "one compressing thread writes the same chunks as one per CPU" ||
	fail "--threads 1 wrote other chunks"
"$xbd" image vm3 -o "$T/y" --format ewf --compression zstd >/dev/null 2>"$T/err"
[ $? = 2 ] && grep -q "expected fast, best, none or empty-block" "$T/err" &&
	ok "unknown --compression: usage error" || fail "--compression zstd: $(cat "$T/err")"
"$xbd" image vm3 -o "$T/y" --format ewf --threads 0 >/dev/null 2>"$T/err"
[ $? = 2 ] && ok "--threads 0: usage error" || fail "--threads 0: $(cat "$T/err")"
"$xbd" image vm3 -o "$T/y" --format ewf --threads 17 >/dev/null 2>"$T/err"
[ $? = 2 ] && grep -q "expected 1 to 16" "$T/err" && ok "--threads 17: usage error naming the bound" ||
	fail "--threads 17: $(cat "$T/err")"

# --skip-errors into an E01: unreadable sectors (one in the short last
# chunk) are zeros in it and its acquiry errors, which ewfinfo lists
be=/local/domain/0/backend/vbd/$DOMID/51712
xenstore-write "$be/params" "errinject:100-107,6200,9225:$mixed" ||
	die "cannot rewrite $be/params"
"$xbd" image vm3 -o "$T/skip" --format ewf --skip-errors >/dev/null 2>"$T/err"
st=$?
[ "$st" = 4 ] && ok "E01 --skip-errors: exit 4" || fail "E01 --skip-errors: exit $st: $(cat "$T/err")"
ewfverify -q "$T/skip.E01" 2>&1 | grep -q SUCCESS && ok "E01 --skip-errors: ewfverify SUCCESS" ||
	fail "E01 --skip-errors: ewfverify: $(ewfverify -q "$T/skip.E01" 2>&1 | tail -n3)"
rm -f "$T/exp.raw"
ewfexport -q -u -f raw -t "$T/exp" "$T/skip.E01" >/dev/null 2>&1
if python3 - "$T/exp.raw" "$mixed" <<'PY'
import sys
a, b = open(sys.argv[1], "rb").read(), bytearray(open(sys.argv[2], "rb").read())
for s, e in ((100, 107), (6200, 6200), (9225, 9225)):
    b[s * 512:(e + 1) * 512] = bytes((e + 1 - s) * 512)
sys.exit(a != bytes(b))
PY
then
	ok "E01 --skip-errors: unreadable sectors are zeros, the rest is the disk"
else
	fail "E01 --skip-errors: ewfexport content is wrong"
fi
ewfinfo "$T/skip.E01" >"$T/info" 2>&1
grep -q "total number: 3" "$T/info" && grep -q "at sector(s): 100 - 107" "$T/info" &&
	grep -q "at sector(s): 6200 - 6200" "$T/info" && grep -q "at sector(s): 9225 - 9225" "$T/info" &&
	ok "ewfinfo lists the 3 unreadable ranges as acquiry errors" ||
	fail "acquiry errors: $(grep -A5 -i "error" "$T/info")"
jq -e '.read_error_sectors == 10' "$T/skip.report.json" >/dev/null &&
	ok "E01 --skip-errors: the report counts 10 sectors" || fail "report: $(jq -c .read_errors "$T/skip.report.json")"

# a full file system: one line saying so (not a read error), nothing left
if [ "$(id -u)" = 0 ] && mkdir -p "$T/small" && mount -t tmpfs -o size=8M tmpfs "$T/small"; then
	mounts+=("$T/small")
	"$xbd" image vm1 -o "$T/small/full" --format ewf >/dev/null 2>"$T/err"
	st=$?
	[ "$st" = 1 ] && grep -q "full.partial: cannot write: No space left on device" "$T/err" &&
		! grep -q "cannot be read" "$T/err" && ok "E01 on a full file system: $(head -n1 "$T/err")" ||
		fail "E01 on a full file system: exit $st: $(cat "$T/err")"
	[ -z "$(ls -A "$T/small")" ] && ok "nothing left on the full file system" ||
		fail "left: $(ls -A "$T/small")"
else
	echo "(the full file system case needs root to mount a small tmpfs: not run)"
fi

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
