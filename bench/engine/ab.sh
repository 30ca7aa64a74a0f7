#!/bin/bash
# ab.sh WINDOW "COMMAND A" "COMMAND B": an A/B pair of bench/engine paired
# workers (or any two programs speaking the same protocol: print "ready",
# start timing on "go", stop after the step during which "stop" arrives,
# print one JSON line), run at once, A pinned to CPU $CA (0) and B to $CB (1),
# timed over WINDOW seconds. Prints images per CPU-second of each, A/B, and
# peak RSS. Swap CA and CB between pairs so a faster core favours neither.
#
#   go build -o /tmp/be ./bench/engine
#   W="-worker -model resnet18 -mode train -variant fp32 -threads 1"
#   bench/engine/ab.sh 25 "env GLIBC_TUNABLES=glibc.malloc.hugetlb=1 /tmp/be $W" "/tmp/be $W"
set -euo pipefail
W=$1 A=$2 B=$3
# internal/base/procenv.Defaults, which the Go driver applies to both sides
export MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=1099511627776 MALLOC_TOP_PAD_=268435456 OMP_WAIT_POLICY=PASSIVE IMET_BENCH_WINDOW=1
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
mkfifo "$d/a" "$d/b"
# shellcheck disable=SC2086 # the commands are word-split on purpose
taskset -c "${CA:-0}" $A <"$d/a" >"$d/oa" 2>"$d/ea" &
# shellcheck disable=SC2086
taskset -c "${CB:-1}" $B <"$d/b" >"$d/ob" 2>"$d/eb" &
exec 3>"$d/a" 4>"$d/b"
until grep -q ready "$d/oa" && grep -q ready "$d/ob"; do
	sleep 0.2
	if ! jobs %1 %2 >/dev/null 2>&1; then cat "$d/ea" "$d/eb" >&2; exit 1; fi
done
echo go >&3; echo go >&4
sleep "$W"
echo stop >&3; echo stop >&4
exec 3>&- 4>&-
wait
tail -1 "$d/oa" >"$d/ra"; tail -1 "$d/ob" >"$d/rb"
jq -rn --slurpfile a "$d/ra" --slurpfile b "$d/rb" \
	'"A \($a[0].images_per_cpu_s*100|round/100) B \($b[0].images_per_cpu_s*100|round/100) img/cpu-s, A/B \($a[0].images_per_cpu_s/$b[0].images_per_cpu_s*1000|round/1000), peak RSS \($a[0].peak_rss_kb/1024|floor) / \($b[0].peak_rss_kb/1024|floor) MB"'
