import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  installHold,
  installWrapper,
  listenAddress,
  RECEIVING_TAR,
  release,
  removeFaults,
  waitHeld,
} from './faults.js';
import {
  containerState,
  expectCounterContinued,
  expectNothingLeft,
  expectRunningOnlyOn,
} from './invariants.js';
import { runAction, runPostStep, startAction } from './run-action.js';
import {
  checkCounterMemory,
  loadTestbed,
  moveInputs,
  onHost,
  onHostResult,
  sshInputs,
  startCounter,
  type Testbed,
} from './testbed.js';

const execFileAsync = promisify(execFile);
let bed: Testbed;
const name = 'e2e-direct';
const MB = 64;
const KEYS = '/root/.ssh/authorized_keys';

beforeAll(() => {
  bed = loadTestbed();
});

afterEach(async () => {
  await removeFaults(bed);
  await uncut();
});

function inputs(route: string, extra: Record<string, string> = {}): Record<string, string> {
  return moveInputs(bed, name, {
    route,
    'verify-log-pattern': '^\\d+ \\d{13} ',
    'verify-timeout': '20',
    timeout: '10',
    'upload-artifact': 'false',
    ...extra,
  });
}

const VOLUME = 'e2e-direct-data';

async function fresh(mb = MB, extraArgs = ''): Promise<void> {
  await onHostResult(bed, bed.host2, `docker rm -f ${name}; docker volume rm ${VOLUME}`);
  await onHostResult(bed, bed.host1, `docker rm -f ${name}; docker volume rm ${VOLUME}`);
  await startCounter(bed, bed.host1, name, { mb, extraArgs });
}

/** Every trace of a run's key: its line in a receiving host's authorized_keys, its files on any host. */
async function keyTraces(): Promise<string> {
  const traces = await Promise.all(
    [bed.host1, bed.host2, bed.host3].map((host) =>
      onHost(
        bed,
        host,
        `grep -n criu-migrate-direct ${KEYS}; ls -A /var/lib/criu-migrate/direct 2>/dev/null; true`,
      ),
    ),
  );
  return traces.join('');
}

function metadataOf(run: { outputs: Record<string, string> }): {
  checkpoint: { bytes?: number };
  route: {
    taken: string;
    reason: string;
    reach?: string;
    runnerBytes: number;
    streams: { label: string; route: string; bytes: number }[];
  };
} {
  return JSON.parse(readFileSync(run.outputs['metadata-path']!, 'utf8'));
}

/*
 * Cutting the sending host (the source, or the store host) off from the target for real, while
 * the runner still reaches both: the sender's sshd (and so every session the action opens there,
 * and the ssh client it starts) is moved into a cgroup of its own in the machine's cgroup2
 * hierarchy, and a netfilter rule resets TCP connections from that cgroup to the target's SSH
 * port. The runner's connections come from elsewhere and pass.
 */
// Named after the target's address: test beds side by side on one machine each cut their own.
const cutName = (): string => `e2e-direct-cut-${listenAddress(bed.host2)[0].replaceAll('.', '-')}`;
const cutCgroup = (): string => `/sys/fs/cgroup/unified/${cutName()}`;
const CUT_RULE = (addr: string, port: string) =>
  `OUTPUT -p tcp -d ${addr} --dport ${port} -m cgroup --path ${cutName()} -m comment --comment ${cutName()} -j REJECT --reject-with tcp-reset`;
let cutRule: string | undefined;

async function sshdPid(host: string): Promise<string> {
  const [addr, port] = listenAddress(host);
  const { stdout } = await execFileAsync('ss', ['-ltnpH', `src ${addr}:${port}`]);
  const pid = /pid=(\d+)/.exec(stdout)?.[1];
  if (!pid) throw new Error(`no sshd listens on ${addr}:${port}: ${stdout}`);
  return pid;
}

async function cut(sender = bed.host1): Promise<void> {
  const [addr, port] = listenAddress(bed.host2);
  mkdirSync(cutCgroup(), { recursive: true });
  writeFileSync(`${cutCgroup()}/cgroup.procs`, await sshdPid(sender));
  cutRule = CUT_RULE(addr, port);
  await execFileAsync('nsenter', [
    '-t',
    String(bed.host1Pid),
    '-m',
    '--',
    'sh',
    '-c',
    `iptables -I ${cutRule}`,
  ]);
  // The cut holds: the sender's own ssh to the target is refused, the runner's is not.
  const probe = await onHostResult(
    bed,
    sender,
    `ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o ConnectTimeout=5 -p ${port} root@${addr} true 2>&1; true`,
  );
  expect(probe.stdout).toContain('Connection refused');
  expect(await onHost(bed, bed.host2, 'echo reached')).toBe('reached\n');
}

