import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { variantBed } from './global-setup.js';
import {
  containerState,
  expectCounterContinued,
  expectNothingLeft,
  expectResumedAfter,
} from './invariants.js';
import { runAction } from './run-action.js';
import {
  containerLogs,
  largestGapMs,
  onHost,
  onHostResult,
  parseCounter,
  sshInputs,
  startCounter,
  type Testbed,
  waitForLog,
} from './testbed.js';

// The variant bed (test/testbed/sid-bed.sh): host 1 Docker 26.1 (trixie root), host 2
// Docker 28.5 / containerd 2.1 / runc 1.3 (sid root), host 3 the store. Its own state and
// addresses, so it runs beside the default bed; .ci/run also takes it down in its trap.
const root = resolve(import.meta.dirname, '../..');
const sidBed = variantBed('sid-bed.sh');
let bed: Testbed;

beforeAll(() => {
  bed = sidBed.up();
});

afterAll(() => {
  sidBed.down();
});

function inputs(source: string, target: string, container: string, extra: Record<string, string> = {}) {
  return {
    mode: 'migrate',
    container,
    source,
    target,
    ...sshInputs(bed),
    'verify-log-pattern': '^\\d+ \\d{13} ',
    'verify-timeout': '20',
    timeout: '10',
    ...extra,
  };
}

async function inspect(host: string, name: string): Promise<Record<string, Record<string, unknown>>> {
  return JSON.parse(await onHost(bed, host, `docker inspect ${name}`))[0];
}

/** Source's last line and target's first: the same process (token), the next number. */
async function expectContinued(from: string, to: string, name: string): Promise<number> {
  const sourceLines = parseCounter(await containerLogs(bed, from, name));
  await waitForLog(bed, to, name, /^\d+ \d{13} .*\n\d+ \d{13} /m);
  const targetLines = parseCounter(await containerLogs(bed, to, name));
  expectResumedAfter(sourceLines.at(-1)!, targetLines);
  await expectCounterContinued(bed, to, name);
  return largestGapMs([...sourceLines, ...targetLines]);
}

async function clean(name: string): Promise<void> {
  for (const host of [bed.host1, bed.host2]) {
    await onHostResult(
      bed,
      host,
      `docker rm -f ${name} ${name}-netholder; rm -rf /var/lib/criu-migrate/containers/${name}`,
    );
  }
}

