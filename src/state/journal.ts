/**
 * The undo journal of one run: every side effect is written down (as
 * "intended") before it is made and marked "done" after, each with enough to
 * undo it. A "committed" entry is the point of no return: before it a failed
 * run is rolled back, after it only rolled forward. The same record is kept
 * in memory, on both hosts and in the runner's saved state for the post step.
 */

/** How containerd's copies of one checkpoint are told from others. */
export interface RestoreCopiesKey {
  inventorySha256?: string;
  marker?: string;
}

export type Side = 'source' | 'target';

/**
 * Which host must hold a journal write before the run goes on: the side the next change
 * affects, any one host (the commit point: a later run reads only the hosts), or none.
 * 'runner-only': the runner's saved state alone, never the hosts (what the post step should
 * leave be, while the hosts keep the open journal for a later run).
 */
export type Affected = Side | 'any-host' | 'runner-only' | undefined;

export type JournalAction =
  /** An image loaded into the target's Docker that it did not have. */
  | { kind: 'image-copied'; imageId: string }
  /**
   * The container created on the target. Its ID is known only after; until then the file
   * docker create --cidfile writes it to tells whether this run made it (never the name:
   * someone else may own a container of that name).
   */
  | { kind: 'target-created'; name: string; containerId?: string; cidFile?: string }
  /** Files or directories written on a host (memory images, staged files). */
  | { kind: 'files'; side: Side; paths: string[] }
  /** The CRIU configuration file of the restored container: removed on rollback, kept with it after the commit. */
  | { kind: 'restore-config'; path: string }
  /** A network holder created on the target (Docker 28/29: the restored container joins its network). */
  | { kind: 'holder-created'; name: string; containerId?: string; cidFile?: string }
  /** The network holder the source container joins: retired with it past the commit point. */
  | { kind: 'source-holder'; containerId: string }
  /**
   * The source frozen with docker pause. since: the source's clock just before the pause
   * (seconds since the epoch), from where Docker's events tell whether anyone resumed it.
   */
  | { kind: 'source-paused'; containerId: string; since?: string }
  /**
   * containerd's unpacked copies of the checkpoint on the target, known by the
   * run's marker file in them (written before the freeze) or, in journals of
   * restore mode and older runs, by the sha256 of CRIU's inventory image.
   * dir: containerd's TMPDIR on the target, where it unpacks checkpoints (/tmp when absent).
   */
  | ({ kind: 'restore-copies'; dir?: string } & RestoreCopiesKey)
  /** docker start --checkpoint on the target: from here the target may run the service. */
  | { kind: 'restore-started'; containerId: string }
  /** The point of no return: the target verified, or the checkpoint complete in the store. */
  | { kind: 'committed'; targetContainerId?: string; checkpoint?: string }
  /** The source's restart policy set to "no" (the previous one is kept for the record). */
  | { kind: 'restart-policy'; containerId: string; previous: string }
  /** The source killed while frozen. */
  | { kind: 'source-stopped'; containerId: string }
  /** The source container removed (source-after: remove). */
  | { kind: 'source-removed'; containerId: string }
  /** A named volume created on the target for the container's data. */
  | { kind: 'volume-created'; name: string }
  /** A target volume that existed: its old contents moved aside (put back on rollback, removed after the commit). */
  | { kind: 'volume-replaced'; name: string; mountpoint: string; aside: string }
  /**
   * Restore with replace: the stopped container of the same name renamed out of the way
   * (put back on rollback, removed after the commit).
   */
  | { kind: 'namesake-aside'; containerId: string; name: string; aside: string }
  /**
   * The run's key for host-to-host streams, authorized on that host in `file` on the line
   * ending with `tag`: removed whatever happens (rollback and roll-forward alike).
   */
  | { kind: 'authorized-key'; side: Side; file: string; tag: string }
  /** The moved volumes removed from the source after the commit (source-after: remove). */
  | { kind: 'source-volumes-removed'; names: string[] };

export interface JournalEntry {
  seq: number;
  /** abandoned: known not to have happened (the command never reached its daemon). */
  state: 'intended' | 'done' | 'abandoned';
  at: string;
  action: JournalAction;
}

/** Who ran it, so a second run can name the first and a stale lock can be recognised. */
export interface RunOwner {
  /** Random per run; the post step matches it to its own main step. */
  token: string;
  githubRunId?: string;
  githubRunAttempt?: string;
  githubJob?: string;
  runner?: string;
  /** The machine the action ran on, and its boot, to tell whether the owner process still lives. */
  machine?: string;
  bootId?: string;
  /** Its PID namespace (readlink /proc/self/ns/pid): the PID is judged only by a run in the same one. */
  pidNs?: string;
  pid: number;
  startedAt: string;
}

export const RECORD_STATUSES = ['running', 'committed', 'done', 'rolled-back', 'failed'] as const;
export type RecordStatus = (typeof RECORD_STATUSES)[number];

export interface JournalRecord {
  schema: 2;
  mode: string;
  container: string;
  checkpointName: string;
  source: string;
  target: string;
  sourceAfter: 'stop' | 'remove';
  /** Past the commit point, whether the source container is retired (migrate: always; checkpoint: leave-running false). */
  retireSource?: boolean;
  /**
   * A compose unit's member: the unit's commit marker (unitCommitPath), written on the hosts
   * once every member is verified and before any member commits. Found there, it commits this
   * member too, so a run that died between two members' commits is finished, never split.
   */
  unitCommit?: string;
  owner: RunOwner;
  status: RecordStatus;
  entries: JournalEntry[];
  updatedAt: string;
  /** What ended the run, "CODE: message". */
  error?: string;
  /** How a later run or the post step finished it. */
  resolvedBy?: string;
}

