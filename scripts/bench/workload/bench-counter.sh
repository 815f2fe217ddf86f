#!/bin/sh
# The benchmark's workload: test/testbed/workload/counter.sh's ticking counter
# (same line format "<n> <epoch-ms> <token>", same MB / TICK / PATTERN), plus a
# proof of its memory by content. On request it prints
#   sum <request> <md5 of the whole value it holds>
# where <request> is the line written into /tmp/bench-counter-check
# (docker exec NAME sh -c 'echo ID >/tmp/bench-counter-check'). The bench asks
# once on the source before the move and once on the target after it, and
# compares. The checksum runs in a forked child (command substitution), so the
# holder itself never copies the value and a dump holds one copy of it.
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
ready=/tmp/bench-counter-ready.$$
rm -f "$ready"
{
  # The ticker starts once the value exists, so no stale stamps wait in the pipe.
  while [ ! -e "$ready" ]; do sleep 0.05; done
  while :; do
    # With STA_NANO (8192) in the kernel's clock status, tv_usec holds nanoseconds.
    adjtimex | awk '/status/ {st = $2} /tv_sec/ {s = $2} /tv_usec/ {u = $2} END {if (int(st / 8192) % 2) u = u / 1000; printf "%d%03d\n", s, u / 1000}'
    sleep "$tick"
  done
} | {
  case $pattern in
  random) big=$(head -c $bytes /dev/urandom | tr '\000\n' '\001\001') ;;
  text)
    # 16 letters repeated to 256 entries: 4 bits per byte, compressors halve it.
    map=
    i=0
    while [ $i -lt 16 ]; do
      map="${map}etaoin shrdlucmf"
      i=$((i + 1))
    done
    big=$(head -c $bytes /dev/urandom | tr '\000-\377' "$map")
    ;;
  zeros) big=$(head -c $bytes /dev/zero | tr '\000' 0) ;;
  esac
  echo "start $token $pattern"
  : >"$ready"
  n=0
  check=/tmp/bench-counter-check
  seen=
  while read -r ms; do
    n=$((n + 1))
    echo "$n $ms $token"
    [ -s "$check" ] || continue
    read -r want <"$check"
    [ "$want" != "$seen" ] || continue
    seen=$want
    sum=$(printf '%s' "$big" | md5sum)
    echo "sum $want ${sum%% *}"
  done
}
