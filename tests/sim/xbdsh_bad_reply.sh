#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# xbdsh facing control-socket replies it cannot trust: fields missing,
# null or of the wrong type (`"backend_path": null`, `"sectors": "x"`,
# `"stats": 3`), devices that are not objects, documents without
# devices.  Every command (stats in text, --json and --prometheus, ring,
# list) shows such a field as unknown and never crashes; the disks whose
# documents make sense are shown as usual.  Once with --xbd-only, once
# on the sim, where a VM's xenstore disks are matched against them.
. "$(dirname "$0")/xbdsh_common.inc"

# start_doc VAR JSON: a fake xbd process answering JSON to every request.
start_doc() {
	local var=$1 out
	out=$T/doc.$RANDOM.$RANDOM
	: >"$out"
	printf '%s\n' "$2" >"$out.json"
	"$fake" --serve-doc "$out.json" >"$out" 2>>"$T/fake.log" &
	pids+=($!)
	printf -v "$var" '%s' "$!"
	wait_for 10 grep -q '^ready ' "$out" ||
		die "fake xbd process did not start: $(cat "$T/fake.log")"
}

# docs DOMID: the hostile documents, for a VM vm1 of that domain id.
docs() {
	local d=$1
	start_doc p1 '{"version":1,"pid":1,"program":null,"devices":[
 {"vm":"vm1","domid":'"$d"',"vdev":"xvdb","devid":51728,"role":"serve",
  "backend":"xbd","backend_path":null,"frontend_path":7,"image":["x"],
  "sectors":"x","sector_size":null,"state":4,"read_only":"yes","stats":3,
  "stats_enabled":"x","requests":3,"op_sectors":{"read":"x"},"in_flight":-1,
  "ring":{"nr_ents":"32","used":40},"errors":3,"notify":[1,2],
  "latency":{"read":5},"features":7,"in_flight_total":"x",
  "in_flight_requests":[3,null,{"op":5,"age_ns":"x","id":-4}]},
 {"vm":"vm1","domid":'"$d"',"vdev":"xvdc","role":"attach","sectors":1.5,
  "ring":{"nr_ents":32,"used":40,"req_cons":"x","rsp_cons":-1},
  "errors":{"io":"x","eio":-1,"ok":2},"notify":null,"stats_enabled":true,
  "latency":{"read":{"buckets":"x","count":"7"},
             "write":{"count":1,"buckets":[1,"x",null,-3,{}]}},
  "requests":{"read":1},"op_sectors":{},"in_flight_requests":{"a":1}},
 {"vm":null,"domid":"'"$d"'","vdev":7},
 {"vm":"vm1","domid":'$((d + 65536))',"vdev":"xvdd"},
 {"vm":"vm1","domid":-'"$d"',"vdev":"xvde"},
 {"vm":"vm1","vdev":"xvdf"},
 5, null, "x", [1], {}
]}'
	start_doc p2 '{"version":1,"devices":{"a":1}}'
	start_doc p3 '{"version":1}'
	start_doc p4 '{"version":1,"devices":null}'
	start_doc p5 '{"version":1,"devices":[{"vm":"vm1","domid":'"$d"',"vdev":"xvdg","role":"serve","backend_path":"/local/domain/0/backend/vbd/'"$d"'/51712","devid":51712,"sectors":2048}]}'
	start_doc p6 '{"version":"1","devices":[]}'
	start_doc p7 '[1,2]'
	start_doc p8 '{"version":1,"error_code":5}'
}

# run_ok DESC CMD...: CMD neither crashed nor hung (exit 0 or 1, no
# sanitizer report), and printed no "(null)".
run_ok() {
	local desc=$1
	shift
	run_timed timeout 20 "$@"
	if [ $rc -gt 1 ] || grep -qE 'Sanitizer|runtime error|\(null\)' "$T/out" "$T/err"; then
		fail "$desc: rc $rc: $(head -c 600 "$T/err")"
		return 1
	fi
	ok "$desc: rc $rc"
}

check_outputs() {
	local where=$1
	shift
	run_ok "$where: stats" "$xbdsh" "$@" stats vm1 &&
	{ grep -q '^xvdb .*, ?' "$T/out" && ok "$where: xvdb's size is unknown" ||
		fail "$where: xvdb size: $(cat "$T/out")"; }
	run_ok "$where: stats --json" "$xbdsh" "$@" stats vm1 --json &&
	{ [ "$(jq -c '[.disks[] | select(.vdev == "xvdb" or .vdev == "xvdc") |
		[.vdev, .sectors, .counters, .in_flight, .ring]]' "$T/out")" = \
		'[["xvdb",null,null,null,null],["xvdc",null,{"oo_req":0,"rd_req":1,"wr_req":0,"f_req":0,"ds_req":0,"rd_sect":0,"wr_sect":0},null,null]]' ] &&
		ok "$where: --json: unknown fields are null" ||
		fail "$where: --json: $(jq -c '[.disks[] | [.vdev, .sectors, .counters, .in_flight, .ring]]' "$T/out")"; }
	jq -e '[.disks[].vdev] | index("xvdg") != null' "$T/out" >/dev/null &&
		ok "$where: the sane disk is shown" || fail "$where: no xvdg: $(cat "$T/out")"
	run_ok "$where: stats --prometheus" "$xbdsh" "$@" stats vm1 --prometheus &&
	{ grep -q 'xbd_vbd_errors_total{.*kind="ok"} 2$' "$T/out" &&
	  ! grep -q 'vdev="xvdc".*kind="io"' "$T/out" &&
		ok "$where: --prometheus: only the integers" ||
		fail "$where: --prometheus: $(grep errors_total "$T/out")"; }
	run_ok "$where: ring xvdb" "$xbdsh" "$@" ring vm1 xvdb
	run_ok "$where: ring xvdc" "$xbdsh" "$@" ring vm1 xvdc
	run_ok "$where: list" "$xbdsh" "$@" list
}

docs 5
check_outputs xbd-only --xbd-only
grep -q 'xbd process [0-9]*: unexpected answer' "$T/err" &&
	ok "documents of another version are reported" ||
	fail "no report of the bad documents: $(cat "$T/err")"

# On the sim: vm1's disks come from xenstore and are matched against the
# documents by backend path and device id.
for p in "${pids[@]}"; do kill_now "$p"; done
pids=()
rm -f "$XBD_RUN_DIR"/xbd-*.sock
start_sim
truncate -s 1M "$T/disk.raw"
domid=$("$xbd" sim vm create vm1 --no-guest --disk "$T/disk.raw,xvdg") ||
	die "xbd sim vm create vm1"
docs "$domid"
check_outputs sim

finish
