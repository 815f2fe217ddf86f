import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type ContainerInspect, parseContainerInspect } from '../../src/engine/docker/inspect.js';
import type { ProcessRow } from '../../src/engine/engine.js';
import { restartPolicyText } from '../../src/phases/finalize.js';
import { logMatches, restoredProblems } from '../../src/phases/verify.js';
import { evaluateContainer } from '../../src/policy/container-rules.js';

// A real inspect of the test bed's counter container (Docker 26.1).
const counter = parseContainerInspect(
  readFileSync(resolve(import.meta.dirname, '../fixtures/docker26/inspect-testbed-counter.json'), 'utf8'),
);

function variant(change: (c: ContainerInspect) => void): ContainerInspect {
  const copy = structuredClone(counter);
  change(copy);
  return copy;
}

const statusOf = (checks: ReturnType<typeof evaluateContainer>, name: string) =>
  checks.find((check) => check.name === name)?.status;

describe('evaluateContainer', () => {
  it('passes the running counter with a free name on the target', () => {
    const checks = evaluateContainer({ ref: 'c', container: counter, targetNameTaken: false });
    expect(checks.filter((check) => check.status !== 'pass')).toEqual([]);
  });

  it.each([
    ['missing container', undefined, false, 'container exists', 'CONTAINER_NOT_FOUND'],
    [
      'stopped',
      variant((c) => Object.assign(c.State, { Running: false, Status: 'exited' })),
      false,
      'container running',
      'CONTAINER_NOT_RUNNING',
    ],
    [
      'paused (another migration?)',
      variant((c) => Object.assign(c.State, { Paused: true, Status: 'paused' })),
      false,
      'container running',
      'CONTAINER_NOT_RUNNING',
    ],
    [
      'restarting',
      variant((c) => Object.assign(c.State, { Restarting: true })),
      false,
      'container running',
      'CONTAINER_NOT_RUNNING',
    ],
    ['name taken on the target', counter, true, 'container name free', 'TARGET_NAME_TAKEN'],
    [
      'crun runtime',
      variant((c) => Object.assign(c.HostConfig, { Runtime: 'crun' })),
      false,
      'container runtime',
      'RUNTIME_UNSUPPORTED',
    ],
    [
      'devices',
      variant((c) =>
        Object.assign(c.HostConfig, {
          Devices: [{ PathOnHost: '/dev/fuse', PathInContainer: '/dev/fuse', CgroupPermissions: 'rwm' }],
        }),
      ),
      false,
      'devices attached',
      'CONTAINER_HAS_DEVICES',
    ],
    [
      'vfs storage',
      variant((c) => Object.assign(c, { GraphDriver: { Name: 'vfs', Data: {} } })),
      false,
      'container storage',
      'STORAGE_DRIVER_UNSUPPORTED',
    ],
  ])('fails a container that is %s', (_case, container, targetNameTaken, name, code) => {
    const checks = evaluateContainer({ ref: 'c', container, targetNameTaken });
    const failed = checks.filter((check) => check.status === 'fail');
    expect(failed.map((check) => check.name)).toEqual([name]);
    expect(failed[0]!.code).toBe(code);
    expect(failed[0]!.remedy).toBeTruthy();
    if (container) expect(statusOf(checks, name)).toBe('fail');
  });
});

describe('restoredProblems', () => {
  const running = variant((c) =>
    Object.assign(c.State, { Running: true, Paused: false, Restarting: false, Status: 'running', Pid: 4100 }),
  );
  // docker top rows: the init (parent outside the container) and a child of it.
  const rows = (init: string, initPid = 4100): ProcessRow[] => [
    { pid: 4107, ppid: initPid, args: 'sleep 0.1' },
    { pid: initPid, ppid: 4000, args: init },
  ];
  it.each<[string, ContainerInspect | undefined, string | undefined, ProcessRow[] | undefined, string[]]>([
    [
      'healthy, same first process',
      running,
      'sh /usr/local/bin/testbed-counter',
      rows('sh /usr/local/bin/testbed-counter'),
      [],
    ],
    [
      'healthy, no source to compare with (restore mode)',
      running,
      undefined,
      rows('sh /usr/local/bin/testbed-counter'),
      [],
    ],
    ['gone', undefined, 'x', undefined, ['the container is gone']],
    [
      'exited',
      variant((c) => Object.assign(c.State, { Running: false, Status: 'exited' })),
      undefined,
      undefined,
      ['state is exited, not running'],
    ],
    [
      'restarted',
      variant((c) => Object.assign(c, { RestartCount: 2 })),
      undefined,
      undefined,
      ['it restarted 2 time(s)'],
    ],
    [
      'a different first process',
      running,
      'sh /usr/local/bin/testbed-counter',
      [{ pid: 4100, ppid: 4000, args: 'sh' }],
      ['the source\'s first process "sh /usr/local/bin/testbed-counter" is not among its processes (sh)'],
    ],
    [
      // cgroup v2 with runc 1.1 and no cgroup root for CRIU: the process runs, outside the container.
      'restored outside its cgroup (restore mode: no source to compare with)',
      running,
      undefined,
      [],
      ["its main process (pid 4100) is not inside the container: the container's cgroup holds no process"],
    ],
    [
      'main process missing while others are there',
      running,
      undefined,
      [{ pid: 4107, ppid: 4000, args: 'sleep 0.1' }],
      [
        "its main process (pid 4100) is not inside the container: the container's cgroup holds only pids 4107",
      ],
    ],
  ])('%s', (_case, restored, sourceInit, table, problems) => {
    expect(restoredProblems(restored, sourceInit, table)).toEqual(problems);
  });
});

describe('restartPolicyText', () => {
  it.each([
    [{ Name: 'unless-stopped', MaximumRetryCount: 0 }, 'unless-stopped'],
    [{ Name: 'on-failure', MaximumRetryCount: 3 }, 'on-failure:3'],
    [{ Name: 'on-failure', MaximumRetryCount: 0 }, 'on-failure'],
    [{ Name: '', MaximumRetryCount: 0 }, 'no'],
    [undefined, 'no'],
  ])('%j -> %s', (policy, text) => {
    expect(restartPolicyText(variant((c) => Object.assign(c.HostConfig, { RestartPolicy: policy })))).toBe(
      text,
    );
  });
});

describe('logMatches', () => {
  it.each([
    ['len 16777216\n319 1795612548324 tok', /^\d+ \d{13} /, true],
    ['starting\nready to serve', /^ready/, true],
    ['not ready yet', /^ready/, false],
    ['', /x/, false],
  ])('%j against %s -> %s', (logs, pattern, expected) => {
    expect(logMatches(logs, pattern)).toBe(expected);
  });
});
