/** Pure statistics of the benchmark: medians, spreads, per-size summaries, the floor, the targets. */
import type { CounterLine } from '../../test/e2e/testbed.js';
import {
  FLOOR_TRANSPORTS,
  type FloorRun,
  type FloorSummary,
  LAZY_SIZES,
  type MemoryCheck,
  type MemoryCount,
  MIGRATION_WAYS,
  type MigrationRun,
  type MigrationWay,
  type ModesRun,
  type ModesSummary,
  PODMAN_WAYS,
  type Spread,
  type Summary,
  type Target,
  type TransportRun,
  type TransportSummary,
  type WaySummary,
} from './report.js';

export function median(values: readonly (number | undefined)[]): number | undefined {
  const v = values.filter((x): x is number => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid] : (v[mid - 1]! + v[mid]!) / 2;
}

export function spread(values: readonly (number | undefined)[]): Spread | undefined {
  const v = values.filter((x): x is number => Number.isFinite(x));
  const m = median(v);
  if (m === undefined) return undefined;
  return { median: m, min: Math.min(...v), max: Math.max(...v), n: v.length };
}

/** Median of each key over several records of named times (phases, steps). */
export function medianByKey(
  records: readonly (Record<string, number> | undefined)[],
): Record<string, number> {
  const keys = [...new Set(records.flatMap((r) => Object.keys(r ?? {})))];
  const out: Record<string, number> = {};
  for (const k of keys) {
    const m = median(records.map((r) => r?.[k]));
    if (m !== undefined) out[k] = m;
  }
  return out;
}

export interface Downtime {
  downtimeMs: number;
  boundaryGapMs: number | undefined;
  continued: boolean;
  tickMs: number | undefined;
}

/**
 * Downtime as the workload saw it: the largest gap between consecutive
 * timestamps of the combined logs (only gaps that overlap the window, when
 * one is given), deduplicated by line number (a restored
 * Podman container brings its old log along). It continued when the target's
 * first new line is the source's last plus one, with the same token.
 */
export function analyseDowntime(
  source: readonly CounterLine[],
  target: readonly CounterLine[],
  window?: { fromMs: number; toMs: number },
): Downtime {
  const byN = new Map<number, CounterLine>();
  for (const line of [...source, ...target]) if (!byN.has(line.n)) byN.set(line.n, line);
  const lines = [...byN.values()].sort((a, b) => a.n - b.n);
  let gap = 0;
  const steps: number[] = [];
  for (let i = 1; i < lines.length; i++) {
    const d = lines[i]!.ms - lines[i - 1]!.ms;
    steps.push(d);
    // With a window (the move), a stall of the workload before or after it is not downtime.
    if (window && (lines[i]!.ms < window.fromMs || lines[i - 1]!.ms > window.toMs)) continue;
    if (d > gap) gap = d;
  }
  const last = source.at(-1);
  const next = last ? target.find((l) => l.n > last.n) : undefined;
  return {
    downtimeMs: gap,
    boundaryGapMs: last && next ? next.ms - last.ms : undefined,
    continued: Boolean(last && next && next.n === last.n + 1 && next.token === last.token),
    tickMs: median(steps),
  };
}

/** The largest gap between consecutive lines among those that overlap [fromMs, toMs]. */
export function gapWithin(
  lines: readonly CounterLine[],
  fromMs: number,
  toMs: number,
): { ms: number; after: CounterLine } | undefined {
  let gap: { ms: number; after: CounterLine } | undefined;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const prev = lines[i - 1]!;
    if (line.ms < fromMs || prev.ms > toMs) continue;
    const d = line.ms - prev.ms;
    if (gap === undefined || d > gap.ms) gap = { ms: d, after: line };
  }
  return gap;
}

/** Bytes at a speed in MB/s (10^6 bytes per second), in ms. */
export function transferMs(bytes: number, MBps: number): number {
  return bytes / (MBps * 1e3);
}

