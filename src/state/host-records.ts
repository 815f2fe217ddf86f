import type { Host } from '../host/host.js';
import { runChecked, shellQuote } from '../host/shell.js';
import { type JournalRecord, parseRecord, type RunOwner } from './journal.js';

/**
 * What the action keeps on each host, all root-only (0700 directories, 0600 files):
 *   /var/lib/criu-migrate/containers/<name>/journal.json   the open run's journal
 *   /var/lib/criu-migrate/containers/<name>/lock/          held while a run works on that container
 *   /var/lib/criu-migrate/containers/<name>/lock.guard     flock file: one takeover or release of lock/ at a time
 *   /var/lib/criu-migrate/containers/<name>/history/       the last HISTORY_KEEP finished runs
 *   /var/lib/criu-migrate/work/<checkpoint>/               memory images, only while a run needs them
 *   /var/lib/criu-migrate/criu/<checkpoint>.conf           CRIU's configuration of a restored container
 *                                                          (its org.criu.config annotation): kept with it
 *   /var/lib/criu-migrate/units/<unit run>.committed       a compose unit's commit point, while a member's
 *                                                          journal may still need it
 */
export const STATE_ROOT = '/var/lib/criu-migrate';
export const HISTORY_KEEP = 10;
/** A lock not renewed for this long belongs to a run that is gone. */
export const LOCK_STALE_SECONDS = 90;
export const LOCK_RENEW_MS = 20_000;

const QUICK_MS = 30_000;

export function containerStateDir(container: string): string {
  return `${STATE_ROOT}/containers/${container}`;
}

/** What names one run's files on a host: its container and its checkpoint name. */
export interface WorkKey {
  container: string;
  checkpointName: string;
  /** The key the run locks when it is not the container (a drill's): its files follow its lock. */
  workKey?: string;
}

/**
 * One run's work directory on a host. The container is in the name: runs of different
 * containers under one explicit checkpoint name (a matrix) never share or empty each other's.
 */
export function workDir(key: WorkKey): string {
  return `${STATE_ROOT}/work/${workName(key)}`;
}

function workName({ container, checkpointName, workKey }: WorkKey): string {
  return `${workKey ?? container}.${checkpointName}`;
}

/** The file a restored container's org.criu.config annotation names; it lives as long as the container. */
export function restoreConfigPath(key: WorkKey): string {
  return `${STATE_ROOT}/criu/${workName(key)}.conf`;
}

/** A path restoreConfigPath made: the only files under the action's state a container's annotation may name for removal. */
export function isRestoreConfigPath(path: string): boolean {
  return (
    /^\/var\/lib\/criu-migrate\/criu\/[A-Za-z0-9][A-Za-z0-9_.-]*\.conf$/.test(path) && !path.includes('..')
  );
}

/** The marker that commits every member of one unit run at once (see JournalRecord.unitCommit). */
export function unitCommitPath(unitRun: string): string {
  return `${STATE_ROOT}/units/${unitRun}.committed`;
}

/** A path unitCommitPath made: the only marker a journal read from a host may make the action test or remove. */
export function isUnitCommitPath(path: string): boolean {
  return (
    /^\/var\/lib\/criu-migrate\/units\/[A-Za-z0-9][A-Za-z0-9_.-]*\.committed$/.test(path) &&
    !path.includes('..')
  );
}

export async function writeUnitCommit(host: Host, path: string): Promise<void> {
  await runChecked(
    host,
    `${PRIVATE} mkdir -p ${shellQuote([`${STATE_ROOT}/units`])} && : >${shellQuote([path])} && sync`,
    {
      step: 'commit',
      what: "writing the unit's commit marker",
      options: { timeoutMs: QUICK_MS },
    },
  );
}

/** Whether the marker is on this host; a host that cannot be asked throws. */
export async function unitCommitFound(host: Host, path: string): Promise<boolean> {
  const result = await runChecked(host, `if [ -e ${shellQuote([path])} ]; then echo yes; else echo no; fi`, {
    step: 'resume',
    what: "looking for the unit's commit marker",
    options: { timeoutMs: QUICK_MS },
  });
  return result.stdout.trim() === 'yes';
}

