#!/usr/bin/env bash
# Measurement, not a test: how long the container stays frozen when a named
# volume moves with it, with the volume's bulk copied before the freeze
# (volume-precopy: true, only the changes travel while frozen) against the
# whole volume copied inside the freeze (volume-precopy: false).
#
# Workload: a busybox container on host 1 of a test bed, ticking, with a
# 2 GiB volume of incompressible data (16 files of 128 MiB from /dev/urandom);
# while the bulk pass runs (for precopy false: at the same point of the run)
# 10 MiB are written into the volume from inside the container. The bundled
# dist/index.js migrates it to host 2. The downtime is the one the workload
# saw: the container runs the test bed's counter (TICK=0.01, 1 MiB of memory),
# whose lines carry a wall-clock stamp each; the largest gap between
# consecutive stamps of its source and target logs (deduplicated by line
# number). The action's own downtimeMs (metadata) is kept beside it.
#
# Usage: scripts/bench/volumes.sh [--reps N] [--gib N] [--changed-mib N] [--out DIR]
# Environment: TESTBED_ENV (the bed's client env file, default
# /var/lib/criu-migrate-testbed/client/env); bring the bed up first (test/testbed/up.sh).
# Writes DIR/volumes.json and DIR/volumes.md (default bench/results).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
reps=3
gib=2
changed_mib=10
out="$root/bench/results"
while [ $# -gt 0 ]; do
  case $1 in
    --reps) reps=$2; shift 2 ;;
    --gib) gib=$2; shift 2 ;;
    --changed-mib) changed_mib=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
env_file=${TESTBED_ENV:-/var/lib/criu-migrate-testbed/client/env}
[ -f "$env_file" ] || { echo "no test bed env at $env_file: run test/testbed/up.sh" >&2; exit 1; }
# Only the keys this script needs: the env file has unquoted values with spaces (TESTBED_*_KIND), so it cannot be sourced.
env_value() { sed -n "s/^$1=//p" "$env_file" | head -n1; }
TESTBED_HOST1=$(env_value TESTBED_HOST1)
TESTBED_HOST2=$(env_value TESTBED_HOST2)
TESTBED_SSH_KEY=$(env_value TESTBED_SSH_KEY)
TESTBED_KNOWN_HOSTS=$(env_value TESTBED_KNOWN_HOSTS)
TESTBED_IMAGE=$(env_value TESTBED_IMAGE)
for v in TESTBED_HOST1 TESTBED_HOST2 TESTBED_SSH_KEY TESTBED_KNOWN_HOSTS TESTBED_IMAGE; do
  [ -n "${!v}" ] || { echo "$env_file has no $v" >&2; exit 1; }
done
[ -f "$root/dist/index.js" ] || { echo "dist/index.js missing: npm run build" >&2; exit 1; }

