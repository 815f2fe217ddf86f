#!/bin/sh
# The bench's incompressible variant of test/testbed/workload/counter.sh, for
# the checkpoint and restore modes section: same lines every TICK seconds,
#   <n> <epoch-ms> <token>
# but the MB MiB it holds are random bytes (NULs dropped: a shell string cannot
# hold them), which no compressor shrinks, and its loop never forks (counter.sh
# forks for every line, so a dump catches one to three copies of its memory):
# the clock is /proc/uptime read by a redirect, the tick a `read -t` on a pipe
# nobody writes to. A dump therefore holds one copy of MB MiB, every time.
# The pipe's writer is a loop of sleeps, not one long sleep: busybox sleep ends
# early when CRIU dumps it (--leave-running), and a closed pipe would turn the
# tick into a busy loop.
#
# busybox sh, run as: sh -c "$(cat counter-random.sh)" inside testbed/busybox:1.
mb=${MB:-16}
tick=${TICK:-0.1}
token=$(cat /proc/sys/kernel/random/uuid)
# Epoch milliseconds at boot, once: the loop adds /proc/uptime (centiseconds) to it.
now=$(adjtimex | awk '/tv_sec/ {s = $2} /tv_usec/ {u = $2} END {printf "%d%03d", s, u / 1000}')
read -r up _ </proc/uptime
boot=$((now - ${up%.*}${up#*.} * 10))
{ while :; do sleep 3600; done; } | {
  big=$(head -c $((mb * 1048576)) /dev/urandom | tr -d '\000')
  echo "start $token len ${#big} random"
  n=0
  while :; do
    n=$((n + 1))
    read -r up _ </proc/uptime
    echo "$n $((boot + ${up%.*}${up#*.} * 10)) $token"
    read -r -t "$tick" _
  done
}