/**
 * The floor of one repetition: pause + dump + the checkpoint's bytes at the
 * given speed (the fastest transport of the run) + the staged restore.
 * With overlap, dump and transfer run at once: pause + max(dump, transfer) +
 * restore. Undefined when a part is missing.
 */
export function floorOf(
  run: FloorRun,
  MBps: number | undefined,
  overlap: boolean | 'page-server' = false,
): number | undefined {
  const { pauseMs, restoreMs, checkpointBytes } = run;
  // The page-server floor: the dump that sends its pages instead of writing them, overlapped.
  const dumpMs = overlap === 'page-server' ? run.dumpPageServerMs : run.dumpMs;
  if (pauseMs === undefined || dumpMs === undefined || restoreMs === undefined) return undefined;
  if (checkpointBytes === undefined || MBps === undefined || !(MBps > 0)) return undefined;
  const transfer = transferMs(checkpointBytes, MBps);
  return pauseMs + (overlap ? Math.max(dumpMs, transfer) : dumpMs + transfer) + restoreMs;
}

/**
 * The transport that sets the floor: the highest median speed among
 * FLOOR_TRANSPORTS that this run measured (the action's hashed stream is
 * slower than its raw channels by construction, so it never sets it).
 */
export function fastestTransport(
  transport: Readonly<Record<string, TransportSummary>>,
): { tool: string; MBps: number } | undefined {
  let best: { tool: string; MBps: number } | undefined;
  for (const tool of FLOOR_TRANSPORTS) {
    const MBps = transport[tool]?.MBps.median;
    if (MBps !== undefined && MBps > 0 && (best === undefined || MBps > best.MBps)) best = { tool, MBps };
  }
  return best;
}

/** Compares the workload's checksums from before and after a move; a missing one is "not checked". */
export function memoryVerdict(
  before: { sum?: string; why?: string },
  after: { sum?: string; why?: string },
): MemoryCheck {
  if (!before.sum)
    return { status: 'not checked', after: after.sum, why: `before: ${before.why ?? 'no checksum'}` };
  if (!after.sum)
    return { status: 'not checked', before: before.sum, why: `after: ${after.why ?? 'no checksum'}` };
  return { status: before.sum === after.sum ? 'intact' : 'differs', before: before.sum, after: after.sum };
}

/** How the completed runs' memory checks came out; a run without a check counts as not checked. */
export function countMemory(runs: readonly MigrationRun[]): MemoryCount {
  const count: MemoryCount = { intact: 0, differs: 0, notChecked: 0 };
  for (const r of runs) {
    if (r.memory?.status === 'intact') count.intact++;
    else if (r.memory?.status === 'differs') count.differs++;
    else count.notChecked++;
  }
  return count;
}

/**
 * Podman's best configuration at one size: the one of PODMAN_WAYS with the
 * shortest median downtime among those measured.
 */
export function bestPodman(
  ways: Partial<Record<MigrationWay, WaySummary>> | undefined,
): { way: MigrationWay; summary: WaySummary } | undefined {
  let best: { way: MigrationWay; summary: WaySummary } | undefined;
  for (const way of PODMAN_WAYS) {
    const w = ways?.[way];
    const m = w?.downtimeMs?.median;
    if (w && m !== undefined && (best === undefined || m < (best.summary.downtimeMs?.median ?? Infinity)))
      best = { way, summary: w };
  }
  return best;
}