describe('Docker 28 target (variant bed: host 1 Docker 26.1, host 2 Docker 28.5)', () => {
  it('the variant bed runs the versions it claims', async () => {
    const version = (host: string) => onHost(bed, host, `docker version --format '{{.Server.Version}}'`);
    expect(await version(bed.host1)).toMatch(/^26\.1\./);
    expect(await version(bed.host2)).toMatch(/^28\./);
    const components = await onHost(bed, bed.host2, 'containerd --version; runc --version | head -n1');
    expect(components).toMatch(/containerd \S+ v?2\.1\./);
    expect(components).toMatch(/runc version 1\.3\./);
  });

  it('host network: 26 -> 28 and back, memory intact, staged pages on 28', async () => {
    const name = 'd28-host';
    await clean(name);
    await startCounter(bed, bed.host1, name, { mb: 64, extraArgs: '--network host' });
    const there = await runAction(inputs(bed.host1, bed.host2, name));
    expect(there.exitCode, there.stdout).toBe(0);
    expect(there.outputs.status).toBe('succeeded');
    const gap = await expectContinued(bed.host1, bed.host2, name);
    const metadata = JSON.parse(readFileSync(there.outputs['metadata-path']!, 'utf8'));
    expect(metadata.hosts.target.docker).toMatch(/^28\./);
    // containerd 2.1 still unpacks the checkpoint beside the staged pages: the links hold.
    expect(metadata.checkpoint.restorePath).toBe('staged-pages');
    console.log(
      `host network 26->28: restore ${metadata.timings.phasesMs.restore} ms, downtime ${there.outputs['downtime-ms']} ms (workload gap ${gap} ms), path ${metadata.checkpoint.restorePath}`,
    );
    expect((await inspect(bed.host2, name)).HostConfig!.NetworkMode).toBe('host');

    // The source was kept stopped (source-after: stop); the way back needs its name free.
    await onHost(bed, bed.host1, `docker rm ${name}`);
    const back = await runAction(inputs(bed.host2, bed.host1, name));
    expect(back.exitCode, back.stdout).toBe(0);
    await expectContinued(bed.host2, bed.host1, name);
    await expectNothingLeft(bed, name);
    await clean(name);
  });

  it('bridge without docker28-network-holder: refused by the gate, source never paused', async () => {
    const name = 'd28-refused';
    await clean(name);
    await startCounter(bed, bed.host1, name);
    const run = await runAction(inputs(bed.host1, bed.host2, name));
    expect(run.exitCode).not.toBe(0);
    expect(run.outputs.status).toBe('refused');
    const metadata = JSON.parse(readFileSync(run.outputs['metadata-path']!, 'utf8'));
    expect(metadata.error.code).toBe('DOCKER_RESTORE_BROKEN');
    expect(metadata.error.step).toBe('preflight');
    expect(run.stdout).toMatch(/moby#50750/);
    expect(run.stdout).toMatch(/docker28-network-holder: true/);
    const source = await containerState(bed, bed.host1, name);
    expect(source).toMatchObject({ Running: true, Paused: false });
    // Never frozen: one process, numbers without a gap, and nothing created on the target.
    await expectCounterContinued(bed, bed.host1, name);
    expect(await containerState(bed, bed.host2, name)).toBeUndefined();
    expect(await containerState(bed, bed.host2, `${name}-netholder`)).toBeUndefined();
    await clean(name);
  });

  it('bridge with docker28-network-holder: 26 -> 28 through a holder, port answers, and back', async () => {
    const name = 'd28-bridge';
    const holder = `${name}-netholder`;
    await clean(name);
    await onHostResult(bed, bed.host1, `docker rm -f ${name}`);
    // A web page beside the counter: busybox httpd forks into the background, the counter stays PID 1.
    await onHost(
      bed,
      bed.host1,
      `docker run -d --name ${name} -p 18080:8080 --restart unless-stopped -e MB=32 ${bed.image} sh -c 'echo page-of-${name} >/tmp/index.html; httpd -p 8080 -h /tmp; exec testbed-counter'`,
    );
    await waitForLog(bed, bed.host1, name, /^5 \d{13} /m);
    // Published ports live in the daemon's network namespace (each bed host's dockerd has its own).
    const page = (host: string) =>
      onHost(
        bed,
        host,
        'nsenter -t "$(cat /run/testbed-dockerd.pid)" -n busybox wget -q -T 5 -O - http://127.0.0.1:18080/',
      );
    expect(await page(bed.host1)).toContain(`page-of-${name}`);

    // The pages go during the dump (memory: overlap), to the page server on the Docker 28 host.
    const there = await runAction(
      inputs(bed.host1, bed.host2, name, { 'docker28-network-holder': 'true', memory: 'overlap' }),
    );
    expect(there.exitCode, there.stdout).toBe(0);
    expect(there.outputs.status).toBe('succeeded');
    expect(there.stdout).toContain(`network holder ${holder}`);
    expect(there.stdout).toContain('overlap: the memory reached the target during the dump');
    const gap = await expectContinued(bed.host1, bed.host2, name);
    const app = await inspect(bed.host2, name);
    const held = await inspect(bed.host2, holder);
    expect(app.HostConfig!.NetworkMode).toMatch(new RegExp(`^container:(${held.Id}|${holder})$`));
    expect(held.Config!.Image).toBe('criu-migrate/netholder:1');
    expect(held.HostConfig!.RestartPolicy).toMatchObject({ Name: 'unless-stopped' });
    expect(held.State).toMatchObject({ Running: true });
    // The restored process serves from the holder's namespace, on the holder's published port.
    expect(await page(bed.host2)).toContain(`page-of-${name}`);
    expect(await onHost(bed, bed.host2, `docker exec ${name} ip -o addr show eth0`)).toMatch(/inet 172\./);
    const metadata = JSON.parse(readFileSync(there.outputs['metadata-path']!, 'utf8'));
    console.log(
      `bridge 26->28 via holder: restore ${metadata.timings.phasesMs.restore} ms, downtime ${there.outputs['downtime-ms']} ms (workload gap ${gap} ms), path ${metadata.checkpoint.restorePath}`,
    );
    expect(await containerState(bed, bed.host1, name)).toMatchObject({ Running: false });

    // Back to Docker 26: the holder goes along; the one on host 2 is retired with its container.
    await onHost(bed, bed.host1, `docker rm ${name}`);
    const back = await runAction(inputs(bed.host2, bed.host1, name));
    expect(back.exitCode, back.stdout).toBe(0);
    // The gate checked the holder's published port on the way back, not the container's none.
    expect(back.stdout).toMatch(/published ports: [^\n]*18080[^\n]* free/);
    await expectContinued(bed.host2, bed.host1, name);
    expect(await page(bed.host1)).toContain(`page-of-${name}`);
    expect((await inspect(bed.host1, name)).HostConfig!.NetworkMode).toMatch(/^container:/);
    expect(await containerState(bed, bed.host2, name)).toMatchObject({ Running: false });
    expect(await containerState(bed, bed.host2, holder)).toMatchObject({ Running: false });
    expect((await inspect(bed.host2, holder)).HostConfig!.RestartPolicy).toMatchObject({ Name: 'no' });
    expect((await inspect(bed.host1, holder)).State).toMatchObject({ Running: true });
    await expectNothingLeft(bed, name);
    await clean(name);
  });

  it('a holder that cannot be made is rolled back: source resumed, target clean', async () => {
    const name = 'd28-taken';
    const holder = `${name}-netholder`;
    await clean(name);
    await startCounter(bed, bed.host1, name);
    // Someone else's container already has the holder's name on the target.
    await onHost(bed, bed.host2, `docker create --name ${holder} ${'criu-migrate/netholder:1'}`);
    const run = await runAction(inputs(bed.host1, bed.host2, name, { 'docker28-network-holder': 'true' }));
    expect(run.exitCode).not.toBe(0);
    const metadata = JSON.parse(readFileSync(run.outputs['metadata-path']!, 'utf8'));
    expect(metadata.error).toMatchObject({ code: 'NETWORK_HOLDER_FAILED', step: 'stage' });
    expect(metadata.error.remedy).toContain(`docker rm -f ${holder}`);
    expect(await containerState(bed, bed.host1, name)).toMatchObject({ Running: true, Paused: false });
    await expectCounterContinued(bed, bed.host1, name);
    expect(await containerState(bed, bed.host2, name)).toBeUndefined();
    // Not ours: left alone.
    expect(await containerState(bed, bed.host2, holder)).toMatchObject({ Status: 'created' });
    await expectNothingLeft(bed, name);
    await clean(name);
  });

  // Restore mode onto Docker 28 (direct checkpoints refused, holder checkpoints through a holder):
  // test/e2e/docker28-restore.test.ts.

  it("Docker's containerd image store on the target is refused by the gate", async () => {
    const name = 'd28-snapshotter';
    await clean(name);
    await startCounter(bed, bed.host1, name, { extraArgs: '--network host' });
    const daemonJson = '/etc/docker/daemon.json';
    const restart = () =>
      execFileSync('bash', [resolve(root, 'test/testbed/restart-dockerd.sh'), String(bed.host2Pid)], {
        stdio: 'inherit',
      });
    // Docker 29's default on new installs; 28 has it behind a feature flag.
    await onHost(
      bed,
      bed.host2,
      `cp ${daemonJson} ${daemonJson}.orig && sed -i 's/"storage-driver": "overlay2",/"features": {"containerd-snapshotter": true},/' ${daemonJson}`,
    );
    try {
      restart();
      expect(await onHost(bed, bed.host2, `docker info --format '{{json .DriverStatus}}'`)).toContain(
        'io.containerd.snapshotter.v1',
      );
      const run = await runAction({ ...inputs(bed.host1, bed.host2, name), mode: 'preflight' });
      const report = JSON.parse(readFileSync(run.outputs['report-path']!, 'utf8'));
      const storage = report.checks.find(
        (check: { host: string; name: string }) => check.host === 'target' && check.name === 'docker storage',
      );
      expect(storage).toMatchObject({ status: 'fail', code: 'STORAGE_DRIVER_UNSUPPORTED' });
      expect(storage.observed).toContain('containerd image store');
      expect(storage.remedy).toContain('containerd-snapshotter');
      // And migrate mode stops at the gate with it, before the source is touched.
      const moved = await runAction(inputs(bed.host1, bed.host2, name));
      expect(moved.exitCode).not.toBe(0);
      const metadata = JSON.parse(readFileSync(moved.outputs['metadata-path']!, 'utf8'));
      expect(metadata.error).toMatchObject({ code: 'STORAGE_DRIVER_UNSUPPORTED', step: 'preflight' });
      expect(await containerState(bed, bed.host1, name)).toMatchObject({ Running: true, Paused: false });
    } finally {
      await onHost(bed, bed.host2, `mv ${daemonJson}.orig ${daemonJson}`);
      restart();
    }
    await clean(name);
  });
});
