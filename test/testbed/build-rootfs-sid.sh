#!/usr/bin/env bash
# Builds the "sid" root of the test bed: the trixie root of build-rootfs.sh with
# Debian sid's docker.io 28.x / containerd 2.x / runc 1.3 on top (CRIU 4.2 from
# sid as in the trixie root). Hosts that run it show the Docker 28/29 restore bug
# (moby#50750, containerd#12141) the action works around.
# Usage: build-rootfs-sid.sh TRIXIE_ROOT DEST   (DEST must not exist; written atomically)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

base=${1:?trixie root directory}
dest=${2:?destination directory}
[ -d "$base" ] || die "$base is not a directory"
[ -e "$dest" ] && die "$dest already exists"
mirror=$(debian_mirror)
tmp="$dest.tmp.$$"
rm -rf "$dest".tmp.*
cleanup() {
  for m in proc dev; do umount -l "$tmp/$m" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

log "copying the trixie root"
cp -a "$base" "$tmp"
# The sources already list sid at a low pin; the list is written again so this
# root does not depend on how the trixie one was made.
cat >"$tmp/etc/apt/sources.list" <<SRC
deb $mirror trixie main
deb $mirror sid main
SRC

mount -t proc proc "$tmp/proc"
mount --rbind /dev "$tmp/dev"
in_root() { chroot "$tmp" env DEBIAN_FRONTEND=noninteractive LC_ALL=C PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }
apt_opts=(-o Acquire::Check-Valid-Until=false -o APT::Install-Recommends=false -o Dpkg::Use-Pty=0 -qq)

log "installing docker.io, docker-cli, containerd, runc from sid"
in_root apt-get "${apt_opts[@]}" update
in_root apt-get "${apt_opts[@]}" install -y -t sid docker.io docker-cli containerd runc criu >/dev/null
in_root apt-get "${apt_opts[@]}" clean
rm -rf "$tmp"/var/lib/apt/lists/*

in_root criu --version
in_root dockerd --version
in_root containerd --version
in_root runc --version
umount -l "$tmp/dev" "$tmp/proc"
trap - EXIT
mv "$tmp" "$dest"
log "root file system ready: $dest"
