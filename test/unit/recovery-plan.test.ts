import { describe, expect, it } from 'vitest';
import { frozenCopyVerdict, planRecovery } from '../../src/policy/recovery.js';
import { isUnitCommitPath, unitCommitPath } from '../../src/state/host-records.js';
import {
  committedByUnit,
  isCommitted,
  type JournalAction,
  type JournalEntry,
  type JournalRecord,
} from '../../src/state/journal.js';

const entry = (
  seq: number,
  action: JournalAction,
  state: JournalEntry['state'] = 'intended',
): JournalEntry => ({
  seq,
  state,
  at: '2026-11-28T12:00:00.000Z',
  action,
});

describe('planRecovery: rollback order', () => {
  it('resumes the source only after the target container is removed, even when the restore was intended before the pause', () => {
    // The restore's intents are written before the freeze, so they are older than the pause.
    const plan = planRecovery({
      sourceAfter: 'stop',
      entries: [
        entry(1, { kind: 'target-created', name: 'app', containerId: 'target1' }, 'done'),
        entry(2, { kind: 'restore-copies', marker: 'target1/cp', dir: '/tmp' }),
        entry(3, { kind: 'restore-started', containerId: 'target1' }),
        entry(4, { kind: 'files', side: 'source', paths: ['/var/lib/criu-migrate/work/cp'] }),
        entry(5, { kind: 'source-paused', containerId: 'source1' }, 'done'),
      ],
    });
    expect(plan.direction).toBe('rollback');
    expect(plan.steps.map((step) => step.kind)).toEqual([
      'remove-files',
      'remove-target-container',
      'resume-source',
      'remove-restore-copies',
    ]);
    expect(plan.steps[1]).toEqual({ kind: 'remove-target-container', ref: 'target1', critical: true });
    expect(plan.steps[3]).toEqual({ kind: 'remove-restore-copies', marker: 'target1/cp', dir: '/tmp' });
  });

  it('keeps the written order when the pause is already the newest effect after the removals', () => {
    const plan = planRecovery({
      sourceAfter: 'stop',
      entries: [
        entry(1, { kind: 'source-paused', containerId: 'source1' }, 'done'),
        entry(2, { kind: 'target-created', name: 'app', cidFile: '/w/target.cid' }),
      ],
    });
    expect(plan.steps.map((step) => step.kind)).toEqual(['remove-created-container', 'resume-source']);
  });
});

describe('planRecovery: a container whose ID the journal never got', () => {
  it('is removed by the ID docker create wrote, never by its name', () => {
    const plan = planRecovery({
      sourceAfter: 'stop',
      entries: [entry(1, { kind: 'target-created', name: 'app', cidFile: '/w/target.cid' })],
    });
    expect(plan.steps).toEqual([{ kind: 'remove-created-container', name: 'app', cidFile: '/w/target.cid' }]);
    expect(JSON.stringify(plan.steps)).not.toContain('"ref":"app"');
  });

  it('an older journal without a cidfile gets no removal by name either', () => {
    const plan = planRecovery({
      sourceAfter: 'stop',
      entries: [entry(1, { kind: 'holder-created', name: 'app-net' })],
    });
    expect(plan.steps).toEqual([{ kind: 'remove-created-container', name: 'app-net' }]);
  });

  it('a create whose ID was journalled is removed by that ID, once', () => {
    const plan = planRecovery({
      sourceAfter: 'stop',
      entries: [
        entry(1, { kind: 'target-created', name: 'app', containerId: 'id1', cidFile: '/w/t.cid' }, 'done'),
        entry(2, { kind: 'restore-started', containerId: 'id1' }),
      ],
    });
    expect(plan.steps).toEqual([{ kind: 'remove-target-container', ref: 'id1', critical: true }]);
  });
});

describe('planRecovery: a replaced namesake', () => {
  const aside: JournalAction = {
    kind: 'namesake-aside',
    containerId: 'old1',
    name: 'web',
    aside: 'web-replaced-r1',
  };

  it('gets its name back after the restored container is removed, on rollback', () => {
    const plan = planRecovery({
      entries: [
        entry(1, { kind: 'files', side: 'target', paths: ['/w'] }, 'done'),
        entry(2, aside, 'done'),
        entry(3, { kind: 'target-created', name: 'web', containerId: 'new1' }, 'done'),
      ],
      sourceAfter: 'stop',
    });
    expect(plan.direction).toBe('rollback');
    expect(plan.steps.map((step) => step.kind)).toEqual([
      'remove-target-container',
      'restore-namesake',
      'remove-files',
    ]);
    expect(plan.steps[1]).toEqual({ kind: 'restore-namesake', containerId: 'old1', name: 'web' });
  });

  it('is removed past the commit point, never touched when its rename was abandoned', () => {
    const committed = (state: JournalEntry['state']) =>
      planRecovery({
        entries: [
          entry(1, aside, state),
          entry(2, { kind: 'restore-started', containerId: 'new1' }, 'done'),
          entry(3, { kind: 'committed', targetContainerId: 'new1' }, 'done'),
        ],
        sourceAfter: 'stop',
        retireSource: false,
      });
    expect(committed('done').steps).toEqual([{ kind: 'remove-namesake', containerId: 'old1', name: 'web' }]);
    expect(committed('abandoned').steps).toEqual([]);
  });
});

