import { describe, expect, it } from 'vitest';
import { describeOwner, type Here, staleLockReason } from '../../src/policy/lock.js';
import type { RunOwner } from '../../src/state/journal.js';

const HOST_NS = 'pid:[4026531836]';
const CONTAINER_NS = 'pid:[4026532301]';

function owner(extra: Partial<RunOwner> = {}): RunOwner {
  return {
    token: 'abc',
    machine: 'runner-1',
    bootId: 'boot-1',
    pidNs: HOST_NS,
    pid: 4242,
    startedAt: '2026-12-06T22:00:00.000Z',
    ...extra,
  };
}

function here(alive: readonly number[], extra: Partial<Here> = {}): Here {
  return {
    machine: 'runner-1',
    bootId: 'boot-1',
    pidNs: HOST_NS,
    isAlive: (pid) => alive.includes(pid),
    ...extra,
  };
}

describe('staleLockReason', () => {
  it('a lock not renewed for longer than the limit is stale, whoever holds it', () => {
    expect(staleLockReason({ owner: owner(), ageSeconds: 91 }, here([4242]))).toBe('not renewed for 91 s');
    expect(staleLockReason({ ageSeconds: 200 }, here([]))).toBe('not renewed for 200 s');
  });

  it('a fresh lock of a live process is held', () => {
    expect(staleLockReason({ owner: owner(), ageSeconds: 5 }, here([4242]))).toBeUndefined();
  });

  it('a fresh lock whose process ended on this machine, same boot and PID namespace, is stale', () => {
    expect(staleLockReason({ owner: owner(), ageSeconds: 5 }, here([]))).toBe(
      'its process 4242 on runner-1 has ended',
    );
  });

  it('an owner in another PID namespace of the same machine is judged by age only', () => {
    // A runner in a container: same host name and boot ID, but its PID means nothing here.
    const inContainer = owner({ pidNs: CONTAINER_NS });
    expect(staleLockReason({ owner: inContainer, ageSeconds: 5 }, here([]))).toBeUndefined();
    expect(staleLockReason({ owner: inContainer, ageSeconds: 95 }, here([]))).toBe('not renewed for 95 s');
  });

  it('we in another PID namespace than the owner: its PID is not looked up here', () => {
    expect(
      staleLockReason({ owner: owner(), ageSeconds: 5 }, here([], { pidNs: CONTAINER_NS })),
    ).toBeUndefined();
  });

  it('an owner record without a PID namespace (older runs) or ours unknown: age only', () => {
    const { pidNs: _ns, ...older } = owner();
    expect(staleLockReason({ owner: older, ageSeconds: 5 }, here([]))).toBeUndefined();
    expect(
      staleLockReason({ owner: owner(), ageSeconds: 5 }, here([], { pidNs: undefined })),
    ).toBeUndefined();
  });

  it('another machine or another boot: age only', () => {
    expect(
      staleLockReason({ owner: owner({ machine: 'runner-2' }), ageSeconds: 5 }, here([])),
    ).toBeUndefined();
    expect(staleLockReason({ owner: owner({ bootId: 'boot-0' }), ageSeconds: 5 }, here([]))).toBeUndefined();
  });

  it('names the owner for MIGRATION_IN_PROGRESS', () => {
    expect(describeOwner(owner({ githubRunId: '7', githubRunAttempt: '2' }))).toBe(
      'GitHub run 7 attempt 2, started 2026-12-06T22:00:00.000Z',
    );
    expect(describeOwner(undefined)).toMatch(/unreadable/);
  });
});
