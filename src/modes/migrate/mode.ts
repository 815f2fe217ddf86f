import * as core from '@actions/core';
import { errorMessage, MigrationError } from '../../errors.js';
import type { Host } from '../../host/host.js';
import { openHost, requireRoot } from '../../host/host-factory.js';
import { reconnecting } from '../../host/reconnecting.js';
import { connectHosts } from '../../phases/connect.js';
import { type MigrationMetadata, metadataError, type ResumedRun } from '../../report/metadata.js';
import { criuNotes, publish } from '../../report/publish.js';
import { PhaseTimer } from '../../report/timings.js';
import { type Runtime, SAVED } from '../../runtime.js';
import { describeLocation, type MigrateSettings } from '../../settings.js';
import {
  archiveEverywhere,
  type ContainerLocks,
  containerKey,
  journalPersister,
  lockContainer,
  runOwner,
  settleUnfinished,
} from '../../state/guard.js';
import { isUnfinished, Journal, type JournalRecord } from '../../state/journal.js';
import { startRunControl } from '../run-control.js';
import { migrate } from './migration.js';

async function report(
  settings: MigrateSettings,
  metadata: MigrationMetadata,
  env: NodeJS.ProcessEnv,
  log: Runtime['log'],
  error?: MigrationError,
): Promise<void> {
  await publish({
    ...settings,
    metadata,
    notes: criuNotes(error),
    env,
    log,
    outputs: {
      'target-container-id': metadata.container.targetId ?? '',
      'downtime-ms': metadata.timings.downtimeMs,
      'checkpoint-bytes': metadata.checkpoint.bytes,
      'transferred-bytes': metadata.checkpoint.transferredBytes ?? 0,
      leftovers: (metadata.leftovers ?? []).join('\n'),
    },
  });
}

/** Metadata for a run that ended before migrating anything (refused, or only finished an earlier run). */
function shortMetadata(
  settings: MigrateSettings,
  status: MigrationMetadata['run']['status'],
  hosts: { source?: Host; target?: Host },
  startedAt: Date,
  error?: MigrationError,
  resumed?: ResumedRun,
): MigrationMetadata {
  return {
    schemaVersion: 1,
    run: {
      mode: settings.mode,
      status,
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
    },
    hosts: {
      source: { address: hosts.source?.address ?? describeLocation(settings.source) },
      target: { address: hosts.target?.address ?? describeLocation(settings.target) },
    },
    container: { name: settings.container },
    checkpoint: { name: settings.checkpointName, streams: {} },
    timings: { phasesMs: {}, durationMs: Date.now() - startedAt.getTime() },
    error: error ? metadataError(error) : undefined,
    resumed,
  };
}

/**
 * Migrate mode: connect, lock the container on both hosts, settle what an
 * earlier run left, migrate, report. The run's timeout and a cancellation
 * abort whatever runs on the hosts; the journal then rolls back (or forward).
 */
export async function runMigrateMode(settings: MigrateSettings, runtime: Runtime): Promise<void> {
  const { log } = runtime;
  const hosts: Host[] = [];
  const started = new Date();
  const control = startRunControl(settings.timeoutMinutes, runtime);
  let locks: ContainerLocks | undefined;
  const target = settings.target;
  try {
    const timer = new PhaseTimer();
    const startedAt = performance.now();
    const connected = await core.group('Connect to both hosts', () =>
      timer.time('connect', () => connectHosts(settings, log)),
    );
    hosts.push(connected.source, connected.target);
    await requireRoot(connected.source, settings.source, settings.sudo);
    await requireRoot(connected.target, target, settings.sudo);
    // For the journal, the lock and recovery: a dropped connection is opened again, since
    // leaving a rollback half done is worse than a few seconds' wait.
    const warn = (message: string): void => log.warning(message);
    const durable = {
      source: reconnecting(connected.source, () =>
        openHost('source', settings.source, settings.ssh, settings.sudo, { warn }),
      ),
      target: reconnecting(connected.target, () =>
        openHost('target', target, settings.ssh, settings.sudo, { warn }),
      ),
    };
    hosts.push(durable.source, durable.target);
    const owner = runOwner(runtime.env, started, runtime.newToken());
    const saveRecord = (record: JournalRecord): void =>
      runtime.saveState(SAVED.journal, JSON.stringify(record));
    // Lock and journal under the container's name, whether the input gave its name or ID.
    const key = await containerKey(durable.source, settings.container);
    runtime.saveState(SAVED.container, key);

    let resumed: ResumedRun | undefined;
    try {
      locks = await lockContainer([durable.source, durable.target], key, owner, log);
      resumed = await settleUnfinished(durable, key, log);
    } catch (error) {
      const refused =
        error instanceof MigrationError ? error : new MigrationError('COMMAND_FAILED', errorMessage(error));
      await report(
        settings,
        shortMetadata(settings, 'refused', connected, started, refused),
        runtime.env,
        log,
      );
      runtime.fail(refused);
      return;
    }
    if (resumed?.direction === 'roll-forward') {
      // The container already runs on the host the earlier run moved it to: that was the job.
      log.info(`finished the earlier migration ${resumed.checkpointName}: ${resumed.done.join('; ')}`);
      await report(
        settings,
        shortMetadata(settings, 'resumed', connected, started, undefined, resumed),
        runtime.env,
        log,
      );
      return;
    }

    const record: JournalRecord = {
      schema: 2,
      mode: settings.mode,
      container: key,
      checkpointName: settings.checkpointName,
      source: connected.source.address,
      target: connected.target.address,
      sourceAfter: settings.sourceAfter,
      owner,
      status: 'running',
      entries: [],
      updatedAt: new Date().toISOString(),
    };
    const journal = new Journal(record, journalPersister(durable, saveRecord, log));
    const outcome = await migrate({
      settings,
      ...connected,
      recoveryHosts: durable,
      log,
      timer,
      journal,
      signal: control.signal,
      startedAt,
    });
    // A commit no host holds: the hosts keep their open journal for the run that settles it.
    if (!isUnfinished(journal.record) && outcome.error?.code !== 'COMMIT_NOT_DURABLE')
      await archiveEverywhere(durable, journal.record, log);
    if (resumed) outcome.metadata.resumed = resumed;
    await report(settings, outcome.metadata, runtime.env, log, outcome.error);
    for (const leftover of outcome.leftovers) core.warning(`left to clean up: ${leftover}`);
    if (outcome.error) runtime.fail(outcome.error);
    else
      log.info(
        `migrated ${outcome.metadata.container.name}: down for ${outcome.metadata.timings.downtimeMs} ms`,
      );
  } finally {
    control.close();
    await locks?.release().catch(() => {});
    await Promise.allSettled(hosts.map((host) => host.close()));
  }
}
