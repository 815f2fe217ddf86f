#!/usr/bin/env bash
# The seed article's manual migration (/work/shared/seed-article.txt, "Hands-On"
# steps 4 to 6), scripted as a user would type it, one command per step:
#
#   old server: docker checkpoint create NAME checkpoint1
#               tar -czf checkpoint1.tar.gz /var/lib/docker/containers/ID/checkpoints/checkpoint1/
#               (copy to the new server)
#               docker export NAME | gzip > myapp-fs.tar.gz
#               (copy to the new server)
#   new server: docker import myapp-fs.tar.gz myapp-image:restored
#               docker create --name NAME ... myapp-image:restored
#               tar -xzf checkpoint1.tar.gz -C /var/lib/docker/containers/NEW_ID/checkpoints/
#               docker start --checkpoint checkpoint1 NAME
#
# Deviations, all needed for it to work or to measure it:
# - The copies go through the runner (ssh SRC cat | ssh DST 'cat >F'), as the
#   action's do, instead of scp from server to server.
# - The article's tar stores the absolute path without its leading "/", so its
#   untar would land in checkpoints/var/lib/docker/containers/ID/checkpoints/.
#   --strip-components=6 (var lib docker containers ID checkpoints) puts
#   checkpoint1/ where `docker start --checkpoint` looks.
# - `docker import` gives an image with no command, so `docker create` gets the
#   source's command and options (BENCH_CREATE_OPTS, BENCH_COMMAND); the
#   article's create has none and would be refused.
#
# Usage: seed-procedure.sh SRC DST NAME   (hosts as root@addr:port)
# Environment: BENCH_SSH_KEY, BENCH_KNOWN_HOSTS, BENCH_CREATE_OPTS, BENCH_COMMAND.
# Prints "key value" lines: step.<name> ms, bytes.<copy> bytes, runner_rss_kb, checkpoint_bytes.
BENCH_WHAT=seed
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

src=${1:?source host} dst=${2:?target host} name=${3:?container name}
cp=checkpoint1
ckpt_tgz=/tmp/$cp.tar.gz
fs_tgz=/tmp/myapp-fs.tar.gz
image=myapp-image:restored

open_master "$src"
open_master "$dst"
id=$(on "$src" "docker inspect --format='{{.Id}}' $name")

t0=$(now_ms)
# --- on the old server
step checkpoint "$src" "docker checkpoint create $name $cp"
step archive "$src" "tar -czf $ckpt_tgz /var/lib/docker/containers/$id/checkpoints/$cp/ 2>/dev/null"
relay copy_checkpoint "$src" "$dst" "$ckpt_tgz"
step export "$src" "docker export $name | gzip > $fs_tgz"
relay copy_fs "$src" "$dst" "$fs_tgz"
# --- on the new server
step import "$dst" "docker import $fs_tgz $image >/dev/null"
step create "$dst" "docker create --name $name ${BENCH_CREATE_OPTS:-} $image ${BENCH_COMMAND:-} >/dev/null"
step place "$dst" "NEW_CONTAINER_ID=\$(docker inspect --format='{{.Id}}' $name) &&
  mkdir -p /var/lib/docker/containers/\$NEW_CONTAINER_ID/checkpoints/ &&
  tar -xzf $ckpt_tgz -C /var/lib/docker/containers/\$NEW_CONTAINER_ID/checkpoints/ --strip-components=6"
step restore "$dst" "docker start --checkpoint $cp $name >/dev/null"
result total_ms "$(($(now_ms) - t0))"

# Not timed: what CRIU wrote, for comparison with the other ways.
result checkpoint_bytes "$(on "$src" "du -sb /var/lib/docker/containers/$id/checkpoints/$cp | cut -f1")"
close_masters
report_runner_rss
