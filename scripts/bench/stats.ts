/** Pure statistics of the benchmark: medians, spreads, per-size summaries, the floor, the targets. */
import type { CounterLine } from '../../test/e2e/testbed.js';
import {
  type FloorRun,
  type FloorSummary,
  MIGRATION_WAYS,
  type MigrationRun,
  type ModesRun,
  type ModesSummary,
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
 * timestamps of the combined logs, deduplicated by line number (a restored
 * Podman container brings its old log along). It continued when the target's
 * first new line is the source's last plus one, with the same token.
 */
export function analyseDowntime(source: readonly CounterLine[], target: readonly CounterLine[]): Downtime {
  const byN = new Map<number, CounterLine>();
  for (const line of [...source, ...target]) if (!byN.has(line.n)) byN.set(line.n, line);
  const lines = [...byN.values()].sort((a, b) => a.n - b.n);
  let gap = 0;
  const steps: number[] = [];
  for (let i = 1; i < lines.length; i++) {
    const d = lines[i]!.ms - lines[i - 1]!.ms;
    steps.push(d);
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
 * OpenSSH relay's speed + the staged restore. Undefined when a part is missing.
 */
export function floorOf(run: FloorRun, relayMBps: number | undefined): number | undefined {
  const { pauseMs, dumpMs, restoreMs, checkpointBytes } = run;
  if (pauseMs === undefined || dumpMs === undefined || restoreMs === undefined) return undefined;
  if (checkpointBytes === undefined || relayMBps === undefined || !(relayMBps > 0)) return undefined;
  return pauseMs + dumpMs + transferMs(checkpointBytes, relayMBps) + restoreMs;
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
  };
  if (withDetails) {
    summary.phasesMs = medianByKey(ok.map((r) => r.phasesMs));
    summary.stepsMs = medianByKey(ok.map((r) => r.stepsMs));
    summary.dumpMs = spread(ok.map((r) => r.dumpMs));
    summary.restoreCriuMs = spread(ok.map((r) => r.restoreCriuMs));
    summary.reportedDowntimeMs = spread(ok.map((r) => r.reportedDowntimeMs));
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
  const relay = transportSummary.openssh?.MBps.median;
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
        transferMs: spread(
          fs.map((f) => (f.checkpointBytes && relay ? transferMs(f.checkpointBytes, relay) : undefined)),
        ),
        floorMs: spread(fs.map((f) => floorOf(f, relay))),
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
      runIdKept: ok.length > 0 && ok.every((r) => r.redis?.runIdKept),
      keysKept: ok.length > 0 && ok.every((r) => r.redis && r.redis.keysAfter === r.redis.keysBefore),
    };
  }
  return { bySize, transport: transportSummary, redis };
}

const sec = (ms: number | undefined): string =>
  Number.isFinite(ms) ? `${((ms ?? 0) / 1000).toFixed(2)} s` : 'n/a';

/**
 * The issue's targets, each met, missed, or undefined when the run did not
 * measure what it needs (a smoke run without 256 MiB, say).
 */
export function evaluateTargets(summary: Summary, sizes: readonly number[]): Target[] {
  const targets: Target[] = [];
  const down = (size: number, way: 'seed' | 'action' | 'podman') =>
    summary.bySize[String(size)]?.ways[way]?.downtimeMs?.median;
  const unmeasured = (target: string, why: string): Target => ({ target, observed: why, met: undefined });

  {
    const target =
      'downtime at 256 MiB at most 1.2x the floor (pause + dump + bytes at the OpenSSH relay speed + staged restore)';
    const a = down(256, 'action');
    const floor = summary.bySize['256']?.floor?.floorMs?.median;
    targets.push(
      a !== undefined && floor !== undefined
        ? {
            target,
            observed: `action ${sec(a)} / floor ${sec(floor)} = ${(a / floor).toFixed(2)}x`,
            met: a <= 1.2 * floor,
          }
        : unmeasured(target, 'not measured (needs 256 MiB, the floor and the transport)'),
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
  for (const size of [64, 256, 1024]) {
    const target = `downtime shorter than Podman's export/copy/import at ${size} MiB`;
    const a = down(size, 'action');
    const p = down(size, 'podman');
    targets.push(
      a !== undefined && p !== undefined
        ? { target, observed: `action ${sec(a)}, podman ${sec(p)}`, met: a < p }
        : unmeasured(target, `not measured (needs ${size} MiB, action and podman)`),
    );
  }
  {
    const target = "downtime at 1 GiB under half of Podman's";
    const a = down(1024, 'action');
    const p = down(1024, 'podman');
    targets.push(
      a !== undefined && p !== undefined
        ? { target, observed: `action ${sec(a)} / podman ${sec(p)} = ${(a / p).toFixed(2)}`, met: a < p / 2 }
        : unmeasured(target, 'not measured (needs 1024 MiB, action and podman)'),
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
      .map((size) => ({ size, kb: summary.bySize[String(size)]?.ways.action?.runnerRssKb?.median }))
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
  return targets;
}
