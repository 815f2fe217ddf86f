# Shared by the benchmark's scripted procedures. Sourced, not run.
#
# The runner talks to each host over one multiplexed OpenSSH connection per
# host (opened before the timed part, like an operator's open terminal), and
# copies files between hosts through itself: ssh SRC cat | dd | ssh DST 'cat >F'.
#
# Environment: BENCH_SSH_KEY, BENCH_KNOWN_HOSTS (files), BENCH_SSH_CIPHERS (the action's own
# preference, AES-GCM first: every peer's copies get the fastest cipher the hosts have);
# hosts as root@addr:port.
# Results go to stdout as "key value" lines; progress goes to stderr.
set -euo pipefail

: "${BENCH_SSH_KEY:?}" "${BENCH_KNOWN_HOSTS:?}" "${BENCH_SSH_CIPHERS:?}"
BENCH_CTL_DIR=$(mktemp -d /tmp/bench-ssh.XXXXXX)
declare -A BENCH_MASTER_RSS_FILE=()

now_ms() { date +%s%3N; }
say() { printf '[%s %(%H:%M:%S)T] %s\n' "${BENCH_WHAT:-bench}" -1 "$*" >&2; }
result() { printf '%s %s\n' "$1" "$2"; }

# "root@127.0.0.6:22" -> ssh options and destination.
ssh_opts() {
  local dest=$1
  printf '%s\n' -o BatchMode=yes -o "UserKnownHostsFile=$BENCH_KNOWN_HOSTS" -o StrictHostKeyChecking=yes \
    -o "IdentityFile=$BENCH_SSH_KEY" -o IdentitiesOnly=yes -o "ControlPath=$BENCH_CTL_DIR/%C" \
    -o "Ciphers=$BENCH_SSH_CIPHERS" \
    -p "${dest##*:}" "${dest%:*}"
}

# Opens the control connection to a host; its peak memory is recorded when it exits.
open_master() {
  local dest=$1 opts
  mapfile -t opts < <(ssh_opts "$dest")
  BENCH_MASTER_RSS_FILE[$dest]=$(mktemp "$BENCH_CTL_DIR/rss.XXXXXX")
  /usr/bin/time -f '%M' -o "${BENCH_MASTER_RSS_FILE[$dest]}" ssh -M -N -o ControlMaster=yes "${opts[@]}" </dev/null &
  local i
  for i in $(seq 1 100); do
    ssh -O check "${opts[@]}" 2>/dev/null && return 0
    sleep 0.1
  done
  say "cannot open an SSH connection to $dest"
  return 1
}

close_masters() {
  local dest opts
  for dest in "${!BENCH_MASTER_RSS_FILE[@]}"; do
    mapfile -t opts < <(ssh_opts "$dest")
    ssh -O exit "${opts[@]}" 2>/dev/null || true
  done
  wait || true
}

on() {
  local dest=$1 opts
  shift
  mapfile -t opts < <(ssh_opts "$dest")
  ssh "${opts[@]}" "$*"
}

# Runs one named step on a host and reports how long it took.
step() {
  local name=$1 dest=$2 t0
  shift 2
  say "$name"
  t0=$(now_ms)
  on "$dest" "$@"
  result "step.$name" "$(($(now_ms) - t0))"
}

# Copies a file from one host to another through the runner; reports the
# bytes that passed and the peak memory of the three runner processes.
BENCH_RELAY_RSS=0
relay() {
  local name=$1 src=$2 dst=$3 path=$4 t0 f bytes rss
  local sopts dopts
  mapfile -t sopts < <(ssh_opts "$src")
  mapfile -t dopts < <(ssh_opts "$dst")
  f=$(mktemp -d "$BENCH_CTL_DIR/relay.XXXXXX")
  say "$name: $src:$path -> $dst:$path"
  t0=$(now_ms)
  /usr/bin/time -f '%M' -o "$f/rss.src" ssh "${sopts[@]}" "cat $path" |
    /usr/bin/time -f '%M' -o "$f/rss.dd" dd bs=1M 2>"$f/dd" |
    /usr/bin/time -f '%M' -o "$f/rss.dst" ssh "${dopts[@]}" "cat >$path"
  result "step.$name" "$(($(now_ms) - t0))"
  bytes=$(awk '/bytes/ {print $1; exit}' "$f/dd")
  result "bytes.$name" "$bytes"
  rss=$(($(tail -n1 "$f/rss.src") + $(tail -n1 "$f/rss.dd") + $(tail -n1 "$f/rss.dst")))
  [ "$rss" -gt "$BENCH_RELAY_RSS" ] && BENCH_RELAY_RSS=$rss
  return 0
}

# Peak runner memory: both control connections plus the largest relay pipeline.
report_runner_rss() {
  local total=$BENCH_RELAY_RSS dest
  for dest in "${!BENCH_MASTER_RSS_FILE[@]}"; do
    total=$((total + $(tail -n1 "${BENCH_MASTER_RSS_FILE[$dest]}" 2>/dev/null || echo 0)))
  done
  result runner_rss_kb "$total"
}

bench_cleanup() {
  close_masters
  rm -rf "$BENCH_CTL_DIR"
}
trap bench_cleanup EXIT
