import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containerState } from './invariants.js';
import { runAction } from './run-action.js';
import {
  checkCounterMemory,
  containerLogs,
  loadTestbed,
  onHost,
  onHostResult,
  parseCounter,
  sshInputs,
  startCounter,
  type Testbed,
} from './testbed.js';

// After a crash: the container's host is gone, its checkpoint is in a store on
// another host, and restore mode brings it back there, state intact.
let bed: Testbed;
const name = 'e2e-restore';
const store = '/var/lib/criu-migrate-e2e-restore-store';

function common(): Record<string, string> {
  return {
    container: name,
    'store-path': store,
    ...sshInputs(bed),
  };
}

beforeAll(async () => {
  bed = loadTestbed();
  for (const host of [bed.host1, bed.host2]) {
    await onHostResult(bed, host, `docker rm -f ${name}; rm -rf /var/lib/criu-migrate/containers/${name}`);
  }
  await onHostResult(bed, bed.host2, `rm -rf ${store}`);
});

afterAll(async () => {
  for (const host of [bed.host1, bed.host2]) await onHostResult(bed, host, `docker rm -f ${name}`);
  await onHostResult(bed, bed.host2, `rm -rf ${store}`);
});

describe('restore mode', () => {
  it('brings a checkpoint back on another host after its own host died, memory and configuration intact', async () => {
    await startCounter(bed, bed.host1, name, { mb: 16, extraArgs: '--label team=batch -e JOB=nightly' });
    const taken = await runAction({
      ...common(),
      mode: 'checkpoint',
      source: bed.host1,
      'store-host': bed.host2,
      'checkpoint-name': 'rs-1',
    });
    expect(taken.exitCode, taken.stdout).toBe(0);
    const atCheckpoint = parseCounter(await containerLogs(bed, bed.host1, name));
    // The host "dies": the container is gone, and the target has never had its image.
    await onHost(bed, bed.host1, `docker rm -f ${name}`);
    await onHostResult(
      bed,
      bed.host2,
      `docker ps -aq --filter ancestor=${bed.image} | xargs -r docker rm -f; docker rmi ${bed.image}`,
    );

    const run = await runAction({
      ...common(),
      mode: 'restore',
      source: bed.host1,
      'store-host': bed.host2,
      target: bed.host2,
      'verify-stable-seconds': '2',
    });
    expect(run.exitCode, run.stdout).toBe(0);
    expect(run.outputs.status).toBe('succeeded');
    expect(run.outputs['checkpoint-name']).toBe('rs-1');
    expect(run.stdout).toContain('restoring checkpoint rs-1');
    expect(run.stdout).toContain('restore path: staged pages');
    expect(JSON.parse(readFileSync(run.outputs['metadata-path']!, 'utf8')).checkpoint.restorePath).toBe(
      'staged-pages',
    );
    expect(await containerState(bed, bed.host2, name)).toMatchObject({ Running: true, Paused: false });
    const inspect = JSON.parse(await onHost(bed, bed.host2, `docker inspect ${name}`))[0];
    expect(inspect.Id).toBe(run.outputs['target-container-id']);
    expect(inspect.Config.Labels.team).toBe('batch');
    expect(inspect.Config.Env).toContain('JOB=nightly');
    expect(inspect.Config.Image).toBe(bed.image);
    // The same process continues from the checkpoint: same token, numbers go on from there.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const lines = parseCounter(await containerLogs(bed, bed.host2, name));
    expect(lines.length).toBeGreaterThan(3);
    expect(lines[0]!.token).toBe(atCheckpoint[0]!.token);
    expect(lines[0]!.n).toBeLessThanOrEqual(atCheckpoint.at(-1)!.n + 1);
    expect(lines[0]!.n).toBeGreaterThan(1);
    lines.forEach((line, i) => {
      expect(line.n).toBe(lines[0]!.n + i);
    });
    await checkCounterMemory(bed, bed.host2, name, 16777216);
    // Nothing of the run left on the target.
    expect(
      await onHost(
        bed,
        bed.host2,
        'ls -A /var/lib/criu-migrate/work; ls -d /tmp/ctrd-checkpoint* 2>/dev/null; true',
      ),
    ).toBe('');
    expect(
      await onHost(
        bed,
        bed.host2,
        `ls /var/lib/docker/containers/${inspect.Id}/checkpoints 2>/dev/null | wc -l`,
      ),
    ).toBe('0\n');
  });

  it('refuses a damaged checkpoint before touching the target', async () => {
    await onHostResult(bed, bed.host2, `docker rm -f ${name}`);
    // A copy of rs-1 with one byte of its memory changed.
    await onHost(
      bed,
      bed.host2,
      `s=$(dirname "$(dirname ${store}/${name}/*/rs-1/manifest.json)") && cp -a "$s/rs-1" "$s/rs-bad" && sed -i 's/"name": "rs-1"/"name": "rs-bad"/' "$s/rs-bad/manifest.json" && f=$(ls "$s"/rs-bad/criu/pages-*.img | head -n 1) && printf Z | dd of="$f" bs=1 seek=4096 conv=notrunc 2>/dev/null`,
    );
    const run = await runAction({
      ...common(),
      mode: 'restore',
      source: bed.host1,
      'store-host': bed.host2,
      target: bed.host2,
      'checkpoint-name': 'rs-bad',
    });
    expect(run.exitCode).toBe(1);
    expect(run.stdout).toMatch(
      /CHECKSUM_MISMATCH: checkpoint rs-bad in the store does not match its manifest/,
    );
    expect(run.stdout).toMatch(/pages-\d+\.img: FAILED/);
    expect(await containerState(bed, bed.host2, name)).toBeUndefined();
  });

  it('names the checkpoints it has when asked for one it does not', async () => {
    const run = await runAction({
      ...common(),
      mode: 'restore',
      source: bed.host1,
      'store-host': bed.host2,
      target: bed.host1,
      'checkpoint-name': 'nope',
    });
    expect(run.exitCode).toBe(1);
    expect(run.stdout).toMatch(
      /CHECKPOINT_NOT_FOUND: the store has no complete checkpoint nope of e2e-restore/,
    );
    expect(run.stdout).toMatch(/complete checkpoints: (rs-bad, rs-1|rs-1, rs-bad)/);
  });

  it('refuses a running container of that name even with replace, and replaces a stopped one when asked', async () => {
    const inputs = {
      ...common(),
      mode: 'restore',
      source: bed.host1,
      'store-host': bed.host2,
      target: bed.host2,
      'checkpoint-name': 'rs-1',
      'verify-stable-seconds': '1',
    };
    await onHostResult(bed, bed.host2, `docker rm -f ${name}`);
    await onHost(bed, bed.host2, `docker run -d --name ${name} ${bed.image} sleep 600`);
    const running = await runAction({ ...inputs, replace: 'true' });
    expect(running.exitCode).toBe(1);
    expect(running.stdout).toMatch(
      /TARGET_NAME_TAKEN: the target already has a container named e2e-restore \(running\)/,
    );
    const before = (await onHost(bed, bed.host2, `docker inspect -f '{{.Id}}' ${name}`)).trim();
    expect(await containerState(bed, bed.host2, name)).toMatchObject({ Running: true });

    await onHost(bed, bed.host2, `docker stop -t 1 ${name}`);
    const refused = await runAction(inputs);
    expect(refused.stdout).toMatch(
      /TARGET_NAME_TAKEN: the target already has a container named e2e-restore \(exited\)/,
    );
    expect(refused.stdout).toContain('set replace: true');
    const replaced = await runAction({ ...inputs, replace: 'true' });
    expect(replaced.exitCode, replaced.stdout).toBe(0);
    expect(replaced.stdout).toMatch(/replace: the stopped container e2e-restore \([0-9a-f]{12}\) is renamed/);
    expect(replaced.stdout).toMatch(/removed the replaced container e2e-restore/);
    const after = (await onHost(bed, bed.host2, `docker inspect -f '{{.Id}}' ${name}`)).trim();
    expect(after).not.toBe(before);
    expect(await containerState(bed, bed.host2, name)).toMatchObject({ Running: true, Paused: false });
    expect(parseCounter(await containerLogs(bed, bed.host2, name)).length).toBeGreaterThan(0);
  });
});
