import {
  type HostFacts,
  type MetadataError,
  type MigrationMetadata,
  type RunStatus,
  STREAM_KINDS,
  type StreamKind,
} from './metadata.js';
import { PHASES } from './timings.js';

/** Same shape as @actions/core's SummaryTableCell. */
export interface SummaryCell {
  data: string;
  header?: boolean;
  colspan?: string;
  rowspan?: string;
}

export type SummaryRow = (SummaryCell | string)[];

/** The part of @actions/core's `summary` used here; passed in so tests need no mocking. */
export interface SummaryLike {
  addHeading(text: string, level?: number | string): SummaryLike;
  addTable(rows: SummaryRow[]): SummaryLike;
  addRaw(text: string, addEOL?: boolean): SummaryLike;
  write(): Promise<unknown>;
}

const STATUS_LABELS: Record<RunStatus, string> = {
  succeeded: '✅ succeeded',
  refused: '⛔ refused before touching the container',
  'rolled-back': '↩️ failed or cancelled, source resumed',
  resumed: '🔁 finished a migration an earlier run left',
  failed: '❌ failed',
};

const HEADINGS: Record<MigrationMetadata['run']['mode'], string> = {
  migrate: 'Container migration',
  preflight: 'Migration preflight',
  checkpoint: 'Container checkpoint',
  restore: 'Container restore',
};

const STREAM_LABELS: Record<StreamKind, string> = {
  checkpoint: 'checkpoint images',
  writableLayer: 'writable layer',
  image: 'image',
};

/** Table rows (a header row, then label and value) describing one run. Cell text is HTML-escaped. */
export function renderSummaryRows(metadata: MigrationMetadata): SummaryRow[] {
  const rows: [string, string][] = [];
  const add = (label: string, value: string | undefined): void => {
    if (value !== undefined && value !== '') rows.push([label, value]);
  };
  const { run, hosts, container, checkpoint, timings, error } = metadata;

  add('Status', STATUS_LABELS[run.status]);
  add('Mode', run.mode);
  add('Source', describeHost(hosts.source));
  if (hosts.target) add('Target', describeHost(hosts.target));
  const ids = [container.sourceId, container.targetId].map((id) => (id ? shortId(id) : '?'));
  add(
    'Container',
    container.sourceId || container.targetId ? `${container.name} (${ids.join(' → ')})` : container.name,
  );
  if (container.imageRef || container.imageId) {
    add(
      'Image',
      [container.imageRef, container.imageId && shortId(container.imageId)].filter(Boolean).join(' '),
    );
  }
  add('Checkpoint', checkpoint.name);
  if (checkpoint.restorePath)
    add(
      'Restore path',
      checkpoint.restorePath === 'staged-pages'
        ? 'staged pages (containerd copied only the small images)'
        : `full copy${checkpoint.restorePathReason ? ` (${checkpoint.restorePathReason})` : ''}`,
    );
  add('Downtime', timings.downtimeMs === undefined ? undefined : formatMs(timings.downtimeMs));
  add('Duration', timings.durationMs === undefined ? undefined : formatMs(timings.durationMs));
  add('Checkpoint size', checkpoint.bytes === undefined ? undefined : formatBytes(checkpoint.bytes));
  add(
    'Bytes moved',
    checkpoint.transferredBytes === undefined ? undefined : formatBytes(checkpoint.transferredBytes),
  );
  for (const kind of STREAM_KINDS) {
    const stream = checkpoint.streams[kind];
    if (stream)
      add(
        `Stream: ${STREAM_LABELS[kind]}`,
        `${formatBytes(stream.bytes)}${stream.ms ? ` in ${formatMs(stream.ms)} (${formatBytes((stream.bytes * 1000) / Math.max(stream.ms, 1))}/s)` : ''}${stream.codec ? `, ${stream.codec === 'none' ? 'raw' : stream.codec}` : ''}, sha256 ${stream.sha256.slice(0, 16)}…`,
      );
  }
  for (const volume of metadata.volumes ?? []) {
    const passes = volume.passes
      .map((pass) => `${pass.pass} ${formatBytes(pass.bytes)} in ${formatMs(pass.ms)}`)
      .join(', ');
    add(
      `Volume: ${volume.name}`,
      [
        {
          created: 'created on the target',
          replaced: 'replaced on the target',
          stored: 'kept with the checkpoint',
        }[volume.target],
        volume.sizeBytes === undefined ? undefined : `size ${formatBytes(volume.sizeBytes)}`,
        volume.contentsMoved ? passes : 'contents not moved (driver options)',
        volume.sha256 ? `sha256 ${volume.sha256.slice(0, 16)}…` : undefined,
      ]
        .filter(Boolean)
        .join('; '),
    );
  }
  for (const phase of PHASES) {
    const ms = timings.phasesMs[phase];
    if (ms !== undefined) add(`Phase: ${phase}`, formatMs(ms));
  }
  if (error) {
    const where = [error.step && `step ${error.step}`, error.host && `on ${error.host}`]
      .filter(Boolean)
      .join(' ');
    add('Error', `${error.code}: ${error.message}${where ? ` (${where})` : ''}`);
    add('What to do', error.remedy);
  }
  for (const leftover of metadata.leftovers ?? []) add('Left to clean up', leftover);
  if (metadata.storedCheckpoints)
    add('Checkpoints in the store', metadata.storedCheckpoints.join(', ') || 'none');
  const resumed = metadata.resumed;
  if (resumed) {
    const how =
      resumed.direction === 'roll-forward'
        ? 'finished (source retired)'
        : resumed.direction === 'rollback'
          ? 'rolled back'
          : 'closed';
    add('Earlier run', `${resumed.checkpointName} by ${resumed.owner}: ${how}`);
    for (const problem of resumed.problems) add('Earlier run, not finished', problem);
  }

  return [
    [
      { data: 'Item', header: true },
      { data: 'Value', header: true },
    ],
    ...rows.map(([label, value]) => [escapeHtml(label), escapeHtml(value)]),
  ];
}

