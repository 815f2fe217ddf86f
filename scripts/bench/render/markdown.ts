/** latest.md: the results as tables, where the time goes, the targets met or missed, and how it was measured. */
import { type MemoryCount, MIGRATION_WAYS, type Report, type Summary } from '../report.js';
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

/**
 * The memory column: how many completed runs proved their memory by content.
 * A failed run is not a check; "not checked" is said, never hidden.
 */
export function memoryCell(memory: MemoryCount | undefined, failed: number): string {
  if (!memory) return 'not checked';
  const done = memory.intact + memory.differs + memory.notChecked;
  if (done === 0) return failed > 0 ? 'not measured (every run failed)' : 'not measured';
  const parts: string[] = [];
  if (memory.intact) parts.push(`intact ${memory.intact}/${done}`);
  if (memory.differs) parts.push(`**differs ${memory.differs}/${done}**`);
  if (memory.notChecked) parts.push(`**not checked ${memory.notChecked}/${done}**`);
  return parts.join(', ');
}

/** A yes/no of a measured property, or "not measured" when no run completed. */
export const yesNo = (v: boolean | undefined): string =>
  v === undefined ? 'not measured' : v ? 'yes' : '**no**';

export function resultsTable(summary: Summary, sizes: readonly number[]): string[] {
  const out = [
    '| size | way | downtime | memory (content checksum) | total wall time | bytes between hosts | CRIU image | runner peak RSS |',
    '|---|---|---|---|---|---|---|---|',
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
        `| ${size} MiB | ${way}${flags ? ` (${flags})` : ''} | ${range(w.downtimeMs, sec)} | ${memoryCell(w.memory, w.failed)} | ${range(w.totalMs, sec)} | ${range(w.bytes, fmtBytes)} | ${range(w.checkpointBytes, fmtBytes)} | ${range(w.runnerRssKb, mib)} |`,
      );
    }
    const f = entry?.floor;
    if (f) {
      out.push(
        `| ${size} MiB | floor (computed, ${f.transferTool ?? 'no transport measured'}) | ${range(f.floorMs, sec)} | | | | ${range(f.checkpointBytes, fmtBytes)} | |`,
        `| ${size} MiB | overlap floor (dump and transfer at once) | ${range(f.overlapFloorMs, sec)} | | | | | |`,
      );
      if (f.pageServerFloorMs)
        out.push(
          `| ${size} MiB | page-server floor (the dump sends its pages, at once with their transfer) | ${range(f.pageServerFloorMs, sec)} | | | | | |`,
        );
    }
  }
  return out;
}

