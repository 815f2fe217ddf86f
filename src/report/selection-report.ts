import type { ErrorCode } from '../errors.js';
import { blocking, type Check } from '../policy/compatibility.js';
import type { LeftOut } from '../policy/selection.js';
import { codeLinkHtml, type DocsEnv } from './error-docs.js';
import { checkId, type ReportCheck } from './preflight-report.js';
import { escapeHtml, formatBytes, formatMs, type SummaryLike, type SummaryRow } from './summary.js';

export const SELECTION_REPORT_SCHEMA_VERSION = 1;

/** One measured stream from the source to the target, the way a migration's streams go. */
export interface StreamSpeed {
  bytes: number;
  ms: number;
}

export interface UnitInput {
  name: string;
  kind: 'container' | 'compose';
  containers: string[];
  /** The gate's checks of each member, and the unit's own. */
  checks: Check[];
  memoryBytes?: number;
  layerBytes?: number;
}

export interface UnitReport {
  unit: string;
  kind: 'container' | 'compose';
  containers: string[];
  /** movable: nothing blocks it (with strict, no warning either). */
  result: 'movable' | 'blocked';
  blockingCodes: ErrorCode[];
  memoryBytes?: number;
  layerBytes?: number;
  /** Memory at the measured speed: about the frozen window's copy (the dump and restore add to it). */
  estimatedFrozenMs?: number;
  /** Memory and writable layer at the measured speed: about the whole move, image not counted. */
  estimatedTotalMs?: number;
  /** The checks that did not pass. */
  problems: ReportCheck[];
}

export interface SelectionReport {
  schemaVersion: number;
  /** passed: at least one unit may move and (with strict) none is blocked. */
  result: 'passed' | 'failed';
  strict: boolean;
  selection: string;
  hosts: { source: string; target: string };
  startedAt: string;
  durationMs: number;
  streamSpeed?: StreamSpeed & { bytesPerSecond: number };
  units: UnitReport[];
  leftOut: LeftOut[];
  /** Names the selection gave that the source does not have. */
  missing: string[];
  totals: {
    units: number;
    movable: number;
    blocked: number;
    memoryBytes: number;
    layerBytes: number;
    estimatedTotalMs?: number;
  };
  blockingCodes: ErrorCode[];
}

export interface SelectionInput {
  selection: string;
  strict: boolean;
  source: string;
  target: string;
  startedAt: string;
  durationMs: number;
  speed?: StreamSpeed;
  units: UnitInput[];
  leftOut: LeftOut[];
  missing: string[];
}

function at(bytes: number | undefined, speed: StreamSpeed | undefined): number | undefined {
  if (bytes === undefined || !speed || speed.bytes <= 0) return undefined;
  return Math.round((bytes * speed.ms) / speed.bytes);
}

/** Pure: the cutover gate's report over the units of a selection. */
export function buildSelectionReport(input: SelectionInput): SelectionReport {
  const units = input.units.map((unit): UnitReport => {
    const stopping = blocking(unit.checks, input.strict);
    const frozen = at(unit.memoryBytes, input.speed);
    const total = at(
      unit.memoryBytes === undefined ? undefined : unit.memoryBytes + (unit.layerBytes ?? 0),
      input.speed,
    );
    return {
      unit: unit.name,
      kind: unit.kind,
      containers: unit.containers,
      result: stopping.length === 0 ? 'movable' : 'blocked',
      blockingCodes: [...new Set(stopping.map((check) => check.code ?? 'PREFLIGHT_FAILED'))],
      ...(unit.memoryBytes !== undefined ? { memoryBytes: unit.memoryBytes } : {}),
      ...(unit.layerBytes !== undefined ? { layerBytes: unit.layerBytes } : {}),
      ...(frozen !== undefined ? { estimatedFrozenMs: frozen } : {}),
      ...(total !== undefined ? { estimatedTotalMs: total } : {}),
      problems: unit.checks
        .filter((check) => check.status !== 'pass')
        .map((check) => ({ id: checkId(check.name), ...check })),
    };
  });
  const blocked = units.filter((unit) => unit.result === 'blocked');
  const movable = units.length - blocked.length;
  const sum = (pick: (unit: UnitReport) => number | undefined): number =>
    units.reduce((total, unit) => total + (pick(unit) ?? 0), 0);
  const estimates = units.map((unit) => unit.estimatedTotalMs);
  const blockingCodes = [...new Set(blocked.flatMap((unit) => unit.blockingCodes))];
  const failed = movable === 0 || (input.strict && blocked.length > 0) || input.missing.length > 0;
  return {
    schemaVersion: SELECTION_REPORT_SCHEMA_VERSION,
    result: failed ? 'failed' : 'passed',
    strict: input.strict,
    selection: input.selection,
    hosts: { source: input.source, target: input.target },
    startedAt: input.startedAt,
    durationMs: Math.round(input.durationMs),
    ...(input.speed
      ? {
          streamSpeed: {
            ...input.speed,
            bytesPerSecond: Math.round((input.speed.bytes * 1000) / Math.max(input.speed.ms, 1)),
          },
        }
      : {}),
    units,
    leftOut: input.leftOut,
    missing: input.missing,
    totals: {
      units: units.length,
      movable,
      blocked: blocked.length,
      memoryBytes: sum((unit) => unit.memoryBytes),
      layerBytes: sum((unit) => unit.layerBytes),
      ...(estimates.every((ms) => ms !== undefined) && units.length > 0
        ? { estimatedTotalMs: sum((unit) => unit.estimatedTotalMs) }
        : {}),
    },
    blockingCodes,
  };
}