export async function writeSummary(summary: SummaryLike, metadata: MigrationMetadata): Promise<void> {
  summary
    .addHeading(`${HEADINGS[metadata.run.mode]}: ${escapeHtml(metadata.container.name)}`, 2)
    .addTable(renderSummaryRows(metadata));
  if (metadata.timings.downtimeMs !== undefined) {
    summary.addRaw(
      '<p>Downtime runs from freezing the container on the source to it running on the target.</p>',
      true,
    );
  }
  await summary.write();
}

/** The summary is HTML: messages may hold text such as <none> that must show as written. */
/** The summary of a run that stopped before any mode could report (inputs, connecting). */
export async function writeFailureSummary(summary: SummaryLike, error: MetadataError): Promise<void> {
  const where = [error.step && `step ${error.step}`, error.host && `on ${error.host}`]
    .filter(Boolean)
    .join(' ');
  summary
    .addHeading('CRIU migration: refused', 2)
    .addRaw(
      `<p>⛔ <code>${escapeHtml(error.code)}</code>: ${escapeHtml(error.message)}${where ? ` (${escapeHtml(where)})` : ''}</p>`,
      true,
    );
  if (error.remedy) summary.addRaw(`<p>What to do: ${escapeHtml(error.remedy)}</p>`, true);
  await summary.write();
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function formatMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(2)} s`;
  const seconds = Math.round(ms / 1000);
  return `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
}

export function formatBytes(bytes: number): string {
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  if (bytes < 1024) return `${bytes} B`;
  let value = bytes;
  let unit = 'B';
  for (const next of units) {
    if (value < 1024) break;
    value /= 1024;
    unit = next;
  }
  return `${value.toFixed(1)} ${unit}`;
}

function shortId(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12);
}

function describeHost(host: HostFacts): string {
  const facts = [
    host.kernel && `kernel ${host.kernel}`,
    host.arch,
    host.criu && `CRIU ${host.criu}`,
    host.docker && `Docker ${host.docker}`,
    host.containerd && `containerd ${host.containerd}`,
    host.runc && `runc ${host.runc}`,
  ].filter(Boolean);
  return facts.length === 0 ? host.address : `${host.address} (${facts.join(', ')})`;
}
