import { codeLinkHtml, type DocsEnv } from './error-docs.js';
import { escapeHtml } from './html.js';
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

export { escapeHtml };

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
  drill: 'Restore drill',
  list: 'Checkpoint store',
};

/** What each mode's two hosts are: restore reads from the store, checkpoint writes into it. */
const HOST_LABELS: Record<MigrationMetadata['run']['mode'], { source: string; target: string }> = {
  migrate: { source: 'Source', target: 'Target' },
  preflight: { source: 'Source', target: 'Target' },
  checkpoint: { source: 'Source', target: 'Store' },
  restore: { source: 'Store', target: 'Target' },
  drill: { source: 'Store', target: 'Drill host' },
  list: { source: 'Store', target: 'Store' },
};

/** Nouns for a heading: "CRIU checkpoint failed". */
const RUN_NOUNS: Record<MigrationMetadata['run']['mode'], string> = {
  migrate: 'migration',
  preflight: 'preflight',
  checkpoint: 'checkpoint',
  restore: 'restore',
  drill: 'restore drill',
  list: 'store listing',
};

/** Modes whose first host is the store. */
const FROM_STORE: ReadonlySet<string> = new Set(['restore', 'drill', 'list']);

const STREAM_LABELS: Record<StreamKind, string> = {
  checkpoint: 'checkpoint images',
  pages: 'memory pages (page server)',
  writableLayer: 'writable layer',
  image: 'image',
};

/** Table rows (a header row, then label and value) describing one run. Cell text is HTML-escaped. */
export function renderSummaryRows(metadata: MigrationMetadata, env: DocsEnv = {}): SummaryRow[] {
  // Values are text, escaped at the end; the error row alone is built as HTML (its code is a link).
  const rows: [string, string, 'text' | 'html'][] = [];
  const add = (label: string, value: string | undefined): void => {
    if (value !== undefined && value !== '') rows.push([label, value, 'text']);
  };
  const { run, hosts, container, checkpoint, timings, error } = metadata;

  add('Status', STATUS_LABELS[run.status]);
  add('Mode', run.mode);
  const labels = HOST_LABELS[run.mode];
  add(labels.source, describeHost(hosts.source));
  if (hosts.target) add(labels.target, describeHost(hosts.target));
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
  add(
    'Last page (post-copy)',
    timings.lastPageMs === undefined
      ? undefined
      : `${formatMs(timings.lastPageMs)} after the freeze${timings.lazyPageBytes === undefined ? '' : `, ${formatBytes(timings.lazyPageBytes)} of memory followed the container`}`,
  );
  add('Duration', timings.durationMs === undefined ? undefined : formatMs(timings.durationMs));
  add('Checkpoint size', checkpoint.bytes === undefined ? undefined : formatBytes(checkpoint.bytes));
  if (metadata.route)
    add(
      'Route',
      `${metadata.route.taken === 'direct' ? 'host to host (direct)' : 'through the runner (relay)'}: ${metadata.route.reason}; ${formatBytes(metadata.route.runnerBytes)} of container data through the runner`,
    );
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
    rows.push([
      'Error',
      `${codeLinkHtml(error.code, env)}: ${escapeHtml(`${error.message}${where ? ` (${where})` : ''}`)}`,
      'html',
    ]);
    add('What to do', error.remedy);
  }
  const drill = metadata.drill;
  if (drill) {
    add(
      'Restorable',
      { true: '✅ true', false: '❌ false', unknown: '❔ unknown (the drill could not tell)' }[
        drill.restorable
      ] + (drill.reason ? `: ${drill.reason}` : ''),
    );
    add('Series', drill.series);
    if (drill.copy)
      add(
        'Drill copy',
        [
          `${drill.copy}: ran`,
          drill.watchedMs === undefined ? undefined : `watched ${formatMs(drill.watchedMs)}`,
          drill.firstProcess ? `first process ${drill.firstProcess}` : undefined,
          drill.logLines === undefined ? undefined : `${drill.logLines} log lines after the restore`,
          'removed',
        ]
          .filter(Boolean)
          .join(', '),
      );
    if (drill.recorded !== undefined)
      add('Recorded in the store', drill.recorded ? 'yes (drill.json next to the checkpoint)' : 'no');
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
    ...rows.map(([label, value, kind]) => [escapeHtml(label), kind === 'html' ? value : escapeHtml(value)]),
  ];
}

export async function writeSummary(
  summary: SummaryLike,
  metadata: MigrationMetadata,
  env: DocsEnv = {},
): Promise<void> {
  summary
    .addHeading(`${HEADINGS[metadata.run.mode]}: ${escapeHtml(metadata.container.name)}`, 2)
    .addTable(renderSummaryRows(metadata, env));
  if (metadata.timings.downtimeMs !== undefined) {
    summary.addRaw(
      '<p>Downtime runs from freezing the container on the source to it running on the target.</p>',
      true,
    );
  }
  await summary.write();
}

/** What is known of a run that stopped before its mode could report. */
export interface EarlyRun {
  /** The mode asked for; undefined when the mode input itself was not one. */
  mode?: MigrationMetadata['run']['mode'];
  /** refused: nothing was touched (inputs, connecting, the lock); failed: anything else. */
  outcome: 'refused' | 'failed';
  container?: string;
  /** The hosts as the inputs named them. */
  source?: string;
  target?: string;
  store?: string;
}

/** The summary of a run that stopped before any mode could report (inputs, connecting). */
export async function writeFailureSummary(
  summary: SummaryLike,
  error: MetadataError,
  run: EarlyRun,
  env: DocsEnv = {},
): Promise<void> {
  const where = [error.step && `step ${error.step}`, error.host && `on ${error.host}`]
    .filter(Boolean)
    .join(' ');
  const noun = run.mode ? RUN_NOUNS[run.mode] : 'run';
  const hosts: [string, string | undefined][] = run.mode
    ? [
        [HOST_LABELS[run.mode].source, FROM_STORE.has(run.mode) ? run.store : run.source],
        [HOST_LABELS[run.mode].target, run.mode === 'checkpoint' ? run.store : run.target],
      ]
    : [];
  const facts = [['Mode', run.mode], ['Container', run.container], ...hosts].flatMap(([label, value]) =>
    value ? [`${label}: ${escapeHtml(value)}`] : [],
  );
  summary
    .addHeading(`CRIU ${noun} ${run.outcome}`, 2)
    .addRaw(
      `<p>${run.outcome === 'refused' ? '⛔' : '❌'} ${codeLinkHtml(error.code, env)}: ${escapeHtml(error.message)}${where ? ` (${escapeHtml(where)})` : ''}</p>`,
      true,
    );
  if (facts.length > 0) summary.addRaw(`<p>${facts.join('<br>')}</p>`, true);
  if (error.remedy) summary.addRaw(`<p>What to do: ${escapeHtml(error.remedy)}</p>`, true);
  await summary.write();
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