export async function removeUnitCommit(host: Host, path: string): Promise<void> {
  await runChecked(host, `rm -f -- ${shellQuote([path])}`, {
    step: 'finalize',
    what: "removing the unit's commit marker",
    options: { timeoutMs: QUICK_MS },
  });
}

/** Shell prefix for every command that writes where memory or secrets may land. */
export const PRIVATE = 'umask 077;';

export async function writeRecord(host: Host, record: JournalRecord): Promise<void> {
  const dir = containerStateDir(record.container);
  await runChecked(
    host,
    // $$: source and target may be one host (restore onto the store's host), writing at once.
    `${PRIVATE} d=${shellQuote([dir])}; mkdir -p "$d" && cat >"$d/journal.json.$$.new" && mv -f "$d/journal.json.$$.new" "$d/journal.json"`,
    {
      step: 'journal',
      what: 'writing the run journal',
      options: { input: `${JSON.stringify(record, null, 2)}\n`, timeoutMs: QUICK_MS },
    },
  );
}

/** The open run's journal on this host, if any. */
export async function readRecord(host: Host, container: string): Promise<JournalRecord | undefined> {
  const file = `${containerStateDir(container)}/journal.json`;
  const result = await runChecked(
    host,
    `if [ -f ${shellQuote([file])} ]; then cat ${shellQuote([file])}; fi`,
    {
      step: 'journal',
      what: 'reading the run journal',
      options: { timeoutMs: QUICK_MS },
    },
  );
  return result.stdout.trim() === '' ? undefined : parseRecord(result.stdout);
}

/** Moves a finished run's journal into the history and keeps only the newest HISTORY_KEEP there. */
export async function archiveRecord(host: Host, record: JournalRecord): Promise<void> {
  const dir = containerStateDir(record.container);
  const history = `${dir}/history`;
  await runChecked(
    host,
    [
      PRIVATE,
      `mkdir -p ${shellQuote([history])}`,
      `&& cat >${shellQuote([`${history}/${record.checkpointName}.json`])}`,
      `&& rm -f ${shellQuote([`${dir}/journal.json`])}`,
      `&& cd ${shellQuote([history])} && ls -1t | tail -n +${HISTORY_KEEP + 1} | xargs -r rm -f --`,
    ].join(' '),
    {
      step: 'journal',
      what: 'archiving the run journal',
      options: { input: `${JSON.stringify(record, null, 2)}\n`, timeoutMs: QUICK_MS },
    },
  );
}

export type LockAttempt =
  | { acquired: true }
  | {
      acquired: false;
      owner?: RunOwner;
      ageSeconds: number;
      /** The holder as found (owner file's time and hash): a takeover replaces only this very holder. */
      fingerprint: string;
    };

/**
 * mkdir is atomic: the run that creates lock/ holds it. A run that finds it
 * held learns who holds it and how long ago the holder last renewed it (by the
 * host's own clock, so runner clocks do not matter).
 */
export async function tryLock(host: Host, container: string, owner: RunOwner): Promise<LockAttempt> {
  return tryLockAt(host, containerLock(container), owner);
}

function containerLock(container: string): string {
  return `${containerStateDir(container)}/lock`;
}

/**
 * Shell function `fp`: the holder of lock "$l" as it is now. The owner file's
 * time (to the nanosecond) changes with every renewal and its hash with every new owner, so an
 * unchanged fingerprint means the same holder, not renewed since.
 */
const FINGERPRINT = [
  'fp() {',
  '  if [ -f "$l/owner.json" ]; then echo "$(stat -c %y "$l/owner.json") $(sha256sum <"$l/owner.json" | cut -c1-64)"',
  '  elif [ -d "$l" ]; then echo "empty $(stat -c %y "$l")"',
  '  else echo none; fi',
  '}',
].join('\n');

/**
 * Serialises takeovers and releases of one lock: a file beside the lock
 * directory, held with flock(1) for the one script that checks and replaces.
 */
function underLockGuard(lock: string): string {
  return [
    `${PRIVATE} l=${shellQuote([lock])}`,
    'exec 9>>"$l.guard" || exit 1',
    'flock -w 20 9 || { echo "timed out waiting for $l.guard" >&2; exit 1; }',
  ].join('\n');
}

