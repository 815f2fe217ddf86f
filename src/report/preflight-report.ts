import { writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { mkdirP } from '@actions/io';
import type { ErrorCode } from '../errors.js';
import type { Check, CheckHost, CheckStatus } from '../policy/compatibility.js';
import { codeLinkHtml, type DocsEnv, errorDocUrl } from './error-docs.js';
import { escapeHtml, formatMs, type SummaryLike, type SummaryRow } from './summary.js';

/** Bump when a field changes meaning or is removed; adding optional fields keeps the version. */
export const PREFLIGHT_REPORT_SCHEMA_VERSION = 1;

export interface ReportCheck {
  /** Stable identifier of the check: its name in kebab-case ("criu-installed"); unique with host. */
  id: string;
  host: CheckHost;
  name: string;
  status: CheckStatus;
  observed: string;
  expected: string;
  /** For warnings and failures: what to do about it. */
  remedy?: string;
  /** For warnings and failures: the stable error code (ERROR_CODES). */
  code?: ErrorCode;
}

export interface PreflightReport {
  schemaVersion: number;
  /** passed: no failure (and with strict, no warning); failed otherwise. */
  result: 'passed' | 'failed';
  strict: boolean;
  container: string;
  hosts: { source: string; target: string };
  kernelPolicy: string;
  startedAt: string;
  durationMs: number;
  counts: Record<CheckStatus, number>;
  /** Codes of the checks that failed the gate, in report order, each once. */
  blockingCodes: ErrorCode[];
  checks: ReportCheck[];
}

export interface ReportInput {
  checks: readonly Check[];
  strict: boolean;
  container: string;
  source: string;
  target: string;
  kernelPolicy: string;
  startedAt: string;
  durationMs: number;
}

/** "criu hardware breakpoints" -> "criu-hardware-breakpoints". */
export function checkId(name: string): string {
  return name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '');
}

export function isBlocking(check: Pick<Check, 'status'>, strict: boolean): boolean {
  return check.status === 'fail' || (strict && check.status === 'warn');
}

function toReportCheck(check: Check): ReportCheck {
  const entry: ReportCheck = {
    id: checkId(check.name),
    host: check.host,
    name: check.name,
    status: check.status,
    observed: check.observed,
    expected: check.expected,
  };
  if (check.status !== 'pass') {
    if (check.remedy) entry.remedy = check.remedy;
    entry.code = check.code ?? 'PREFLIGHT_FAILED';
  }
  return entry;
}

export function buildPreflightReport(input: ReportInput): PreflightReport {
  const checks = input.checks.map(toReportCheck);
  const counts: Record<CheckStatus, number> = { pass: 0, warn: 0, fail: 0 };
  for (const check of checks) counts[check.status]++;
  const blocking = checks.filter((check) => isBlocking(check, input.strict));
  const blockingCodes = [...new Set(blocking.map((check) => check.code ?? 'PREFLIGHT_FAILED'))];
  return {
    schemaVersion: PREFLIGHT_REPORT_SCHEMA_VERSION,
    result: blocking.length === 0 ? 'passed' : 'failed',
    strict: input.strict,
    container: input.container,
    hosts: { source: input.source, target: input.target },
    kernelPolicy: input.kernelPolicy,
    startedAt: input.startedAt,
    durationMs: Math.round(input.durationMs),
    counts,
    blockingCodes,
    checks,
  };
}

const HOST_ORDER: CheckHost[] = ['source', 'target', 'both'];

/** The checks per host, for log groups: source, target, then both. */
export function groupByHost<T extends { host: CheckHost }>(checks: readonly T[]): [CheckHost, T[]][] {
  return HOST_ORDER.map(
    (host) => [host, checks.filter((check) => check.host === host)] as [CheckHost, T[]],
  ).filter(([, list]) => list.length > 0);
}

/** One line saying how the gate ended. */
export function verdictLine(report: PreflightReport): string {
  const { counts } = report;
  const tally = `${counts.pass} passed, ${counts.warn} warning${counts.warn === 1 ? '' : 's'}, ${counts.fail} failed`;
  const time = `in ${formatMs(report.durationMs)}`;
  if (report.result === 'passed') {
    const note = counts.warn > 0 ? ' (warnings do not fail the gate unless strict: true)' : '';
    return `preflight passed: ${tally} ${time}${note}`;
  }
  const strictNote = report.strict && counts.warn > 0 ? ' (strict: warnings count as failures)' : '';
  return `preflight failed: ${tally} ${time}${strictNote}; ${report.blockingCodes.join(', ')}`;
}

/** The message the step fails with: each blocking check on a line, with its remedy. */
export function failureMessage(report: PreflightReport, env: DocsEnv = {}): string {
  const blocking = report.checks.filter((check) => isBlocking(check, report.strict));
  const lines = blocking.map(
    (check) =>
      `${check.code}: [${check.host}] ${check.name}: ${check.observed}${check.remedy ? `\n  What to do: ${check.remedy}` : ''}${check.code ? `\n  About ${check.code}: ${errorDocUrl(check.code, env)}` : ''}`,
  );
  return [verdictLine(report), ...lines].join('\n');
}

const STATUS_ICONS: Record<CheckStatus, string> = { pass: '✅ pass', warn: '⚠️ warn', fail: '❌ fail' };
const STATUS_RANK: Record<CheckStatus, number> = { fail: 0, warn: 1, pass: 2 };

/** Summary table: failures first, then warnings, then passes; HTML-escaped. */
export function renderPreflightRows(report: PreflightReport, env: DocsEnv = {}): SummaryRow[] {
  const header: SummaryRow = ['Status', 'Host', 'Check', 'Observed', 'Expected', 'Remedy'].map((data) => ({
    data,
    header: true,
  }));
  const ordered = report.checks
    .map((check, index) => ({ check, index }))
    .sort((a, b) => STATUS_RANK[a.check.status] - STATUS_RANK[b.check.status] || a.index - b.index)
    .map(({ check }) => check);
  const rows = ordered.map((check) => [
    STATUS_ICONS[check.status],
    check.host,
    escapeHtml(check.name),
    escapeHtml(check.observed),
    escapeHtml(check.expected),
    // @actions/core writes an empty cell as an unclosed <td>: give it text.
    check.status === 'pass'
      ? '—'
      : `${check.code ? `${codeLinkHtml(check.code, env)}: ` : ''}${escapeHtml(check.remedy ?? '')}`,
  ]);
  return [header, ...rows];
}

export async function writePreflightSummary(
  summary: SummaryLike,
  report: PreflightReport,
  env: DocsEnv = {},
): Promise<void> {
  const title = `Preflight: ${escapeHtml(report.container)} from ${escapeHtml(report.hosts.source)} to ${escapeHtml(report.hosts.target)}`;
  summary
    .addHeading(title, 2)
    .addRaw(`<p>${report.result === 'passed' ? '✅' : '⛔'} ${escapeHtml(verdictLine(report))}</p>`, true)
    .addTable(renderPreflightRows(report, env));
  await summary.write();
}

export async function writePreflightReport(path: string, report: PreflightReport): Promise<void> {
  await mkdirP(dirname(path));
  await writeFile(path, `${JSON.stringify(report, null, 2)}\n`, 'utf8');
}
