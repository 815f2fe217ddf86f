import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as core from '@actions/core';
import { uploadRunArtifact } from './artifact.js';
import { type MigrationMetadata, writeMetadata } from './metadata.js';
import { writeSummary } from './summary.js';

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

/** CRIU's own lines of a failed dump or restore, for the artifact. */
export function criuNotes(
  error: { code: string; detail?: string } | undefined,
): { file: string; text: string }[] {
  if (!error?.detail || (error.code !== 'CHECKPOINT_FAILED' && error.code !== 'RESTORE_FAILED')) return [];
  return [
    { file: error.code === 'CHECKPOINT_FAILED' ? 'criu-dump.log' : 'criu-restore.log', text: error.detail },
  ];
}
