import { errorMessage, MigrationError } from '../errors.js';
import type { Host } from '../host/host.js';
import { removeUnitCommit, writeUnitCommit } from './host-records.js';
import type { RecoveryLog } from './recovery.js';

// A compose unit's one commit point on the hosts (JournalRecord.unitCommit says why).

/** The unit's commit: the marker every member's journal names, on any host (both when they answer). */
export async function writeUnitCommitEverywhere(
  hosts: { source: Host; target: Host },
  marker: string,
): Promise<void> {
  const written = await Promise.allSettled([
    writeUnitCommit(hosts.source, marker),
    writeUnitCommit(hosts.target, marker),
  ]);
  const failed = written.flatMap((result) =>
    result.status === 'rejected' ? [errorMessage(result.reason)] : [],
  );
  if (failed.length === written.length) {
    throw new MigrationError(
      'COMMIT_NOT_DURABLE',
      "the unit's commit marker could not be written on any host",
      {
        step: 'commit',
        detail: failed.join('\n'),
      },
    );
  }
}

export async function removeUnitCommitEverywhere(
  hosts: { source: Host; target: Host },
  marker: string,
  log: RecoveryLog,
): Promise<void> {
  const removed = await Promise.allSettled([
    removeUnitCommit(hosts.source, marker),
    removeUnitCommit(hosts.target, marker),
  ]);
  for (const result of removed)
    if (result.status === 'rejected')
      log.warning(`could not remove the unit's commit marker: ${errorMessage(result.reason)}`);
}
