import { describe, expect, it } from 'vitest';
import type { JournalAction, JournalEntry } from '../../src/state/journal.js';
import { recover } from '../../src/state/recovery.js';
import { type ContainerStatus, FakeWorld, IMAGE_ID, IMAGE_TAG, NAME, SOURCE_ID } from './fake-world.js';

// The rollback executor against the fake hosts: what it may remove, and when it must not.
const TARGET_ID = 'b'.repeat(64);

const entry = (seq: number, action: JournalAction, state: JournalEntry['state'] = 'done'): JournalEntry => ({
  seq,
  state,
  at: '2026-12-06T22:00:00.000Z',
  action,
});

function world(sourceStatus: ContainerStatus | 'gone', targetStatus?: ContainerStatus): FakeWorld {
  const w = new FakeWorld();
  const source = w.source.machine.container(SOURCE_ID);
  if (!source) throw new Error('fake world without its source container');
  if (sourceStatus === 'gone')
    w.source.machine.containers.splice(w.source.machine.containers.indexOf(source), 1);
  else source.status = sourceStatus;
  if (targetStatus) {
    w.target.machine.images.set(IMAGE_ID, [IMAGE_TAG]);
    w.target.machine.addContainer({
      id: TARGET_ID,
      name: NAME,
      image: IMAGE_ID,
      imageRef: IMAGE_TAG,
      status: targetStatus,
      restartPolicy: 'no',
      upperDir: `/var/lib/docker/overlay2/${'c'.repeat(64)}/diff`,
    });
  }
  return w;
}

function logger(): { info(m: string): void; warning(m: string): void; lines: string[] } {
  const lines: string[] = [];
  return { info: (m) => lines.push(m), warning: (m) => lines.push(`warning: ${m}`), lines };
}

const restored = [
  entry(1, { kind: 'target-created', name: NAME, containerId: TARGET_ID }),
  entry(2, { kind: 'source-paused', containerId: SOURCE_ID }),
  entry(3, { kind: 'restore-started', containerId: TARGET_ID }),
];

describe('recover: a running target is removed only when the source can take over', () => {
  it('source frozen: the target is removed, then the source resumed', async () => {
    const w = world('paused', 'running');
    const outcome = await recover({ entries: restored, sourceAfter: 'stop' }, w, logger());
    expect(outcome.problems).toEqual([]);
    expect(w.target.machine.container(TARGET_ID)).toBeUndefined();
    expect(w.source.machine.container(SOURCE_ID)?.status).toBe('running');
  });

  it('source already stopped (killed after a commit this journal never saw): the target is kept', async () => {
    const w = world('exited', 'running');
    const log = logger();
    const outcome = await recover({ entries: restored, sourceAfter: 'stop' }, w, log);
    expect(outcome.targetKept).toBe(true);
    expect(outcome.problems.join('\n')).toMatch(
      /kept it: it runs, and the source container \w{12} is exited/,
    );
    expect(outcome.sourceLeftFrozen).toBe(false);
    expect(w.target.machine.container(TARGET_ID)?.status).toBe('running');
  });

  it('source gone and the target running: the target is kept', async () => {
    const w = world('gone', 'running');
    const outcome = await recover({ entries: restored, sourceAfter: 'stop' }, w, logger());
    expect(outcome.targetKept).toBe(true);
    expect(outcome.sourceGone).toBe(true);
    expect(outcome.sourceLeftFrozen).toBe(false);
    expect(outcome.problems).toHaveLength(1);
    expect(w.target.machine.container(TARGET_ID)?.status).toBe('running');
  });

  it('a target that does not run is removed whatever the source is', async () => {
    const w = world('exited', 'created');
    const outcome = await recover({ entries: restored, sourceAfter: 'stop' }, w, logger());
    expect(w.target.machine.container(TARGET_ID)).toBeUndefined();
    expect(outcome.targetKept).toBeUndefined();
  });
});

describe('recover: a source container removed since', () => {
  it('is moot: nothing to resume, no problem', async () => {
    const w = world('gone');
    const log = logger();
    const outcome = await recover(
      {
        entries: [
          entry(1, { kind: 'files', side: 'source', paths: ['/var/lib/criu-migrate/work/cp'] }),
          entry(2, { kind: 'source-paused', containerId: SOURCE_ID }),
        ],
        sourceAfter: 'stop',
      },
      w,
      log,
    );
    expect(outcome.problems).toEqual([]);
    expect(outcome.sourceGone).toBe(true);
    expect(log.lines.join('\n')).toMatch(/is gone \(removed since\): nothing to resume/);
  });
});

describe('recover: a create whose ID the journal never got', () => {
  const created = (cidFile?: string) => [
    entry(1, { kind: 'target-created', name: NAME, ...(cidFile ? { cidFile } : {}) }, 'intended'),
  ];

  it('without an ID from docker create, a container of that name is left alone', async () => {
    const w = world('running', 'created');
    const log = logger();
    const outcome = await recover(
      { entries: created('/var/lib/criu-migrate/work/cp/target.cid'), sourceAfter: 'stop' },
      w,
      log,
    );
    expect(outcome.problems).toEqual([]);
    expect(w.target.machine.container(TARGET_ID)?.status).toBe('created');
    expect(log.lines.join('\n')).toMatch(/left container ctr \(bbbbbbbbbbbb\) on the target alone/);
  });

  it('with the ID docker create wrote, that container is removed', async () => {
    const w = world('running', 'created');
    const cid = '/var/lib/criu-migrate/work/cp/target.cid';
    w.target.machine.add(cid);
    w.target.machine.contents.set(cid, `${TARGET_ID}\n`);
    const outcome = await recover({ entries: created(cid), sourceAfter: 'stop' }, w, logger());
    expect(outcome.problems).toEqual([]);
    expect(w.target.machine.container(TARGET_ID)).toBeUndefined();
  });
});
