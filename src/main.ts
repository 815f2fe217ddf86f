import { join } from 'node:path';
import * as core from '@actions/core';
import { errorMessage, MigrationError } from './errors.js';
import type { Host } from './host/host.js';
import { getInputs, secretsToMask } from './inputs.js';
import { migrate } from './migrate.js';
import { runPreflightMode } from './modes/preflight.js';
import { connectHosts } from './phases/connect.js';
import type { Logger } from './phases/context.js';
import { type MigrationMetadata, writeMetadata } from './report/metadata.js';
import { writeSummary } from './report/summary.js';
import { PhaseTimer } from './report/timings.js';
import type { Settings } from './settings.js';

const log: Logger = {
  info: (message) => core.info(message),
  warning: (message) => core.warning(message),
  group: (name, fn) => core.group(name, fn),
};

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

/** Wiring only: inputs, hosts, the chosen mode, outputs. */
export async function run(): Promise<void> {
  const hosts: Host[] = [];
  try {
    const settings = getInputs((name) => core.getInput(name));
    for (const secret of secretsToMask(settings)) core.setSecret(secret);
    if (settings.mode === 'preflight') {
      await runPreflightMode(settings, log);
      return;
    }
    if (settings.mode !== 'migrate') {
      throw new MigrationError('MODE_NOT_IMPLEMENTED', `mode "${settings.mode}" is not available yet`, {
        step: 'inputs',
        remedy: 'use mode: migrate',
      });
    }
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
  } catch (error) {
    core.setFailed(error instanceof MigrationError ? error.describe() : errorMessage(error));
  } finally {
    await Promise.allSettled(hosts.map((host) => host.close()));
  }
}