/** A run whose record is still open: someone has to roll it back or forward. */
export function isUnfinished(record: JournalRecord): boolean {
  return record.status === 'running' || record.status === 'committed';
}

export function isCommitted(record: Pick<JournalRecord, 'entries'>): boolean {
  return record.entries.some((entry) => entry.action.kind === 'committed' && entry.state === 'done');
}

/** The record as committed by its unit's marker: a done commit entry after what it saw. */
export function committedByUnit(record: JournalRecord, at: Date): JournalRecord {
  const seq = record.entries.reduce((max, entry) => Math.max(max, entry.seq), 0) + 1;
  const started = record.entries.find((entry) => entry.action.kind === 'restore-started')?.action;
  return {
    ...record,
    status: 'committed',
    entries: [
      ...record.entries,
      {
        seq,
        state: 'done',
        at: at.toISOString(),
        action: {
          kind: 'committed',
          ...(started?.kind === 'restore-started' ? { targetContainerId: started.containerId } : {}),
        },
      },
    ],
  };
}

/** Parses a record read from a host or from saved state; undefined for anything else. */
export function parseRecord(text: string): JournalRecord | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const record = value as Partial<JournalRecord>;
  if (record.schema !== 2 || !Array.isArray(record.entries) || typeof record.checkpointName !== 'string') {
    return undefined;
  }
  if (!RECORD_STATUSES.includes(record.status as RecordStatus)) return undefined;
  return record as JournalRecord;
}

/**
 * Of the copies found (both hosts, saved state), the one that saw the most:
 * they are written in the same order, so the longest journal is the newest.
 */
export function newestRecord(records: readonly (JournalRecord | undefined)[]): JournalRecord | undefined {
  let best: JournalRecord | undefined;
  for (const record of records) {
    if (!record) continue;
    if (!best) {
      best = record;
      continue;
    }
    if (record.checkpointName !== best.checkpointName) {
      // Two different runs: the later one is the open question.
      if (record.updatedAt > best.updatedAt) best = record;
      continue;
    }
    const seen = (r: JournalRecord) => r.entries.reduce((n, e) => n + (e.state === 'done' ? 2 : 1), 0);
    if (seen(record) > seen(best) || (seen(record) === seen(best) && record.updatedAt > best.updatedAt)) {
      best = record;
    }
  }
  return best;
}

/** The in-memory journal; `persist` writes it everywhere it lives before the caller goes on. */
export class Journal {
  private seq = 0;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    readonly record: JournalRecord,
    private readonly persist: (record: JournalRecord, affected: Affected) => Promise<void>,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.seq = record.entries.reduce((max, entry) => Math.max(max, entry.seq), 0);
  }

  /** Writes the intent down, makes the change, then marks it done. */
  async around<T>(action: JournalAction, affected: Affected, effect: () => Promise<T>): Promise<T> {
    const entry = await this.intend(action, affected);
    const result = await effect();
    await this.done(entry, affected);
    return result;
  }

  async intend(action: JournalAction, affected: Affected): Promise<JournalEntry> {
    const [entry] = await this.intendAll([action], affected);
    return entry as JournalEntry;
  }

  async done(entry: JournalEntry, affected: Affected, update?: Partial<JournalAction>): Promise<void> {
    const before = { state: entry.state, status: this.record.status };
    entry.state = 'done';
    if (update) entry.action = { ...entry.action, ...update } as JournalAction;
    if (entry.action.kind === 'committed') this.record.status = 'committed';
    try {
      await this.save(affected);
    } catch (error) {
      // A commit no host holds is no commit: a later run would read it as not made.
      if (entry.action.kind === 'committed') {
        entry.state = before.state;
        this.record.status = before.status;
      }
      throw error;
    }
  }

  async abandon(entry: JournalEntry, affected: Affected): Promise<void> {
    entry.state = 'abandoned';
    await this.save(affected);
  }

  /** Several intents written at once (one round trip in the frozen window). */
  async intendAll(actions: JournalAction[], affected: Affected): Promise<JournalEntry[]> {
    const at = this.now().toISOString();
    const entries = actions.map(
      (action): JournalEntry => ({ seq: ++this.seq, state: 'intended', at, action }),
    );
    this.record.entries.push(...entries);
    try {
      await this.save(affected);
    } catch (error) {
      // Not written down where it matters, so not done: nothing to undo for these.
      for (const entry of entries) entry.state = 'abandoned';
      throw error;
    }
    return entries;
  }

  async finish(
    status: RecordStatus,
    details: { error?: string; resolvedBy?: string } = {},
    where: Affected = undefined,
  ): Promise<void> {
    this.record.status = status;
    if (details.error !== undefined) this.record.error = details.error;
    if (details.resolvedBy !== undefined) this.record.resolvedBy = details.resolvedBy;
    await this.save(where);
  }

  /** Writes the journal as it is now (after changes made to entries directly). */
  async save(affected: Affected = undefined): Promise<void> {
    // One write at a time, each of the whole record as it is when its turn
    // comes: two intents made at once cannot leave the older copy on a host.
    const turn = this.writing.then(() => {
      this.record.updatedAt = this.now().toISOString();
      return this.persist(this.record, affected);
    });
    this.writing = turn.catch(() => {});
    await turn;
  }
}
