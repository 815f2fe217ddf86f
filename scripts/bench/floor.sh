#!/usr/bin/env bash
# The floor: CRIU dump and restore of a running container on ONE host, no
# transfer, the way the action does it (src/phases/checkpoint.ts, stage.ts,
# restore.ts): a second container is created with the same configuration
# first, then `docker pause`, `runc checkpoint --leave-running` straight into
# that container's checkpoint directory, and `docker start --checkpoint`.
#
# Usage: floor.sh HOST NAME NEWNAME   (NAME runs the workload; NEWNAME is free)
# Environment: BENCH_SSH_KEY, BENCH_KNOWN_HOSTS, BENCH_CREATE_OPTS, BENCH_COMMAND, BENCH_IMAGE.
# Prints "key value" lines: pause_ms, dump_ms, restore_ms, checkpoint_bytes,
# and where the restore went: restore_prepare_ms (docker and containerd copying
# the checkpoint until /tmp/ctrd-checkpoint* is complete), restore_criu_ms
# (CRIU's own restore, from its restore.log).
BENCH_WHAT=floor
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

host=${1:?host} name=${2:?container} new=${3:?name for the restored container}
open_master "$host"
# One remote script, so no SSH round trip is inside the measured times.
on "$host" "set -e
ms() { date +%s%3N; }
id=\$(docker inspect --format='{{.Id}}' $name)
root=\$(for r in /run/docker/runtime-runc/moby /var/run/docker/runtime-runc/moby; do [ -f \$r/\$id/state.json ] && echo \$r && break; done)
newid=\$(docker create --name $new ${BENCH_CREATE_OPTS:-} ${BENCH_IMAGE:?} ${BENCH_COMMAND:-})
cp=/var/lib/docker/containers/\$newid/checkpoints/floor
work=\$(mktemp -d /var/tmp/floor-work.XXXXXX)
mkdir -p \$cp
ls -d /tmp/ctrd-checkpoint* 2>/dev/null | sort >\$work/before || true
t0=\$(ms)
docker pause $name >/dev/null
t1=\$(ms)
runc --root \$root checkpoint --leave-running --image-path \$cp --work-path \$work \$id
t2=\$(ms)
docker start --checkpoint floor $new >/dev/null
t3=\$(ms)
echo pause_ms \$((t1 - t0))
echo dump_ms \$((t2 - t1))
echo restore_ms \$((t3 - t2))
echo checkpoint_bytes \$(du -sb \$cp | cut -f1)
copy=\$(ls -d /tmp/ctrd-checkpoint* 2>/dev/null | sort | comm -13 \$work/before - | head -n1)
if [ -n \"\$copy\" ]; then
  echo restore_prepare_ms \$((\$(date -r \$copy +%s%3N) - t2))
  rm -rf \$copy
fi
log=\$(ls -t /var/lib/docker/containerd/daemon/io.containerd.runtime.v2.task/moby/\$newid/restore.log 2>/dev/null | head -n1)
if [ -n \"\$log\" ]; then
  echo restore_criu_ms \$(tail -n1 \$log | sed -n 's/^(\\([0-9]*\\)\\.\\([0-9]\\{3\\}\\).*/\\1\\2/p' | sed 's/^0*//')
fi
rm -rf \$work"
