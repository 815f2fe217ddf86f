#!/usr/bin/env bash
# The Docker 28 variant of the test bed: host 1 Docker 26.1 (trixie root), host 2
# Docker 28.5 / containerd 2.1 / runc 1.3 (sid root), host 3 the checkpoint store. Its
# own state directory and addresses, so it runs beside the default bed.
#   bash test/testbed/sid-bed.sh up|down|env      (env: prints the path of its env file)
# TESTBED_SID_STATE and TESTBED_SID_HOSTn_ADDR override the defaults.
set -euo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
export TESTBED_STATE=${TESTBED_SID_STATE:-/var/lib/criu-migrate-testbed-sid}
export TESTBED_HOST1_ADDR=${TESTBED_SID_HOST1_ADDR:-127.0.28.2}
export TESTBED_HOST2_ADDR=${TESTBED_SID_HOST2_ADDR:-127.0.28.3}
export TESTBED_HOST3_ADDR=${TESTBED_SID_HOST3_ADDR:-127.0.28.4}
export TESTBED_HOST1_ROOT=trixie TESTBED_HOST2_ROOT=sid TESTBED_HOST3_ROOT=trixie
unset TESTBED_OUT
case ${1:-} in
  up) exec bash "$here/up.sh" ;;
  down) exec bash "$here/down.sh" ;;
  env) echo "$TESTBED_STATE/client/env" ;;
  *) echo "usage: sid-bed.sh up|down|env" >&2; exit 2 ;;
esac
