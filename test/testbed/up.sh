#!/usr/bin/env bash
# Brings up three test bed hosts, each with its own root and sshd: hosts 1 and 2
# also run dockerd; host 3 is a checkpoint store with sshd only.
# Idempotent: hosts already up are left as they are.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[ "$(id -u)" = 0 ] || die "the test bed needs root"
# Two sshds cannot share an address, and a derived host 3 address can run past .255.
[ "$(printf '%s\n' "$TESTBED_HOST1_ADDR" "$TESTBED_HOST2_ADDR" "$TESTBED_HOST3_ADDR" | sort -u | wc -l)" = 3 ] \
  || die "host addresses must differ: $TESTBED_HOST1_ADDR $TESTBED_HOST2_ADDR $TESTBED_HOST3_ADDR"
[[ $TESTBED_HOST3_ADDR =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]] && [ "${TESTBED_HOST3_ADDR##*.}" -le 255 ] \
  || die "TESTBED_HOST3_ADDR=$TESTBED_HOST3_ADDR is not an address: set it"
t0=$SECONDS
mkdir -p "$TESTBED_CACHE"
# Two beds starting at once must not build the same root twice.
exec 9>"$TESTBED_CACHE/.build.lock"
flock 9
# Builds (or reuses) the cached root of one variant. Older keys are of an older recipe:
# removed, only of the same variant, while no test bed host may still use one.
ensure_root() {
  local variant=$1 dir
  dir=$(rootfs_dir "$variant")
  if [ -d "$dir" ]; then log "using cached $variant root file system $dir"; return; fi
  log "building the $variant host root file system (cached at $dir)"
  if ! pgrep -f "testbed/host-init.sh" >/dev/null; then
    local pattern='rootfs-*' skip='rootfs-*-*'
    [ "$variant" = trixie ] || { pattern="rootfs-$variant-*"; skip=; }
    find "$TESTBED_CACHE" -maxdepth 1 -name "$pattern" ! -name "$(basename "$dir")" ${skip:+! -name "$skip"} \
      ! -name '*.tmp.*' -exec rm -rf {} + 2>/dev/null || true
  fi
  case $variant in
    trixie) bash "$TESTBED_DIR/build-rootfs.sh" "$dir" ;;
    *) bash "$TESTBED_DIR/build-rootfs-$variant.sh" "$(rootfs_dir trixie)" "$dir" ;;
  esac
}
# The trixie root is always there: host 1's default, the busybox of the test image, and
# the base of every other variant.
ensure_root trixie
for n in $TESTBED_HOSTS; do [ "$(host_root "$n")" = trixie ] || ensure_root "$(host_root "$n")"; done
rootfs=$(rootfs_dir trixie)
flock -u 9
for tool in ssh ssh-keygen nsenter unshare; do
  command -v "$tool" >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-client util-linux >/dev/null; break; }
done