async function uncut(): Promise<void> {
  if (cutRule) {
    await execFileAsync('nsenter', [
      '-t',
      String(bed.host1Pid),
      '-m',
      '--',
      'sh',
      '-c',
      `iptables -D ${cutRule}`,
    ]);
    cutRule = undefined;
  }
  if (!existsSync(cutCgroup())) return;
  // Everything in it (sshd and sessions still open) back to the root; bounded.
  for (let i = 0; i < 50; i++) {
    const pids = readFileSync(`${cutCgroup()}/cgroup.procs`, 'utf8').split('\n').filter(Boolean);
    if (pids.length === 0) break;
    for (const pid of pids) {
      try {
        writeFileSync('/sys/fs/cgroup/unified/cgroup.procs', pid);
      } catch {
        // Gone meanwhile.
      }
    }
  }
  rmdirSync(cutCgroup());
}

describe('host-to-host streams (route input)', () => {
  it('route: direct moves memory, layer and image host to host: memory intact, under 1 MiB through the runner, the key gone from both hosts', async () => {
    // A named volume with 4 MiB of data: its bulk and frozen passes go host to host too.
    await fresh(MB, `-v ${VOLUME}:/data`);
    const dataSum = await onHost(
      bed,
      bed.host1,
      `docker exec ${name} sh -c 'head -c 4194304 /dev/urandom >/data/blob && sha256sum /data/blob'`,
    );
    // Host 2 lacks the image, so the image stream goes host to host too.
    await onHostResult(bed, bed.host2, `docker rmi ${bed.image}`);
    const keysBefore = await onHost(bed, bed.host2, `cat ${KEYS}`);

    const run = await runAction(inputs('direct'));
    expect(run.exitCode, run.stdout).toBe(0);
    expect(run.outputs.status).toBe('succeeded');
    expect(run.stdout).toContain("direct route: the source reaches the target's SSH server");
    expect(run.stdout).toContain('route: host to host (direct)');
    await checkCounterMemory(bed, bed.host2, name, MB * 1024 * 1024);
    await expectRunningOnlyOn(bed, bed.host2, name);

    const { route } = metadataOf(run);
    expect(route.taken).toBe('direct');
    const labels = route.streams.map((stream) => stream.label).sort();
    expect(labels).toEqual([
      'checkpoint',
      'image',
      `volume ${VOLUME} (bulk)`,
      `volume ${VOLUME} (frozen)`,
      'writable layer',
    ]);
    expect(await onHost(bed, bed.host2, `docker exec ${name} sha256sum /data/blob`)).toBe(dataSum);
    for (const stream of route.streams) expect(stream.route).toBe('direct');
    const checkpoint = route.streams.find((stream) => stream.label === 'checkpoint');
    expect(checkpoint?.bytes).toBeGreaterThan(MB * 1024 * 1024);
    expect(route.runnerBytes).toBeLessThan(1024 * 1024);
    console.log(
      `direct move of ${MB} MiB: ${route.runnerBytes} bytes through the runner, downtime ${run.outputs['downtime-ms']} ms\n${run.stdout
        .split('\n')
        .filter((line) => /host to host in|frozen for/.test(line))
        .join('\n')}`,
    );

    // The run's key: no line left, the other lines exactly as before, no key file on either host.
    expect(await onHost(bed, bed.host2, `cat ${KEYS}`)).toBe(keysBefore);
    expect(await keyTraces()).toBe('');
    await expectNothingLeft(bed, name);
  });

  it('route: direct with the source cut off from the target: refused before anything is touched', async () => {
    await fresh();
    const keysBefore = await onHost(bed, bed.host2, `cat ${KEYS}`);
    await cut();
    const run = await runAction(inputs('direct'));
    expect(run.outputs.status, run.stdout).toBe('refused');
    expect(run.outputs['error-code']).toBe('DIRECT_ROUTE_UNAVAILABLE');
    expect(run.stdout).toContain('Connection refused');
    expect((await containerState(bed, bed.host1, name))?.Paused).toBe(false);
    await expectRunningOnlyOn(bed, bed.host1, name);
    expect(await containerState(bed, bed.host2, name)).toBeUndefined();
    expect(await onHost(bed, bed.host2, `cat ${KEYS}`)).toBe(keysBefore);
    expect(await keyTraces()).toBe('');
    await expectNothingLeft(bed, name);
  });

  it('route: auto with the source cut off from the target: falls back to the runner and says so', async () => {
    await fresh();
    await cut();
    const run = await runAction(inputs('auto'));
    expect(run.exitCode, run.stdout).toBe(0);
    expect(run.outputs.status).toBe('succeeded');
    expect(run.stdout).toContain('route: through the runner (relay)');
    await checkCounterMemory(bed, bed.host2, name, MB * 1024 * 1024);
    const { route } = metadataOf(run);
    expect(route.taken).toBe('relay');
    expect(route.reach).toMatch(/^unreachable: .*Connection refused/);
    for (const stream of route.streams) expect(stream.route).toBe('relay');
    expect(route.runnerBytes).toBeGreaterThan(MB * 1024 * 1024);
    expect(await keyTraces()).toBe('');
    await expectNothingLeft(bed, name);
  });

  it('the ssh client on the source killed mid-stream: rolled back, the source resumed, the key removed', async () => {
    await fresh();
    const keysBefore = await onHost(bed, bed.host2, `cat ${KEYS}`);
    // The images' receiving tar on the target waits: the stream is open, its ssh client connected.
    await installHold(bed, bed.host2, 'tar', RECEIVING_TAR, 'direct-kill');
    const running = startAction(inputs('direct'));
    await waitHeld(bed, bed.host2, 'direct-kill', 60_000, running);
    const killed = await onHost(
      bed,
      bed.host1,
      'pids=$(pgrep -f \'HostKeyAlias=criu-migrate-target.* s[0-9]+$\'); [ -n "$pids" ] && kill -9 $pids && echo killed',
    );
    expect(killed).toContain('killed');
    await release(bed, bed.host2, 'direct-kill');
    const run = await running.done;
    expect(run.outputs.status, run.stdout).toBe('rolled-back');
    expect(run.outputs['error-code']).toBe('TRANSFER_FAILED');
    expect(run.stdout).toMatch(
      /host to host\): the sending side failed|host to host\): the receiving command failed/,
    );
    await expectRunningOnlyOn(bed, bed.host1, name);
    await expectCounterContinued(bed, bed.host1, name);
    expect(await onHost(bed, bed.host2, `cat ${KEYS}`)).toBe(keysBefore);
    expect(await keyTraces()).toBe('');
    await expectNothingLeft(bed, name);
  });

  it('the dump fails after the streams were armed: rolled back, the source unpaused, no fifo, ssh client or key left (direct and relay)', async () => {
    await fresh();
    const keysBefore = await onHost(bed, bed.host2, `cat ${KEYS}`);
    // runc refuses the checkpoint for real; everything else it does runs unchanged.
    await installWrapper(
      bed,
      bed.host1,
      '/usr/local/bin/runc',
      `#!/bin/sh
case " $* " in *" checkpoint "*) echo "injected: runc checkpoint refused" >&2; exit 1 ;; esac
exec /usr/sbin/runc "$@"
`,
    );
    for (const route of ['direct', 'relay']) {
      const run = await runAction(inputs(route));
      expect(run.outputs.status, run.stdout).toBe('rolled-back');
      expect(run.outputs['error-code']).toBe('CHECKPOINT_FAILED');
      expect(run.stdout).toContain('injected: runc checkpoint refused');
      // The streams were set up before the freeze, the way the route says.
      expect(run.stdout).toContain(
        `checkpoint and writable layer streams armed (${route === 'direct' ? 'host to host' : 'through the runner'})`,
      );
      expect((await containerState(bed, bed.host1, name))?.Paused).toBe(false);
      await expectRunningOnlyOn(bed, bed.host1, name);
      await expectCounterContinued(bed, bed.host1, name);
      expect(await onHost(bed, bed.host2, `cat ${KEYS}`)).toBe(keysBefore);
      expect(await keyTraces()).toBe('');
      await expectNothingLeft(bed, name);
    }
  });

  it('a direct stream whose receiver stops reading: the stall setting ends it, rolled back, nothing left', async () => {
    await fresh();
    const keysBefore = await onHost(bed, bed.host2, `cat ${KEYS}`);
    // The images' receiving tar stops itself before reading: the stream stays connected, and stalls.
    await installWrapper(
      bed,
      bed.host2,
      '/usr/local/bin/tar',
      `#!/bin/sh
case " $* " in ${RECEIVING_TAR}) echo $$ >/tmp/e2e-stopped-tar; kill -STOP $$ ;; esac
exec /usr/bin/tar "$@"
`,
    );
    const run = await runAction(inputs('direct', { 'stream-stall-seconds': '3' }));
    // Whatever the kill left of the stopped tar goes on and ends (it is no longer needed).
    await onHostResult(
      bed,
      bed.host2,
      'p=$(cat /tmp/e2e-stopped-tar) && kill -CONT "$p"; rm -f /tmp/e2e-stopped-tar',
    );
    expect(run.outputs.status, run.stdout).toBe('rolled-back');
    expect(run.outputs['error-code']).toBe('TRANSFER_FAILED');
    expect(run.stdout).toMatch(/checkpoint: no data moved for 3 s after .* \(host to host\)/);
    await expectRunningOnlyOn(bed, bed.host1, name);
    await expectCounterContinued(bed, bed.host1, name);
    expect(await onHost(bed, bed.host2, `cat ${KEYS}`)).toBe(keysBefore);
    expect(await keyTraces()).toBe('');
    await expectNothingLeft(bed, name);
  });

  it('the action SIGKILLed mid-transfer: the key stays until the post step, which removes it and rolls back', async () => {
    await fresh();
    const keysBefore = await onHost(bed, bed.host2, `cat ${KEYS}`);
    await installHold(bed, bed.host2, 'tar', RECEIVING_TAR, 'direct-sigkill');
    const running = startAction(inputs('direct'));
    await waitHeld(bed, bed.host2, 'direct-sigkill', 60_000, running);
    const main = await running.kill();
    await release(bed, bed.host2, 'direct-sigkill');
    await removeFaults(bed);
    // Nothing removed the key yet: the post step has something to do.
    expect(await onHost(bed, bed.host2, `grep -c criu-migrate-direct ${KEYS}`)).toBe('1\n');

    const post = await runPostStep(inputs('direct'), main);
    expect(post.exitCode, post.stdout).toBe(0);
    expect(post.stdout).toMatch(/rolled back \(source resumed\)/);
    await expectRunningOnlyOn(bed, bed.host1, name);
    await expectCounterContinued(bed, bed.host1, name);
    expect(await containerState(bed, bed.host2, name)).toBeUndefined();
    expect(await onHost(bed, bed.host2, `cat ${KEYS}`)).toBe(keysBefore);
    expect(await keyTraces()).toBe('');
    await expectNothingLeft(bed, name);
  });

  it('through a jump host: auto relays and says why, direct is refused before anything is touched', async () => {
    await fresh();
    const refused = await runAction(inputs('direct', { 'jump-host': bed.host3 }));
    expect(refused.outputs.status, refused.stdout).toBe('refused');
    expect(refused.outputs['error-code']).toBe('DIRECT_ROUTE_UNAVAILABLE');
    expect(refused.stdout).toContain('jump host');
    await expectRunningOnlyOn(bed, bed.host1, name);
    expect(await keyTraces()).toBe('');

    const run = await runAction(inputs('auto', { 'jump-host': bed.host3 }));
    expect(run.exitCode, run.stdout).toBe(0);
    expect(run.stdout).toMatch(
      /route: through the runner \(relay\): the runner reaches the target through a jump host/,
    );
    const { route } = metadataOf(run);
    expect(route.taken).toBe('relay');
    expect(route.reason).toContain('jump host');
    expect(route.runnerBytes).toBeGreaterThan(MB * 1024 * 1024);
    await checkCounterMemory(bed, bed.host2, name, MB * 1024 * 1024);
    expect(await keyTraces()).toBe('');
    await expectNothingLeft(bed, name);
  });

  it('checkpoint mode writes into the store host to host; the checkpoint restores with memory intact', async () => {
    await fresh();
    const store = '/var/lib/e2e-direct-store';
    await onHostResult(bed, bed.host3, `rm -rf ${store}`);
    const storeKeys = await onHost(bed, bed.host3, `cat ${KEYS}`);
    const common = {
      container: name,
      'store-host': bed.host3,
      'store-path': store,
      ...sshInputs(bed),
      'upload-artifact': 'false',
    };
    const run = await runAction({ ...common, mode: 'checkpoint', source: bed.host1, route: 'direct' });
    expect(run.exitCode, run.stdout).toBe(0);
    expect(run.stdout).toContain('route: host to host (direct)');
    const { route } = metadataOf(run);
    expect(route.taken).toBe('direct');
    expect(route.streams.map((stream) => stream.route)).not.toContain('relay');
    expect(route.streams.find((stream) => stream.label === 'checkpoint')?.bytes).toBeGreaterThan(
      MB * 1024 * 1024,
    );
    expect(route.runnerBytes).toBeLessThan(1024 * 1024);
    // The run's key is gone from the store and the source.
    expect(await onHost(bed, bed.host3, `cat ${KEYS}`)).toBe(storeKeys);
    expect(await onHost(bed, bed.host3, 'ls -A /var/lib/criu-migrate/direct 2>/dev/null; true')).toBe('');
    expect(await keyTraces()).toBe('');

    // What the store holds is a whole checkpoint: restored on host 2, its memory reads back intact.
    await onHostResult(bed, bed.host1, `docker rm -f ${name}`);
    const restored = await runAction({
      ...common,
      mode: 'restore',
      source: bed.host1,
      target: bed.host2,
      'verify-stable-seconds': '1',
    });
    expect(restored.exitCode, restored.stdout).toBe(0);
    await checkCounterMemory(bed, bed.host2, name, MB * 1024 * 1024);
    await onHostResult(bed, bed.host3, `rm -rf ${store}`);
  });

  it('preflight mode reports the route the source can take, and fails it for route: direct when cut off', async () => {
    await fresh();
    const preflight = (route: string) =>
      runAction({
        mode: 'preflight',
        container: name,
        source: bed.host1,
        target: bed.host2,
        ...sshInputs(bed),
        route,
        'upload-artifact': 'false',
      });
    type Check = { name: string; status: string; observed: string; code?: string };
    const routeCheck = (run: { outputs: Record<string, string> }): Check | undefined =>
      (JSON.parse(run.outputs.report ?? '{}').checks as Check[]).find(
        (check) => check.name === 'direct route',
      );

    const reachable = await preflight('auto');
    expect(reachable.outputs.status, reachable.stdout).toBe('succeeded');
    expect(routeCheck(reachable)).toMatchObject({
      status: 'pass',
      observed: expect.stringContaining('host to host'),
    });

    await cut();
    const relayed = await preflight('auto');
    expect(relayed.outputs.status, relayed.stdout).toBe('succeeded');
    expect(routeCheck(relayed)).toMatchObject({
      status: 'pass',
      observed: expect.stringMatching(/through the runner: .*Connection refused/),
    });
    const refused = await preflight('direct');
    expect(refused.outputs.status).toBe('refused');
    expect(refused.outputs['error-code']).toBe('DIRECT_ROUTE_UNAVAILABLE');
    expect(routeCheck(refused)).toMatchObject({ status: 'fail', code: 'DIRECT_ROUTE_UNAVAILABLE' });
    // Preflight changes nothing, the route's probe included.
    expect(await keyTraces()).toBe('');
    await expectRunningOnlyOn(bed, bed.host1, name);
  });
});

