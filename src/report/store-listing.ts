import type { UnitRecord } from '../policy/unit-record.js';
import type { ListedCheckpoint } from '../state/store-listing.js';
import { escapeHtml } from './html.js';
import { formatBytes, formatMs, type SummaryRow } from './summary.js';

/**
 * List mode's JSON output (`listing`), for `fromJSON` in a later step:
 *   { store: { host, path },
 *     series: [ { container, id, checkpoints: [ ListingCheckpoint, ... newest first ] } ] }
 * Series are ordered by container name, then newest checkpoint first.
 */
export interface StoreListing {
  store: { host: string; path: string };
  series: ListingSeries[];
  /** Compose projects checkpointed as one unit, newest first; only when the store has any. */
  units?: ListingUnit[];
}

/** One unit checkpoint: a compose project's members, each a checkpoint listed in its series. */
export interface ListingUnit {
  unit: string;
  name: string;
  createdAt: string;
  source: string;
  frozenMs: number | null;
  /** In restore order. */
  members: { container: string; service: string; checkpoint: string; series: string; listed: boolean }[];
  networks: string[];
  /** Every member's checkpoint is in the listing: restore mode can take the unit. */
  complete: boolean;
}

export interface ListingSeries {
  /** The container name the series is stored under. */
  container: string;
  /** The series ID (the short ID of the container that started it). */
  id: string;
  checkpoints: ListingCheckpoint[];
}

export interface ListingCheckpoint {
  name: string;
  /** ISO 8601, as the manifest says. */
  createdAt: string;
  /** The host it was taken on, as the checkpoint run reached it. */
  source: string;
  containerId: string;
  /** Bytes of the checkpoint's own files (CRIU images, layer, volumes, config), as the manifest lists them. */
  bytes: number;
  /** Bytes of the image file it shares with other checkpoints of that image. */
  imageBytes: number;
  frozenMs: number;
  image: { id: string; ref: string };
  versions: { criu: string | null; kernel: string | null; docker: string | null };
  /** Its directory on the store host. */
  path: string;
  /** Stored at the layout from before series. */
  legacy: boolean;
  /** The unit checkpoint it is a member of (compose:<project>/<name>), when it is one. */
  unit?: string;
  /** The newest drill's result, null when it was never drilled. */
  drill: {
    restorable: boolean;
    at: string;
    reason: string | null;
    host: string;
  } | null;
}

export function buildListing(found: readonly ListedCheckpoint[], store: StoreListing['store']): StoreListing {
  const bySeries = new Map<string, ListingSeries>();
  for (const entry of found) {
    const key = `${entry.stored}\u0000${entry.series}`;
    let series = bySeries.get(key);
    if (!series) {
      series = { container: entry.stored, id: entry.series, checkpoints: [] };
      bySeries.set(key, series);
    }
    series.checkpoints.push(listingCheckpoint(entry));
  }
  const series = [...bySeries.values()];
  for (const one of series) one.checkpoints.sort(newestFirst);
  series.sort(
    (a, b) =>
      a.container.localeCompare(b.container) ||
      newestFirst(a.checkpoints[0] as ListingCheckpoint, b.checkpoints[0] as ListingCheckpoint),
  );
  return { store, series };
}

/**
 * Pure: the unit records shown as units (those with a member among the listed series, or all when
 * `all`), and each member checkpoint in the series marked with its unit.
 */
export function withUnits(listing: StoreListing, records: readonly UnitRecord[], all: boolean): StoreListing {
  const listed = new Map<string, ListingCheckpoint>();
  for (const series of listing.series)
    for (const checkpoint of series.checkpoints)
      listed.set(`${series.container}\u0000${series.id}\u0000${checkpoint.name}`, checkpoint);
  const units: ListingUnit[] = [];
  for (const record of [...records].sort(
    (a, b) => b.createdAt.localeCompare(a.createdAt) || b.name.localeCompare(a.name),
  )) {
    const unit = `compose:${record.project}`;
    const members = record.order.map((container) => {
      const member = record.members.find((m) => m.container === container);
      const checkpoint = member
        ? listed.get(`${container}\u0000${member.series}\u0000${member.checkpoint}`)
        : undefined;
      if (checkpoint) checkpoint.unit = `${unit}/${record.name}`;
      return {
        container,
        service: member?.service ?? container,
        checkpoint: member?.checkpoint ?? '',
        series: member?.series ?? '',
        listed: checkpoint !== undefined,
      };
    });
    if (!all && !members.some((member) => member.listed)) continue;
    units.push({
      unit,
      name: record.name,
      createdAt: record.createdAt,
      source: record.source,
      frozenMs: record.frozenMs ?? null,
      members,
      networks: record.networks.map((network) => network.name),
      complete: members.every((member) => member.listed),
    });
  }
  return units.length > 0 ? { ...listing, units } : listing;
}

