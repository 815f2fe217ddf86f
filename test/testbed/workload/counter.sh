#!/bin/sh
# Test bed workload with observable in-memory state. Every TICK seconds it prints
#   <n> <epoch-ms> <token>
# holding a value of MB MiB in memory. A restored process continues n and keeps
# its token; a restarted one starts again at 1.
#
# Memory check on request: when /tmp/testbed-counter-check holds a line it has
# not seen yet (docker exec NAME sh -c 'date +%s%N >/tmp/testbed-counter-check'),
# it prints "len <bytes>" of the value once. Only on request: busybox ash copies
# the value to expand ${#big}, so a check on a timer made the process hold
# between one and two copies at any moment (a dump of MB=256 weighed 300 to
# 500 MiB, at random) and kept it busy copying most of the time.
#
# PATTERN says what the MB MiB are (exactly MB * 1048576 bytes in every case):
#   random  bytes from /dev/urandom (NUL and newline mapped to \001: a shell string
#           cannot hold NUL, and $(...) drops trailing newlines): incompressible.
#           The default, and what every headline figure of the benchmark uses.
#   text    random letters from a 16-character alphabet (4 bits per byte):
#           compressors halve it, about what they do with real text.
#   zeros   one repeated byte ("0": NUL cannot live in a shell string):
#           compresses to almost nothing, like untouched memory.
#
# The process holding the value never forks, so a dump holds one copy of it
# every time (a fork per line would leave one to three copies in a dump,
# depending on the moment of the freeze). A small ticker process beside it
# reads the wall clock every TICK (busybox date has no %N; adjtimex reads the
# clock to the microsecond) and hands each timestamp over a pipe; the holder
# numbers and prints them with builtins only. The ticker starts once the value
# is built (a ready file), so no stale timestamps queue up in the pipe. The
# wall clock, not /proc/uptime: a restored process may see another boot time.
mb=${MB:-16}
tick=${TICK:-0.1}
pattern=${PATTERN:-random}
bytes=$((mb * 1048576))
case $pattern in
random | text | zeros) ;;
*)
  echo "PATTERN must be random, text or zeros, not $pattern" >&2
  exit 2
  ;;
esac
token=$(cat /proc/sys/kernel/random/uuid)
ready=/tmp/testbed-counter-ready.$$
rm -f "$ready"
{
  while [ ! -e "$ready" ]; do sleep 0.05; done
  while :; do
    # With STA_NANO (0x2000) in the kernel's status, tv_usec holds nanoseconds.
    adjtimex | awk '/status/ {st = $2} /tv_sec/ {s = $2} /tv_usec/ {u = $2} END {printf "%d%03d\n", s, (int(st / 8192) % 2 ? u / 1000000 : u / 1000)}'
    sleep "$tick"
  done
} | {
  case $pattern in
  random) big=$(head -c $bytes /dev/urandom | tr '\000\n' '\001\001') ;;
  text)
    alphabet='etaoin shrdlucmf'
    map=
    i=0
    while [ $i -lt 16 ]; do
      map=$map$alphabet
      i=$((i + 1))
    done
    big=$(head -c $bytes /dev/urandom | tr '\000-\377' "$map")
    ;;
  zeros) big=$(head -c $bytes /dev/zero | tr '\000' 0) ;;
  esac
  echo "start $token len ${#big} $pattern"
  : >"$ready"
  n=0
  check=/tmp/testbed-counter-check
  seen=
  while read -r ms; do
    n=$((n + 1))
    echo "$n $ms $token"
    [ -s "$check" ] || continue
    read -r want <"$check"
    [ "$want" != "$seen" ] || continue
    seen=$want
    echo "len ${#big}"
  done
}
