import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installHold, release, removeFaults, waitHeld } from './faults.js';
import { containerState, expectCounterContinued, expectResumedAfter } from './invariants.js';
import { runAction, runPostStep, startAction } from './run-action.js';
import {
  containerLogs,
  loadTestbed,
  onHost,
  onHostResult,
  parseCounter,
  sshInputs,
  startCounter,
  type Testbed,
} from './testbed.js';

// Scheduled checkpoints: the container keeps running (frozen only for the dump),
// the checkpoint lands complete on the store host (host 3: sshd, tar, sha256sum,
// no Docker), retention keeps the newest; restore brings them back elsewhere.
let bed: Testbed;
let series = '';
const name = 'e2e-ckpt';
const store = '/var/lib/criu-migrate-e2e-store';

function inputs(extra: Record<string, string> = {}): Record<string, string> {
  return {
    mode: 'checkpoint',
    container: name,
    source: bed.host1,
    'store-host': bed.host3,
    'store-path': store,
    ...sshInputs(bed),
    ...extra,
  };
}

async function storeListing(): Promise<string[]> {
  const out = await onHost(
    bed,
    bed.host3,
    `cd ${store} 2>/dev/null && find . -mindepth 1 -maxdepth 3 ! -name series.json ! -name .lock ! -name .lock.guard | sort; true`,
  );
  return out.split('\n').filter(Boolean);
}

beforeAll(async () => {
  bed = loadTestbed();
  await removeFaults(bed);
  await onHostResult(bed, bed.host3, `rm -rf ${store}`);
  await onHostResult(bed, bed.host2, `docker rm -f ${name}`);
  await onHostResult(
    bed,
    bed.host1,
    `rm -rf /var/lib/criu-migrate/containers/${name} /var/lib/criu-migrate/work/*`,
  );
  await startCounter(bed, bed.host1, name, { mb: 16 });
});

afterAll(async () => {
  await removeFaults(bed);
  await onHostResult(bed, bed.host1, `docker rm -f ${name}`);
  await onHostResult(bed, bed.host3, `rm -rf ${store}`);
});

