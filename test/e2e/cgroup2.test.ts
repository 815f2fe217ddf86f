import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { variantBed } from './global-setup.js';
import { containerState, expectCounterContinued, expectNothingLeft } from './invariants.js';
import { expectSameConnection, replies, startLoopbackPair } from './loopback-pair.js';
import { type ActionRun, runAction } from './run-action.js';
import {
  bedHost,
  checkCounterMemory,
  containerLogs,
  onHost,
  onHostResult,
  parseCounter,
  sshInputs,
  startCounter,
  type Testbed,
} from './testbed.js';

// The cgroup v2 bed (test/testbed/cgroup2-bed.sh), where current distributions are:
// hosts 1, 2 trixie (Docker 26.1, runc 1.1) cgroupfs driver; 3 the store; 4, 5 the same
// stack booting systemd with Docker's systemd driver; 6, 7 sid (Docker 28.5, runc 1.3);
// 8 trixie on cgroup v1. .ci/run takes it down in its trap.
const v2Bed = variantBed('cgroup2-bed.sh');
let bed: Testbed;
const MB = 24;
const store = '/var/lib/criu-migrate-e2e-v2-store';

beforeAll(() => {
  bed = v2Bed.up();
});

afterAll(() => {
  v2Bed.down();
});

const at = (n: number): string => bedHost(bed, n).destination;

/** The bed seen as one pair, for the invariants written for hosts 1 and 2. */
function pair(a: number, b: number): Testbed {
  return { ...bed, host1: at(a), host2: at(b) };
}

function migrateInputs(
  source: number,
  target: number,
  container: string,
  extra: Record<string, string> = {},
) {
  return {
    mode: 'migrate',
    container,
    source: at(source),
    target: at(target),
    ...sshInputs(bed),
    'verify-log-pattern': '^\\d+ \\d{13} ',
    'verify-timeout': '20',
    timeout: '10',
    ...extra,
  };
}

async function clean(name: string, hosts: number[]): Promise<void> {
  for (const n of hosts) await onHostResult(bed, at(n), `docker rm -f ${name} ${name}-netholder`);
}

function metadataOf(run: ActionRun): { error?: { code: string; step: string } } {
  return JSON.parse(readFileSync(run.outputs['metadata-path']!, 'utf8'));
}

/**
 * The container's main process is inside it, as Docker and the kernel see it: its cgroup2
 * line names the container's own cgroup, `docker top` lists it, and `docker pause` freezes
 * it (the counter prints nothing while paused) and `docker unpause` lets it go on.
 */
async function expectInsideContainer(
  n: number,
  name: string,
  cgroupOf: (id: string) => string,
): Promise<void> {
  const host = at(n);
  const [id, pid] = (await onHost(bed, host, `docker inspect --format '{{.Id}} {{.State.Pid}}' ${name}`))
    .trim()
    .split(' ');
  const cgroup = await onHost(bed, host, `cat /proc/${pid}/cgroup`);
  expect(cgroup, `/proc/${pid}/cgroup on host ${n}`).toMatch(
    new RegExp(`^0::${cgroupOf(id!).replace(/\./g, '\\.')}$`, 'm'),
  );
  const top = await onHost(bed, host, `docker top ${name} -o pid,args`);
  expect(top.split('\n').some((line) => line.trim().startsWith(`${pid} `))).toBe(true);
  await onHost(bed, host, `docker pause ${name}`);
  const frozen = parseCounter(await containerLogs(bed, host, name)).length;
  await new Promise((r) => setTimeout(r, 800));
  expect(parseCounter(await containerLogs(bed, host, name)).length).toBe(frozen);
  await onHost(bed, host, `docker unpause ${name}`);
  await expectCounterContinued(bed, host, name);
}

const cgroupfsPath = (id: string): string => `/docker/${id}`;
const systemdPath = (id: string): string => `/system.slice/docker-${id}.scope`;

