#!/usr/bin/env bash
# Builds the shared root file system of the test bed hosts: Debian trixie with
# Docker 26.1 / containerd 1.7 / runc 1.1 and CRIU from sid (4.2+, the first that
# works on kernel >= 6.13 in a VM without hardware breakpoints).
# Usage: build-rootfs.sh DEST   (DEST must not exist; written atomically)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

dest=${1:?destination directory}
[ -e "$dest" ] && die "$dest already exists"
mirror=$(debian_mirror)
tmp="$dest.tmp.$$"
rm -rf "$dest".tmp.*
mkdir -p "$tmp"
cleanup() {
  for m in proc sys dev/pts dev; do umount -l "$tmp/$m" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

command -v debootstrap >/dev/null || { log "installing debootstrap"; apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }

log "debootstrap trixie (minbase)"
debootstrap --variant=minbase --include=ca-certificates trixie "$tmp" "$mirror" >"$tmp.log" 2>&1 || { tail -n 30 "$tmp.log" >&2; die "debootstrap failed"; }
rm -f "$tmp.log"

cat >"$tmp/etc/apt/sources.list" <<SRC
deb $mirror trixie main
deb $mirror sid main
SRC
cat >"$tmp/etc/apt/preferences.d/sid" <<'PIN'
Package: *
Pin: release n=sid
Pin-Priority: 100
PIN
# Services must not start while packages install.
printf '#!/bin/sh\nexit 101\n' >"$tmp/usr/sbin/policy-rc.d"
chmod +x "$tmp/usr/sbin/policy-rc.d"

mount -t proc proc "$tmp/proc"
mount --rbind /dev "$tmp/dev"
in_root() { chroot "$tmp" env DEBIAN_FRONTEND=noninteractive LC_ALL=C PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }
apt_opts=(-o Acquire::Check-Valid-Until=false -o APT::Install-Recommends=false -o Dpkg::Use-Pty=0 -qq)

log "installing docker, docker-compose, containerd, runc, sshd (trixie) and criu (sid)"
in_root apt-get "${apt_opts[@]}" update
in_root apt-get "${apt_opts[@]}" install -y \
  docker.io docker-cli containerd runc openssh-server iproute2 iptables procps \
  busybox-static sudo kmod zstd docker-compose >/dev/null
in_root apt-get "${apt_opts[@]}" install -y -t sid criu >/dev/null
in_root apt-get "${apt_opts[@]}" clean
rm -rf "$tmp"/var/lib/apt/lists/* "$tmp"/etc/ssh/ssh_host_*

in_root criu --version
in_root dockerd --version
umount -l "$tmp/dev" "$tmp/proc"
trap - EXIT
mv "$tmp" "$dest"
log "root file system ready: $dest"
