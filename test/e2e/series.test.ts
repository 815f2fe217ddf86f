import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installHold, release, removeFaults, waitHeld } from './faults.js';
import { containerState, expectCounterContinued } from './invariants.js';
import { type ActionRun, runAction, startAction } from './run-action.js';
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

// One store host for many hosts: every container's checkpoints are a series of
// their own, even when two hosts each run a container of the same name.
let bed: Testbed;
const name = 'e2e-series';
const lineage = 'e2e-lineage';
const legacy = 'e2e-legacy';
const gc = { held: 'e2e-gc-held', gone: 'e2e-gc-gone', other: 'e2e-gc-other' };
const otherImage = 'testbed/busybox-gc:1';
const store = '/var/lib/criu-migrate-e2e-series-store';
const ALL = [name, lineage, legacy, gc.held, gc.gone, gc.other];
/** The last commit whose bundled action wrote the store without series (its dist/ is committed). */
const BEFORE_SERIES = 'e9541388891d2fba4719cbd0ca6a7254e98770c4';

function inputs(extra: Record<string, string>): Record<string, string> {
  return {
    'store-host': bed.host3,
    'store-path': store,
    'verify-stable-seconds': '1',
    ...sshInputs(bed),
    ...extra,
  };
}

function checkpoint(
  source: string,
  container = name,
  extra: Record<string, string> = {},
): Promise<ActionRun> {
  return runAction(inputs({ mode: 'checkpoint', container, source, ...extra }));
}

function seriesOf(id: string): string {
  return id.slice(0, 12);
}

async function tokenOf(host: string, container: string): Promise<string> {
  return parseCounter(await containerLogs(bed, host, container))[0]!.token;
}

/** Directories of complete checkpoints in the store under one container name: "<series>/<name>". */
async function stored(container: string): Promise<string[]> {
  const out = await onHost(
    bed,
    bed.host3,
    `cd ${store}/${container} 2>/dev/null && for f in */*/manifest.json */manifest.json; do [ -f "$f" ] && dirname "$f"; done; true`,
  );
  return out.split('\n').filter(Boolean).sort();
}

beforeAll(async () => {
  bed = loadTestbed();
  await removeFaults(bed);
  await onHostResult(bed, bed.host3, `rm -rf ${store}`);
  for (const host of [bed.host1, bed.host2]) await onHostResult(bed, host, `docker rm -f ${ALL.join(' ')}`);
});

afterAll(async () => {
  await removeFaults(bed);
  for (const host of [bed.host1, bed.host2]) {
    await onHostResult(bed, host, `docker rm -f ${ALL.join(' ')}; docker rmi ${otherImage}`);
  }
  await onHostResult(bed, bed.host3, `rm -rf ${store}`);
});

