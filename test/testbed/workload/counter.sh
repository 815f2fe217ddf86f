#!/bin/sh
# Test bed workload with observable in-memory state. Every TICK seconds it prints
#   <n> <epoch-ms> <token>
# and every 50 lines "len <bytes>" of a value of MB MiB held in memory. A restored
# process continues n and keeps its token; a restarted one starts again at 1.
mb=${MB:-16}
tick=${TICK:-0.1}
token=$(cat /proc/sys/kernel/random/uuid)
big=$(head -c $((mb * 1048576)) /dev/zero | tr '\0' x)
echo "start $token len ${#big}"
n=0
while :; do
  n=$((n + 1))
  # busybox date has no %N; adjtimex reads the clock to the microsecond.
  echo "$n $(adjtimex | awk '/tv_sec/ {s = $2} /tv_usec/ {u = $2} END {printf "%d%03d", s, u / 1000}') $token"
  [ $((n % 50)) -ne 0 ] || echo "len ${#big}"
  sleep "$tick"
done