/*
 * Restore and drill read the checkpoint on the store host (host 3) and stream it into host 2:
 * host to host when the store host reaches host 2's sshd, through the runner otherwise.
 */
describe('restore and drill out of the store host (route input)', () => {
  const store = '/var/lib/e2e-direct-restore-store';
  const checkpoint = 'e2e-direct-rs';
  let taken = false;

  function fromStore(mode: 'restore' | 'drill', route: string): Record<string, string> {
    return {
      mode,
      container: name,
      source: bed.host1,
      target: bed.host2,
      'store-host': bed.host3,
      'store-path': store,
      ...sshInputs(bed),
      route,
      'verify-log-pattern': '^\\d+ \\d{13} ',
      'verify-stable-seconds': '1',
      timeout: '10',
      'upload-artifact': 'false',
    };
  }

  /** Every file of the store with its sha256, and every path: restore and drill only read it (a drill adds drill.json). */
  async function storeState(): Promise<string> {
    return onHost(
      bed,
      bed.host3,
      `cd ${store} && find . ! -name drill.json | sort && find . -type f ! -name drill.json -print0 | sort -z | xargs -0 sha256sum`,
    );
  }

  /** One checkpoint of a 64 MiB counter in the store on host 3; its host then "dies" (the container goes). */
  async function stored(): Promise<void> {
    await onHostResult(bed, bed.host2, `docker rm -f ${name}`);
    await onHostResult(
      bed,
      bed.host2,
      `rm -rf /var/lib/criu-migrate/containers/${name} /var/lib/criu-migrate/containers/${name}-drill`,
    );
    if (taken) return;
    await fresh();
    await onHostResult(bed, bed.host3, `rm -rf ${store}`);
    const run = await runAction({
      mode: 'checkpoint',
      container: name,
      source: bed.host1,
      'store-host': bed.host3,
      'store-path': store,
      'checkpoint-name': checkpoint,
      route: 'relay',
      ...sshInputs(bed),
      'upload-artifact': 'false',
    });
    expect(run.exitCode, run.stdout).toBe(0);
    await onHost(bed, bed.host1, `docker rm -f ${name}`);
    taken = true;
  }

  it('restore over the direct route: memory intact, a few KiB through the runner, the key gone, the store unchanged', async () => {
    await stored();
    // Host 2 lacks the image: the image streams out of the store host to host too.
    await onHostResult(
      bed,
      bed.host2,
      `docker ps -aq --filter ancestor=${bed.image} | xargs -r docker rm -f; docker rmi ${bed.image}`,
    );
    const keysBefore = await onHost(bed, bed.host2, `cat ${KEYS}`);
    const storeBefore = await storeState();

    const run = await runAction(fromStore('restore', 'direct'));
    expect(run.exitCode, run.stdout).toBe(0);
    expect(run.outputs.status).toBe('succeeded');
    expect(run.stdout).toContain("direct route: the store host reaches the target's SSH server");
    expect(run.stdout).toContain('route: host to host (direct)');
    await checkCounterMemory(bed, bed.host2, name, MB * 1024 * 1024);

    const metadata = metadataOf(run);
    const { route } = metadata;
    expect(route.taken).toBe('direct');
    expect(route.streams.map((stream) => stream.label).sort()).toEqual([
      'checkpoint',
      'cpu description',
      'image',
      // The layer's bulk while the container ran, then what changed while it was frozen.
      'writable layer (1/2)',
      'writable layer (2/2)',
    ]);
    for (const stream of route.streams) expect(stream.route).toBe('direct');
    expect(metadata.checkpoint.bytes).toBeGreaterThan(MB * 1024 * 1024);
    expect(route.streams.find((stream) => stream.label === 'checkpoint')?.bytes).toBeGreaterThan(
      MB * 1024 * 1024,
    );
    expect(route.runnerBytes).toBeLessThan(64 * 1024);
    expect(run.summary).toMatch(/Route.*host to host \(direct\)/);
    console.log(
      `direct restore of ${MB} MiB: ${route.runnerBytes} bytes through the runner\n${run.stdout
        .split('\n')
        .filter((line) => /host to host in/.test(line))
        .join('\n')}`,
    );

    expect(await onHost(bed, bed.host2, `cat ${KEYS}`)).toBe(keysBefore);
    expect(await keyTraces()).toBe('');
    expect(await storeState()).toBe(storeBefore);
    await expectNothingLeft(bed, name);
    await onHost(bed, bed.host2, `docker rm -f ${name}`);
  });

  it('a drill over the direct route passes, its copy and the key removed, the store unchanged but for drill.json', async () => {
    await stored();
    const keysBefore = await onHost(bed, bed.host2, `cat ${KEYS}`);
    const storeBefore = await storeState();
    const run = await runAction(fromStore('drill', 'direct'));
    expect(run.exitCode, run.stdout).toBe(0);
    expect(run.outputs.status).toBe('succeeded');
    expect(run.outputs.restorable).toBe('true');
    expect(run.stdout).toContain("direct route: the store host reaches the drill host's SSH server");
    const { route } = metadataOf(run);
    expect(route.taken).toBe('direct');
    for (const stream of route.streams) expect(stream.route).toBe('direct');
    expect(route.streams.find((stream) => stream.label === 'checkpoint')?.bytes).toBeGreaterThan(
      MB * 1024 * 1024,
    );
    expect(route.runnerBytes).toBeLessThan(64 * 1024);
    expect(await onHost(bed, bed.host2, `cat ${KEYS}`)).toBe(keysBefore);
    expect(await keyTraces()).toBe('');
    expect(await storeState()).toBe(storeBefore);
    expect(
      await onHost(bed, bed.host2, "docker ps -aq --filter label=org.criu-migrate.drill | wc -l | tr -d ' '"),
    ).toBe('0\n');
    await expectNothingLeft(bed, `${name}-drill`);
  });

  it('route: direct with the store host cut off from the target: refused before anything is touched', async () => {
    await stored();
    const keysBefore = await onHost(bed, bed.host2, `cat ${KEYS}`);
    const storeBefore = await storeState();
    await cut(bed.host3);
    const run = await runAction(fromStore('restore', 'direct'));
    expect(run.outputs.status, run.stdout).toBe('refused');
    expect(run.outputs['error-code']).toBe('DIRECT_ROUTE_UNAVAILABLE');
    expect(run.stdout).toContain('Connection refused');
    expect(run.stdout).toContain("the store host cannot reach the target's SSH server");
    expect(await containerState(bed, bed.host2, name)).toBeUndefined();
    expect(await onHost(bed, bed.host2, `cat ${KEYS}`)).toBe(keysBefore);
    expect(await keyTraces()).toBe('');
    expect(await storeState()).toBe(storeBefore);
    await expectNothingLeft(bed, name);
  });

  it('route: auto with the store host cut off from the target: restores through the runner and says why', async () => {
    await stored();
    await cut(bed.host3);
    const run = await runAction(fromStore('restore', 'auto'));
    expect(run.exitCode, run.stdout).toBe(0);
    expect(run.outputs.status).toBe('succeeded');
    expect(run.stdout).toMatch(
      /route: through the runner \(relay\): the store host cannot reach the target's SSH server/,
    );
    await checkCounterMemory(bed, bed.host2, name, MB * 1024 * 1024);
    const { route } = metadataOf(run);
    expect(route.taken).toBe('relay');
    expect(route.reach).toMatch(/^unreachable: .*Connection refused/);
    for (const stream of route.streams) expect(stream.route).toBe('relay');
    expect(route.runnerBytes).toBeGreaterThan(MB * 1024 * 1024);
    expect(run.summary).toMatch(/Route.*through the runner \(relay\)/);
    expect(await keyTraces()).toBe('');
    await expectNothingLeft(bed, name);
    await onHost(bed, bed.host2, `docker rm -f ${name}`);
  });

  it('a restore SIGKILLed mid-stream: the post step removes the key on both hosts and rolls back; the store unchanged', async () => {
    await stored();
    const keysBefore = await onHost(bed, bed.host2, `cat ${KEYS}`);
    const storeBefore = await storeState();
    await installHold(bed, bed.host2, 'tar', RECEIVING_TAR, 'direct-restore-kill');
    const running = startAction(fromStore('restore', 'direct'));
    await waitHeld(bed, bed.host2, 'direct-restore-kill', 60_000, running);
    // The images' stream is open host to host: its ssh client runs on the store host.
    expect(
      await onHost(
        bed,
        bed.host3,
        "pgrep -f 'HostKeyAlias=criu-migrate-target.* s[0-9]+$' >/dev/null && echo open",
      ),
    ).toBe('open\n');
    const main = await running.kill();
    await release(bed, bed.host2, 'direct-restore-kill');
    await removeFaults(bed);
    // Nothing removed the key yet: the post step has something to do.
    expect(await onHost(bed, bed.host2, `grep -c criu-migrate-direct ${KEYS}`)).toBe('1\n');
    expect(await onHost(bed, bed.host3, 'ls -A /var/lib/criu-migrate/direct')).not.toBe('');

    const post = await runPostStep(fromStore('restore', 'direct'), main);
    expect(post.exitCode, post.stdout).toBe(0);
    expect(post.stdout).toMatch(/rolled back/);
    expect(await containerState(bed, bed.host2, name)).toBeUndefined();
    expect(await onHost(bed, bed.host2, `cat ${KEYS}`)).toBe(keysBefore);
    expect(await keyTraces()).toBe('');
    expect(await storeState()).toBe(storeBefore);
    expect(
      await onHost(
        bed,
        bed.host3,
        `ls -d /var/lib/criu-migrate/containers/${name}/journal.json 2>/dev/null; true`,
      ),
    ).toBe('');
    await expectNothingLeft(bed, name);
    await onHostResult(bed, bed.host3, `rm -rf ${store}`);
  });
});
