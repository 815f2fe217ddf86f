#!/usr/bin/env bash
# Podman's own migration path: checkpoint into one archive on the source,
# copy it to the target through the runner, restore from it there.
#
#   podman container checkpoint --export /tmp/NAME.tar.zst NAME
#   (copy to the new host: ssh SRC cat | ssh DST 'cat >F')
#   podman container restore --import /tmp/NAME.tar.zst
#
# BENCH_PODMAN_COMPRESS=none adds `--compress none` (a plain tar); "default"
# keeps Podman's default (zstd). Root file system changes included either way.
# The image must already be on the target.
#
# Usage: podman-procedure.sh SRC DST NAME   (hosts as root@addr:port)
# Environment: BENCH_SSH_KEY, BENCH_KNOWN_HOSTS.
# Prints "key value" lines: step.<name> ms, bytes.copy bytes, runner_rss_kb,
# checkpoint_bytes (CRIU pages written, from --print-stats).
BENCH_WHAT=podman
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

src=${1:?source host} dst=${2:?target host} name=${3:?container name}
compress=${BENCH_PODMAN_COMPRESS:-default}
case $compress in
default) archive=/tmp/$name.tar.zst compress_opt= ;;
none) archive=/tmp/$name.tar compress_opt='--compress none' ;;
*) echo "BENCH_PODMAN_COMPRESS must be default or none, not $compress" >&2; exit 2 ;;
esac
podman='PODMAN_IGNORE_CGROUPSV1_WARNING=1 podman'
stats=$(mktemp "$BENCH_CTL_DIR/stats.XXXXXX")

open_master "$src"
open_master "$dst"

t0=$(now_ms)
step checkpoint "$src" "$podman container checkpoint --print-stats $compress_opt --export $archive $name" >"$stats"
grep '^step\.' "$stats" || true
relay copy "$src" "$dst" "$archive"
step restore "$dst" "$podman container restore --import $archive >/dev/null"
result total_ms "$(($(now_ms) - t0))"

pages=$(awk -F: '/"pages_written"/ {gsub(/[ ,]/, "", $2); print $2; exit}' "$stats")
result checkpoint_bytes "$((${pages:-0} * 4096))"
close_masters
report_runner_rss
