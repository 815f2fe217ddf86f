import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as core from '@actions/core';
import { mkdirP } from '@actions/io';
import type { MetadataError, RunStatus } from './metadata.js';
import { recordsDir } from './publish.js';
import { escapeHtml, formatMs } from './summary.js';

export interface UnitMemberReport {
  container: string;
  service: string;
  status: RunStatus | 'not started';
  sourceId?: string;
  targetId?: string;
  downtimeMs?: number;
  error?: MetadataError;
}

export interface UnitReport {
  schemaVersion: 1;
  unit: string;
  status: RunStatus;
  source: string;
  target: string;
  startedAt: string;
  durationMs: number;
  /** In restore order. */
  members: UnitMemberReport[];
  /** The project's networks, and whether this run created them on the target. */
  networks: { name: string; created: boolean; removed?: boolean }[];
  /** The longest frozen window of any member: they froze together, so the unit's. */
  downtimeMs?: number;
  error?: MetadataError;
  leftovers?: string[];
  /** What an earlier, interrupted run of the unit left and this run settled first, member by member. */
  settled?: string[];
}

/** unit.json, the outputs and the job summary of a unit's run. */
export async function publishUnit(
  report: UnitReport,
  checkpointName: string,
  env: NodeJS.ProcessEnv,
): Promise<void> {
  const dir = recordsDir(env, checkpointName);
  await mkdirP(dir);
  const path = join(dir, 'unit.json');
  await writeFile(path, `${JSON.stringify(report, null, 2)}\n`, 'utf8');
  const outputs: Record<string, string | number> = {
    status: report.status,
    'checkpoint-name': checkpointName,
    'duration-ms': report.durationMs,
    'metadata-path': path,
    'error-code': report.error?.code ?? '',
    'downtime-ms': report.downtimeMs ?? '',
    'target-container-id':
      report.status === 'succeeded' ? report.members.map((m) => m.targetId ?? '').join(',') : '',
    leftovers: (report.leftovers ?? []).join('\n'),
    unit: JSON.stringify(report),
  };
  for (const [name, value] of Object.entries(outputs)) core.setOutput(name, value);
  if (!env.GITHUB_STEP_SUMMARY) return;
  const rows = report.members.map((member) => [
    escapeHtml(member.container),
    escapeHtml(member.service),
    escapeHtml(member.status),
    member.downtimeMs === undefined ? '' : formatMs(member.downtimeMs),
    escapeHtml(member.error ? `${member.error.code}: ${member.error.message}` : ''),
  ]);
  await core.summary
    .addHeading(`Unit ${escapeHtml(report.unit)}: ${escapeHtml(report.status)}`, 3)
    .addRaw(
      `<p>${escapeHtml(report.source)} → ${escapeHtml(report.target)}; frozen together for ${report.downtimeMs === undefined ? 'n/a' : formatMs(report.downtimeMs)}; networks: ${escapeHtml(report.networks.map((n) => `${n.name}${n.created ? ' (created)' : ''}${n.removed ? ' (removed again)' : ''}`).join(', ') || 'none')}</p>`,
    )
    .addTable([
      [
        { data: 'Container', header: true },
        { data: 'Service', header: true },
        { data: 'Status', header: true },
        { data: 'Frozen', header: true },
        { data: 'Error', header: true },
      ],
      ...rows,
    ])
    .addRaw(
      report.error ? `<p>${escapeHtml(report.error.code)}: ${escapeHtml(report.error.message)}</p>` : '',
    )
    .write();
}