/** tryLock for any lock directory (a store's series lock too). */
export async function tryLockAt(host: Host, lock: string, owner: RunOwner): Promise<LockAttempt> {
  const dir = lock.replace(/\/[^/]+$/, '');
  const script = [
    `${PRIVATE} mkdir -p ${shellQuote([dir])} || exit 1`,
    `l=${shellQuote([lock])}`,
    'if mkdir "$l" 2>/dev/null; then cat >"$l/owner.json" && echo acquired; exit; fi',
    'cat >/dev/null',
    FINGERPRINT,
    'f=$(fp)',
    'm=$(stat -c %Y "$l/owner.json" 2>/dev/null || stat -c %Y "$l" 2>/dev/null || date +%s)',
    'echo "held $(( $(date +%s) - m ))"',
    'echo "fp $f"',
    'cat "$l/owner.json" 2>/dev/null || true',
  ].join('\n');
  const result = await runChecked(host, script, {
    step: 'lock',
    what: 'taking the container lock',
    options: { input: JSON.stringify(owner), timeoutMs: QUICK_MS },
  });
  const [first = '', second = '', ...rest] = result.stdout.split('\n');
  if (first.trim() === 'acquired') return { acquired: true };
  const age = Number(/^held (-?\d+)/.exec(first.trim())?.[1] ?? '0');
  const fingerprint = /^fp (.*)$/.exec(second.trim())?.[1] ?? '';
  let held: RunOwner | undefined;
  try {
    held = JSON.parse(rest.join('\n')) as RunOwner;
  } catch {
    held = undefined;
  }
  return { acquired: false, owner: held, ageSeconds: age, fingerprint };
}

export type TakeOver = 'acquired' | 'changed' | 'lost';

/**
 * Replaces a stale lock by this run's, but only the holder judged stale: in one
 * script under the lock's guard, the holder is compared with the fingerprint
 * read then, and replaced only when it is the same and not renewed since. Two
 * runs that judged the same holder stale cannot both win: the second finds the
 * first one's owner file. "changed": someone renewed or took it meanwhile;
 * "lost": a fresh run made the directory between the removal and ours.
 */
export async function takeOverLock(
  host: Host,
  container: string,
  owner: RunOwner,
  fingerprint: string,
): Promise<TakeOver> {
  return takeOverLockAt(host, containerLock(container), owner, fingerprint);
}

export async function takeOverLockAt(
  host: Host,
  lock: string,
  owner: RunOwner,
  fingerprint: string,
): Promise<TakeOver> {
  const script = [
    underLockGuard(lock),
    FINGERPRINT,
    `if [ "$(fp)" != ${shellQuote([fingerprint])} ]; then cat >/dev/null; echo changed; exit 0; fi`,
    'if rm -rf "$l" && mkdir "$l" 2>/dev/null; then cat >"$l/owner.json" && echo acquired; else cat >/dev/null; echo lost; fi',
  ].join('\n');
  const result = await runChecked(host, script, {
    step: 'lock',
    what: 'taking over a stale container lock',
    options: { input: JSON.stringify(owner), timeoutMs: QUICK_MS },
  });
  const said = result.stdout.trim();
  return said === 'acquired' || said === 'changed' ? said : 'lost';
}

export async function renewLock(host: Host, container: string, token: string): Promise<void> {
  await renewLockAt(host, containerLock(container), token);
}

export async function renewLockAt(host: Host, lock: string, token: string): Promise<void> {
  const file = `${lock}/owner.json`;
  await host.run(`grep -q ${shellQuote([token])} ${shellQuote([file])} && touch ${shellQuote([file])}`, {
    timeoutMs: QUICK_MS,
  });
}

/** Removes the lock only if this run still holds it. */
export async function releaseLock(host: Host, container: string, token: string): Promise<void> {
  await releaseLockAt(host, containerLock(container), token);
}

export async function releaseLockAt(host: Host, lock: string, token: string): Promise<void> {
  await runChecked(
    host,
    // Under the guard: a takeover cannot slip in between the check and the removal.
    `${underLockGuard(lock)}\nif grep -q ${shellQuote([token])} "$l/owner.json" 2>/dev/null; then rm -rf "$l"; fi`,
    { step: 'lock', what: 'releasing the container lock', options: { timeoutMs: QUICK_MS } },
  );
}
