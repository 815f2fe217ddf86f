#!/usr/bin/env bash
# The dump itself, as the action's checkpoint mode freezes a container
# (src/phases/checkpoint.ts, freezeAndDump): `docker pause`, then
# `runc checkpoint --leave-running` into a directory under /var/lib/criu-migrate
# (where the action's work directory is), then `docker unpause`. Each command is
# timed on the host, so no SSH round trip is inside the times. The container
# runs on afterwards; the images are removed.
#
# Usage: dump.sh HOST NAME   (NAME runs the workload)
# Environment: BENCH_SSH_KEY, BENCH_KNOWN_HOSTS.
# Prints "key value" lines: pause_ms, dump_ms (runc checkpoint), unpause_ms,
# checkpoint_bytes, criu_dump_ms (CRIU's own, the last timestamp of dump.log).
BENCH_WHAT=dump
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

host=${1:?host} name=${2:?container}
open_master "$host"
on "$host" "set -e
ms() { date +%s%3N; }
id=\$(docker inspect --format='{{.Id}}' $name)
root=\$(for r in /run/docker/runtime-runc/moby /var/run/docker/runtime-runc/moby; do [ -f \$r/\$id/state.json ] && echo \$r && break; done)
mkdir -p /var/lib/criu-migrate
dir=\$(mktemp -d /var/lib/criu-migrate/bench-dump.XXXXXX)
mkdir -p \$dir/images \$dir/criu
t0=\$(ms)
docker pause $name >/dev/null
t1=\$(ms)
runc --root \$root checkpoint --leave-running --image-path \$dir/images --work-path \$dir/criu \$id
t2=\$(ms)
docker unpause $name >/dev/null
t3=\$(ms)
echo pause_ms \$((t1 - t0))
echo dump_ms \$((t2 - t1))
echo unpause_ms \$((t3 - t2))
echo checkpoint_bytes \$(du -sb \$dir/images | cut -f1)
echo criu_dump_ms \$(tail -n1 \$dir/criu/dump.log | sed -n 's/^(\\([0-9]*\\)\\.\\([0-9]\\{3\\}\\).*/\\1\\2/p' | sed 's/^0*//')
rm -rf \$dir"
