import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeFaults } from './faults.js';
import { containerState, expectNothingLeft, expectRunningOnlyOn } from './invariants.js';
import { runAction } from './run-action.js';
import { loadTestbed, onHost, onHostResult, sshInputs, startCounter, type Testbed } from './testbed.js';

// A volume created with driver options shows what the options point to once mounted; a copy
// into its _data directory would be hidden from the container. Refused unless the run may use
// the target's volume as it is.
let bed: Testbed;
const name = 'e2e-vopt';
const volume = 'e2e-vopt-data';
const device = '/srv/e2e-vopt';
const store = '/var/lib/criu-migrate-e2e-vopt-store';

/** What the target's bound directory and the volume's own _data directory hold. */
async function targetListing(): Promise<string> {
  return onHost(
    bed,
    bed.host2,
    `ls -A ${device}; echo ---; ls -A "$(docker volume inspect -f '{{.Mountpoint}}' ${volume})"`,
  );
}

async function clean(): Promise<void> {
  for (const host of [bed.host1, bed.host2]) {
    await onHostResult(bed, host, `docker rm -f ${name}; docker volume rm ${volume}; rm -rf ${device}`);
  }
  await onHostResult(bed, bed.host3, `rm -rf ${store}`);
}

beforeAll(async () => {
  bed = loadTestbed();
  await removeFaults(bed);
  await clean();
  await onHost(
    bed,
    bed.host1,
    `docker volume create ${volume} >/dev/null && echo source >"$(docker volume inspect -f '{{.Mountpoint}}' ${volume})/from-source"`,
  );
  await onHost(
    bed,
    bed.host2,
    `mkdir -p ${device} && echo target >${device}/on-target && docker volume create --opt type=none --opt o=bind --opt device=${device} ${volume} >/dev/null`,
  );
  await startCounter(bed, bed.host1, name, { mb: 8, extraArgs: `-v ${volume}:/data` });
});

afterAll(async () => {
  await clean();
});

describe('a target volume with driver options', () => {
  it('is refused before anything is touched', async () => {
    const before = await targetListing();
    expect(before).toBe('on-target\n---\n');
    const run = await runAction({
      container: name,
      source: bed.host1,
      target: bed.host2,
      ...sshInputs(bed),
      'verify-stable-seconds': '1',
    });
    expect(run.exitCode, run.stdout).not.toBe(0);
    expect(run.outputs.status).toBe('refused');
    expect(run.outputs['error-code']).toBe('VOLUME_TARGET_HAS_OPTIONS');
    expect(run.stdout).toContain('o=bind');
    expect(run.stdout).toContain('volume-use-target-options: true');
    // Never paused, nothing created or written on the target.
    await expectRunningOnlyOn(bed, bed.host1, name);
    expect(await containerState(bed, bed.host2, name)).toBeUndefined();
    expect(await targetListing()).toBe(before);
    await expectNothingLeft(bed, name);
  });

  it('in restore mode: refused (rolled back, nothing left), and used as it is with the input', async () => {
    const taken = await runAction({
      container: name,
      mode: 'checkpoint',
      source: bed.host1,
      'store-host': bed.host3,
      'store-path': store,
      ...sshInputs(bed),
    });
    expect(taken.exitCode, taken.stdout).toBe(0);
    const restore = (more: Record<string, string> = {}) =>
      runAction({
        container: name,
        mode: 'restore',
        source: bed.host1,
        'store-host': bed.host3,
        'store-path': store,
        target: bed.host2,
        ...sshInputs(bed),
        'verify-stable-seconds': '1',
        ...more,
      });
    const refused = await restore();
    expect(refused.exitCode, refused.stdout).not.toBe(0);
    expect(refused.outputs['error-code']).toBe('VOLUME_TARGET_HAS_OPTIONS');
    // The CPU check and the image came first: undone, and nothing was written into the volume.
    expect(refused.outputs.status).toBe('rolled-back');
    expect(await containerState(bed, bed.host2, name)).toBeUndefined();
    expect(await targetListing()).toBe('on-target\n---\n');
    await expectNothingLeft(bed, name);

    const used = await restore({ 'volume-use-target-options': 'true' });
    expect(used.exitCode, used.stdout).toBe(0);
    expect(await onHost(bed, bed.host2, `docker exec ${name} ls -A /data`)).toBe('on-target\n');
    // The stored volume's contents went nowhere on the target.
    expect(await targetListing()).toBe('on-target\n---\non-target\n');
    await onHost(bed, bed.host2, `docker rm -f ${name}`);
    expect(await targetListing()).toBe('on-target\n---\n');
  });

  it('is used as it is, nothing copied into it, with volume-use-target-options: true', async () => {
    const run = await runAction({
      container: name,
      source: bed.host1,
      target: bed.host2,
      ...sshInputs(bed),
      'verify-stable-seconds': '1',
      'volume-use-target-options': 'true',
    });
    expect(run.exitCode, run.stdout).toBe(0);
    expect(run.outputs.status).toBe('succeeded');
    expect(run.stdout).toContain('used as it is, nothing copied');
    await expectRunningOnlyOn(bed, bed.host2, name);
    // The container sees the bound directory; the source's file went nowhere on the target.
    expect(await onHost(bed, bed.host2, `docker exec ${name} ls -A /data`)).toBe('on-target\n');
    // Mounted now, the volume's _data shows the bound directory too.
    expect(await targetListing()).toBe('on-target\n---\non-target\n');
    await expectNothingLeft(bed, name);
  });
});
