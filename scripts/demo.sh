#!/usr/bin/env bash
# Demo: bring the two-host test bed up, start a counter with 64 MiB of state on
# host 1, migrate it to host 2 with the bundled action (dist/index.js, run the
# way a runner runs it), and show what happened. PATTERN=random|text|zeros picks
# what the counter's memory holds (test/testbed/workload/counter.sh; default random).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash test/testbed/up.sh
# The bed up.sh just wrote (TESTBED_STATE / TESTBED_OUT choose another one, as for up.sh).
# shellcheck disable=SC1091
source "${TESTBED_OUT:-${TESTBED_STATE:-/var/lib/criu-migrate-testbed}/client}/env"
ssh_to() { local dest=$1; shift; ssh -o BatchMode=yes -o UserKnownHostsFile="$TESTBED_KNOWN_HOSTS" -i "$TESTBED_SSH_KEY" -p "${dest##*:}" "${dest%:*}" "$@"; }

name=demo-counter
ssh_to "$TESTBED_HOST1" "docker rm -f $name >/dev/null 2>&1; docker run -d --name $name -e MB=64 -e PATTERN=${PATTERN:-random} --label demo=yes --restart unless-stopped $TESTBED_IMAGE testbed-counter >/dev/null"
ssh_to "$TESTBED_HOST2" "docker rm -f $name >/dev/null 2>&1 || true"
sleep 3
echo "== before: $name on host 1"
ssh_to "$TESTBED_HOST1" "docker logs $name 2>&1 | tail -n 3"

work=$(mktemp -d)
: >"$work/output"; : >"$work/summary.md"
echo "== migrating with dist/index.js"
env -i PATH="$PATH" HOME="$HOME" RUNNER_TEMP="$work" GITHUB_OUTPUT="$work/output" GITHUB_STEP_SUMMARY="$work/summary.md" \
  INPUT_MODE=migrate INPUT_CONTAINER=$name INPUT_SOURCE="$TESTBED_HOST1" INPUT_TARGET="$TESTBED_HOST2" \
  INPUT_SSH-KEY-PATH="$TESTBED_SSH_KEY" INPUT_KNOWN-HOSTS="$(cat "$TESTBED_KNOWN_HOSTS")" \
  INPUT_VERIFY-LOG-PATTERN='^[0-9]+ ' INPUT_VERIFY-TIMEOUT=20 \
  "${ACTION_NODE:-node}" dist/index.js
sleep 1
echo "== after: last lines on host 1, first lines on host 2 (same token, next number)"
ssh_to "$TESTBED_HOST1" "docker logs $name 2>&1 | tail -n 2; docker inspect -f 'host 1: {{.State.Status}}, restart policy {{.HostConfig.RestartPolicy.Name}}' $name"
ssh_to "$TESTBED_HOST2" "docker logs $name 2>&1 | head -n 2; docker inspect -f 'host 2: {{.State.Status}}, labels {{json .Config.Labels}}' $name"
echo "== outputs"
awk '/<</ { split($0, a, "<<"); getline value; print "  " a[1] " = " value }' "$work/output"
echo "== job summary ($work/summary.md)"
cat "$work/summary.md"
