import {
  isCommitted,
  type JournalAction,
  type JournalRecord,
  type RestoreCopiesKey,
  type Side,
} from '../state/journal.js';

/** One step of putting a half-finished run right; the executor lives in state/recovery.ts. */
export type RecoveryStep =
  /**
   * critical: the target may have run the service, so unless it is confirmed
   * gone the source must stay frozen (two live copies are worse than a pause).
   */
  | { kind: 'remove-target-container'; ref: string; critical: boolean }
  /**
   * A container whose create was journalled but whose ID never reached the journal:
   * removed only by the ID docker create wrote into cidFile, never by its name.
   */
  | { kind: 'remove-created-container'; name: string; cidFile?: string }
  | { kind: 'remove-image'; imageId: string }
  | { kind: 'remove-files'; side: Side; paths: string[] }
  /** The run's host-to-host key: its line in authorized_keys goes, other lines stay. */
  | { kind: 'remove-authorized-key'; side: Side; file: string; tag: string }
  | ({ kind: 'remove-restore-copies'; dir?: string } & RestoreCopiesKey)
  | { kind: 'resume-source'; containerId: string }
  /** A volume this run created on the target. */
  | { kind: 'remove-volume'; name: string }
  /** A replaced target volume gets its old contents back. */
  | { kind: 'restore-volume'; name: string; mountpoint: string; aside: string }
  /** The target's stopped namesake gets its name back (rollback). */
  | { kind: 'restore-namesake'; containerId: string; name: string }
  /** The target's stopped namesake, replaced by the restored container, is removed (roll forward). */
  | { kind: 'remove-namesake'; containerId: string; name: string }
  /** Roll forward with source-after: remove: the moved volumes leave the source with its container. */
  | { kind: 'remove-source-volumes'; names: string[] }
  /** Roll forward: restart policy "no", SIGKILL, check it is dead, remove it if asked. */
  | {
      kind: 'retire-source';
      containerId: string;
      previousPolicy?: string;
      remove: boolean;
      /** Its network holder, stopped (or removed) with it. */
      holderId?: string;
      /**
       * Checkpoint mode: the container is not the service's old copy but the service itself, so
       * it is stopped only when it is proven still frozen by this run since this time (the
       * source's clock); one that runs again, or cannot be proven, is left as it is.
       */
      onlyFrozenSince?: string;
    };

/** What a checkpoint run's roll-forward may do with the container it froze. */
export type FrozenCopyVerdict = 'stop' | 'running-again' | 'unproven';

/**
 * Whether the container is still the copy this run froze: paused now, and Docker's
 * events since just before the freeze show a pause and no unpause (the events are
 * undefined when they could not be read, or no time was recorded). A daemon restart
 * forgets its events: that is unproven, never a licence to kill.
 */
export function frozenCopyVerdict(
  state: { running: boolean; paused: boolean },
  events: readonly string[] | undefined,
): FrozenCopyVerdict {
  if (state.running && !state.paused) return 'running-again';
  if (!state.paused) return 'stop';
  if (!events || events.includes('unpause') || !events.includes('pause')) return 'unproven';
  return 'stop';
}

export interface RecoveryPlan {
  direction: 'rollback' | 'roll-forward' | 'nothing';
  steps: RecoveryStep[];
}

function compensation(action: JournalAction): RecoveryStep | undefined {
  switch (action.kind) {
    case 'restore-started':
      return { kind: 'remove-target-container', ref: action.containerId, critical: true };
    case 'files':
      return { kind: 'remove-files', side: action.side, paths: action.paths };
    case 'restore-config':
      return { kind: 'remove-files', side: 'target', paths: [action.path] };
    case 'authorized-key':
      return { kind: 'remove-authorized-key', side: action.side, file: action.file, tag: action.tag };
    case 'source-paused':
      return { kind: 'resume-source', containerId: action.containerId };
    case 'target-created':
    case 'holder-created':
      return action.containerId
        ? { kind: 'remove-target-container', ref: action.containerId, critical: false }
        : {
            kind: 'remove-created-container',
            name: action.name,
            ...(action.cidFile ? { cidFile: action.cidFile } : {}),
          };
    case 'image-copied':
      return { kind: 'remove-image', imageId: action.imageId };
    case 'restore-copies':
      return restoreCopiesStep(action);
    case 'volume-created':
      return { kind: 'remove-volume', name: action.name };
    case 'namesake-aside':
      return { kind: 'restore-namesake', containerId: action.containerId, name: action.name };
    case 'volume-replaced':
      return {
        kind: 'restore-volume',
        name: action.name,
        mountpoint: action.mountpoint,
        aside: action.aside,
      };
    default:
      // Entries after the commit point have no compensation: the run only goes forward from there.
      return undefined;
  }
}

