#!/usr/bin/env bash
# The floor's measured parts: CRIU dump and the staged restore of a running
# container on ONE host, no transfer, the way the action does them
# (src/phases/checkpoint.ts, src/engine/docker/staged-pages.ts): a second
# container is created with the same configuration first, then `docker pause`,
# `runc checkpoint --leave-running` into that container's checkpoint
# directory; the pages-*.img are moved to a staging directory and replaced by
# RELATIVE symlinks, resolved from the directory containerd unpacks the
# checkpoint into (<containerd's TMPDIR>/ctrd-checkpoint*); then
# `docker start --checkpoint`. The bench adds the transfer at the OpenSSH
# relay's measured speed (scripts/bench/stats.ts, floorOf).
#
# Usage: floor.sh HOST NAME NEWNAME   (NAME runs the workload; NEWNAME is free)
# Environment: BENCH_SSH_KEY, BENCH_KNOWN_HOSTS, BENCH_CREATE_OPTS, BENCH_COMMAND, BENCH_IMAGE,
#   BENCH_CTRD_TMP (containerd's physical TMPDIR on HOST, as the action reads it).
# Prints "key value" lines: pause_ms, dump_ms, restore_ms, checkpoint_bytes,
# staged_pages (how many page images were linked), restore_criu_ms (CRIU's own
# restore, from its restore.log), dump_page_server_ms (the same frozen container
# dumped a second time, its pages sent to a `criu page-server` on the same host's
# loopback writing into /var/lib/criu-migrate: the dump of memory: overlap
# without SSH, for the page-server floor).
BENCH_WHAT=floor
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

host=${1:?host} name=${2:?container} new=${3:?name for the restored container}
tmp=${BENCH_CTRD_TMP:?containerd TMPDIR}
# One '..' per component of containerd's TMPDIR, plus one for ctrd-checkpoint*.
up=..
for part in $(printf '%s' "$tmp" | tr '/' ' '); do up="../$up"; done
open_master "$host"
# One remote script, so no SSH round trip is inside the measured times.
on "$host" "set -e
ms() { date +%s%3N; }
id=\$(docker inspect --format='{{.Id}}' $name)
root=\$(for r in /run/docker/runtime-runc/moby /var/run/docker/runtime-runc/moby; do [ -f \$r/\$id/state.json ] && echo \$r && break; done)
newid=\$(docker create --name $new ${BENCH_CREATE_OPTS:-} ${BENCH_IMAGE:?} ${BENCH_COMMAND:-})
cp=/var/lib/docker/containers/\$newid/checkpoints/floor
mkdir -p /var/lib/criu-migrate
stage=\$(mktemp -d /var/lib/docker/bench-floor-stage.XXXXXX)
work=\$(mktemp -d /var/tmp/floor-work.XXXXXX)
mkdir -p \$cp
t0=\$(ms)
docker pause $name >/dev/null
t1=\$(ms)
runc --root \$root checkpoint --leave-running --image-path \$cp --work-path \$work \$id
t2=\$(ms)
bytes=\$(du -sb \$cp | cut -f1)
s0=\$(ms)
n=0
for f in \$cp/pages-*.img; do
  [ -e \"\$f\" ] || continue
  b=\$(basename \$f)
  mv \$f \$stage/\$b
  ln -s $up/\${stage#/}/\$b \$f
  n=\$((n + 1))
done
t3=\$(ms)
docker start --checkpoint floor $new >/dev/null
t4=\$(ms)
echo pause_ms \$((t1 - t0))
echo dump_ms \$((t2 - t1))
echo stage_ms \$((t3 - s0))
echo restore_ms \$((t4 - t3))
echo staged_pages \$n
echo checkpoint_bytes \$bytes
log=/var/lib/docker/containerd/daemon/io.containerd.runtime.v2.task/moby/\$newid/restore.log
if [ -f \$log ]; then
  echo restore_criu_ms \$(tail -n1 \$log | sed -n 's/^(\\([0-9]*\\)\\.\\([0-9]\\{3\\}\\).*/\\1\\2/p' | sed 's/^0*//')
fi
rm -rf \$work \$stage $tmp/ctrd-checkpoint*
ps=\$(mktemp -d /var/lib/criu-migrate/bench-floor-ps.XXXXXX)
img=\$(mktemp -d /var/tmp/floor-img.XXXXXX)
work=\$(mktemp -d /var/tmp/floor-work.XXXXXX)
port=\$((40000 + \$\$ % 20000))
criu page-server --images-dir \$ps --work-dir \$work --address 127.0.0.1 --port \$port -o ps.log </dev/null >/dev/null 2>&1 &
hex=\$(printf '%04X' \$port)
i=0; until awk '\$4 == \"0A\" {print \$2}' /proc/net/tcp | grep -qi \":\$hex\$\" || [ \$i -ge 500 ]; do sleep 0.02; i=\$((i + 1)); done
t5=\$(ms)
runc --root \$root checkpoint --leave-running --page-server 127.0.0.1:\$port --image-path \$img --work-path \$work \$id
t6=\$(ms)
wait
echo dump_page_server_ms \$((t6 - t5))
echo page_server_bytes \$(du -sb \$ps | cut -f1)
rm -rf \$ps \$img \$work"
