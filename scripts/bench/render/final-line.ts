/** The machine-readable lines the benchmark prints last. */
import type { Summary } from '../report.js';
import { bestPodman } from '../stats.js';

const two = (v: number | undefined): string => (v !== undefined && Number.isFinite(v) ? v.toFixed(2) : 'n/a');

/** `checkpoint freeze ratio at 256 MiB: X.XX; restore ratio at 256 MiB: Y.YY` (the modes section). */
export function modesLine(summary: Summary): string {
  const m = summary.bySize['256']?.modes;
  return `checkpoint freeze ratio at 256 MiB: ${two(m?.freezeRatio?.median)}; restore ratio at 256 MiB: ${two(m?.restoreRatio?.median)}`;
}

/**
 * `downtime ratio seed/action at 256 MiB: X.XX; podman/action: Y.YY; action/floor: Z.ZZ`: always the
 * last line. Podman is its best configuration at 256 MiB (the shorter median of its default and
 * `--compress none`); the floor is the one priced at the fastest transport of the run. With
 * action-overlap in the run, `; overlap/floor: W.WW` follows.
 */
export function ratioLine(summary: Summary): string {
  const entry = summary.bySize['256'];
  const ways = entry?.ways;
  const action = ways?.action?.downtimeMs?.median;
  const of = (v: number | undefined) => (v !== undefined && action ? v / action : undefined);
  const floor = entry?.floor?.floorMs?.median;
  const overFloor = action !== undefined && floor ? action / floor : undefined;
  const overlap = ways?.['action-overlap']?.downtimeMs?.median;
  // memory: overlap, when it ran: appended, so the line's first three fields keep their places.
  const overlapPart = overlap !== undefined && floor ? `; overlap/floor: ${two(overlap / floor)}` : '';
  return `downtime ratio seed/action at 256 MiB: ${two(of(ways?.seed?.downtimeMs?.median))}; podman/action: ${two(of(bestPodman(ways)?.summary.downtimeMs?.median))}; action/floor: ${two(overFloor)}${overlapPart}`;
}
