/** latest.md: the results as tables, where the time goes, the targets met or missed, and how it was measured. */
import { MIGRATION_WAYS, type Report, type Summary } from '../report.js';
import { median } from '../stats.js';
import { cell, fmtBytes, metText, mib, ms, range, ratio, sec } from './format.js';

const PHASES = ['connect', 'preflight', 'stage', 'checkpoint', 'transfer', 'restore', 'verify', 'finalize'];

export function header(report: Report): string {
  const m = report.machine;
  const v = report.versions;
  const loads = m.loadSamples.map((x) => x.load1);
  return (
    `Run ${report.startedAt} on ${m.cpus} CPUs, ${m.memGiB} GiB RAM, kernel ${m.kernel}; ` +
    `Docker ${v.docker}, containerd ${v.containerd}, runc ${v.runc}, CRIU ${v.criu}, Podman ${v.podman}, Node ${v.node}; ` +
    `dist/index.js sha256 ${report.dist.sha256.slice(0, 16)}${report.dist.changedDuringRun ? ' (dist/ changed during the run; the runs used the copy taken at the start)' : ''}. ` +
    `${report.settings.reps} repetition(s) per size and way, order rotated each repetition. ` +
    `Load average (1 min) at start ${m.loadStart}, at end ${m.loadEnd}` +
    (loads.length
      ? `, during the run ${Math.min(...loads).toFixed(2)}–${Math.max(...loads).toFixed(2)} (median ${median(loads)?.toFixed(2)})`
      : '') +
    '.'
  );
}

export function resultsTable(summary: Summary, sizes: readonly number[]): string[] {
  const out = [
    '| size | way | downtime | total wall time | bytes between hosts | CRIU image | runner peak RSS |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const size of sizes) {
    const entry = summary.bySize[String(size)];
    for (const way of MIGRATION_WAYS) {
      const w = entry?.ways[way];
      if (!w) continue;
      const flags = [w.continued ? '' : 'did not continue!', w.failed ? `${w.failed} failed` : '']
        .filter(Boolean)
        .join(', ');
      out.push(
        `| ${size} MiB | ${way}${flags ? ` (${flags})` : ''} | ${range(w.downtimeMs, sec)} | ${range(w.totalMs, sec)} | ${range(w.bytes, fmtBytes)} | ${range(w.checkpointBytes, fmtBytes)} | ${range(w.runnerRssKb, mib)} |`,
      );
    }
    const f = entry?.floor;
    if (f) {
      out.push(
        `| ${size} MiB | floor (computed, see below) | ${range(f.floorMs, sec)} | | | ${range(f.checkpointBytes, fmtBytes)} | |`,
      );
    }
  }
  return out;
}

export function floorTable(
  summary: Summary,
  sizes: readonly number[],
  relayMBps: number | undefined,
): string[] {
  const rows = sizes.filter((size) => summary.bySize[String(size)]?.floor);
  if (rows.length === 0) return [];
  const out = [
    `The floor, the best a migration can do on these hosts: pause + dump + the CRIU image's bytes at the OpenSSH relay's measured speed (${relayMBps ? `${relayMBps.toFixed(1)} MB/s` : 'not measured'}) + the staged restore. ` +
      "Pause, dump and restore are measured on host 1 by scripts/bench/floor.sh: `docker pause`, `runc checkpoint --leave-running` into a new container's checkpoint directory, " +
      "the `pages-*.img` moved to a staging directory and replaced by relative symlinks (as the action's staged-pages restore does, from containerd's actual TMPDIR), then `docker start --checkpoint`. " +
      'Per repetition the four parts are added, then the median is taken; ms, median (min–max).',
    '',
    '| size | floor | pause | dump (runc checkpoint) | transfer at the relay speed | staged restore (docker start --checkpoint) | of which CRIU | one host, as the workload saw it |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const size of rows) {
    const f = summary.bySize[String(size)]!.floor!;
    out.push(
      `| ${size} MiB | ${range(f.floorMs, ms)} | ${range(f.pauseMs, ms)} | ${range(f.dumpMs, ms)} | ${range(f.transferMs, ms)} | ${range(f.restoreMs, ms)} | ${range(f.restoreCriuMs, ms)} | ${range(f.oneHostDowntimeMs, ms)} |`,
    );
  }
  return out;
}

export function phasesTable(summary: Summary, sizes: readonly number[]): string[] {
  const rows = sizes.filter((size) => summary.bySize[String(size)]?.ways.action?.phasesMs);
  if (rows.length === 0) return [];
  const out = [
    "The action's phases (median ms, from its metadata JSON; the source is frozen from `checkpoint` to the end of `restore`):",
    '',
    `| size | ${PHASES.join(' | ')} | CRIU frozen (stats-dump) | CRIU restore (restore.log) | downtime-ms output |`,
    `|---|${PHASES.map(() => '---|').join('')}---|---|---|`,
  ];
  for (const size of rows) {
    const a = summary.bySize[String(size)]!.ways.action!;
    const p = a.phasesMs ?? {};
    out.push(
      `| ${size} MiB | ${PHASES.map((name) => (p[name] !== undefined ? ms(p[name]) : '')).join(' | ')} | ${range(a.dumpMs, ms)} | ${range(a.restoreCriuMs, ms)} | ${range(a.reportedDowntimeMs, ms)} |`,
    );
  }
  for (const way of ['seed', 'podman'] as const) {
    const names = [
      ...new Set(rows.flatMap((size) => Object.keys(summary.bySize[String(size)]?.ways[way]?.stepsMs ?? {}))),
    ];
    if (names.length === 0) continue;
    out.push(
      '',
      `${way} steps (median ms):`,
      '',
      `| size | ${names.join(' | ')} |`,
      `|---|${names.map(() => '---|').join('')}`,
    );
    for (const size of sizes) {
      const st = summary.bySize[String(size)]?.ways[way]?.stepsMs;
      if (st)
        out.push(`| ${size} MiB | ${names.map((n) => (st[n] !== undefined ? ms(st[n]) : '')).join(' | ')} |`);
    }
  }
  return out;
}