mkdir -p "$TESTBED_OUT"
chmod 700 "$TESTBED_OUT"
[ -f "$TESTBED_OUT/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C testbed-runner -f "$TESTBED_OUT/id_ed25519"

host_pid() { local f; f="$(host_dir "$1")/pid"; [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && cat "$f"; }
in_host() { local n=$1; shift; nsenter -t "$(host_pid "$n")" -m -u -- "$@"; }

prepare_host() {
  local n=$1 dir addr root
  dir=$(host_dir "$n"); addr=$(host_addr "$n"); root=$(rootfs_dir "$(host_root "$n")")
  mkdir -p "$dir"/{upper,work,merged}
  # Only a docker host gets the ext4 directory bound on /var/lib/docker.
  [ "$(host_role "$n")" = store ] || mkdir -p "$dir/docker"
  # A root changed since the upper layer was made would mix two recipes.
  if [ "$(cat "$dir/rootfs" 2>/dev/null)" != "$root" ]; then
    rm -rf "$dir/upper" "$dir/work" "$dir/docker"
    mkdir -p "$dir"/{upper,work}
    [ "$(host_role "$n")" = store ] || mkdir -p "$dir/docker"
    echo "$root" >"$dir/rootfs"
  fi
  local up=$dir/upper
  mkdir -p "$up/var/lib/docker" "$up/etc/ssh" "$up/root/.ssh" "$up/etc/docker" "$up/usr/local/bin"
  for type in ed25519 ecdsa; do
    [ -f "$up/etc/ssh/ssh_host_${type}_key" ] || ssh-keygen -q -t "$type" -N '' -C "host$n" -f "$up/etc/ssh/ssh_host_${type}_key"
  done
  cat >"$up/etc/ssh/sshd_config" <<CFG
HostKey /etc/ssh/ssh_host_ed25519_key
HostKey /etc/ssh/ssh_host_ecdsa_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
MaxSessions 64
MaxStartups 64:30:128
AllowStreamLocalForwarding yes
AllowTcpForwarding yes
PidFile none
Subsystem sftp internal-sftp
CFG
  install -m 600 "$TESTBED_OUT/id_ed25519.pub" "$up/root/.ssh/authorized_keys"
  chmod 700 "$up/root/.ssh"
  [ "$(host_role "$n")" = docker ] || return 0
  # cgroup v2 hosts name their driver: systemd where systemd is PID 1 (Docker's default there).
  local driver= opts=
  [ "$(host_cgroup "$n")" = v1 ] || driver=cgroupfs
  [ "$(host_init "$n")" = shell ] || driver=systemd
  [ -z "$driver" ] || opts="\"exec-opts\": [\"native.cgroupdriver=$driver\"],"
  cat >"$up/etc/docker/daemon.json" <<CFG
{
  "experimental": true,
  "storage-driver": "overlay2",
  "data-root": "/var/lib/docker",
  $opts
  "log-driver": "json-file"
}
CFG
  [ "$(host_init "$n")" = systemd ] && prepare_systemd "$n"
  return 0
}

# What a host that boots systemd needs before boot: its name and machine ID, sshd on its own
# address, containerd and dockerd in a network namespace of their own, and every unit that
# would touch the machine (consoles, sysctl, modules, time, clock, fstrim, ...) masked.
prepare_systemd() {
  local n=$1 up addr unit
  up=$(host_dir "$n")/upper; addr=$(host_addr "$n")
  echo "host$n" >"$up/etc/hostname"
  [ -s "$up/etc/machine-id" ] || od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$up/etc/machine-id"
  echo "ListenAddress $addr:$TESTBED_SSH_PORT" >>"$up/etc/ssh/sshd_config"
  mkdir -p "$up/etc/systemd/system/containerd.service.d" "$up/etc/systemd/system/docker.service.d"
  for unit in getty@.service serial-getty@.service console-getty.service getty.target \
    systemd-sysctl.service systemd-binfmt.service proc-sys-fs-binfmt_misc.automount proc-sys-fs-binfmt_misc.mount \
    systemd-modules-load.service kmod-static-nodes.service systemd-tmpfiles-setup-dev.service \
    systemd-tmpfiles-setup-dev-early.service systemd-timesyncd.service apparmor.service systemd-pstore.service \
    systemd-random-seed.service systemd-remount-fs.service systemd-hwdb-update.service sys-kernel-config.mount \
    sys-kernel-debug.mount sys-kernel-tracing.mount sys-fs-fuse-connections.mount dev-hugepages.mount \
    dev-mqueue.mount systemd-firstboot.service systemd-logind.service apt-daily.timer apt-daily-upgrade.timer \
    dpkg-db-backup.timer fstrim.timer e2scrub_all.timer e2scrub_reap.service sshd-keygen.service \
    systemd-udevd.service systemd-udev-trigger.service systemd-networkd.service; do
    ln -sfn /dev/null "$up/etc/systemd/system/$unit"
  done
  cat >"$up/etc/systemd/system/testbed-netns.service" <<'UNIT'
[Unit]
Description=Network namespace of the test bed host's containerd and dockerd
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'ip netns add tbdocker && ip -n tbdocker link set lo up'
ExecStop=/bin/ip netns delete tbdocker
UNIT
  local dropin
  for dropin in containerd docker; do
    cat >"$up/etc/systemd/system/$dropin.service.d/testbed.conf" <<'UNIT'
[Unit]
Requires=testbed-netns.service
After=testbed-netns.service
[Service]
NetworkNamespacePath=/run/netns/tbdocker
PrivateMounts=no
UNIT
  done
}

# A login without root: the runner's key, and exactly the sudoers rule the docs give for
# `sudo: true` (examples/sudoers/criu-migrate), nothing else. Done inside the running host, so a
# bed started before this existed gets it too.
TESTBED_SUDO_USER=migrator
TESTBED_SUDO_UID=1500
add_sudo_user() {
  local n=$1 u=$TESTBED_SUDO_USER
  in_host "$n" sh -c "
    set -e
    grep -q '^$u:' /etc/passwd || {
      echo '$u:x:$TESTBED_SUDO_UID:$TESTBED_SUDO_UID::/home/$u:/bin/sh' >>/etc/passwd
      echo '$u:x:$TESTBED_SUDO_UID:' >>/etc/group
      # '*': no password, yet not locked ('!' would make sshd refuse the key).
      echo '$u:*:20000:0:99999:7:::' >>/etc/shadow
    }
    mkdir -p /home/$u/.ssh && chmod 700 /home/$u/.ssh
    cat >/home/$u/.ssh/authorized_keys && chmod 600 /home/$u/.ssh/authorized_keys
    chown -R $TESTBED_SUDO_UID:$TESTBED_SUDO_UID /home/$u
    # sudo looks its host name up; without this it warns on every command.
    printf '127.0.0.1 localhost\\n127.0.1.1 %s\\n' \"\$(hostname)\" >/etc/hosts
  " <"$TESTBED_OUT/id_ed25519.pub"
  in_host "$n" sh -c "cat >/etc/sudoers.d/.criu-migrate.new && chmod 440 /etc/sudoers.d/.criu-migrate.new \
    && visudo -cqf /etc/sudoers.d/.criu-migrate.new && mv -f /etc/sudoers.d/.criu-migrate.new /etc/sudoers.d/criu-migrate" \
    <"$TESTBED_DIR/../../examples/sudoers/criu-migrate"
}

start_host() {
  local n=$1 dir addr
  dir=$(host_dir "$n"); addr=$(host_addr "$n")
  if host_pid "$n" >/dev/null; then log "host$n already up (pid $(host_pid "$n"))"; return; fi
  local cgroup init root cg
  cgroup=$(host_cgroup "$n"); init=$(host_init "$n"); root=$(rootfs_dir "$(host_root "$n")")
  log "starting host$n ($(host_role "$n"), $(host_root "$n") root, cgroup $cgroup, $init) on $addr:$TESTBED_SSH_PORT"
  rm -f "$dir/pid.outer"
  # setsid: the host must not belong to the caller's session or inherit its descriptors.
  case $cgroup:$init in
    v1:shell)
      setsid unshare -m -u --propagation private bash "$TESTBED_DIR/host-init.sh" "$n" "$root" "$dir" "$addr" "$TESTBED_SSH_PORT" "$(host_role "$n")" \
        </dev/null >"$dir/init.log" 2>&1 &
      echo $! >"$dir/pid" ;;
    v2:shell)
      # Into a directory of its own first: the new cgroup namespace is rooted where it stands.
      cg=$(host_cgroup_dir "$n"); mkdir -p "$cg"
      setsid bash -c 'echo $$ >"$1/cgroup.procs"; shift; exec "$@"' _ "$cg" \
        unshare -m -u -C --propagation private bash "$TESTBED_DIR/host-init.sh" "$n" "$root" "$dir" "$addr" "$TESTBED_SSH_PORT" "$(host_role "$n")" v2 \
        </dev/null >"$dir/init.log" 2>&1 &
      echo $! >"$dir/pid" ;;
    v2:systemd)
      cg=$(host_cgroup_dir "$n"); mkdir -p "$cg/host"
      setsid bash -c 'echo $$ >"$1/cgroup.procs"; shift; exec "$@"' _ "$cg/host" \
        unshare -m -u -C -p -f --propagation private bash "$TESTBED_DIR/host-init.sh" "$n" "$root" "$dir" "$addr" "$TESTBED_SSH_PORT" "$(host_role "$n")" v2 systemd \
        </dev/null >"$dir/init.log" 2>&1 &
      local outer=$! child= i
      for i in $(seq 1 40); do child=$(pgrep -P "$outer" | head -n 1) && [ -n "$child" ] && break; sleep 0.25; done
      [ -n "$child" ] || { cat "$dir/init.log" >&2; die "host$n: systemd did not start"; }
      echo "$outer" >"$dir/pid.outer"
      # The host's handle is its systemd (nsenter needs a process inside); the outer unshare
      # moves up so the namespace's root cgroup holds only systemd's own.
      echo "$child" >"$dir/pid"
      echo "$outer" >"$cg/cgroup.procs" ;;
  esac
}

