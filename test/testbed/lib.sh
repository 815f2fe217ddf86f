# Shared settings for the test bed scripts. Sourced, not run.
set -euo pipefail

TESTBED_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TESTBED_CACHE=${TESTBED_CACHE:-/var/cache/criu-migrate-testbed}
TESTBED_STATE=${TESTBED_STATE:-/var/lib/criu-migrate-testbed}
TESTBED_HOST1_ADDR=${TESTBED_HOST1_ADDR:-127.0.0.2}
TESTBED_HOST2_ADDR=${TESTBED_HOST2_ADDR:-127.0.0.3}
TESTBED_SSH_PORT=${TESTBED_SSH_PORT:-22}
# Everything a runner needs to reach the hosts: client key, known_hosts, env file.
TESTBED_OUT=${TESTBED_OUT:-$TESTBED_STATE/client}

log() { printf '[testbed %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

# The root file system is keyed by the script that builds it, so a changed recipe rebuilds.
rootfs_key() { sha256sum "$TESTBED_DIR/build-rootfs.sh" | cut -c1-16; }
rootfs_dir() { echo "$TESTBED_CACHE/rootfs-$(rootfs_key)"; }

# The Debian mirror this machine already uses (never hard-coded).
debian_mirror() {
  local uri
  uri=$(awk '
    /^URIs:/ { u=$2 }
    /^Suites:/ { for (i=2;i<=NF;i++) if ($i !~ /-(security|updates|backports)$/) s=1 }
    /^$/ { if (u!="" && s && u ~ /\/debian\/?$/) { print u; exit } u=""; s=0 }
    END { if (u!="" && s && u ~ /\/debian\/?$/) print u }
  ' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri=$(awk '$1=="deb" && $2 !~ /^\[/ && $2 ~ /\/debian\/?$/ {print $2; exit} $1=="deb" && $2 ~ /^\[/ && $3 ~ /\/debian\/?$/ {print $3; exit}' /etc/apt/sources.list)
  fi
  [ -n "$uri" ] || die "cannot find a Debian mirror in this machine's apt sources"
  echo "${uri%/}"
}

host_addr() { if [ "$1" = 1 ]; then echo "$TESTBED_HOST1_ADDR"; else echo "$TESTBED_HOST2_ADDR"; fi; }
host_dir() { echo "$TESTBED_STATE/host$1"; }
