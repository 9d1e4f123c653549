# SPDX-License-Identifier: GPL-2.0-or-later
# Helpers for domU jobs (/job/run.sh): `. /lib/xbd-domu.sh`.
# busybox sh; the job's output is the domU console, logged by dom0.

# wait_dev DEV [SECONDS]: waits until block device DEV exists.
wait_dev() {
	local i=0 max=$(( ${2:-20} * 5 ))
	while [ ! -b "$1" ]; do
		i=$((i + 1))
		if [ $i -gt $max ]; then
			echo "XBD-DOMU no $1 after ${2:-20}s"
			return 1
		fi
		sleep 0.2
	done
}

# report KEY VALUE...: one line dom0 finds with domu_result KEY.
report() {
	echo "XBD-DOMU RESULT $*"
}
