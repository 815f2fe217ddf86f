/**
 * Pure part of the bench's unit section (--unit): a two-service compose project moved as one
 * unit against the same two containers moved one at a time, seen from the workloads' own ticks.
 */
import type { CounterLine } from '../../test/e2e/testbed.js';
import type { MemoryCheck, Spread } from './report.js';
import { analyseDowntime, median, spread } from './stats.js';

export const UNIT_WAYS = ['unit', 'one-at-a-time'] as const;
export type UnitWay = (typeof UNIT_WAYS)[number];

/** One container's freeze as its own ticks show it: the largest gap that overlaps the move. */
export interface Freeze {
  container: string;
  /** The last tick before the gap and the first after it (epoch ms). */
  fromMs: number;
  toMs: number;
  ms: number;
  /** The first line on the target follows the source's last (same token, n + 1). */
  continued: boolean;
  memory: MemoryCheck;
  /** What the action's metadata says this member was frozen for. */
  reportedMs?: number;
}

export interface UnitRun {
  way: UnitWay;
  rep: number;
  sizeMiB: number;
  /** Position of this way in the repetition (ways alternate). */
  position?: number;
  freezes?: Freeze[];
  /** Sum of the members' freezes: container-time lost. */
  totalFrozenMs?: number;
  /** The longest single freeze of a member. */
  longestFreezeMs?: number;
  /** From the first member's freeze to the last one's resume: how long the project was not whole. */
  spanMs?: number;
  /** The action's view: the unit's downtime-ms, or each plain run's downtimeMs summed and their maximum. */
  reportedTotalMs?: number;
  reportedLongestMs?: number;
  /** Wall time of the action run(s). */
  actionMs?: number;
  error?: string;
}

/**
 * One container's freeze from its source and target logs, limited to the move's window
 * (a stall of the ticker before the move is not the freeze). Undefined when no gap was seen.
 */
export function freezeOf(
  source: readonly CounterLine[],
  target: readonly CounterLine[],
  window: { fromMs: number; toMs: number },
): { fromMs: number; toMs: number; ms: number; continued: boolean } | undefined {
  const byN = new Map<number, CounterLine>();
  for (const line of [...source, ...target]) if (!byN.has(line.n)) byN.set(line.n, line);
  const lines = [...byN.values()].sort((a, b) => a.n - b.n);
  let best: { fromMs: number; toMs: number; ms: number } | undefined;
  for (let i = 1; i < lines.length; i++) {
    const prev = lines[i - 1]!;
    const line = lines[i]!;
    if (line.ms < window.fromMs || prev.ms > window.toMs) continue;
    const ms = line.ms - prev.ms;
    if (best === undefined || ms > best.ms) best = { fromMs: prev.ms, toMs: line.ms, ms };
  }
  if (!best) return undefined;
  return { ...best, continued: analyseDowntime(source, target, window).continued };
}

/** The per-run figures from the members' freezes; sums and maxima only when every member was seen. */
export function combineFreezes(
  freezes: readonly Freeze[],
): Pick<UnitRun, 'totalFrozenMs' | 'longestFreezeMs' | 'spanMs' | 'reportedTotalMs' | 'reportedLongestMs'> {
  if (freezes.length === 0) return {};
  const out: ReturnType<typeof combineFreezes> = {
    totalFrozenMs: freezes.reduce((sum, f) => sum + f.ms, 0),
    longestFreezeMs: Math.max(...freezes.map((f) => f.ms)),
    spanMs: Math.max(...freezes.map((f) => f.toMs)) - Math.min(...freezes.map((f) => f.fromMs)),
  };
  const reported = freezes.map((f) => f.reportedMs);
  if (reported.every((r): r is number => r !== undefined)) {
    out.reportedTotalMs = reported.reduce((sum, r) => sum + r, 0);
    out.reportedLongestMs = Math.max(...reported);
  }
  return out;
}

export interface UnitWaySummary {
  runs: number;
  failed: number;
  totalFrozenMs?: Spread;
  longestFreezeMs?: Spread;
  spanMs?: Spread;
  reportedTotalMs?: Spread;
  reportedLongestMs?: Spread;
  actionMs?: Spread;
  /** Member moves whose memory was intact by content, differed, or could not be checked. */
  memory: { intact: number; differs: number; notChecked: number };
  /** Every member of every completed run continued where it stopped. */
  continued: boolean;
}

export type UnitSummary = Partial<Record<UnitWay, UnitWaySummary>> & {
  /** one-at-a-time / unit, on the medians. */
  totalFrozenRatio?: number;
  longestFreezeRatio?: number;
};

export function summariseUnit(runs: readonly UnitRun[]): UnitSummary {
  const summary: UnitSummary = {};
  for (const way of UNIT_WAYS) {
    const all = runs.filter((r) => r.way === way);
    if (all.length === 0) continue;
    const ok = all.filter((r) => !r.error);
    const freezes = ok.flatMap((r) => r.freezes ?? []);
    const memory = { intact: 0, differs: 0, notChecked: 0 };
    for (const f of freezes) {
      if (f.memory.status === 'intact') memory.intact++;
      else if (f.memory.status === 'differs') memory.differs++;
      else memory.notChecked++;
    }
    summary[way] = {
      runs: all.length,
      failed: all.length - ok.length,
      totalFrozenMs: spread(ok.map((r) => r.totalFrozenMs)),
      longestFreezeMs: spread(ok.map((r) => r.longestFreezeMs)),
      spanMs: spread(ok.map((r) => r.spanMs)),
      reportedTotalMs: spread(ok.map((r) => r.reportedTotalMs)),
      reportedLongestMs: spread(ok.map((r) => r.reportedLongestMs)),
      actionMs: spread(ok.map((r) => r.actionMs)),
      memory,
      continued: freezes.length > 0 && freezes.every((f) => f.continued),
    };
  }
  const ratio = (key: 'totalFrozenMs' | 'longestFreezeMs'): number | undefined => {
    const one = median([summary['one-at-a-time']?.[key]?.median]);
    const unit = median([summary.unit?.[key]?.median]);
    return one !== undefined && unit !== undefined && unit > 0 ? one / unit : undefined;
  };
  const totalRatio = ratio('totalFrozenMs');
  const longestRatio = ratio('longestFreezeMs');
  if (totalRatio !== undefined) summary.totalFrozenRatio = totalRatio;
  if (longestRatio !== undefined) summary.longestFreezeRatio = longestRatio;
  return summary;
}
