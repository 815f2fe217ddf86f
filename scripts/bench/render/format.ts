/** Number formats shared by the markdown and the chart. */
import type { Spread } from '../report.js';

export function fmtBytes(bytes: number | undefined): string {
  if (bytes === undefined || !Number.isFinite(bytes)) return 'n/a';
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(u === 0 ? 0 : 1)} ${units[u]}`;
}

/** Milliseconds as seconds with two decimals. */
export const sec = (ms: number | undefined): string =>
  ms !== undefined && Number.isFinite(ms) ? `${(ms / 1000).toFixed(2)} s` : 'n/a';

/** "median (min–max)", or "median" when there was one value. */
export function range(sp: Spread | undefined, f: (v: number) => string): string {
  if (!sp) return 'n/a';
  return sp.n > 1 && sp.min !== sp.max ? `${f(sp.median)} (${f(sp.min)}–${f(sp.max)})` : f(sp.median);
}

export const mib = (kb: number): string => `${(kb / 1024).toFixed(0)} MiB`;
export const ms = (v: number): string => `${Math.round(v)}`;
export const ratio = (v: number): string => `${v.toFixed(2)}x`;

/** A markdown table cell: pipes escaped. */
export const cell = (text: string | number): string => String(text).replace(/\|/g, '\\|');

export const metText = (met: boolean | undefined): string =>
  met === undefined ? 'not measured' : met ? 'met' : '**missed**';
