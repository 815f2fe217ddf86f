#!/usr/bin/env bash
# PID 1 of a test bed host that boots systemd, run by up.sh inside
# `unshare -m -u -C -p -f` (own mount, UTS, cgroup and PID namespaces): builds the
# host's root as host-init.sh does, with a writable cgroup2 hierarchy of its own,
# then becomes systemd. sshd stays in the machine's network namespace (its
# ListenAddress is in sshd_config); containerd and dockerd get a network
# namespace of their own from a unit up.sh writes. Powered off with SIGRTMIN+4.
set -euo pipefail
n=$1 rootfs=$2 hostdir=$3
merged=$hostdir/merged

mount --make-rprivate /
mount -t overlay overlay -o "lowerdir=$rootfs,upperdir=$hostdir/upper,workdir=$hostdir/work" "$merged"
mount --bind "$hostdir/docker" "$merged/var/lib/docker"
mount -t proc proc "$merged/proc"
mount --rbind /sys "$merged/sys"
umount -l "$merged/sys/fs/cgroup"
mount -t cgroup2 cgroup2 "$merged/sys/fs/cgroup"
mount --rbind /dev "$merged/dev"
mount -t tmpfs -o mode=755 tmpfs "$merged/run"
mount -t tmpfs -o mode=1777 tmpfs "$merged/tmp"
mkdir -p "$merged/.oldroot"
cd "$merged"
pivot_root . .oldroot
cd /
umount -l /.oldroot
hostname "host$n"
exec env -i container=other TERM=dumb /lib/systemd/systemd --log-target=journal-or-kmsg --show-status=no
