import { describe, expect, it } from 'vitest';
import { planRecovery } from '../../src/policy/recovery.js';
import type { JournalAction, JournalEntry } from '../../src/state/journal.js';

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
        entry(2, { kind: 'target-created', name: 'app' }),
      ],
    });
    expect(plan.steps.map((step) => step.kind)).toEqual(['remove-target-container', 'resume-source']);
  });
});