function summariseWay(runs: readonly MigrationRun[], withDetails: boolean): WaySummary {
  const ok = runs.filter((r) => !r.error);
  const summary: WaySummary = {
    downtimeMs: spread(ok.map((r) => r.downtimeMs)),
    totalMs: spread(ok.map((r) => r.totalMs)),
    bytes: spread(ok.map((r) => r.bytes)),
    runnerRssKb: spread(ok.map((r) => r.runnerRssKb)),
    checkpointBytes: spread(ok.map((r) => r.checkpointBytes)),
    continued: ok.length > 0 && ok.every((r) => r.continued),
    failed: runs.length - ok.length,
    memory: countMemory(ok),
  };
  if (withDetails) {
    summary.phasesMs = medianByKey(ok.map((r) => r.phasesMs));
    summary.stepsMs = medianByKey(ok.map((r) => r.stepsMs));
    summary.dumpMs = spread(ok.map((r) => r.dumpMs));
    summary.restoreCriuMs = spread(ok.map((r) => r.restoreCriuMs));
    summary.reportedDowntimeMs = spread(ok.map((r) => r.reportedDowntimeMs));
    const lastPage = spread(ok.map((r) => r.lastPageMs));
    if (lastPage) summary.lastPageMs = lastPage;
    const runnerBytes = spread(ok.map((r) => r.runnerBytes));
    if (runnerBytes) summary.runnerBytes = runnerBytes;
    const routes = [...new Set(ok.flatMap((r) => (r.route ? [r.route] : [])))];
    if (routes.length > 0) summary.routes = routes;
    const window = medianByKey(ok.map((r) => r.windowMs));
    if (window && Object.keys(window).length > 0) summary.windowMs = window;
  }
  return summary;
}

function summariseModes(runs: readonly ModesRun[]): ModesSummary | undefined {
  if (runs.length === 0) return undefined;
  const ok = runs.filter((m) => !m.error);
  return {
    frozenMs: spread(ok.map((m) => m.frozenMs)),
    dumpMs: spread(ok.map((m) => m.dumpMs)),
    freezeRatio: spread(ok.map((m) => m.freezeRatio)),
    restoreCriuMs: spread(ok.map((m) => m.restoreCriuMs)),
    restoreRatio: spread(ok.map((m) => m.restoreRatio)),
    restorePhaseMs: spread(ok.map((m) => m.restorePhasesMs?.restore)),
    checkpointPhaseMs: spread(ok.map((m) => m.checkpointPhasesMs?.checkpoint)),
    workloadFrozenMs: spread(ok.map((m) => m.workloadFrozenMs)),
    eventsFrozenMs: spread(ok.map((m) => m.eventsFrozenMs)),
    continued: ok.length > 0 && ok.every((m) => m.continued),
    failed: runs.length - ok.length,
  };
}

export function summariseTransport(runs: readonly TransportRun[]): Record<string, TransportSummary> {
  const out: Record<string, TransportSummary> = {};
  for (const tool of [...new Set(runs.map((t) => t.tool))]) {
    const ts = runs.filter((t) => t.tool === tool);
    const MBps = spread(ts.map((t) => t.MBps));
    if (!MBps) continue;
    out[tool] = {
      label: ts[0]!.label,
      MBps,
      runnerRssKb: spread(ts.map((t) => t.runnerRssKb)),
      runnerCpuS: spread(ts.map((t) => t.runnerCpuS)),
    };
  }
  return out;
}