wait_host() {
  local n=$1 i addr
  if [ "$(host_role "$n")" = store ]; then
    # No dockerd here: ready once its own sshd is alive and accepts connections.
    addr=$(host_addr "$n")
    for i in $(seq 1 40); do
      if host_pid "$n" >/dev/null && in_host "$n" sh -c 'kill -0 "$(cat /run/testbed-sshd.pid)"' 2>/dev/null \
        && (exec 3<>"/dev/tcp/$addr/$TESTBED_SSH_PORT") 2>/dev/null; then return 0; fi
      host_pid "$n" >/dev/null || { cat "$(host_dir "$n")/init.log" >&2; die "host$n exited during start"; }
      sleep 0.25
    done
    in_host "$n" tail -n 30 /var/log/testbed-sshd.log >&2 || true
    die "host$n: sshd did not listen on $addr:$TESTBED_SSH_PORT within 10 s"
  fi
  for i in $(seq 1 120); do
    if host_pid "$n" >/dev/null && in_host "$n" docker version >/dev/null 2>&1; then return 0; fi
    host_pid "$n" >/dev/null || { cat "$(host_dir "$n")/init.log" >&2; die "host$n exited during start"; }
    sleep 0.5
  done
  in_host "$n" tail -n 30 /var/log/testbed-dockerd.log >&2 || true
  die "host$n: dockerd did not answer within 60 s"
}