describe('checkpoint mode', () => {
  it('writes a complete, verifiable checkpoint to another host while the container runs on', async () => {
    const run = await runAction(inputs({ 'checkpoint-name': 'ckpt-1' }));
    expect(run.exitCode, run.stdout).toBe(0);
    expect(run.outputs.status).toBe('succeeded');
    expect(run.outputs['checkpoint-name']).toBe('ckpt-1');
    // The container's own series: the short ID of the container it started with.
    const id = (await onHost(bed, bed.host1, `docker inspect -f '{{.Id}}' ${name}`)).trim();
    expect(run.outputs.series).toBe(id.slice(0, 12));
    series = run.outputs.series!;
    expect(run.outputs['checkpoint-path']).toBe(`${store}/${name}/${series}/ckpt-1`);
    expect(Number(run.outputs['checkpoint-bytes'])).toBeGreaterThan(16 * 1024 * 1024);
    expect(Number(run.outputs['frozen-ms'])).toBeGreaterThan(0);
    expect(run.stdout).toMatch(/the container was frozen for \d+ ms and runs on/);

    // Still running on its host, same process, never restarted.
    expect(await containerState(bed, bed.host1, name)).toMatchObject({ Running: true, Paused: false });
    await expectCounterContinued(bed, bed.host1, name);

    // Every file the manifest lists is there with its size and sha256; nothing half written.
    const manifest = JSON.parse(
      await onHost(bed, bed.host3, `cat ${store}/${name}/${series}/ckpt-1/manifest.json`),
    );
    expect(manifest).toMatchObject({ schema: 1, name: 'ckpt-1', container: { name }, series });
    expect(manifest.versions.criu).toMatch(/^4\./);
    const paths = manifest.files.map((file: { path: string }) => file.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        'config.json',
        'cpu/cpuinfo.img',
        'layer/bulk.tar',
        'layer/frozen.tar',
        'criu/inventory.img',
      ]),
    );
    expect(paths.some((path: string) => /^criu\/pages-\d+\.img$/.test(path))).toBe(true);
    const check = manifest.files
      .map((file: { path: string; sha256: string }) => `${file.sha256}  ${file.path}`)
      .join('\n');
    await onHost(
      bed,
      bed.host3,
      `cd ${store}/${name}/${series}/ckpt-1 && printf '%s\\n' '${check}' | sha256sum -c --quiet`,
    );
    await onHost(
      bed,
      bed.host3,
      `cd ${store} && echo '${manifest.image.sha256}  ${manifest.image.path}' | sha256sum -c --quiet`,
    );
    expect((await storeListing()).filter((entry) => entry.includes('.partial'))).toEqual([]);
    // Root only: the images hold all of the process's memory.
    expect(await onHost(bed, bed.host3, `find ${store}/${name} -perm /077 | wc -l`)).toBe('0\n');
    // Nothing left on the source.
    expect(await onHost(bed, bed.host1, 'ls -A /var/lib/criu-migrate/work; true')).toBe('');
  });

  it('keeps the newest checkpoints per retention, and the image once', async () => {
    for (const next of ['ckpt-2', 'ckpt-3']) {
      const run = await runAction(inputs({ 'checkpoint-name': next, retention: '2' }));
      expect(run.exitCode, run.stdout).toBe(0);
      expect(Number(run.outputs['frozen-ms'])).toBeGreaterThan(0);
      expect(run.summary).toContain('Checkpoints in the store');
      await expectCounterContinued(bed, bed.host1, name);
    }
    const listing = await storeListing();
    expect(listing.filter((entry) => entry.startsWith(`./${name}/`))).toEqual([
      `./${name}/${series}`,
      `./${name}/${series}/ckpt-2`,
      `./${name}/${series}/ckpt-3`,
    ]);
    expect(listing.filter((entry) => /^\.\/images\/.*\.tar$/.test(entry))).toHaveLength(1);
  });

  it('a checkpoint cancelled while it is written is removed, never listed, and the container runs on', async () => {
    await installHold(bed, bed.host3, 'tar', '*".partial"*', 'ckpt-cancel');
    const running = startAction(inputs({ 'checkpoint-name': 'ckpt-cancelled', retention: '0' }));
    await waitHeld(bed, bed.host3, 'ckpt-cancel', 60_000, running);
    expect((await storeListing()).some((entry) => entry.includes('.ckpt-cancelled.partial'))).toBe(true);
    const cancelled = running.cancel();
    await new Promise((resolve) => setTimeout(resolve, 500));
    await release(bed, bed.host3, 'ckpt-cancel');
    const main = await cancelled;
    expect(main.outputs.status, main.stdout).toBe('rolled-back');
    expect(main.stdout).toMatch(/CANCELLED/);
    const post = await runPostStep(inputs(), main);
    expect(post.exitCode).toBe(0);
    expect((await storeListing()).filter((entry) => entry.includes('cancelled'))).toEqual([]);
    expect(await containerState(bed, bed.host1, name)).toMatchObject({ Running: true, Paused: false });
    await expectCounterContinued(bed, bed.host1, name);
    expect(await onHost(bed, bed.host1, 'ls -A /var/lib/criu-migrate/work; true')).toBe('');
  });

  it('leave-running: false stops the container once the checkpoint is complete', async () => {
    const run = await runAction(
      inputs({ 'checkpoint-name': 'ckpt-last', 'leave-running': 'false', retention: '0' }),
    );
    expect(run.exitCode, run.stdout).toBe(0);
    const state = JSON.parse(await onHost(bed, bed.host1, `docker inspect ${name}`))[0];
    expect(state.State).toMatchObject({ Running: false, Paused: false });
    expect(state.HostConfig.RestartPolicy.Name).toBe('no');
    expect(
      await onHost(bed, bed.host3, `test -f ${store}/${name}/${series}/ckpt-last/manifest.json && echo ok`),
    ).toBe('ok\n');
  });

  it('restores the newest checkpoint onto a rebuilt host 1, and an older one onto host 2', async () => {
    const logsAtLast = parseCounter(await containerLogs(bed, bed.host1, name));
    // Host 1 "rebuilt": neither the container nor its image is there any more.
    await onHost(bed, bed.host1, `docker rm -f ${name}`);
    await onHostResult(
      bed,
      bed.host1,
      `docker ps -aq --filter ancestor=${bed.image} | xargs -r docker rm -f; docker rmi ${bed.image}`,
    );
    const restoreInputs = (target: string, extra: Record<string, string> = {}) => ({
      ...inputs(),
      mode: 'restore',
      target,
      'verify-stable-seconds': '1',
      ...extra,
    });
    const latest = await runAction(restoreInputs(bed.host1));
    expect(latest.exitCode, latest.stdout).toBe(0);
    expect(latest.outputs['checkpoint-name']).toBe('ckpt-last');
    expect(await containerState(bed, bed.host1, name)).toMatchObject({ Running: true, Paused: false });
    await new Promise((resolve) => setTimeout(resolve, 800));
    const resumed = parseCounter(await containerLogs(bed, bed.host1, name));
    // The restored process goes on from the last checkpoint's count, with the same token.
    expectResumedAfter(logsAtLast.at(-1)!, resumed);
    const inspect = JSON.parse(await onHost(bed, bed.host1, `docker inspect ${name}`))[0];
    expect(inspect.Config.Image).toBe(bed.image);

    await onHostResult(bed, bed.host2, `docker rm -f ${name}`);
    const older = await runAction(restoreInputs(bed.host2, { 'checkpoint-name': 'ckpt-2' }));
    expect(older.exitCode, older.stdout).toBe(0);
    expect(await containerState(bed, bed.host2, name)).toMatchObject({ Running: true, Paused: false });
    await onHostResult(bed, bed.host2, `docker rm -f ${name}`);
  });
});