say() { printf '[bench volumes %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
on() {
  local dest=$1
  shift
  ssh -o BatchMode=yes -o "UserKnownHostsFile=$TESTBED_KNOWN_HOSTS" -o StrictHostKeyChecking=yes \
    -i "$TESTBED_SSH_KEY" -p "${dest##*:}" "${dest%:*}" "$@"
}

name=bench-vol
volume=bench-vol
seed=/var/lib/bench-volume-seed-${gib}g
clean() {
  for h in "$TESTBED_HOST1" "$TESTBED_HOST2"; do
    on "$h" "docker rm -f $name >/dev/null 2>&1; docker volume rm $volume >/dev/null 2>&1; true"
  done
}

# The incompressible data once per host 1 (kept between runs), copied into a fresh volume per run.
say "seed data: $gib GiB of random bytes on host 1 (once)"
on "$TESTBED_HOST1" "[ -f $seed/done ] || { rm -rf $seed && mkdir -p $seed && for i in \$(seq 1 $((gib * 8))); do head -c 134217728 /dev/urandom >$seed/part-\$i.bin || exit 1; done && touch $seed/done; }"

work=$(mktemp -d /tmp/bench-volumes.XXXXXX)
trap 'rm -rf "$work"' EXIT
results="$work/runs.jsonl"
: >"$results"

run_once() {
  local precopy=$1 rep=$2 step="$work/step-$precopy-$rep"
  clean
  mkdir -p "$step"
  on "$TESTBED_HOST1" "docker volume create $volume >/dev/null && mp=\$(docker volume inspect -f '{{.Mountpoint}}' $volume) && cp $seed/part-*.bin \"\$mp\"/ && sync"
  on "$TESTBED_HOST1" "docker run -d --name $name -v $volume:/data -e MB=1 -e TICK=0.01 $TESTBED_IMAGE /usr/local/bin/testbed-counter >/dev/null"
  # Ticking before the action starts: the counter prints its first line once its value exists.
  local w
  for w in $(seq 1 100); do
    [ "$(on "$TESTBED_HOST1" "docker logs $name 2>&1 | grep -cE '^[0-9]+ [0-9]{13} '")" -ge 20 ] && break
    sleep 0.2
  done
  : >"$step/output" && : >"$step/summary" && : >"$step/state"
  env -i PATH="$PATH" HOME="$HOME" GITHUB_OUTPUT="$step/output" GITHUB_STEP_SUMMARY="$step/summary" \
    GITHUB_STATE="$step/state" RUNNER_TEMP="$step" GITHUB_ACTIONS=true GITHUB_RUN_ID=1 GITHUB_RUN_ATTEMPT=1 \
    GITHUB_WORKSPACE="$step" INPUT_MODE=migrate INPUT_CONTAINER=$name INPUT_SOURCE="$TESTBED_HOST1" \
    INPUT_TARGET="$TESTBED_HOST2" "INPUT_SSH-KEY=$(cat "$TESTBED_SSH_KEY")" \
    "INPUT_KNOWN-HOSTS=$(cat "$TESTBED_KNOWN_HOSTS")" "INPUT_VERIFY-LOG-PATTERN=^[0-9]+ [0-9]{13} " \
    "INPUT_VOLUME-PRECOPY=$precopy" "INPUT_UPLOAD-ARTIFACT=false" INPUT_TIMEOUT=20 \
    node "$root/dist/index.js" >"$step/log" 2>&1 &
  local action=$!
  # The change lands while the bulk pass runs (precopy true), or at the same point of a run without one.
  local mark='::group::Volumes: copy the bulk'
  [ "$precopy" = true ] || mark='::group::Volumes: prepare'
  local i
  for i in $(seq 1 600); do grep -q "$mark" "$step/log" 2>/dev/null && break; kill -0 $action 2>/dev/null || break; sleep 0.1; done
  on "$TESTBED_HOST1" "docker exec $name sh -c 'head -c $((changed_mib * 1048576)) /dev/urandom >/data/changed.bin'"
  local during
  during=$(grep -c '(bulk): .* in ' "$step/log" || true)
  wait $action || { tail -n 30 "$step/log" >&2; say "run failed (volume-precopy: $precopy)"; return 1; }
  # Enough lines from the target after the move, then both logs for the gap the workload saw.
  local before_target
  before_target=$(date +%s%3N)
  for w in $(seq 1 100); do
    on "$TESTBED_HOST2" "docker logs $name 2>&1" >"$step/target.log"
    [ "$(awk -v t="$before_target" 'NF == 3 && $2 > t' "$step/target.log" | wc -l)" -ge 20 ] && break
    sleep 0.2
  done
  on "$TESTBED_HOST1" "docker logs $name 2>&1" >"$step/source.log" || : >"$step/source.log"
  local meta
  meta=$(sed -n 's/^metadata-path<<.*//;/^metadata-path=/s/^metadata-path=//p' "$step/output" | head -n1)
  [ -n "$meta" ] || meta=$(awk '/^metadata-path<</{getline; print; exit}' "$step/output")
  node -e '
    const fs = require("fs");
    const m = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
    // The workload'"'"'s own view: stamps of both logs, deduplicated by line number, largest gap.
    const parse = (f) => fs.readFileSync(f, "utf8").split("\n").map((l) => /^(\d+) (\d{13}) ([0-9a-f-]{36})$/.exec(l.trim())).filter(Boolean).map((x) => ({ n: +x[1], ms: +x[2], token: x[3] }));
    const src = parse(process.argv[5]);
    const dst = parse(process.argv[6]);
    const byN = new Map();
    for (const l of [...src, ...dst]) if (!byN.has(l.n)) byN.set(l.n, l);
    const lines = [...byN.values()].sort((a, b) => a.n - b.n);
    let gap = 0;
    for (let i = 1; i < lines.length; i++) gap = Math.max(gap, lines[i].ms - lines[i - 1].ms);
    const last = src.at(-1);
    const next = last && dst.find((l) => l.n > last.n);
    const v = (m.volumes || [])[0] || { passes: [] };
    const pass = (p) => v.passes.find((x) => x.pass === p);
    console.log(JSON.stringify({
      precopy: process.argv[2] === "true", rep: Number(process.argv[3]),
      changeLandedDuringBulk: process.argv[4] === "0",
      workloadDowntimeMs: lines.length > 1 && next ? gap : null,
      continued: Boolean(last && next && next.n === last.n + 1 && next.token === last.token),
      downtimeMs: m.timings.downtimeMs, volumeFrozenMs: m.timings.phasesMs["volume-frozen"],
      transferMs: m.timings.phasesMs.transfer, checkpointMs: m.timings.phasesMs.checkpoint,
      restoreMs: m.timings.phasesMs.restore, volumeBulkMs: m.timings.phasesMs["volume-bulk"],
      bulkBytes: pass("bulk") ? pass("bulk").bytes : 0, frozenBytes: pass("frozen").bytes,
      sizeBytes: v.sizeBytes, durationMs: m.timings.durationMs, hosts: m.hosts, criu: m.criu,
    }));' "$meta" "$precopy" "$rep" "$during" "$step/source.log" "$step/target.log" >>"$results"
  say "volume-precopy: $precopy rep $rep: $(tail -n1 "$results" | node -e 'const r=JSON.parse(require("fs").readFileSync(0,"utf8")); console.log(`workload saw ${r.workloadDowntimeMs} ms (continued: ${r.continued}), action said ${r.downtimeMs} ms, frozen pass ${r.frozenBytes} B in ${r.volumeFrozenMs} ms, bulk ${r.bulkBytes} B`)')"
}

for rep in $(seq 1 "$reps"); do
  # Alternate the order so neither variant always runs on a warmer cache.
  if [ $((rep % 2)) = 1 ]; then order="true false"; else order="false true"; fi
  for precopy in $order; do run_once "$precopy" "$rep"; done
done
clean

mkdir -p "$out"
node - "$results" "$out" "$gib" "$changed_mib" "$reps" <<'NODE'
const fs = require('fs');
const os = require('os');
const [results, out, gib, changedMib, reps] = process.argv.slice(2);
const runs = fs.readFileSync(results, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const n = s.length; if (n === 0) return null; return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2; };
const summary = (precopy) => {
  const rs = runs.filter((r) => r.precopy === precopy);
  return {
    runs: rs.length,
    workloadDowntimeMsMedian: median(rs.map((r) => r.workloadDowntimeMs).filter((x) => x !== null)),
    workloadDowntimeMs: rs.map((r) => r.workloadDowntimeMs),
    continued: rs.every((r) => r.continued),
    downtimeMsMedian: median(rs.map((r) => r.downtimeMs)),
    downtimeMs: rs.map((r) => r.downtimeMs),
    volumeFrozenMsMedian: median(rs.map((r) => r.volumeFrozenMs)),
    frozenBytesMedian: median(rs.map((r) => r.frozenBytes)),
    bulkBytesMedian: median(rs.map((r) => r.bulkBytes)),
  };
};
const hosts = runs[0].hosts;
const machine = {
  cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, memGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
  node: process.version, kernel: hosts.source.kernel, docker: hosts.source.docker, criu: hosts.source.criu,
  containerd: hosts.source.containerd, runc: hosts.source.runc, loadavg: os.loadavg(),
};
const result = {
  measuredAt: new Date().toISOString(),
  workload: { volumeGiB: Number(gib), incompressible: true, changedMiB: Number(changedMib), reps: Number(reps), counter: 'test/testbed/workload/counter.sh, MB=1, TICK=0.01' },
  machine,
  precopy: summary(true),
  noPrecopy: summary(false),
  runs,
};
fs.writeFileSync(`${out}/volumes.json`, `${JSON.stringify(result, null, 2)}\n`);
const mib = (b) => `${(b / 2 ** 20).toFixed(1)} MiB`;
const md = `# Frozen window with a named volume (${gib} GiB incompressible, ${changedMib} MiB changed during the bulk copy)

Measured ${result.measuredAt} with \`${process.env.BENCH_VOLUMES_COMMAND || `scripts/bench/volumes.sh --reps ${reps}`}\` on the bench's test bed (three hosts on one
machine: ${machine.cpus} CPUs ${machine.cpuModel ?? ''}, ${machine.memGiB} GiB, kernel ${machine.kernel}, Docker ${machine.docker},
containerd ${machine.containerd}, runc ${machine.runc}, CRIU ${machine.criu}, Node ${machine.node}; load average at the end
${machine.loadavg.map((x) => x.toFixed(2)).join(' ')}). Bundled dist/index.js, default inputs (compression auto: zstd -1).
The downtime is what the workload saw: the container runs test/testbed/workload/counter.sh (MB=1, TICK=0.01), and the
downtime is the largest gap between consecutive wall-clock stamps of its source and target logs. The action's own
downtimeMs (metadata: freeze on the source to running on the target) is beside it. "n/a": a run whose logs gave no gap.

| volume-precopy | downtime the workload saw (median) | runs (ms) | continued where it stopped | action's downtimeMs (median) | runs (ms) | volume bytes sent while frozen (median) | frozen volume pass (median) | bulk pass before the freeze (median) |
|---|---|---|---|---|---|---|---|---|
| true (bulk before, changes while frozen) | ${result.precopy.workloadDowntimeMsMedian ?? 'n/a'} ms | ${result.precopy.workloadDowntimeMs.map((x) => x ?? 'n/a').join(', ')} | ${result.precopy.continued ? 'yes' : '**no**'} | ${result.precopy.downtimeMsMedian} ms | ${result.precopy.downtimeMs.join(', ')} | ${mib(result.precopy.frozenBytesMedian)} | ${result.precopy.volumeFrozenMsMedian} ms | ${mib(result.precopy.bulkBytesMedian)} |
| false (whole volume while frozen) | ${result.noPrecopy.workloadDowntimeMsMedian ?? 'n/a'} ms | ${result.noPrecopy.workloadDowntimeMs.map((x) => x ?? 'n/a').join(', ')} | ${result.noPrecopy.continued ? 'yes' : '**no**'} | ${result.noPrecopy.downtimeMsMedian} ms | ${result.noPrecopy.downtimeMs.join(', ')} | ${mib(result.noPrecopy.frozenBytesMedian)} | ${result.noPrecopy.volumeFrozenMsMedian} ms | none |

The ${changedMib} MiB written during the bulk pass ${runs.filter((r) => r.precopy).every((r) => r.changeLandedDuringBulk) ? 'landed before the bulk pass ended in every run' : 'did not always land before the bulk pass ended (see runs in volumes.json: changeLandedDuringBulk)'}; the frozen pass carries it either way.
`;
fs.writeFileSync(`${out}/volumes.md`, md);
console.log(md);
NODE
