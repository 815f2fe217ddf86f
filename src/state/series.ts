import type { Host } from '../host/host.js';
import { runChecked, shellQuote } from '../host/shell.js';
import { PRIVATE, STATE_ROOT } from './host-records.js';
import { newestFirstStored, type StoredCheckpoint, seriesOfContainer } from './store.js';

/**
 * A checkpoint series belongs to one container, not to a name: two hosts may
 * each run a "web", and their checkpoints must never mix. Its ID is the short
 * ID of the container it started with. The container keeps it across moves in
 * a file the action keeps on its host, keyed by container ID, so the
 * container's configuration is never changed (a label would be):
 *   /var/lib/criu-migrate/series/<full container id>.json
 * Migrate and restore mode write it for the container they create, with the
 * series of the container it continues.
 */
export const SERIES_ROOT = `${STATE_ROOT}/series`;

export interface SeriesRecord {
  series: string;
  containerId: string;
  /** The container this one continues (migrate, restore), when it is not the first of its series. */
  from?: string;
  via: 'checkpoint' | 'migrate' | 'restore';
  at: string;
}

export function seriesFile(containerId: string): string {
  return `${SERIES_ROOT}/${containerId}.json`;
}

export function parseSeriesRecord(text: string): SeriesRecord | undefined {
  try {
    const value = JSON.parse(text) as Partial<SeriesRecord>;
    if (typeof value.series !== 'string' || !SERIES_ID.test(value.series)) return undefined;
    if (typeof value.containerId !== 'string') return undefined;
    return value as SeriesRecord;
  } catch {
    return undefined;
  }
}

/** What a series ID may look like: it becomes a directory name in the store. */
export const SERIES_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** The series of a container on its host: the recorded one, else the one it starts (its short ID). */
export async function readSeries(
  host: Host,
  containerId: string,
): Promise<{ series: string; recorded: boolean }> {
  const result = await host.run(`cat ${shellQuote([seriesFile(containerId)])} 2>/dev/null; true`, {
    timeoutMs: 30_000,
  });
  const record = parseSeriesRecord(result.stdout);
  if (record && record.containerId === containerId) return { series: record.series, recorded: true };
  return { series: seriesOfContainer(containerId), recorded: false };
}

export async function writeSeries(host: Host, record: SeriesRecord): Promise<void> {
  await runChecked(
    host,
    `${PRIVATE} mkdir -p ${shellQuote([SERIES_ROOT])} && f=${shellQuote([seriesFile(record.containerId)])} && cat >"$f.new" && mv -f "$f.new" "$f"`,
    {
      step: 'series',
      what: 'recording the checkpoint series of the container',
      options: { input: `${JSON.stringify(record)}\n`, timeoutMs: 30_000 },
    },
  );
}

/** One series of a container name, as the store holds it. */
export interface SeriesSummary {
  id: string;
  /** Newest first. */
  checkpoints: StoredCheckpoint[];
}

export function groupSeries(stored: readonly StoredCheckpoint[]): SeriesSummary[] {
  const bySeries = new Map<string, StoredCheckpoint[]>();
  for (const entry of newestFirstStored([...stored])) {
    const list = bySeries.get(entry.series) ?? [];
    list.push(entry);
    bySeries.set(entry.series, list);
  }
  return [...bySeries.entries()].map(([id, checkpoints]) => ({ id, checkpoints }));
}

function newest(series: SeriesSummary): StoredCheckpoint {
  return series.checkpoints[0] as StoredCheckpoint;
}

function oldest(series: SeriesSummary): StoredCheckpoint {
  return series.checkpoints.at(-1) as StoredCheckpoint;
}

/**
 * A series is superseded when another began on the host its newest checkpoint
 * came from after that checkpoint: a host has one container of a name at a
 * time, so the older container was replaced there (docker compose recreating
 * it, for example) and cannot be the one wanted.
 */
export function supersededBy(
  series: SeriesSummary,
  all: readonly SeriesSummary[],
): SeriesSummary | undefined {
  const last = newest(series).manifest;
  return all.find(
    (other) =>
      other.id !== series.id &&
      newest(other).manifest.source === last.source &&
      oldest(other).manifest.createdAt > last.createdAt,
  );
}

export type Resolution =
  | { kind: 'found'; checkpoint: StoredCheckpoint; superseded: SeriesSummary[] }
  | { kind: 'none'; known: SeriesSummary[] }
  | { kind: 'ambiguous'; candidates: SeriesSummary[] };

/**
 * Which stored checkpoint a restore means: the one named (in the series if
 * given), else the newest of the only series (given, or left once superseded
 * series are set aside). Never a guess between two live containers' series.
 */
export function resolveCheckpoint(
  stored: readonly StoredCheckpoint[],
  wanted: { series?: string; name?: string },
): Resolution {
  const all = groupSeries(stored);
  const inSeries = wanted.series ? all.filter((series) => series.id === wanted.series) : all;
  if (wanted.name) {
    const named = inSeries.filter((series) =>
      series.checkpoints.some((entry) => entry.manifest.name === wanted.name),
    );
    if (named.length > 1) return { kind: 'ambiguous', candidates: named };
    const checkpoint = named[0]?.checkpoints.find((entry) => entry.manifest.name === wanted.name);
    return checkpoint ? { kind: 'found', checkpoint, superseded: [] } : { kind: 'none', known: all };
  }
  if (inSeries.length === 0) return { kind: 'none', known: all };
  const live = wanted.series ? inSeries : inSeries.filter((series) => !supersededBy(series, inSeries));
  if (live.length !== 1) return { kind: 'ambiguous', candidates: live.length > 1 ? live : inSeries };
  const only = live[0] as SeriesSummary;
  return {
    kind: 'found',
    checkpoint: newest(only),
    superseded: inSeries.filter((series) => series !== only),
  };
}

/** One line per series for messages: how to tell them apart, and how to pick one. */
export function describeSeries(series: SeriesSummary): string {
  const last = newest(series).manifest;
  return `series ${series.id}: container ${last.container.id.slice(0, 12)}, newest ${last.name} taken ${last.createdAt} on ${last.source} (${series.checkpoints.length} checkpoint${series.checkpoints.length === 1 ? '' : 's'})`;
}
