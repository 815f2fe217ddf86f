import { join } from 'node:path';
import * as core from '@actions/core';
import type { Host } from '../host/host.js';
import { migrate } from '../migrate.js';
import { connectHosts } from '../phases/connect.js';
import type { Logger } from '../phases/context.js';
import { type MigrationMetadata, writeMetadata } from '../report/metadata.js';
import { writeSummary } from '../report/summary.js';
import { PhaseTimer } from '../report/timings.js';
import type { Settings } from '../settings.js';

function metadataPath(settings: Settings): string {
  const base = process.env.RUNNER_TEMP || process.cwd();
  return join(base, 'criu-migrate', settings.checkpointName, 'metadata.json');
}

async function report(settings: Settings, metadata: MigrationMetadata): Promise<void> {
  const path = metadataPath(settings);
  await writeMetadata(path, metadata);
  core.setOutput('status', metadata.run.status);
  core.setOutput('checkpoint-name', settings.checkpointName);
  core.setOutput('target-container-id', metadata.container.targetId ?? '');
  core.setOutput('downtime-ms', metadata.timings.downtimeMs ?? '');
  core.setOutput('duration-ms', metadata.timings.durationMs ?? '');
  core.setOutput('checkpoint-bytes', metadata.checkpoint.bytes ?? '');
  core.setOutput('transferred-bytes', metadata.checkpoint.transferredBytes ?? 0);
  core.setOutput('metadata-path', path);
  if (process.env.GITHUB_STEP_SUMMARY) await writeSummary(core.summary, metadata);
  if (settings.uploadArtifact) {
    // The upload itself arrives with the artifacts issue; say so rather than pretend.
    const why = process.env.ACTIONS_RUNTIME_TOKEN
      ? 'artifact upload is not built yet'
      : 'no ACTIONS_RUNTIME_TOKEN';
    core.info(`artifact upload skipped (${why}); metadata is at ${path}`);
  }
}

/** Migrate mode: connect, run the phases, report; a failed migration fails the step. */
export async function runMigrateMode(settings: Settings, log: Logger): Promise<void> {
  const hosts: Host[] = [];
  try {
    const timer = new PhaseTimer();
    const startedAt = performance.now();
    const connected = await core.group('Connect to both hosts', () =>
      timer.time('connect', () => connectHosts(settings, log)),
    );
    hosts.push(connected.source, connected.target);
    const outcome = await migrate({ settings, ...connected, log, timer, startedAt });
    await report(settings, outcome.metadata);
    if (outcome.error) core.setFailed(outcome.error.describe());
    else
      core.info(
        `migrated ${outcome.metadata.container.name}: down for ${outcome.metadata.timings.downtimeMs} ms`,
      );
  } finally {
    await Promise.allSettled(hosts.map((host) => host.close()));
  }
}