export function summarise(
  runs: readonly MigrationRun[],
  floors: readonly FloorRun[],
  transport: readonly TransportRun[],
  modes: readonly ModesRun[],
  sizes: readonly number[],
): Summary {
  const transportSummary = summariseTransport(transport);
  const fastest = fastestTransport(transportSummary);
  const speed = fastest?.MBps;
  const counter = runs.filter((r) => (r.workload ?? 'counter') === 'counter');
  const bySize: Summary['bySize'] = {};
  for (const size of sizes) {
    const entry: Summary['bySize'][string] = { ways: {} };
    for (const way of MIGRATION_WAYS) {
      const rs = counter.filter((r) => r.sizeMiB === size && r.method === way);
      if (rs.length > 0) entry.ways[way] = summariseWay(rs, true);
    }
    const fs = floors.filter((f) => f.sizeMiB === size);
    if (fs.length > 0) {
      const floor: FloorSummary = {
        pauseMs: spread(fs.map((f) => f.pauseMs)),
        dumpMs: spread(fs.map((f) => f.dumpMs)),
        restoreMs: spread(fs.map((f) => f.restoreMs)),
        restoreCriuMs: spread(fs.map((f) => f.restoreCriuMs)),
        checkpointBytes: spread(fs.map((f) => f.checkpointBytes)),
        transferTool: fastest?.tool,
        transferMBps: speed,
        transferMs: spread(
          fs.map((f) => (f.checkpointBytes && speed ? transferMs(f.checkpointBytes, speed) : undefined)),
        ),
        floorMs: spread(fs.map((f) => floorOf(f, speed))),
        overlapFloorMs: spread(fs.map((f) => floorOf(f, speed, true))),
        dumpPageServerMs: spread(fs.map((f) => f.dumpPageServerMs)),
        pageServerFloorMs: spread(fs.map((f) => floorOf(f, speed, 'page-server'))),
        oneHostDowntimeMs: spread(fs.map((f) => f.oneHostDowntimeMs)),
      };
      entry.floor = floor;
    }
    const m = summariseModes(modes.filter((x) => x.sizeMiB === size));
    if (m) entry.modes = m;
    bySize[String(size)] = entry;
  }
  const redis: Summary['redis'] = {};
  for (const way of MIGRATION_WAYS) {
    const rs = runs.filter((r) => r.workload === 'redis' && r.method === way);
    if (rs.length === 0) continue;
    const ok = rs.filter((r) => !r.error);
    redis[way] = {
      ...summariseWay(rs, false),
      // Undefined when no run completed: not measured, never "no".
      runIdKept: ok.length > 0 ? ok.every((r) => r.redis?.runIdKept) : undefined,
      keysKept:
        ok.length > 0 ? ok.every((r) => r.redis && r.redis.keysAfter === r.redis.keysBefore) : undefined,
    };
  }
  return { bySize, transport: transportSummary, redis };
}

export const LAZY_TARGET =
  'with memory: lazy, downtime at 256 MiB, 1 GiB and 2 GiB under 1 s and within 0.3 s of each other, memory intact, on every repetition';

/**
 * The post-copy target, judged on every run, not the median: each size's
 * slowest run under 1 s, the slowest and fastest run of all sizes within
 * 0.3 s, every run's memory intact by the workload's checksum, none failed.
 * The time until the last page is reported beside it.
 */
const RUNNER_BYTES_TARGET =
  'with the direct route, under 1 MiB of container data through the runner for a 1 GiB move';

/** Judged on every 1 GiB run (its largest count), and only for runs that took the direct route. */
export function runnerBytesTarget(way: WaySummary | undefined, configuration = ''): Target {
  const bytes = way?.runnerBytes;
  const target = `${RUNNER_BYTES_TARGET}${configuration}`;
  if (!way || !bytes)
    return {
      target,
      observed: 'not measured (needs the action at 1024 MiB)',
      met: undefined,
    };
  const routes = way.routes ?? [];
  const observed = `${bytes.max} bytes at most through the runner (median ${bytes.median}), route ${routes.join(', ') || 'not reported'}`;
  return {
    target,
    observed,
    met: routes.length === 1 && routes[0] === 'direct' && bytes.max < 1024 * 1024,
  };
}