export function modesTable(summary: Summary, sizes: readonly number[]): string[] {
  const rows = sizes.filter((size) => summary.bySize[String(size)]?.modes);
  if (rows.length === 0) return [];
  const out = [
    '## Checkpoint and restore modes (store on the same host)',
    '',
    'Host 1 alone: the dump itself (scripts/bench/dump.sh: `docker pause`, `runc checkpoint --leave-running`, `docker unpause`, timed on the host) before and after mode checkpoint into a store on host 1; ' +
      "then the container is removed and mode restore brings it back. Freeze ratio: frozen-ms output / the dump itself; restore ratio: the restore phase / CRIU's own restore (restore.log). ms, median (min–max).",
    '',
    '| size | frozen-ms | paused per dockerd events | freeze seen by the workload | dump itself | freeze ratio | checkpoint phase | restore phase | CRIU restore | restore ratio | continued |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const size of rows) {
    const m = summary.bySize[String(size)]!.modes!;
    out.push(
      `| ${size} MiB${m.failed ? ` (${m.failed} failed)` : ''} | ${range(m.frozenMs, ms)} | ${range(m.eventsFrozenMs, ms)} | ${range(m.workloadFrozenMs, ms)} | ${range(m.dumpMs, ms)} | **${range(m.freezeRatio, ratio)}** | ${range(m.checkpointPhaseMs, ms)} | ${range(m.restorePhaseMs, ms)} | ${range(m.restoreCriuMs, ms)} | **${range(m.restoreRatio, ratio)}** | ${m.continued ? 'yes' : '**no**'} |`,
    );
  }
  return out;
}

export function transportTable(summary: Summary, bytes: number): string[] {
  const tools = Object.values(summary.transport);
  if (tools.length === 0) return [];
  return [
    `## Transport alone: ${fmtBytes(bytes)} host 1 -> runner -> host 2`,
    '',
    '| tool | MB/s (10^6 B/s) | runner peak RSS | runner CPU time |',
    '|---|---|---|---|',
    ...tools.map(
      (t) =>
        `| ${cell(t.label)} | ${range(t.MBps, (v) => v.toFixed(1))} | ${range(t.runnerRssKb, mib)} | ${range(t.runnerCpuS, (v) => `${v.toFixed(1)} s`)} |`,
    ),
  ];
}

export function redisTable(report: Report): string[] {
  const ways = Object.entries(report.summary.redis);
  if (ways.length === 0) return [];
  return [
    `## A real service: Debian's redis-server with ${report.settings.redisMiB} MiB of random values`,
    '',
    "Image testbed/services:1 (test/testbed/package-image.sh). Downtime: the longest run of failed `redis-cli PING`s, polled from inside the container's host on both ends every 10 ms of wall clock. " +
      "The process is the same when INFO server's run_id is unchanged (a restart would draw a new one); the data set came along when DBSIZE is the same.",
    '',
    '| way | downtime | total wall time | bytes between hosts | run_id unchanged | DBSIZE unchanged |',
    '|---|---|---|---|---|---|',
    ...ways.map(
      ([way, w]) =>
        `| ${way}${w.failed ? ` (${w.failed} failed)` : ''} | ${range(w.downtimeMs, sec)} | ${range(w.totalMs, sec)} | ${range(w.bytes, fmtBytes)} | ${w.runIdKept ? 'yes' : '**no**'} | ${w.keysKept ? 'yes' : '**no**'} |`,
    ),
  ];
}

export function targetsTable(report: Report): string[] {
  return [
    '## Targets',
    '',
    '| target | observed | result |',
    '|---|---|---|',
    ...report.targets.map((t) => `| ${cell(t.target)} | ${cell(t.observed)} | ${metText(t.met)} |`),
  ];
}

export function markdown(report: Report): string {
  const { summary, settings } = report;
  const relay = summary.transport.openssh?.MBps.median;
  const out = [
    '# Benchmark: live migration downtime, all ways side by side',
    '',
    header(report),
    '',
    `Workload: test/testbed/workload/counter.sh with PATTERN=${settings.pattern}, TICK=${settings.tick} and MB = size, ` +
      'in a container with `--network none --security-opt seccomp=unconfined` for every way. ' +
      'Downtime is what the workload saw: the largest gap between consecutive timestamps of its combined source and target logs. Values: median (min–max).',
    '',
    ...resultsTable(summary, settings.sizes),
    '',
    '## Where the time goes',
    '',
    ...phasesTable(summary, settings.sizes),
    '',
    ...floorTable(summary, settings.sizes, relay),
  ];
  for (const section of [
    modesTable(summary, settings.sizes),
    transportTable(summary, settings.transportBytes),
    redisTable(report),
    targetsTable(report),
  ]) {
    if (section.length > 0) out.push('', ...section);
  }
  out.push('', '## Notes', '', ...report.notes.map((n) => `- ${n}`), '', '![chart](latest.svg)', '');
  return out.join('\n');
}
