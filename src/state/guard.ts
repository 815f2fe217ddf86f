import { readFileSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { asMigrationError, errorMessage, MigrationError } from '../errors.js';
import { describeHost, type Host } from '../host/host.js';
import { shellQuote } from '../host/shell.js';
import { describeOwner, type Here, staleLockReason } from '../policy/lock.js';
import type { ResumedRun } from '../report/metadata.js';
import {
  archiveRecord,
  containerStateDir,
  isUnitCommitPath,
  LOCK_RENEW_MS,
  LOCK_STALE_SECONDS,
  readRecord,
  releaseLock,
  releaseLockAt,
  renewLock,
  renewLockAt,
  takeOverLock,
  takeOverLockAt,
  tryLock,
  tryLockAt,
  unitCommitFound,
  writeRecord,
} from './host-records.js';
import {
  type Affected,
  committedByUnit,
  isCommitted,
  isUnfinished,
  type JournalRecord,
  newestRecord,
  type RunOwner,
  type Side,
} from './journal.js';
import { type RecoveryHosts, type RecoveryLog, recover } from './recovery.js';

function containerLockPath(container: string): string {
  return `${containerStateDir(container)}/lock`;
}

export const BOTH_SIDES: readonly Side[] = ['source', 'target'];

export function runOwner(env: NodeJS.ProcessEnv, now: Date, token: string): RunOwner {
  const bootId = readBootId();
  return {
    token,
    githubRunId: env.GITHUB_RUN_ID,
    githubRunAttempt: env.GITHUB_RUN_ATTEMPT,
    githubJob: env.GITHUB_JOB,
    runner: env.RUNNER_NAME,
    machine: hostname(),
    bootId,
    pidNs: readPidNs(),
    pid: process.pid,
    startedAt: now.toISOString(),
  };
}

/** This boot of this machine: a PID is only meaningful within it. */
function readBootId(): string | undefined {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** The PID namespace this process lives in: a PID names the same process only inside it. */
function readPidNs(): string | undefined {
  try {
    return readlinkSync('/proc/self/ns/pid');
  } catch {
    return undefined;
  }
}

export function thisMachine(): Here {
  return {
    machine: hostname(),
    bootId: readBootId(),
    pidNs: readPidNs(),
    isAlive(pid) {
      try {
        process.kill(pid, 0);
        return true;
      } catch (error) {
        // EPERM: it exists, it is just not ours.
        return (error as NodeJS.ErrnoException).code === 'EPERM';
      }
    },
  };
}

export interface ContainerLocks {
  /** Stops renewing and removes both locks (only if still ours). */
  release(): Promise<void>;
}

/**
 * One run per container: a lock on the source (the container) and on the
 * target (the name it will create). A lock held by a live run refuses this one
 * at once with MIGRATION_IN_PROGRESS; a stale one is taken over only after the
 * open journals on both hosts have been read and settled by `settle`.
 */
export async function lockContainer(
  hosts: readonly Host[],
  container: string,
  owner: RunOwner,
  log: RecoveryLog,
  here: Here = thisMachine(),
): Promise<ContainerLocks> {
  const held: Host[] = [];
  const stale: { host: Host; fingerprint: string }[] = [];
  const releaseHeld = () =>
    Promise.allSettled(held.map((host) => releaseLock(host, container, owner.token))).then(() => {});
  for (const host of new Set(hosts)) {
    let attempt: Awaited<ReturnType<typeof tryLock>>;
    try {
      attempt = await tryLock(host, container, owner);
    } catch (error) {
      await releaseHeld();
      throw asMigrationError(error, 'COMMAND_FAILED', { step: 'lock', host: describeHost(host) });
    }
    if (attempt.acquired) {
      held.push(host);
      continue;
    }
    const reason = attempt.owner?.token === owner.token ? 'it is this run' : staleLockReason(attempt, here);
    if (reason === undefined) {
      await releaseHeld();
      throw new MigrationError(
        'MIGRATION_IN_PROGRESS',
        `another run is working on container ${container}: ${describeOwner(attempt.owner)}, last renewed ${attempt.ageSeconds} s ago`,
        {
          step: 'lock',
          host: describeHost(host),
          remedy: inProgressRemedy(containerLockPath(container)),
        },
      );
    }
    log.warning(
      `${describeHost(host)}: the lock on ${container} belongs to ${describeOwner(attempt.owner)}, which is gone (${reason}); taking it over after reading its journal`,
    );
    stale.push({ host, fingerprint: attempt.fingerprint });
  }
  for (const { host, fingerprint } of stale) {
    let taken: Awaited<ReturnType<typeof takeOverLock>>;
    try {
      taken = await takeOverLock(host, container, owner, fingerprint);
    } catch (error) {
      await releaseHeld();
      throw asMigrationError(error, 'COMMAND_FAILED', { step: 'lock', host: describeHost(host) });
    }
    if (taken !== 'acquired') {
      await releaseHeld();
      throw takenMeanwhile(`container ${container}`, host, containerLockPath(container));
    }
    held.push(host);
  }
  const renew = setInterval(() => {
    for (const host of held) renewLock(host, container, owner.token).catch(() => {});
  }, LOCK_RENEW_MS);
  renew.unref();
  return {
    async release() {
      clearInterval(renew);
      await releaseHeld();
    },
  };
}

/**
 * The lock of one checkpoint series in a store: one run writes into a series
 * at a time (its retention included); runs of other series go on beside it.
 */
export async function lockSeries(
  store: Host,
  lock: string,
  series: string,
  owner: RunOwner,
  log: RecoveryLog,
  here: Here = thisMachine(),
): Promise<ContainerLocks> {
  const attempt = await tryLockAt(store, lock, owner).catch((error: unknown) => {
    throw asMigrationError(error, 'COMMAND_FAILED', { step: 'lock', host: describeHost(store) });
  });
  if (!attempt.acquired) {
    const reason = attempt.owner?.token === owner.token ? 'it is this run' : staleLockReason(attempt, here);
    if (reason === undefined) {
      throw new MigrationError(
        'MIGRATION_IN_PROGRESS',
        `another run is writing into checkpoint series ${series}: ${describeOwner(attempt.owner)}, last renewed ${attempt.ageSeconds} s ago`,
        {
          step: 'lock',
          host: describeHost(store),
          remedy: inProgressRemedy(lock),
        },
      );
    }
    log.warning(
      `${describeHost(store)}: the lock on series ${series} belongs to a run that is gone (${reason}); taking it over`,
    );
    const taken = await takeOverLockAt(store, lock, owner, attempt.fingerprint).catch((error: unknown) => {
      throw asMigrationError(error, 'COMMAND_FAILED', { step: 'lock', host: describeHost(store) });
    });
    if (taken !== 'acquired') throw takenMeanwhile(`series ${series}`, store, lock);
  }
  const renew = setInterval(() => {
    renewLockAt(store, lock, owner.token).catch(() => {});
  }, LOCK_RENEW_MS);
  renew.unref();
  return {
    async release() {
      clearInterval(renew);
      await releaseLockAt(store, lock, owner.token);
    },
  };
}

function inProgressRemedy(lockPath: string): string {
  return `wait for that run to finish; give the workflow a concurrency group per container so runs queue instead of colliding. A lock whose run is gone is taken over once it is ${LOCK_STALE_SECONDS} s old (a run in another PID namespace, such as a runner in a container, is judged by age only). If you are sure no run is working on it, remove it by hand on that host (rm -rf ${lockPath}), then run again: the next run reads the journal first`;
}

/** A stale lock someone else renewed or took between our look and our takeover. */
function takenMeanwhile(what: string, host: Host, lockPath: string): MigrationError {
  return new MigrationError(
    'MIGRATION_IN_PROGRESS',
    `the lock on ${what} looked stale, but another run renewed or took it over first`,
    { step: 'lock', host: describeHost(host), remedy: inProgressRemedy(lockPath) },
  );
}

/**
 * The key a container's lock and journal are kept under: its name as the
 * source's Docker knows it, whether the input gave the name, the ID or a
 * prefix of it, so that runs given either exclude each other. Falls back to
 * the input when the source does not know the container (an earlier run may
 * have moved or removed it; preflight then says so).
 */
export async function containerKey(source: Host, input: string): Promise<string> {
  const result = await source
    .run(`docker inspect --type container --format '{{.Name}}' -- ${shellQuote([input])}`, {
      timeoutMs: 30_000,
    })
    .catch(() => undefined);
  const name = result?.exitCode === 0 ? result.stdout.trim().replace(/^\//, '') : '';
  return /^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name) ? name : input;
}

/** The hosts as the record saw them: a later run may go the other way between the same two. */
function hostsFor(record: JournalRecord, hosts: RecoveryHosts): RecoveryHosts | undefined {
  if (record.source === hosts.source.address && record.target === hosts.target.address) return hosts;
  if (record.source === hosts.target.address && record.target === hosts.source.address) {
    return { source: hosts.target, target: hosts.source };
  }
  return undefined;
}

/**
 * Reads the journals an earlier run left open on either host and settles them:
 * a run past its commit point is finished (source retired), one before it is
 * rolled back. Returns what was done, or undefined when nothing was open.
 */
export async function settleUnfinished(
  hosts: RecoveryHosts,
  container: string,
  log: RecoveryLog,
  extra: JournalRecord | undefined = undefined,
  /** Where the mode keeps its journal (checkpoint mode: the source only, never the shared store host). */
  sides: readonly Side[] = BOTH_SIDES,
): Promise<ResumedRun | undefined> {
  const reads = await Promise.allSettled(
    BOTH_SIDES.map((side) =>
      sides.includes(side) ? readRecord(hosts[side], container) : Promise.resolve(undefined),
    ),
  );
  for (const [i, read] of reads.entries()) {
    if (read.status === 'rejected') {
      log.warning(
        `could not read the journal on the ${i === 0 ? 'source' : 'target'}: ${errorMessage(read.reason)}`,
      );
    }
  }
  const found = reads.map((read) => (read.status === 'fulfilled' ? read.value : undefined));
  const newest = newestRecord([...found, extra]);
  if (!newest || !isUnfinished(newest)) return undefined;
  const roles = hostsFor(newest, hosts);
  if (!roles) {
    throw new MigrationError(
      'MIGRATION_IN_PROGRESS',
      `an earlier run (${newest.checkpointName}) left container ${container} half migrated between ${newest.source} and ${newest.target}`,
      {
        step: 'resume',
        remedy: `run the action once with source ${newest.source} and target ${newest.target} so it can finish that run`,
      },
    );
  }
  const record = await withUnitCommit(newest, roles, sides, log);
  log.warning(
    `found an unfinished run of ${container} (${record.checkpointName}, ${describeOwner(record.owner)}); ${record.status === 'committed' || record.entries.some((e) => e.action.kind === 'committed' && e.state === 'done') ? 'its target was verified: finishing it' : 'rolling it back'}`,
  );
  const outcome = await recover(record, roles, log);
  const resumed: ResumedRun = {
    checkpointName: record.checkpointName,
    direction: outcome.direction,
    owner: describeOwner(record.owner),
    done: outcome.done,
    problems: outcome.problems,
  };
  if (outcome.problems.length > 0) {
    await Promise.allSettled(sides.map((side) => writeRecord(roles[side], record)));
    throw new MigrationError(
      'ROLLBACK_FAILED',
      `could not finish the earlier run ${record.checkpointName}: ${outcome.problems.join('; ')}`,
      {
        step: 'resume',
        remedy: outcome.targetKept
          ? `the target container runs and the source cannot take over again: it may be the only copy of the service. Check it; to keep it, remove ${containerStateDir(container)}/journal.json on both hosts by hand`
          : outcome.sourceLeftFrozen
            ? 'remove the target container by hand (docker rm -f), then run again'
            : 'fix what the lines above name, then run again; the journal stays on the hosts until it is settled',
      },
    );
  }
  if (outcome.sourceGone) {
    // Nothing was left to resume: settling it is moot, and it must not block this run.
    log.warning(
      `the earlier run ${record.checkpointName} of ${container} is moot: its source container was removed since; its journal is archived`,
    );
  }
  record.status = outcome.direction === 'roll-forward' ? 'done' : 'rolled-back';
  record.resolvedBy = outcome.sourceGone
    ? 'a later run (moot: the source container was gone)'
    : 'a later run';
  record.updatedAt = new Date().toISOString();
  const archived = await Promise.allSettled(sides.map((side) => archiveRecord(roles[side], record)));
  for (const result of archived) {
    if (result.status === 'rejected')
      log.warning(`could not archive the settled journal: ${errorMessage(result.reason)}`);
  }
  return resumed;
}

/**
 * A unit member's journal with no commit of its own is committed when its unit's marker is on
 * a host: the unit committed, and its other members may already be retired on the source.
 * When no host can be asked, nobody can tell which way is safe: the run stays unsettled.
 */
async function withUnitCommit(
  record: JournalRecord,
  hosts: RecoveryHosts,
  sides: readonly Side[],
  log: RecoveryLog,
): Promise<JournalRecord> {
  const marker = record.unitCommit;
  if (!marker || isCommitted(record)) return record;
  if (!isUnitCommitPath(marker)) {
    throw new MigrationError(
      'UNSAFE_VALUE',
      `the journal of ${record.container} names an unexpected unit commit marker`,
      {
        step: 'resume',
        remedy: `check ${containerStateDir(record.container)}/journal.json on both hosts; it was not written by this action`,
      },
    );
  }
  const looks = await Promise.allSettled(sides.map((side) => unitCommitFound(hosts[side], marker)));
  if (looks.some((look) => look.status === 'fulfilled' && look.value)) {
    log.info(
      `${record.container}: its unit ${record.checkpointName} was committed (${marker}): finishing it`,
    );
    return committedByUnit(record, new Date());
  }
  const unknown = looks.flatMap((look) => (look.status === 'rejected' ? [errorMessage(look.reason)] : []));
  if (unknown.length > 0) {
    throw new MigrationError(
      'UNIT_COMMIT_UNKNOWN',
      `cannot tell whether the unit of ${record.container} (${record.checkpointName}) was committed: ${unknown.join('; ')}`,
      {
        step: 'resume',
        remedy:
          'make both hosts reachable and run again: the run is settled only once the unit commit marker can be looked for on every host',
      },
    );
  }
  return record;
}

/**
 * Writes the journal everywhere it lives: the runner's saved state (for the
 * post step) and both hosts. The host the next change affects must have it
 * before the change is made; the other host is told when it can be.
 */
export function journalPersister(
  hosts: RecoveryHosts,
  saveState: (record: JournalRecord) => void,
  log: RecoveryLog,
  sides: readonly Side[] = BOTH_SIDES,
): (record: JournalRecord, affected: Affected) => Promise<void> {
  const warned = new Set<Side>();
  return async (record, affected) => {
    // The commit point goes to the runner's saved state only once a host holds it: the post step
    // must not finish a commit that a later run, reading only the hosts, would not see.
    if (affected !== 'any-host') saveState(record);
    if (affected === 'runner-only') return;
    const results = await Promise.allSettled(sides.map((side) => writeRecord(hosts[side], record)));
    if (affected === 'any-host') {
      const failed = results.flatMap((result) => (result.status === 'rejected' ? [result.reason] : []));
      if (failed.length === results.length) {
        throw new MigrationError(
          'COMMIT_NOT_DURABLE',
          'the commit point could not be written to the journal on any host',
          // The remedy is the mode's: what it leaves behind differs.
          { step: 'commit', detail: failed.map((reason) => errorMessage(reason)).join('\n') },
        );
      }
      saveState(record);
    }
    for (const [i, result] of results.entries()) {
      const side = sides[i] as Side;
      if (result.status === 'fulfilled') continue;
      if (side === affected) throw result.reason;
      if (!warned.has(side)) {
        warned.add(side);
        log.warning(`could not write the journal on the ${side}: ${errorMessage(result.reason)}`);
      }
    }
  };
}

/** Migrate mode, when the commit point reached no host (the run left both copies: target running, source frozen). */
export const COMMIT_REMEDY =
  'nothing is lost: the verified target runs and the source is still frozen (paused), not killed. Fix what kept the journal from being written under /var/lib/criu-migrate on both hosts (disk space, permissions; the detail says). Then either keep the target: on the source run docker update --restart no <source container> && docker kill <source container>, and remove /var/lib/criu-migrate/containers/<container>/journal.json on both hosts; or go back to the source: run this action again, which rolls the unfinished run back (removes the target, resumes the source where it was frozen; what the target did since is lost)';

/** Moves a finished journal into the history on both hosts; failures only warn. */
export async function archiveEverywhere(
  hosts: RecoveryHosts,
  record: JournalRecord,
  log: RecoveryLog,
  sides: readonly Side[] = BOTH_SIDES,
): Promise<void> {
  const results = await Promise.allSettled(sides.map((side) => archiveRecord(hosts[side], record)));
  for (const result of results) {
    if (result.status === 'rejected')
      log.warning(`could not archive the journal: ${errorMessage(result.reason)}`);
  }
}