export function lazyTarget(summary: Summary): Target {
  const rows = LAZY_SIZES.map((size) => ({ size, way: summary.bySize[String(size)]?.ways['action-lazy'] }));
  const missing = rows.filter((row) => !row.way?.downtimeMs).map((row) => `${row.size} MiB`);
  if (missing.length > 0)
    return {
      target: LAZY_TARGET,
      observed: `not measured (no completed action-lazy run at ${missing.join(', ')}; npm run bench -- --lazy)`,
      met: undefined,
    };
  const measured = rows as { size: number; way: WaySummary & { downtimeMs: Spread } }[];
  const slowest = Math.max(...measured.map((row) => row.way.downtimeMs.max));
  const fastest = Math.min(...measured.map((row) => row.way.downtimeMs.min));
  const failed = measured.reduce((sum, row) => sum + row.way.failed, 0);
  const notIntact = measured.reduce(
    (sum, row) => sum + (row.way.memory ? row.way.memory.differs + row.way.memory.notChecked : 1),
    0,
  );
  const perSize = measured
    .map(
      (row) =>
        `${row.size} MiB ${sec(row.way.downtimeMs.median)} (${sec(row.way.downtimeMs.min)}–${sec(row.way.downtimeMs.max)}), last page ${row.way.lastPageMs ? sec(row.way.lastPageMs.median) : 'not reported'}`,
    )
    .join('; ');
  const memory =
    failed + notIntact === 0 ? 'memory intact in every run' : `${failed} failed, ${notIntact} not intact`;
  return {
    target: LAZY_TARGET,
    observed: `${perSize}; spread ${sec(slowest - fastest)}; ${memory}`,
    met: slowest < 1000 && slowest - fastest <= 300 && failed === 0 && notIntact === 0,
  };
}

const sec = (ms: number | undefined): string =>
  Number.isFinite(ms) ? `${((ms ?? 0) / 1000).toFixed(2)} s` : 'n/a';

/**
 * The issue's targets (issue 25, "Targets"), each met, missed, or undefined
 * when the run did not measure what it needs (a smoke run without 256 MiB,
 * or a feature this build of the action does not have).
 */