/** The units that may move, for `strategy.matrix` (`fromJSON`): one job per container. */
/**
 * The units that may move, one matrix entry each, in the form migrate mode's unit input takes:
 * compose:<project> for a project (all its members in one run), a container's name otherwise
 * (also as container, which migrate mode takes as well).
 */
export function selectionMatrix(report: SelectionReport): {
  include: ({ unit: string } | { unit: string; container: string })[];
} {
  return {
    include: report.units
      .filter((unit) => unit.result === 'movable')
      .map((unit) =>
        unit.kind === 'compose'
          ? { unit: unit.unit }
          : { unit: unit.unit, container: unit.containers[0] ?? unit.unit },
      ),
  };
}

export function selectionVerdict(report: SelectionReport): string {
  const { totals } = report;
  const head = `${totals.movable} of ${totals.units} units may move from ${report.hosts.source} to ${report.hosts.target}`;
  const blocked =
    totals.blocked > 0
      ? `; blocked: ${report.units
          .filter((u) => u.result === 'blocked')
          .map((u) => `${u.unit} (${u.blockingCodes.join(', ')})`)
          .join('; ')}`
      : '';
  const missing = report.missing.length > 0 ? `; not on the source: ${report.missing.join(', ')}` : '';
  const strict = report.strict && totals.blocked > 0 ? ' (strict: every unit must pass)' : '';
  return `${head}${blocked}${missing}${strict}`;
}

export function renderSelectionRows(report: SelectionReport, env: DocsEnv = {}): SummaryRow[] {
  const header: SummaryRow = [
    'Unit',
    'Containers',
    'Verdict',
    'What blocks it',
    'Memory',
    'Layer',
    'Est. frozen copy',
    'Est. move',
  ].map((data) => ({ data, header: true }));
  const rows = report.units.map((unit): SummaryRow => {
    const stops = unit.problems.filter((check) =>
      unit.blockingCodes.includes(check.code ?? 'PREFLIGHT_FAILED'),
    );
    return [
      escapeHtml(unit.unit),
      escapeHtml(unit.containers.join(', ')),
      unit.result === 'movable' ? '✅ movable' : '⛔ blocked',
      stops.length === 0
        ? '—'
        : stops
            .map(
              (check) =>
                `${check.code ? `${codeLinkHtml(check.code, env)}: ` : ''}${escapeHtml(check.observed)}`,
            )
            .join('<br>'),
      unit.memoryBytes === undefined ? '?' : formatBytes(unit.memoryBytes),
      unit.layerBytes === undefined ? '?' : formatBytes(unit.layerBytes),
      unit.estimatedFrozenMs === undefined ? '?' : formatMs(unit.estimatedFrozenMs),
      unit.estimatedTotalMs === undefined ? '?' : formatMs(unit.estimatedTotalMs),
    ];
  });
  const { totals } = report;
  const total: SummaryRow = [
    '<b>Total</b>',
    `${totals.units} units`,
    `${totals.movable} movable, ${totals.blocked} blocked`,
    '—',
    formatBytes(totals.memoryBytes),
    formatBytes(totals.layerBytes),
    '—',
    totals.estimatedTotalMs === undefined ? '?' : formatMs(totals.estimatedTotalMs),
  ];
  return [header, ...rows, total];
}

export async function writeSelectionSummary(
  summary: SummaryLike,
  report: SelectionReport,
  env: DocsEnv = {},
): Promise<void> {
  const speed = report.streamSpeed
    ? `Measured stream speed: ${formatBytes(report.streamSpeed.bytesPerSecond)}/s (${formatBytes(report.streamSpeed.bytes)} of random data in ${formatMs(report.streamSpeed.ms)}). Estimates are memory (and layer) at that speed; the dump, the restore and the image are not counted.`
    : 'The stream speed could not be measured: no estimates.';
  summary
    .addHeading(
      `Cutover gate: ${escapeHtml(report.selection)} from ${escapeHtml(report.hosts.source)} to ${escapeHtml(report.hosts.target)}`,
      2,
    )
    .addRaw(
      `<p>${report.result === 'passed' ? '✅' : '⛔'} ${escapeHtml(selectionVerdict(report))}</p>`,
      true,
    )
    .addTable(renderSelectionRows(report, env))
    .addRaw(`<p>${escapeHtml(speed)}</p>`, true);
  if (report.leftOut.length > 0) {
    summary.addRaw(
      `<p>Left out: ${report.leftOut.map((left) => `${escapeHtml(left.container)} (${escapeHtml(left.reason)})`).join('; ')}</p>`,
      true,
    );
  }
  await summary.write();
}