export function floorTable(summary: Summary, sizes: readonly number[]): string[] {
  const rows = sizes.filter((size) => summary.bySize[String(size)]?.floor);
  if (rows.length === 0) return [];
  const first = summary.bySize[String(rows[0]!)]!.floor!;
  const speed = first.transferMBps
    ? `${first.transferTool}, ${first.transferMBps.toFixed(1)} MB/s median`
    : 'no transport measured';
  const out = [
    `The floor, a lower bound for any migration that dumps, then copies, then restores on these hosts: pause + dump + the CRIU image's bytes at the fastest transport measured in this run (${speed}; the candidates are the OpenSSH relay, the action's SSH channels raw without sha256, and an OpenSSH copy from host 1 straight to host 2) + the staged restore. ` +
      'The overlap floor lets dump and transfer run at once: pause + max(dump, transfer) + staged restore. ' +
      "The page-server floor is the bound for `memory: overlap`, whose dump sends the pages instead of writing them on the source: pause + max(the same frozen container dumped again into a `criu page-server` on host 1's own loopback, transfer) + staged restore; action-overlap is judged against it. " +
      "Pause, dump and restore are measured on host 1 by scripts/bench/floor.sh: `docker pause`, `runc checkpoint --leave-running` into a new container's checkpoint directory, " +
      "the `pages-*.img` moved to a staging directory and replaced by relative symlinks (as the action's staged-pages restore does, from containerd's actual TMPDIR), then `docker start --checkpoint`. " +
      'Per repetition the parts are added, then the median is taken; ms, median (min–max).',
    '',
    '| size | floor | overlap floor | page-server floor | pause | dump (runc checkpoint) | dump into a local page server | transfer at the fastest speed | staged restore (docker start --checkpoint) | of which CRIU | one host, as the workload saw it |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const size of rows) {
    const f = summary.bySize[String(size)]!.floor!;
    out.push(
      `| ${size} MiB | ${range(f.floorMs, ms)} | ${range(f.overlapFloorMs, ms)} | ${range(f.pageServerFloorMs, ms)} | ${range(f.pauseMs, ms)} | ${range(f.dumpMs, ms)} | ${range(f.dumpPageServerMs, ms)} | ${range(f.transferMs, ms)} | ${range(f.restoreMs, ms)} | ${range(f.restoreCriuMs, ms)} | ${range(f.oneHostDowntimeMs, ms)} |`,
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
  for (const way of ['seed', 'podman', 'podman-uncompressed'] as const) {
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
    `## Transport alone: ${fmtBytes(bytes)} from host 1 to host 2`,
    '',
    'Every clock starts after the SSH connections it uses are open (OpenSSH: control connections opened before, the timed command runs over them; the action: its probe times from the first channel on connected hosts; host to host: a control connection from host 1 to host 2 opened before) and stops when the receiving end has read the last byte. ' +
      'So handshakes are outside every clock, and the opening of the session channels and the remote commands inside every one. Runner peak RSS and CPU include the control connections; host to host uses no runner process.',
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
      "The process is the same when INFO server's run_id is unchanged (a restart would draw a new one); the data set came along when DBSIZE is the same; " +
      'its content when `DEBUG DIGEST` (the server\'s own digest of every key and value) is the same before and after. "not measured": no run of that way completed.',
    '',
    '| way | downtime | total wall time | bytes between hosts | run_id unchanged | DBSIZE unchanged | memory (DEBUG DIGEST) |',
    '|---|---|---|---|---|---|---|',
    ...ways.map(
      ([way, w]) =>
        `| ${way}${w.failed ? ` (${w.failed} failed of ${w.failed + (w.memory ? w.memory.intact + w.memory.differs + w.memory.notChecked : 0)})` : ''} | ${range(w.downtimeMs, sec)} | ${range(w.totalMs, sec)} | ${range(w.bytes, fmtBytes)} | ${yesNo(w.runIdKept)} | ${yesNo(w.keysKept)} | ${memoryCell(w.memory, w.failed)} |`,
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

/** Post-copy runs: the downtime beside the time until the last page, and the action's frozen window. */
export function lazyTable(summary: Summary, sizes: readonly number[]): string[] {
  const rows = sizes.filter((size) => summary.bySize[String(size)]?.ways['action-lazy']);
  if (rows.length === 0) return [];
  const steps = [
    ...new Set(
      rows.flatMap((size) => Object.keys(summary.bySize[String(size)]?.ways['action-lazy']?.windowMs ?? {})),
    ),
  ];
  const out = [
    "Post-copy (`memory: lazy`, way action-lazy): the downtime the workload saw, and when the last page arrived (the action's timings.lastPageMs, from the freeze; the source stays frozen until then). " +
      'The frozen window as the action timed it (timings.frozenWindowMs, median ms per step; `commands` is the number of commands run on the hosts inside the window).',
    '',
    `| size | downtime | last page | memory | downtime-ms output | ${steps.join(' | ')} |`,
    `|---|---|---|---|---|${steps.map(() => '---|').join('')}`,
  ];
  for (const size of rows) {
    const w = summary.bySize[String(size)]!.ways['action-lazy']!;
    out.push(
      `| ${size} MiB | ${range(w.downtimeMs, sec)} | ${range(w.lastPageMs, sec)} | ${memoryCell(w.memory, w.failed)} | ${range(w.reportedDowntimeMs, ms)} | ${steps.map((step) => (w.windowMs?.[step] !== undefined ? Math.round(w.windowMs[step]!) : 'n/a')).join(' | ')} |`,
    );
  }
  return out;
}

export function markdown(report: Report): string {
  const { summary, settings } = report;
  const out = [
    '# Benchmark: live migration downtime, all ways side by side',
    '',
    header(report),
    '',
    `Workload: scripts/bench/workload/bench-counter.sh (the test bed's counter plus an md5 of its whole value on request) with PATTERN=${settings.pattern}, TICK=${settings.tick} and MB = size, ` +
      'in a container with `--network none --security-opt seccomp=unconfined` for every way. ' +
      'Downtime is what the workload saw: the largest gap between consecutive timestamps of its combined source and target logs. ' +
      'Memory: the workload computes the md5 of the whole value it holds on the source before the move and on the target after it; "intact" when they are equal. Values: median (min–max). ' +
      'Podman runs twice: its default (`podman`, zstd-compressed export) and `--compress none` (`podman-uncompressed`); "Podman\'s best" is the one with the shorter median downtime at that size.',
    '',
    ...resultsTable(summary, settings.sizes),
    '',
    '## Where the time goes',
    '',
    ...phasesTable(summary, settings.sizes),
    '',
    ...floorTable(summary, settings.sizes),
  ];
  for (const section of [
    lazyTable(summary, settings.sizes),
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
