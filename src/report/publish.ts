import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as core from '@actions/core';
import { uploadRunArtifact } from './artifact.js';
import { withErrorLink } from './error-docs.js';
import {
  METADATA_SCHEMA_VERSION,
  type MetadataError,
  type MigrationMetadata,
  writeMetadata,
} from './metadata.js';
import { type EarlyRun, writeFailureSummary, writeSummary } from './summary.js';

export interface Publication {
  checkpointName: string;
  uploadArtifact: boolean;
  artifactName: string;
  artifactRetentionDays?: number;
  metadata: MigrationMetadata;
  /** Mode-specific outputs besides the common ones. */
  outputs?: Record<string, string | number | undefined>;
  /** Small text files to write beside metadata.json and upload with it (the checkpoint manifest, CRIU's log lines of a failure); never memory pages. */
  notes?: { file: string; text: string }[];
  log: { info(message: string): void; warning(message: string): void };
  env: NodeJS.ProcessEnv;
}

/** Where a run's records go on the runner. */
export function recordsDir(env: NodeJS.ProcessEnv, checkpointName: string): string {
  return join(env.RUNNER_TEMP || process.cwd(), 'criu-migrate', checkpointName);
}

/**
 * The one way every mode reports: metadata.json, outputs, the job summary and
 * the workflow artifact. An artifact that cannot be uploaded is a warning,
 * never a failed run.
 */
export async function publish(publication: Publication): Promise<void> {
  const { metadata, env } = publication;
  const dir = recordsDir(env, publication.checkpointName);
  const path = join(dir, 'metadata.json');
  await writeMetadata(path, metadata);
  const files = [path];
  for (const note of publication.notes ?? []) {
    const file = join(dir, note.file);
    await writeFile(file, note.text.endsWith('\n') ? note.text : `${note.text}\n`, { mode: 0o600 });
    files.push(file);
  }
  const outputs: Record<string, string | number | undefined> = {
    status: metadata.run.status,
    'checkpoint-name': publication.checkpointName,
    'duration-ms': metadata.timings.durationMs,
    'metadata-path': path,
    'error-code': metadata.error?.code ?? '',
    ...publication.outputs,
  };
  let artifactId = '';
  if (publication.uploadArtifact) {
    const outcome = await uploadRunArtifact(
      {
        name: publication.artifactName,
        files,
        rootDirectory: dir,
        ...(publication.artifactRetentionDays ? { retentionDays: publication.artifactRetentionDays } : {}),
      },
      { env },
    );
    if (outcome.uploaded) {
      artifactId = String(outcome.id);
      publication.log.info(
        `uploaded artifact ${publication.artifactName} (id ${outcome.id}, ${outcome.size} bytes)`,
      );
    } else if (outcome.reason.startsWith('no ACTIONS_RUNTIME_TOKEN')) {
      publication.log.info(`artifact upload skipped: ${outcome.reason}; the records are in ${dir}`);
    } else {
      publication.log.warning(`artifact upload skipped: ${outcome.reason}; the records are in ${dir}`);
    }
  }
  outputs['artifact-id'] = artifactId;
  for (const [name, value] of Object.entries(outputs)) core.setOutput(name, value ?? '');
  if (env.GITHUB_STEP_SUMMARY) await writeSummary(core.summary, metadata, env);
}

export interface EarlyFailure {
  error: MetadataError;
  /** The error as the annotation shows it (message, where, what to do). */
  message: string;
  run: EarlyRun;
  /** Names the records directory; a fresh name when the inputs did not parse. */
  checkpointName: string;
  startedAt: Date;
  env: NodeJS.ProcessEnv;
}

/**
 * The report of a run that stopped before its mode could report (inputs, connecting,
 * logging in): the same outputs every run sets, metadata.json, the annotation and the
 * summary. Never uploads: nothing happened worth an artifact.
 */
export async function publishEarlyFailure(failure: EarlyFailure): Promise<void> {
  const { env, run } = failure;
  const finished = new Date();
  const metadata: MigrationMetadata = {
    schemaVersion: METADATA_SCHEMA_VERSION,
    run: {
      mode: run.mode ?? 'migrate',
      status: run.outcome,
      startedAt: failure.startedAt.toISOString(),
      finishedAt: finished.toISOString(),
    },
    hosts: {
      source: { address: (run.mode === 'restore' ? run.store : run.source) ?? '' },
      ...(run.target ? { target: { address: run.target } } : {}),
    },
    container: { name: run.container ?? '' },
    checkpoint: { name: failure.checkpointName, streams: {} },
    timings: { phasesMs: {}, durationMs: finished.getTime() - failure.startedAt.getTime() },
    error: failure.error,
  };
  let path = '';
  try {
    path = join(recordsDir(env, failure.checkpointName), 'metadata.json');
    await writeMetadata(path, metadata);
  } catch {
    path = '';
  }
  const outputs: Record<string, string | number | undefined> = {
    status: run.outcome,
    'error-code': failure.error.code,
    'duration-ms': metadata.timings.durationMs,
    'metadata-path': path,
    'checkpoint-name': failure.checkpointName,
    'artifact-id': '',
  };
  for (const [name, value] of Object.entries(outputs)) core.setOutput(name, value ?? '');
  core.setFailed(withErrorLink(failure.message, failure.error.code, env));
  if (env.GITHUB_STEP_SUMMARY) {
    await writeFailureSummary(core.summary, failure.error, run, env).catch(() => {});
  }
}

/** CRIU's own lines of a failed dump or restore, for the artifact. */
export function criuNotes(
  error: { code: string; detail?: string } | undefined,
): { file: string; text: string }[] {
  if (!error?.detail || (error.code !== 'CHECKPOINT_FAILED' && error.code !== 'RESTORE_FAILED')) return [];
  return [
    { file: error.code === 'CHECKPOINT_FAILED' ? 'criu-dump.log' : 'criu-restore.log', text: error.detail },
  ];
}
