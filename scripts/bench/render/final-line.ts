/** The machine-readable lines the benchmark prints last. */
import type { Summary } from '../report.js';

const two = (v: number | undefined): string => (v !== undefined && Number.isFinite(v) ? v.toFixed(2) : 'n/a');

/** `checkpoint freeze ratio at 256 MiB: X.XX; restore ratio at 256 MiB: Y.YY` (the modes section). */
export function modesLine(summary: Summary): string {
  const m = summary.bySize['256']?.modes;
  return `checkpoint freeze ratio at 256 MiB: ${two(m?.freezeRatio?.median)}; restore ratio at 256 MiB: ${two(m?.restoreRatio?.median)}`;
}

/** `downtime ratio seed/action at 256 MiB: X.XX; podman/action: Y.YY`: always the last line. */
export function ratioLine(summary: Summary): string {
  const ways = summary.bySize['256']?.ways;
  const action = ways?.action?.downtimeMs?.median;
  const of = (v: number | undefined) => (v !== undefined && action ? v / action : undefined);
  return `downtime ratio seed/action at 256 MiB: ${two(of(ways?.seed?.downtimeMs?.median))}; podman/action: ${two(of(ways?.podman?.downtimeMs?.median))}`;
}