load_image() {
  local n=$1 d workload
  # Labelled with the workload's hash: a bed brought up again after counter.sh changed gets the new one.
  workload=$(sha256sum "$TESTBED_DIR/workload/counter.sh" | cut -c1-16)
  if [ "$(in_host "$n" docker image inspect --format '{{index .Config.Labels "testbed.workload"}}' testbed/busybox:1 2>/dev/null)" = "$workload" ]; then return; fi
  log "host$n: importing testbed/busybox:1 (busybox of the host root plus the workload)"
  d=$(mktemp -d)
  mkdir -p "$d/bin" "$d/tmp" "$d/etc" "$d/usr/local/bin"
  cp "$rootfs/bin/busybox" "$d/bin/busybox"
  for a in $("$d/bin/busybox" --list); do [ -e "$d/bin/$a" ] || ln -s busybox "$d/bin/$a"; done
  install -m 755 "$TESTBED_DIR/workload/counter.sh" "$d/usr/local/bin/testbed-counter"
  tar -C "$d" -c . | in_host "$n" docker import --change 'CMD ["sh"]' --change 'ENV PATH=/usr/local/bin:/bin' --change "LABEL testbed.workload=$workload" - testbed/busybox:1 >/dev/null
  rm -rf "$d"
}

for n in $TESTBED_HOSTS; do host_pid "$n" >/dev/null || prepare_host "$n"; start_host "$n"; done
for n in $TESTBED_HOSTS; do wait_host "$n"; add_sudo_user "$n"; done
# Hosts a test starts its containers on; the others get the image by migration.
for n in ${TESTBED_IMAGE_HOSTS:-1}; do load_image "$n"; done

: >"$TESTBED_OUT/known_hosts.tmp"
for n in $TESTBED_HOSTS; do
  addr=$(host_addr "$n"); dir=$(host_dir "$n")
  hostpat=$addr; [ "$TESTBED_SSH_PORT" = 22 ] || hostpat="[$addr]:$TESTBED_SSH_PORT"
  for type in ed25519 ecdsa; do
    echo "$hostpat $(cut -d' ' -f1,2 "$dir/upper/etc/ssh/ssh_host_${type}_key.pub")" >>"$TESTBED_OUT/known_hosts.tmp"
  done
done
mv "$TESTBED_OUT/known_hosts.tmp" "$TESTBED_OUT/known_hosts"
{
  for n in $TESTBED_HOSTS; do echo "TESTBED_HOST$n=root@$(host_addr "$n"):$TESTBED_SSH_PORT"; done
  echo "TESTBED_SUDO_USER=$TESTBED_SUDO_USER"
  for n in $TESTBED_HOSTS; do
    echo "TESTBED_HOST${n}_PID=$(host_pid "$n")"
    echo "TESTBED_HOST${n}_KIND=$(host_role "$n") $(host_root "$n") cgroup-$(host_cgroup "$n") $(host_init "$n")"
  done
  echo "TESTBED_SSH_KEY=$TESTBED_OUT/id_ed25519"
  echo "TESTBED_KNOWN_HOSTS=$TESTBED_OUT/known_hosts"
  echo "TESTBED_IMAGE=testbed/busybox:1"
} >"$TESTBED_OUT/env.tmp"
mv "$TESTBED_OUT/env.tmp" "$TESTBED_OUT/env"
# Prove the way in works the way the action will use it.
for n in $TESTBED_HOSTS; do
  ssh -o BatchMode=yes -o UserKnownHostsFile="$TESTBED_OUT/known_hosts" -o StrictHostKeyChecking=yes \
    -i "$TESTBED_OUT/id_ed25519" -p "$TESTBED_SSH_PORT" "root@$(host_addr "$n")" true \
    || die "host$n: ssh login failed"
  ssh -o BatchMode=yes -o UserKnownHostsFile="$TESTBED_OUT/known_hosts" -o StrictHostKeyChecking=yes \
    -i "$TESTBED_OUT/id_ed25519" -p "$TESTBED_SSH_PORT" "$TESTBED_SUDO_USER@$(host_addr "$n")" 'sudo -n sh -c "id -u"' | grep -qx 0 \
    || die "host$n: $TESTBED_SUDO_USER cannot sudo sh -c"
done
log "test bed up in $((SECONDS - t0)) s: $TESTBED_OUT/env"
