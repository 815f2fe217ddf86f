import type { ResumedRun, RunStatus } from '../../report/metadata.js';
import type { Runtime } from '../../runtime.js';
import type { MigrateSettings } from '../../settings.js';
import { archiveEverywhere } from '../../state/guard.js';
import { isUnfinished } from '../../state/journal.js';
import { runMetadata, runSession, type SessionDeps } from '../session.js';
import { type MigrationOutcome, migrate } from './migration.js';

/**
 * Migrate mode: one migration (migration.ts) in the run lifecycle of session.ts. The
 * migration settles its own journal: rollback and retiring the source are its phases.
 */
export async function runMigrateMode(
  settings: MigrateSettings,
  runtime: Runtime,
  deps: Omit<SessionDeps, 'runtime'> = {},
): Promise<void> {
  const { log } = runtime;
  await runSession<MigrateSettings, MigrationOutcome>(
    {
      settings,
      record: { sourceAfter: settings.sourceAfter },
      failure: {
        step: 'migrate',
        code: 'COMMAND_FAILED',
        remedy: 'run the action again for this container: it reads the journal on both hosts and settles it',
      },
      // The container already runs on the host the earlier run moved it to: that was the job.
      doneByEarlier: (resumed: ResumedRun) => resumed.direction === 'roll-forward',
      work: (session) =>
        migrate({
          settings,
          source: session.opened.source,
          target: session.opened.target,
          recoveryHosts: session.durable,
          log,
          timer: session.timer,
          journal: session.journal,
          signal: session.signal,
          startedAt: session.startedAt,
          ...(deps.clock ? { clock: deps.clock } : {}),
        }),
      settlesItself: async (outcome, session) => {
        // A commit no host holds: the hosts keep their open journal for the run that settles it.
        if (!isUnfinished(session.journal.record) && outcome.error?.code !== 'COMMIT_NOT_DURABLE')
          await archiveEverywhere(session.durable, session.journal.record, log);
        for (const leftover of outcome.leftovers) log.warning(`left to clean up: ${leftover}`);
        const status: RunStatus = outcome.status;
        return { status, ...(outcome.error ? { failure: outcome.error } : {}), problems: outcome.leftovers };
      },
      report: (end) => {
        const metadata = end.result
          ? end.result.metadata
          : runMetadata('migrate', end, {
              container: { name: settings.container },
              checkpoint: { name: settings.checkpointName, streams: {} },
            });
        if (end.resumed) metadata.resumed = end.resumed;
        return {
          metadata,
          outputs: {
            'target-container-id': metadata.container.targetId ?? '',
            'downtime-ms': metadata.timings.downtimeMs,
            'checkpoint-bytes': metadata.checkpoint.bytes,
            'transferred-bytes': metadata.checkpoint.transferredBytes ?? 0,
            leftovers: (metadata.leftovers ?? []).join('\n'),
          },
        };
      },
      success: (end) =>
        end.result
          ? `migrated ${end.result.metadata.container.name}: down for ${end.result.metadata.timings.downtimeMs} ms`
          : `finished the earlier migration of ${settings.container}; nothing more to move`,
    },
    { runtime, ...deps },
  );
}