describe('checkpoint series in one store', () => {
  let seriesA = '';
  let seriesB = '';
  let newestB = '';

  it('two hosts, like-named containers, retention 1 each, interleaved and same-second runs: each series keeps its own', async () => {
    await startCounter(bed, bed.host1, name, { mb: 8 });
    await startCounter(bed, bed.host2, name, { mb: 8 });
    const idA = (await onHost(bed, bed.host1, `docker inspect -f '{{.Id}}' ${name}`)).trim();
    const idB = (await onHost(bed, bed.host2, `docker inspect -f '{{.Id}}' ${name}`)).trim();
    const runs: ActionRun[] = [];
    for (const host of [bed.host1, bed.host2, bed.host1])
      runs.push(await checkpoint(host, name, { retention: '1' }));
    // Two runs at once under one explicit name (default names can meet in one millisecond too):
    // each run's receiver on the store and its image file are its own.
    const sameName = await Promise.all([
      checkpoint(bed.host1, name, { retention: '1', 'checkpoint-name': 'e2e-series-same' }),
      checkpoint(bed.host2, name, { retention: '1', 'checkpoint-name': 'e2e-series-same' }),
    ]);
    for (const run of sameName) {
      expect(run.exitCode, run.stdout).toBe(0);
      expect(run.stdout).toContain('route: host to host (direct)');
    }
    expect(sameName.map((run) => run.outputs.series)).toEqual([seriesOf(idA), seriesOf(idB)]);
    // Two runs at once, one per host, default names: within the same second.
    const together = await Promise.all([
      checkpoint(bed.host1, name, { retention: '1' }),
      checkpoint(bed.host2, name, { retention: '1' }),
    ]);
    runs.push(...together);
    for (const run of runs) {
      expect(run.exitCode, run.stdout).toBe(0);
      expect(run.outputs.status).toBe('succeeded');
    }
    seriesA = runs[0]!.outputs.series!;
    seriesB = runs[1]!.outputs.series!;
    expect(seriesA).toBe(seriesOf(idA));
    expect(seriesB).toBe(seriesOf(idB));
    expect(runs.map((run) => run.outputs.series)).toEqual([seriesA, seriesB, seriesA, seriesA, seriesB]);
    // Retention per series: each keeps its newest, the other host's never counted.
    newestB = together[1]!.outputs['checkpoint-name']!;
    expect(await stored(name)).toEqual(
      [`${seriesA}/${together[0]!.outputs['checkpoint-name']}`, `${seriesB}/${newestB}`].sort(),
    );
    expect(together[0]!.outputs['checkpoint-path']).not.toBe(together[1]!.outputs['checkpoint-path']);
    // Nothing half written, one image for both, no lock left.
    expect(await onHost(bed, bed.host3, `find ${store} -name '*.partial' -o -name .lock | wc -l`)).toBe(
      '0\n',
    );
    expect(await onHost(bed, bed.host3, `ls ${store}/images/*.tar | wc -l`)).toBe('1\n');
  });

  it('restore refuses an ambiguous newest with the list, then restores each by series and by name', async () => {
    const tokenA = await tokenOf(bed.host1, name);
    const tokenB = await tokenOf(bed.host2, name);
    await onHost(bed, bed.host1, `docker rm -f ${name}`);
    await onHost(bed, bed.host2, `docker rm -f ${name}`);

    const ambiguous = await runAction(
      inputs({ mode: 'restore', container: name, source: bed.host1, target: bed.host1 }),
    );
    expect(ambiguous.exitCode).not.toBe(0);
    expect(ambiguous.outputs['error-code'], ambiguous.stdout).toBe('SERIES_AMBIGUOUS');
    expect(ambiguous.outputs.status).toBe('refused');
    expect(ambiguous.stdout).toContain(`series ${seriesA}: container ${seriesA}`);
    expect(ambiguous.stdout).toContain(`series ${seriesB}: container ${seriesB}`);
    expect(ambiguous.stdout).toMatch(/choose one with the series input/);
    expect(await containerState(bed, bed.host1, name)).toBeUndefined();

    // Host 1's series onto host 2, and host 2's newest checkpoint (by name) onto host 1.
    const bySeries = await runAction(
      inputs({ mode: 'restore', container: name, source: bed.host1, target: bed.host2, series: seriesA }),
    );
    expect(bySeries.exitCode, bySeries.stdout).toBe(0);
    expect(bySeries.outputs.series).toBe(seriesA);
    expect(await tokenOf(bed.host2, name)).toBe(tokenA);
    const byName = await runAction(
      inputs({
        mode: 'restore',
        container: name,
        source: bed.host2,
        target: bed.host1,
        'checkpoint-name': newestB,
      }),
    );
    expect(byName.exitCode, byName.stdout).toBe(0);
    expect(byName.outputs.series).toBe(seriesB);
    expect(await tokenOf(bed.host1, name)).toBe(tokenB);
    await expectCounterContinued(bed, bed.host1, name);

    // A restored container continues the series it came from.
    const again = await checkpoint(bed.host2, name, { retention: '0' });
    expect(again.exitCode, again.stdout).toBe(0);
    expect(again.outputs.series).toBe(seriesA);
  });

  it('a container migrated to another host and checkpointed there continues its series', async () => {
    await startCounter(bed, bed.host1, lineage, { mb: 8 });
    const first = await checkpoint(bed.host1, lineage, { retention: '0' });
    expect(first.exitCode, first.stdout).toBe(0);
    const moved = await runAction(
      inputs({ mode: 'migrate', container: lineage, source: bed.host1, target: bed.host2 }),
    );
    expect(moved.exitCode, moved.stdout).toBe(0);
    expect(moved.stdout).toContain(`checkpoint series ${first.outputs.series} carried over`);
    const second = await checkpoint(bed.host2, lineage, { retention: '0' });
    expect(second.exitCode, second.stdout).toBe(0);
    expect(second.outputs.series).toBe(first.outputs.series);
    expect(await stored(lineage)).toEqual(
      [
        `${first.outputs.series}/${first.outputs['checkpoint-name']}`,
        `${first.outputs.series}/${second.outputs['checkpoint-name']}`,
      ].sort(),
    );
    // Restoring by name alone finds the one series, newest first: the checkpoint from its new host.
    // (Host 1 still has the stopped source of the migration: removed, both hosts are free.)
    await onHost(bed, bed.host2, `docker rm -f ${lineage}`);
    await onHost(bed, bed.host1, `docker rm -f ${lineage}`);
    const restored = await runAction(
      inputs({ mode: 'restore', container: lineage, source: bed.host2, target: bed.host1 }),
    );
    expect(restored.exitCode, restored.stdout).toBe(0);
    expect(restored.outputs['checkpoint-name']).toBe(second.outputs['checkpoint-name']);
  });

  it('a store written before series is read in place and moved into its series on the next checkpoint', async () => {
    const old = mkdtempSync(join(tmpdir(), 'criu-migrate-before-series-'));
    const repo = resolve(import.meta.dirname, '../..');
    execFileSync('sh', [
      '-c',
      `git -C "$1" archive "$2" dist | tar -x -C "$3"`,
      'sh',
      repo,
      BEFORE_SERIES,
      old,
    ]);
    await startCounter(bed, bed.host1, legacy, { mb: 8 });
    const token = await tokenOf(bed.host1, legacy);
    const taken = await runAction(inputs({ mode: 'checkpoint', container: legacy, source: bed.host1 }), {
      entry: join(old, 'dist/index.js'),
    });
    expect(taken.exitCode, taken.stdout).toBe(0);
    const oldName = taken.outputs['checkpoint-name']!;
    expect(await stored(legacy)).toEqual([oldName]);

    const restored = await runAction(
      inputs({ mode: 'restore', container: legacy, source: bed.host1, target: bed.host2 }),
    );
    expect(restored.exitCode, restored.stdout).toBe(0);
    expect(restored.stdout).toContain('is stored at the layout from before series');
    expect(await tokenOf(bed.host2, legacy)).toBe(token);
    await onHost(bed, bed.host2, `docker rm -f ${legacy}`);

    const id = (await onHost(bed, bed.host1, `docker inspect -f '{{.Id}}' ${legacy}`)).trim().slice(0, 12);
    const next = await checkpoint(bed.host1, legacy, { retention: '0' });
    expect(next.exitCode, next.stdout).toBe(0);
    expect(next.stdout).toContain(
      `store: moved 1 checkpoint(s) of ${legacy} from the layout before series into series ${id}`,
    );
    expect(await stored(legacy)).toEqual(
      [`${id}/${oldName}`, `${id}/${next.outputs['checkpoint-name']}`].sort(),
    );
  });

  it('image collection keeps an image a checkpoint still being written uses', async () => {
    // gone: the only complete checkpoint with the image, removed while held is being written.
    await startCounter(bed, bed.host1, gc.gone, { mb: 8 });
    await startCounter(bed, bed.host1, gc.held, { mb: 8 });
    const gone = await checkpoint(bed.host1, gc.gone);
    expect(gone.exitCode, gone.stdout).toBe(0);
    await onHost(bed, bed.host3, `rm -rf ${store}/${name} ${store}/${lineage} ${store}/${legacy}`);
    const image = (await onHost(bed, bed.host1, `docker inspect -f '{{.Image}}' ${gc.held}`)).trim().slice(7);

    await installHold(bed, bed.host3, 'tar', '*"gc-held-1.partial"*', 'gc-held');
    const held = startAction(
      inputs({ mode: 'checkpoint', container: gc.held, source: bed.host1, 'checkpoint-name': 'gc-held-1' }),
    );
    try {
      await waitHeld(bed, bed.host3, 'gc-held', 60_000, held);
      // held found the image in the store and will not send it; now no complete checkpoint uses it.
      await onHost(bed, bed.host3, `rm -rf ${store}/${gc.gone}`);
      // Another image's container checkpointed meanwhile: its retention collects unused images.
      await onHost(bed, bed.host1, `docker commit ${gc.gone} ${otherImage} >/dev/null`);
      await onHostResult(bed, bed.host1, `docker rm -f ${gc.other}`);
      await onHost(bed, bed.host1, `docker run -d --name ${gc.other} -e MB=8 ${otherImage} testbed-counter`);
      await new Promise((r) => setTimeout(r, 2000));
      const other = await checkpoint(bed.host1, gc.other, { retention: '1' });
      expect(other.exitCode, other.stdout).toBe(0);
      expect(other.stdout).not.toContain(`removed images/${image}.tar`);
      expect(await onHost(bed, bed.host3, `test -s ${store}/images/${image}.tar && echo kept`)).toBe(
        'kept\n',
      );
    } finally {
      await release(bed, bed.host3, 'gc-held');
    }
    const done = await held.done;
    await removeFaults(bed);
    expect(done.exitCode, done.stdout).toBe(0);
    // The held checkpoint is whole: a restore checks every file and the image against its manifest.
    await onHost(bed, bed.host1, `docker rm -f ${gc.held}`);
    const restored = await runAction(
      inputs({ mode: 'restore', container: gc.held, source: bed.host1, target: bed.host2 }),
    );
    expect(restored.exitCode, restored.stdout).toBe(0);
    expect(await containerState(bed, bed.host2, gc.held)).toMatchObject({ Running: true, Paused: false });
  });
});