export function evaluateTargets(summary: Summary, sizes: readonly number[]): Target[] {
  const targets: Target[] = [];
  const way = (size: number, w: MigrationWay) => summary.bySize[String(size)]?.ways[w];
  const down = (size: number, w: MigrationWay) => way(size, w)?.downtimeMs?.median;
  const unmeasured = (target: string, why: string): Target => ({ target, observed: why, met: undefined });

  // Each of the action's eager configurations: the default, and memory: overlap when it ran.
  const actionWays = (['action', 'action-overlap'] as const).filter(
    (w) => w === 'action' || sizes.some((size) => way(size, w)),
  );
  const named = (w: MigrationWay) => (w === 'action' ? 'action' : 'action (memory: overlap)');
  for (const w of actionWays)
    for (const size of [256, 1024]) {
      const target = `downtime at ${size} MiB at most 1.2x the floor (pause + dump + bytes at the fastest transport measured + staged restore), ${named(w)}`;
      const a = down(size, w);
      const f = summary.bySize[String(size)]?.floor;
      const floor = f?.floorMs?.median;
      const overlapFloor = f?.overlapFloorMs?.median;
      // memory: overlap is judged against its own bound, lower than the floor, when it was measured.
      const pageServerFloor = w === 'action-overlap' ? f?.pageServerFloorMs?.median : undefined;
      const bound = pageServerFloor ?? floor;
      targets.push(
        a !== undefined && floor !== undefined && bound !== undefined
          ? {
              target,
              observed: `${w} ${sec(a)} / floor ${sec(floor)} (${f?.transferTool}) = ${(a / floor).toFixed(2)}x${overlapFloor !== undefined ? `; ${(a / overlapFloor).toFixed(2)}x the overlap floor ${sec(overlapFloor)}` : ''}${pageServerFloor !== undefined ? `; ${(a / pageServerFloor).toFixed(2)}x the page-server floor ${sec(pageServerFloor)}, judged against it` : ''}`,
              met: a <= 1.2 * bound,
            }
          : unmeasured(target, `not measured (needs ${size} MiB, ${w}, the floor and the transport)`),
      );
    }
  {
    const target = 'downtime at 256 MiB at least 5x shorter than the seed procedure';
    const a = down(256, 'action');
    const s = down(256, 'seed');
    targets.push(
      a !== undefined && s !== undefined
        ? { target, observed: `seed ${sec(s)} / action ${sec(a)} = ${(s / a).toFixed(2)}x`, met: s / a >= 5 }
        : unmeasured(target, 'not measured (needs 256 MiB, seed and action)'),
    );
  }
  for (const w of actionWays) {
    for (const size of [64, 256, 1024]) {
      const target = `downtime shorter than Podman's best configuration at ${size} MiB (median), ${named(w)}`;
      const a = down(size, w);
      const p = bestPodman(summary.bySize[String(size)]?.ways);
      const pm = p?.summary.downtimeMs?.median;
      targets.push(
        a !== undefined && p && pm !== undefined
          ? { target, observed: `${w} ${sec(a)}, ${p.way} ${sec(pm)}`, met: a < pm }
          : unmeasured(target, `not measured (needs ${size} MiB, ${w} and podman)`),
      );
    }
    const target = `downtime at 1 GiB at most 0.7x of Podman's best configuration on every repetition (the action's slowest vs Podman's fastest), ${named(w)}`;
    const a = way(1024, w)?.downtimeMs;
    const p = bestPodman(summary.bySize['1024']?.ways);
    const pmin = p?.summary.downtimeMs?.min;
    targets.push(
      a !== undefined && p && pmin !== undefined
        ? {
            target,
            observed: `${w} max ${sec(a.max)} / ${p.way} min ${sec(pmin)} = ${(a.max / pmin).toFixed(2)}x (medians ${(a.median / (p.summary.downtimeMs?.median ?? Number.NaN)).toFixed(2)}x)`,
            met: a.max <= 0.7 * pmin,
          }
        : unmeasured(target, `not measured (needs 1024 MiB, ${w} and podman)`),
    );
  }
  {
    const target = "every way's restored workload proves its memory by content (checksum before = after)";
    const counts: string[] = [];
    let all = 0;
    let intact = 0;
    for (const size of sizes)
      for (const w of MIGRATION_WAYS) {
        const s = way(size, w);
        if (!s?.memory) continue;
        const n = s.memory.intact + s.memory.differs + s.memory.notChecked + s.failed;
        all += n;
        intact += s.memory.intact;
        if (s.memory.intact < n) counts.push(`${w} ${size} MiB: ${s.memory.intact}/${n} intact`);
      }
    targets.push(
      all > 0
        ? {
            target,
            observed: counts.length ? counts.join('; ') : `${intact}/${all} runs intact`,
            met: intact === all,
          }
        : unmeasured(target, 'not measured (no migration way ran)'),
    );
  }
  {
    const target = "transport at least 1.0x the OpenSSH relay, sha256 kept (the action's streamBetween)";
    const a = summary.transport.action?.MBps.median;
    const o = summary.transport.openssh?.MBps.median;
    targets.push(
      a !== undefined && o !== undefined
        ? {
            target,
            observed: `${a.toFixed(1)} MB/s vs ${o.toFixed(1)} MB/s = ${(a / o).toFixed(2)}x`,
            met: a / o >= 1.0,
          }
        : unmeasured(target, 'not measured (--no-transport)'),
    );
  }
  {
    const target = "runner memory flat in the container's size (peak RSS of the action's node process)";
    const rows = sizes
      .map((size) => ({ size, kb: way(size, 'action')?.runnerRssKb?.median }))
      .filter((r): r is { size: number; kb: number } => r.kb !== undefined);
    if (rows.length >= 2) {
      const first = rows[0]!;
      const last = rows[rows.length - 1]!;
      const growthKb = last.kb - first.kb;
      // Flat: it grows by under 32 MiB while the container grows by far more.
      targets.push({
        target,
        observed: `${rows.map((r) => `${r.size} MiB: ${(r.kb / 1024).toFixed(0)} MiB`).join(', ')} (growth ${(growthKb / 1024).toFixed(0)} MiB)`,
        met: growthKb < 32 * 1024,
      });
    } else {
      targets.push(unmeasured(target, 'not measured (needs two sizes or more)'));
    }
  }
  targets.push(lazyTarget(summary));
  targets.push(runnerBytesTarget(way(1024, 'action')));
  if (actionWays.includes('action-overlap'))
    targets.push(runnerBytesTarget(way(1024, 'action-overlap'), ', action (memory: overlap)'));
  return targets;
}