describe("checkpoint mode's roll-forward", () => {
  const committed = (mode: string, since?: string) =>
    planRecovery({
      mode,
      sourceAfter: 'stop',
      retireSource: true,
      entries: [
        entry(1, { kind: 'source-paused', containerId: 'c1', ...(since ? { since } : {}) }, 'done'),
        entry(2, { kind: 'committed', checkpoint: '/store/c/s/n' }, 'done'),
      ],
    });

  it('stops the container only once proven frozen since the pause; migrate retires as before', () => {
    expect(committed('checkpoint', '1765000000.5').steps[0]).toEqual({
      kind: 'retire-source',
      containerId: 'c1',
      remove: false,
      onlyFrozenSince: '1765000000.5',
    });
    // A journal without the time still asks for proof, which then cannot be given.
    expect(committed('checkpoint').steps[0]).toMatchObject({ onlyFrozenSince: '' });
    expect(committed('migrate', '1765000000.5').steps[0]).not.toHaveProperty('onlyFrozenSince');
  });

  it('never stops one that runs again, nor one it cannot prove frozen', () => {
    const paused = { running: true, paused: true };
    expect(frozenCopyVerdict({ running: true, paused: false }, ['pause', 'unpause'])).toBe('running-again');
    expect(frozenCopyVerdict({ running: true, paused: false }, undefined)).toBe('running-again');
    expect(frozenCopyVerdict(paused, ['pause'])).toBe('stop');
    // Resumed and paused again by someone: the process ran in between.
    expect(frozenCopyVerdict(paused, ['pause', 'unpause', 'pause'])).toBe('unproven');
    // The daemon forgot (restarted) or the events could not be read.
    expect(frozenCopyVerdict(paused, [])).toBe('unproven');
    expect(frozenCopyVerdict(paused, undefined)).toBe('unproven');
    // Already stopped: nothing runs that could be lost.
    expect(frozenCopyVerdict({ running: false, paused: false }, undefined)).toBe('stop');
  });
});

describe("committedByUnit: a member's journal committed by its unit's marker", () => {
  const base: JournalRecord = {
    schema: 2,
    mode: 'migrate',
    container: 'shop-web-1',
    checkpointName: 'cutover-shop-web-1',
    source: 'root@127.0.0.2:22',
    target: 'root@127.0.0.3:22',
    sourceAfter: 'stop',
    unitCommit: '/var/lib/criu-migrate/units/shop-0123.committed',
    owner: { token: 't', pid: 1, startedAt: '2026-12-07T00:00:00.000Z' },
    status: 'running',
    updatedAt: '2026-12-07T00:00:01.000Z',
    entries: [
      {
        seq: 1,
        state: 'done',
        at: 'x',
        action: { kind: 'target-created', name: 'shop-web-1', containerId: 'b'.repeat(64) },
      },
      { seq: 2, state: 'done', at: 'x', action: { kind: 'source-paused', containerId: 'a'.repeat(64) } },
      { seq: 3, state: 'done', at: 'x', action: { kind: 'restore-started', containerId: 'b'.repeat(64) } },
      {
        seq: 4,
        state: 'intended',
        at: 'x',
        action: { kind: 'committed', targetContainerId: 'b'.repeat(64) },
      },
    ],
  };

  it('without the marker the member rolls back; with it, it rolls forward and the target is never touched', () => {
    expect(planRecovery(base).direction).toBe('rollback');
    const committed = committedByUnit(base, new Date('2026-12-07T00:00:02.000Z'));
    expect(isCommitted(committed)).toBe(true);
    expect(committed.status).toBe('committed');
    expect(committed.entries.at(-1)).toMatchObject({
      seq: 5,
      state: 'done',
      action: { kind: 'committed', targetContainerId: 'b'.repeat(64) },
    });
    const plan = planRecovery(committed);
    expect(plan.direction).toBe('roll-forward');
    expect(plan.steps.map((step) => step.kind)).toEqual(['retire-source']);
    // The input record is left as it was.
    expect(base.entries).toHaveLength(4);
  });

  it('the marker paths a journal may name', () => {
    expect(isUnitCommitPath(unitCommitPath('shop-0123abcd'))).toBe(true);
    expect(isUnitCommitPath('/var/lib/criu-migrate/units/../containers/x.committed')).toBe(false);
    expect(isUnitCommitPath('/etc/passwd')).toBe(false);
    expect(isUnitCommitPath('/var/lib/criu-migrate/units/a b.committed')).toBe(false);
  });
});