function restoreCopiesStep(action: Extract<JournalAction, { kind: 'restore-copies' }>): RecoveryStep {
  const { kind: _kind, ...rest } = action;
  return { kind: 'remove-restore-copies', ...rest };
}

/**
 * What to do with a run that stopped half way. Before the commit point every
 * recorded effect, intended or done, is undone newest first (an intended one
 * may have happened just before the run died; every compensation is safe to
 * run for an effect that did not happen). After it, the target is never
 * touched: the source is retired and the temporary files are removed.
 */
export function planRecovery(
  record: Pick<JournalRecord, 'entries' | 'sourceAfter' | 'retireSource'> & { mode?: JournalRecord['mode'] },
): RecoveryPlan {
  if (record.entries.length === 0) return { direction: 'nothing', steps: [] };
  if (isCommitted(record)) {
    const paused = record.entries.find((entry) => entry.action.kind === 'source-paused')?.action;
    const policy = record.entries.find((entry) => entry.action.kind === 'restart-policy')?.action;
    const removed = record.entries.some(
      (entry) => entry.action.kind === 'source-removed' && entry.state === 'done',
    );
    const holder = record.entries.find((entry) => entry.action.kind === 'source-holder')?.action;
    const steps: RecoveryStep[] = [];
    if (paused?.kind === 'source-paused' && !removed && record.retireSource !== false) {
      steps.push({
        kind: 'retire-source',
        containerId: paused.containerId,
        previousPolicy: policy?.kind === 'restart-policy' ? policy.previous : undefined,
        remove: record.sourceAfter === 'remove',
        ...(holder?.kind === 'source-holder' ? { holderId: holder.containerId } : {}),
        // An unknown time still asks for proof: nothing can prove such a copy frozen.
        ...(record.mode === 'checkpoint' ? { onlyFrozenSince: paused.since ?? '' } : {}),
      });
    }
    const volumesGone = record.entries.find((entry) => entry.action.kind === 'source-volumes-removed');
    if (
      volumesGone?.action.kind === 'source-volumes-removed' &&
      volumesGone.state !== 'done' &&
      record.sourceAfter === 'remove'
    ) {
      steps.push({ kind: 'remove-source-volumes', names: volumesGone.action.names });
    }
    for (const entry of record.entries) {
      const { action } = entry;
      if (action.kind === 'namesake-aside' && entry.state !== 'abandoned')
        steps.push({ kind: 'remove-namesake', containerId: action.containerId, name: action.name });
      if (action.kind === 'volume-replaced')
        steps.push({ kind: 'remove-files', side: 'target', paths: [action.aside] });
      if (action.kind === 'files')
        steps.push({ kind: 'remove-files', side: action.side, paths: action.paths });
      if (action.kind === 'authorized-key' && entry.state !== 'abandoned')
        steps.push({ kind: 'remove-authorized-key', side: action.side, file: action.file, tag: action.tag });
      if (action.kind === 'restore-copies') {
        steps.push(restoreCopiesStep(action));
      }
    }
    return { direction: 'roll-forward', steps };
  }
  const steps: RecoveryStep[] = [];
  const removing = new Set<string>();
  for (const entry of [...record.entries].reverse()) {
    if (entry.state === 'abandoned') continue;
    const step = compensation(entry.action);
    if (!step) continue;
    // restore-started and target-created name the same container: remove it once.
    if (step.kind === 'remove-target-container') {
      if (removing.has(step.ref)) continue;
      removing.add(step.ref);
    }
    steps.push(step);
  }
  return { direction: steps.length > 0 ? 'rollback' : 'nothing', steps: resumeAfterRemovals(steps) };
}

/**
 * The source resumes only after every target container it could clash with
 * is removed, whatever order their entries were written in (the restore's
 * intents are written before the pause).
 */
function resumeAfterRemovals(steps: RecoveryStep[]): RecoveryStep[] {
  const lastRemovalIn = (list: RecoveryStep[]): number =>
    list.findLastIndex(
      (step) => step.kind === 'remove-target-container' || step.kind === 'remove-created-container',
    );
  const lastRemoval = lastRemovalIn(steps);
  const firstResume = steps.findIndex((step) => step.kind === 'resume-source');
  if (firstResume < 0 || lastRemoval < firstResume) return steps;
  const resumes = steps.filter((step) => step.kind === 'resume-source');
  const rest = steps.filter((step) => step.kind !== 'resume-source');
  const at = lastRemovalIn(rest) + 1;
  return [...rest.slice(0, at), ...resumes, ...rest.slice(at)];
}