/** The job summary's units table: one row per unit checkpoint. */
export function unitRows(units: readonly ListingUnit[]): SummaryRow[] {
  const rows: SummaryRow[] = [
    [
      'Unit',
      'Checkpoint',
      'Taken (UTC)',
      'Source host',
      'Members (restore order)',
      'Networks',
      'Frozen',
      'Complete',
    ].map((data) => ({ data, header: true })),
  ];
  for (const unit of units) {
    rows.push(
      [
        unit.unit,
        unit.name,
        unit.createdAt.replace('T', ' ').replace(/\.\d+Z$/, 'Z'),
        unit.source,
        unit.members.map((member) => `${member.container}${member.listed ? '' : ' (missing)'}`).join(', '),
        unit.networks.join(', '),
        unit.frozenMs === null ? '' : formatMs(unit.frozenMs),
        unit.complete ? 'yes' : 'no: a member checkpoint is missing',
      ].map(escapeHtml),
    );
  }
  return rows;
}

/** One line per unit checkpoint for the log. */
export function unitLines(units: readonly ListingUnit[]): string[] {
  return units.map(
    (unit) =>
      `unit ${unit.unit} checkpoint ${unit.name} (${unit.createdAt}, from ${unit.source}): ${unit.members.map((m) => m.container).join(', ')}${
        unit.complete
          ? ''
          : `; incomplete, missing ${unit.members
              .filter((m) => !m.listed)
              .map((m) => m.checkpoint)
              .join(', ')}`
      }`,
  );
}

function newestFirst(a: ListingCheckpoint, b: ListingCheckpoint): number {
  return b.createdAt.localeCompare(a.createdAt) || b.name.localeCompare(a.name);
}

function listingCheckpoint(entry: ListedCheckpoint): ListingCheckpoint {
  const { manifest } = entry;
  const drill = entry.drill;
  return {
    name: manifest.name,
    createdAt: manifest.createdAt,
    source: manifest.source,
    containerId: manifest.container.id,
    bytes: manifest.files.reduce((sum, file) => sum + file.bytes, 0),
    imageBytes: manifest.image.bytes,
    frozenMs: manifest.frozenMs,
    image: { id: manifest.container.imageId, ref: manifest.container.imageRef },
    versions: {
      criu: manifest.versions.criu ?? null,
      kernel: manifest.versions.kernel ?? null,
      docker: manifest.versions.docker ?? null,
    },
    path: entry.dir,
    legacy: entry.legacy,
    drill: drill
      ? { restorable: drill.restorable, at: drill.at, reason: drill.reason ?? null, host: drill.host }
      : null,
  };
}

const HEADER = [
  'Container',
  'Series',
  'Checkpoint',
  'Taken (UTC)',
  'Source host',
  'Container ID',
  'Size',
  'Frozen',
  'Image',
  'CRIU',
  'Kernel',
  'Docker',
  'Drill',
];

/** The drill column: passed or failed, and when. */
export function drillCell(drill: ListingCheckpoint['drill']): string {
  if (!drill) return 'never drilled';
  const when = drill.at.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
  return drill.restorable
    ? `✅ passed ${when}`
    : `❌ failed ${when}: ${drill.reason ?? 'no reason recorded'}`;
}

/** The job summary table: a header row, then one row per checkpoint. Cell text is HTML-escaped. */
export function listingRows(listing: StoreListing): SummaryRow[] {
  const rows: SummaryRow[] = [HEADER.map((data) => ({ data, header: true }))];
  for (const series of listing.series) {
    for (const checkpoint of series.checkpoints) {
      rows.push(
        [
          series.container,
          series.id,
          checkpoint.name,
          checkpoint.createdAt.replace('T', ' ').replace(/\.\d+Z$/, 'Z'),
          checkpoint.source,
          checkpoint.containerId.slice(0, 12),
          formatBytes(checkpoint.bytes),
          formatMs(checkpoint.frozenMs),
          checkpoint.image.ref === checkpoint.image.id
            ? checkpoint.image.id.replace(/^sha256:/, '').slice(0, 12)
            : checkpoint.image.ref,
          checkpoint.versions.criu ?? '?',
          checkpoint.versions.kernel ?? '?',
          checkpoint.versions.docker ?? '?',
          drillCell(checkpoint.drill),
        ].map(escapeHtml),
      );
    }
  }
  return rows;
}

/** One line per series for the log. */
export function listingLines(listing: StoreListing): string[] {
  return listing.series.map((series) => {
    const newest = series.checkpoints[0];
    return `${series.container} series ${series.id}: ${series.checkpoints.length} checkpoint(s)${newest ? `, newest ${newest.name} (${newest.createdAt}, ${drillCell(newest.drill)})` : ''}`;
  });
}