/** Moves a container's main process out of its cgroup once it runs there: the escape verify must catch. */
async function escapeWhenRunning(n: number, name: string, deadlineMs: number): Promise<string> {
  const until = Date.now() + deadlineMs;
  while (Date.now() < until) {
    const moved = await onHostResult(
      bed,
      at(n),
      `pid=$(docker inspect --format '{{if .State.Running}}{{.State.Pid}}{{end}}' ${name} 2>/dev/null); [ -n "$pid" ] && [ "$pid" != 0 ] || exit 3; mkdir -p /sys/fs/cgroup/e2e-escape && echo "$pid" >/sys/fs/cgroup/e2e-escape/cgroup.procs && echo "$pid"`,
    );
    if (moved.code === 0) return moved.stdout.trim();
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${name} never ran on host ${n}`);
}

describe('cgroup v2 hosts', () => {
  it("trixie's stack, cgroupfs driver: 1 -> 2 and back, memory intact, the process inside its container", async () => {
    const name = 'v2-counter';
    await clean(name, [1, 2]);
    await startCounter(bed, at(1), name, { mb: MB });
    const run = await runAction(migrateInputs(1, 2, name));
    expect(run.exitCode, run.stdout).toBe(0);
    expect(run.outputs.status).toBe('succeeded');
    expect(run.stdout).toMatch(
      /cgroup restore route: cgroup v2, cgroupfs driver, runc 1\.1\.15[^\n]*org\.criu\.config/,
    );
    expect(run.stdout).toMatch(/cgroup versions: source cgroup v2, target cgroup v2/);
    await expectInsideContainer(2, name, cgroupfsPath);
    await checkCounterMemory(bed, at(2), name, MB * 1024 * 1024);
    // The annotation's file stays with the container, holding only its own cgroup.
    const id = (await onHost(bed, at(2), `docker inspect --format '{{.Id}}' ${name}`)).trim();
    const conf = (
      await onHost(
        bed,
        at(2),
        `cat "$(docker inspect --format '{{index .HostConfig.Annotations "org.criu.config"}}' ${name})"`,
      )
    ).trim();
    expect(conf).toBe(`cgroup-root :/docker/${id}`);
    await expectNothingLeft(pair(1, 2), name);

    const confPath = (
      await onHost(
        bed,
        at(2),
        `docker inspect --format '{{index .HostConfig.Annotations "org.criu.config"}}' ${name}`,
      )
    ).trim();
    await onHost(bed, at(1), `docker rm ${name}`);
    // Back, removing the source: its CRIU configuration file goes with it. The pages go during
    // the dump this time (memory: overlap), to the page server on host 1.
    const back = await runAction(migrateInputs(2, 1, name, { 'source-after': 'remove', memory: 'overlap' }));
    expect(back.exitCode, back.stdout).toBe(0);
    expect(back.outputs.status).toBe('succeeded');
    expect(back.stdout).toContain('overlap: the memory reached the target during the dump');
    expect(await containerState(bed, at(2), name)).toBeUndefined();
    expect((await onHostResult(bed, at(2), `test -e ${confPath}`)).code).toBe(1);
    await expectInsideContainer(1, name, cgroupfsPath);
    await checkCounterMemory(bed, at(1), name, MB * 1024 * 1024);
    await expectNothingLeft(pair(1, 2), name);
    await clean(name, [1, 2]);
  });

  it("trixie's stack, cgroupfs driver: a loopback connection inside the container moves established, 1 -> 2", async () => {
    // One CRIU configuration file carries both lines here: cgroup-root and tcp-established.
    const name = 'v2-loopback';
    await clean(name, [1, 2]);
    const pairs = await startLoopbackPair(bed, at(1), name);
    const run = await runAction({ ...migrateInputs(1, 2, name), 'verify-log-pattern': '^reply n ' });
    expect(run.exitCode, run.stdout).toBe(0);
    expect(run.outputs.status).toBe('succeeded');
    expect(run.stdout).toMatch(/2 over loopback inside the container: [^\n]*moved established/);
    expect(run.stdout).toMatch(
      /restore configuration [^\n]*org\.criu\.config file; the connections inside[^\n]*tcp-established/,
    );
    const last = replies(await containerLogs(bed, at(1), name)).at(-1)!;
    await expectSameConnection(bed, at(2), name, pairs, last);
    // The process is inside its new container; the file keeps only its cgroup.
    const [id, pid] = (await onHost(bed, at(2), `docker inspect --format '{{.Id}} {{.State.Pid}}' ${name}`))
      .trim()
      .split(' ');
    expect(await onHost(bed, at(2), `cat /proc/${pid}/cgroup`)).toMatch(
      new RegExp(`^0::/docker/${id}$`, 'm'),
    );
    const conf = await onHost(
      bed,
      at(2),
      `cat "$(docker inspect --format '{{index .HostConfig.Annotations "org.criu.config"}}' ${name})"`,
    );
    expect(conf.trim()).toBe(`cgroup-root :/docker/${id}`);
    await clean(name, [1, 2]);
  });

  it("trixie's stack booting systemd, Docker's systemd driver: 4 -> 5 and back, in a scope systemd knows", async () => {
    const name = 'v2-systemd';
    await clean(name, [4, 5]);
    await startCounter(bed, at(4), name, { mb: MB });
    const run = await runAction(migrateInputs(4, 5, name));
    expect(run.exitCode, run.stdout).toBe(0);
    expect(run.outputs.status).toBe('succeeded');
    expect(run.stdout).toMatch(/cgroup restore route: cgroup v2, systemd driver/);
    await expectInsideContainer(5, name, systemdPath);
    const id = (await onHost(bed, at(5), `docker inspect --format '{{.Id}}' ${name}`)).trim();
    expect((await onHost(bed, at(5), `systemctl is-active docker-${id}.scope`)).trim()).toBe('active');
    await checkCounterMemory(bed, at(5), name, MB * 1024 * 1024);
    await expectNothingLeft(pair(4, 5), name);

    await onHost(bed, at(4), `docker rm ${name}`);
    // Back with the pages sent during the dump (memory: overlap).
    const back = await runAction(migrateInputs(5, 4, name, { memory: 'overlap' }));
    expect(back.exitCode, back.stdout).toBe(0);
    expect(back.outputs.status).toBe('succeeded');
    expect(back.stdout).toContain('overlap: the memory reached the target during the dump');
    await expectInsideContainer(4, name, systemdPath);
    await checkCounterMemory(bed, at(4), name, MB * 1024 * 1024);
    await expectNothingLeft(pair(4, 5), name);
    await clean(name, [4, 5]);
  });

  it('checkpoint into the store on host 1, restore on host 2: memory intact, inside its container', async () => {
    const name = 'v2-stored';
    await clean(name, [1, 2]);
    await onHostResult(bed, at(3), `rm -rf ${store}`);
    await startCounter(bed, at(1), name, { mb: MB });
    const common = { container: name, 'store-host': at(3), 'store-path': store, ...sshInputs(bed) };
    const taken = await runAction({
      ...common,
      mode: 'checkpoint',
      source: at(1),
      'checkpoint-name': 'v2-ck',
    });
    expect(taken.exitCode, taken.stdout).toBe(0);
    expect(taken.outputs.status).toBe('succeeded');
    const manifest = JSON.parse(
      await onHost(bed, at(3), `cat ${taken.outputs['checkpoint-path']}/manifest.json`),
    );
    expect(manifest.versions).toMatchObject({ cgroupVersion: '2', cgroupDriver: 'cgroupfs' });
    await onHost(bed, at(1), `docker rm -f ${name}`);

    const restored = await runAction({
      ...common,
      mode: 'restore',
      source: at(1),
      target: at(2),
      'verify-stable-seconds': '2',
    });
    expect(restored.exitCode, restored.stdout).toBe(0);
    expect(restored.outputs.status).toBe('succeeded');
    expect(restored.stdout).toMatch(/cgroup versions: checkpoint cgroup v2, target cgroup v2/);
    await expectInsideContainer(2, name, cgroupfsPath);
    await checkCounterMemory(bed, at(2), name, MB * 1024 * 1024);
    await clean(name, [1, 2]);
  });

  it("sid's stack (runc 1.3) on cgroup v2: host network and bridge through the holder, 6 -> 7", async () => {
    for (const [name, extra] of [
      ['v2-sid-host', '--network host'],
      ['v2-sid-bridge', ''],
    ] as const) {
      await clean(name, [6, 7]);
      await startCounter(bed, at(6), name, { mb: MB, extraArgs: extra });
      const run = await runAction(migrateInputs(6, 7, name, { 'docker28-network-holder': 'true' }));
      expect(run.exitCode, run.stdout).toBe(0);
      expect(run.outputs.status).toBe('succeeded');
      expect(run.stdout).toMatch(
        /cgroup restore route: cgroup v2, cgroupfs driver, runc 1\.3[^\n]*runc moves the restored process/,
      );
      await expectInsideContainer(7, name, cgroupfsPath);
      await checkCounterMemory(bed, at(7), name, MB * 1024 * 1024);
      await expectNothingLeft(pair(6, 7), name);
      await clean(name, [6, 7]);
    }
  });

  it('v1 -> v2 and v2 -> v1 are refused by the gate before anything is paused', async () => {
    for (const [from, to, observed] of [
      [8, 1, 'source cgroup v1, target cgroup v2'],
      [1, 8, 'source cgroup v2, target cgroup v1'],
    ] as const) {
      const name = `v2-mismatch-${from}`;
      await clean(name, [from, to]);
      await startCounter(bed, at(from), name);
      const run = await runAction(migrateInputs(from, to, name));
      expect(run.exitCode).not.toBe(0);
      expect(run.outputs.status).toBe('refused');
      expect(run.outputs['error-code']).toBe('CGROUP_MISMATCH');
      expect(metadataOf(run).error).toMatchObject({ code: 'CGROUP_MISMATCH', step: 'preflight' });
      expect(run.stdout).toContain(observed);
      expect(await containerState(bed, at(from), name)).toMatchObject({ Running: true, Paused: false });
      await expectCounterContinued(bed, at(from), name);
      expect(await containerState(bed, at(to), name)).toBeUndefined();
      await clean(name, [from, to]);
    }
  });

  it('restore mode refuses a checkpoint of the other cgroup version before touching the target', async () => {
    await onHostResult(bed, at(3), `rm -rf ${store}`);
    for (const [from, to, observed] of [
      [8, 2, 'checkpoint cgroup v1, target cgroup v2'],
      [1, 8, 'checkpoint cgroup v2, target cgroup v1'],
    ] as const) {
      const name = `v2-stored-${from}`;
      await clean(name, [from, to]);
      await startCounter(bed, at(from), name);
      const common = { container: name, 'store-host': at(3), 'store-path': store, ...sshInputs(bed) };
      const taken = await runAction({ ...common, mode: 'checkpoint', source: at(from) });
      expect(taken.outputs.status, taken.stdout).toBe('succeeded');
      const before = await onHost(
        bed,
        at(to),
        'docker ps -aq | sort; ls -A /var/lib/criu-migrate/work 2>/dev/null; true',
      );
      const run = await runAction({ ...common, mode: 'restore', source: at(from), target: at(to) });
      expect(run.exitCode).not.toBe(0);
      expect(run.outputs.status).toBe('refused');
      expect(run.outputs['error-code']).toBe('CGROUP_MISMATCH');
      expect(run.stdout).toContain(observed);
      expect(
        await onHost(bed, at(to), 'docker ps -aq | sort; ls -A /var/lib/criu-migrate/work 2>/dev/null; true'),
      ).toBe(before);
      await clean(name, [from, to]);
    }
  });

  it('a restored process that ends up outside its container is caught by verify and rolled back', async () => {
    const name = 'v2-escape';
    await clean(name, [1, 2]);
    await onHostResult(bed, at(2), 'rmdir /sys/fs/cgroup/e2e-escape');
    await startCounter(bed, at(1), name, { mb: MB });
    try {
      // The process leaves its container's cgroup while verify watches it (the state runc 1.1
      // leaves it in on cgroup v2 without the CRIU configuration).
      const [run, escaped] = await Promise.all([
        runAction(migrateInputs(1, 2, name, { 'verify-stable-seconds': '6' })),
        escapeWhenRunning(2, name, 90_000),
      ]);
      expect(escaped).toMatch(/^\d+$/);
      expect(run.exitCode).not.toBe(0);
      expect(run.outputs.status).toBe('rolled-back');
      expect(run.outputs['error-code']).toBe('VERIFY_FAILED');
      expect(run.stdout).toMatch(/its main process \(pid \d+\) is not inside the container/);
      expect(run.stdout).toMatch(/\/proc\/\d+\/cgroup on the target: 0::\/e2e-escape/);
      // Rolled back: the source runs on, one process, nothing of the run on the target.
      expect(await containerState(bed, at(1), name)).toMatchObject({ Running: true, Paused: false });
      await expectCounterContinued(bed, at(1), name);
      expect(await containerState(bed, at(2), name)).toBeUndefined();
      await expectNothingLeft(pair(1, 2), name);
    } finally {
      // The escaped process ended with its container; its cgroup goes once empty.
      for (let i = 0; i < 40; i++) {
        if (
          (
            await onHostResult(
              bed,
              at(2),
              'rmdir /sys/fs/cgroup/e2e-escape || ! test -d /sys/fs/cgroup/e2e-escape',
            )
          ).code === 0
        )
          break;
        await new Promise((r) => setTimeout(r, 250));
      }
      await clean(name, [1, 2]);
    }
  });
});
