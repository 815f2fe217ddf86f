#!/usr/bin/env bash
# The cgroup v2 variant of the test bed, where current distributions are:
#   host 1, 2  Docker 26.1 / runc 1.1 (trixie), cgroup v2, cgroupfs driver
#   host 3     the checkpoint store (sshd only)
#   host 4, 5  the same stack booting systemd, Docker's systemd cgroup driver
#   host 6, 7  Docker 28.5 / containerd 2.1 / runc 1.3 (sid), cgroup v2, cgroupfs driver
#   host 8     Docker 26.1 on cgroup v1, for the refusals across cgroup versions
# Its own state directory and addresses, so it runs beside the other beds.
#   bash test/testbed/cgroup2-bed.sh up|down|env      (env: prints the path of its env file)
set -euo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
export TESTBED_STATE=${TESTBED_V2_STATE:-/var/lib/criu-migrate-testbed-v2}
prefix=${TESTBED_V2_PREFIX:-127.0.2}
export TESTBED_HOSTS="1 2 3 4 5 6 7 8"
for n in $TESTBED_HOSTS; do export "TESTBED_HOST${n}_ADDR=$prefix.$((n + 1))"; done
for n in 1 2 4 5 6 7; do export "TESTBED_HOST${n}_CGROUP=v2"; done
export TESTBED_HOST4_INIT=systemd TESTBED_HOST5_INIT=systemd
export TESTBED_HOST6_ROOT=sid TESTBED_HOST7_ROOT=sid
# Each pair starts its containers on its first host; host 8 for the v1 -> v2 refusals.
export TESTBED_IMAGE_HOSTS="1 4 6 8"
unset TESTBED_OUT
case ${1:-} in
  up) exec bash "$here/up.sh" ;;
  down) exec bash "$here/down.sh" ;;
  env) echo "$TESTBED_STATE/client/env" ;;
  *) echo "usage: cgroup2-bed.sh up|down|env" >&2; exit 2 ;;
esac
