#!/usr/bin/env bash
# Runs as the first process of one test bed host, inside `unshare -m -u`:
# builds the host's root (overlay on the shared trixie root), pivots into it,
# then starts sshd (machine network, own loopback address) and dockerd (own
# network namespace) and waits. Killing this host's processes removes its mounts.
# Role "store" (6th argument): sshd only, no dockerd and no /var/lib/docker bind.
# Cgroup "v2" (7th argument): started by up.sh inside a cgroup namespace of its own (unshare -C),
# so the cgroup2 hierarchy mounted here shows only this host's subtree.
# Init "systemd" (8th argument, v2 only): started as PID 1 of its own PID namespace, the host
# becomes systemd, which starts sshd (ListenAddress in sshd_config) and, through units up.sh
# wrote, containerd and dockerd in a network namespace of their own. SIGRTMIN+4 powers it off.
set -euo pipefail
n=$1 rootfs=$2 hostdir=$3 addr=$4 port=$5 role=${6:-docker} cgroup=${7:-v1} init=${8:-shell}
case $role in docker | store) ;; *) echo "host-init: unknown role $role" >&2; exit 2 ;; esac
case $cgroup in v1 | v2) ;; *) echo "host-init: unknown cgroup version $cgroup" >&2; exit 2 ;; esac
merged=$hostdir/merged

mount --make-rprivate /
mount -t overlay overlay -o "lowerdir=$rootfs,upperdir=$hostdir/upper,workdir=$hostdir/work" "$merged"
# overlay2 refuses an overlay root as its backing store: Docker gets real ext4.
[ "$role" = store ] || mount --bind "$hostdir/docker" "$merged/var/lib/docker"
mount -t proc proc "$merged/proc"
mount --rbind /sys "$merged/sys"
# Never touch the machine's own hierarchies: only this mount namespace's view changes.
if [ "$cgroup" = v2 ]; then
  umount -l "$merged/sys/fs/cgroup"
  mount -t cgroup2 cgroup2 "$merged/sys/fs/cgroup"
fi
mount --rbind /dev "$merged/dev"
mount -t tmpfs -o mode=755 tmpfs "$merged/run"
mount -t tmpfs -o mode=1777 tmpfs "$merged/tmp"
mkdir -p "$merged/.oldroot"
cd "$merged"
# chroot would break CRIU ("No parent found for mountpoint"): pivot for real.
pivot_root . .oldroot
cd /
umount -l /.oldroot
hostname "host$n"
[ "$init" = systemd ] && exec env -i container=other TERM=dumb /lib/systemd/systemd --log-target=journal-or-kmsg --show-status=no
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
mkdir -p /run/sshd /var/run
ln -sfn /run /var/run 2>/dev/null || true

/usr/sbin/sshd -D -e -f /etc/ssh/sshd_config -o "ListenAddress=$addr:$port" >/var/log/testbed-sshd.log 2>&1 &
echo $! >/run/testbed-sshd.pid

if [ "$role" = docker ]; then
  unshare -n bash -c 'ip link set lo up; exec dockerd --config-file /etc/docker/daemon.json' >/var/log/testbed-dockerd.log 2>&1 </dev/null &
  echo $! >/run/testbed-dockerd.pid
fi

echo ready >/run/testbed-started
# This process is the host's handle (its PID is in the env file): it must outlive the
# daemons, which tests stop and start again.
while :; do sleep 3600 || true; done
