# Shared settings for the test bed scripts. Sourced, not run.
set -euo pipefail

TESTBED_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TESTBED_CACHE=${TESTBED_CACHE:-/var/cache/criu-migrate-testbed}
TESTBED_STATE=${TESTBED_STATE:-/var/lib/criu-migrate-testbed}
TESTBED_HOST1_ADDR=${TESTBED_HOST1_ADDR:-127.0.0.2}
TESTBED_HOST2_ADDR=${TESTBED_HOST2_ADDR:-127.0.0.3}
# Host 3 is a checkpoint store (sshd only). Its default follows host 2 (127.0.0.3 -> .4),
# so a second bed started with other addresses (the bench's .6/.7 -> .8) never takes ours.
if [ -z "${TESTBED_HOST3_ADDR:-}" ]; then
  TESTBED_HOST3_ADDR=${TESTBED_HOST2_ADDR%.*}.$((${TESTBED_HOST2_ADDR##*.} + 1))
fi
TESTBED_SSH_PORT=${TESTBED_SSH_PORT:-22}
# Everything a runner needs to reach the hosts: client key, known_hosts, env file.
TESTBED_OUT=${TESTBED_OUT:-$TESTBED_STATE/client}

log() { printf '[testbed %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

# The root file system is keyed by the scripts that build it, so a changed recipe rebuilds.
# Variants: trixie (Docker 26.1, the default of every host) and sid (Docker 28.x, built
# on top of the trixie root), chosen per host with TESTBED_HOSTn_ROOT.
rootfs_key() {
  case ${1:-trixie} in
    trixie) sha256sum "$TESTBED_DIR/build-rootfs.sh" | cut -c1-16 ;;
    sid) cat "$TESTBED_DIR/build-rootfs.sh" "$TESTBED_DIR/build-rootfs-sid.sh" | sha256sum | cut -c1-16 ;;
    *) die "unknown root variant $1 (trixie or sid)" ;;
  esac
}
rootfs_dir() {
  case ${1:-trixie} in
    trixie) echo "$TESTBED_CACHE/rootfs-$(rootfs_key trixie)" ;;
    *) echo "$TESTBED_CACHE/rootfs-$1-$(rootfs_key "$1")" ;;
  esac
}
# Per host n: TESTBED_HOSTn_ROOT (trixie|sid), _ROLE (docker|store), _CGROUP (v1|v2),
# _INIT (shell|systemd; systemd needs v2), _ADDR. Defaults: the three hosts of the default bed.
host_setting() { local v="TESTBED_HOST$1_$2"; echo "${!v:-$3}"; }
host_root() {
  local v
  v=$(host_setting "$1" ROOT trixie)
  case $v in trixie | sid) echo "$v" ;; *) die "TESTBED_HOST$1_ROOT=$v: use trixie or sid" ;; esac
}
host_cgroup() {
  local v
  v=$(host_setting "$1" CGROUP v1)
  case $v in v1 | v2) echo "$v" ;; *) die "TESTBED_HOST$1_CGROUP=$v: use v1 or v2" ;; esac
}
host_init() {
  local v
  v=$(host_setting "$1" INIT shell)
  case $v in shell) echo shell ;; systemd) [ "$(host_cgroup "$1")" = v2 ] || die "host$1: systemd needs TESTBED_HOST$1_CGROUP=v2"; echo systemd ;;
    *) die "TESTBED_HOST$1_INIT=$v: use shell or systemd" ;; esac
}

# The Debian mirror this machine already uses (never hard-coded), or TESTBED_DEBIAN_MIRROR
# where its apt sources name none (CI feeds it from a repository variable).
debian_mirror() {
  local uri
  if [ -n "${TESTBED_DEBIAN_MIRROR:-}" ]; then
    echo "${TESTBED_DEBIAN_MIRROR%/}"
    return
  fi
  uri=$(awk '
    /^URIs:/ { u=$2 }
    /^Suites:/ { for (i=2;i<=NF;i++) if ($i !~ /-(security|updates|backports)$/) s=1 }
    /^$/ { if (u!="" && s && u ~ /\/debian\/?$/) { print u; exit } u=""; s=0 }
    END { if (u!="" && s && u ~ /\/debian\/?$/) print u }
  ' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri=$(awk '$1=="deb" && $2 !~ /^\[/ && $2 ~ /\/debian\/?$/ {print $2; exit} $1=="deb" && $2 ~ /^\[/ && $3 ~ /\/debian\/?$/ {print $3; exit}' /etc/apt/sources.list)
  fi
  [ -n "$uri" ] || die "cannot find a Debian mirror in this machine's apt sources: set TESTBED_DEBIAN_MIRROR to one (the URL that ends in /debian)"
  echo "${uri%/}"
}

TESTBED_HOSTS=${TESTBED_HOSTS:-1 2 3}
host_addr() {
  local v
  v=$(host_setting "$1" ADDR)
  [ -n "$v" ] || die "TESTBED_HOST$1_ADDR is not set"
  echo "$v"
}
# docker: sshd and dockerd; store: sshd only (a checkpoint store needs sh, tar and sha256sum).
host_role() {
  local d=docker
  [ "$1" = 3 ] && d=store
  host_setting "$1" ROLE "$d"
}
host_dir() { echo "$TESTBED_STATE/host$1"; }
# A cgroup v2 host lives in a directory of its own in the machine's cgroup2 hierarchy (named
# after its address, so two beds never share one); its cgroup namespace is rooted there.
TESTBED_CGROUP2=${TESTBED_CGROUP2:-/sys/fs/cgroup/unified}
host_cgroup_dir() { echo "$TESTBED_CGROUP2/testbed-$(host_addr "$1")"; }
