import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeFaults } from './faults.js';
import { runAction } from './run-action.js';
import { loadTestbed, onHost, onHostResult, sshInputs, startCounter, type Testbed } from './testbed.js';

// A checkpoint store another party can write to: a manifest edited to name other paths must
// not turn a restore into reads or writes outside the checkpoint. Refused before anything is
// touched, on the store host and on the target.
let bed: Testbed;
const name = 'e2e-shape';
const volume = 'e2e-shape-data';
const store = '/var/lib/criu-migrate-e2e-shape-store';
const pwned = '/tmp/e2e-shape-pwned';

/**
 * Everything that could change: the store's files, the target's containers, volumes and work
 * files (the run's own record of a refusal goes to history/, which is expected).
 */
async function snapshot(): Promise<string[]> {
  return Promise.all([
    onHost(bed, bed.host3, `find ${store} -printf '%p %s %T@ %m\\n' | sort; ls -A /tmp`),
    onHost(
      bed,
      bed.host2,
      // The run's records of itself (its history, made on first use, and the lock's guard file,
      // which stays so that flock always locks one file) are not the target's state.
      `docker ps -a --format '{{.Names}}'; docker volume ls -q; find /var/lib/criu-migrate -path '*/history' -prune -o -print 2>/dev/null | grep -vx -e '/var/lib/criu-migrate/containers/${name}' -e '/var/lib/criu-migrate/containers/${name}/lock.guard' | sort; ls -A /tmp`,
    ),
  ]);
}

async function editedRestore(edit: (manifest: Record<string, unknown>) => void) {
  const path = (await onHost(bed, bed.host3, `ls ${store}/${name}/*/*/manifest.json`)).trim();
  const original = await onHost(bed, bed.host3, `cat ${path}`);
  const manifest = JSON.parse(original);
  edit(manifest);
  const write = (text: string) =>
    onHost(bed, bed.host3, `printf %s ${Buffer.from(text).toString('base64')} | base64 -d >${path}`);
  await write(JSON.stringify(manifest, null, 2));
  try {
    const before = await snapshot();
    const run = await runAction({
      container: name,
      mode: 'restore',
      source: bed.host1,
      'store-host': bed.host3,
      'store-path': store,
      target: bed.host2,
      ...sshInputs(bed),
      'verify-stable-seconds': '1',
    });
    expect(run.exitCode, run.stdout).not.toBe(0);
    expect(run.outputs.status).toBe('refused');
    expect(run.outputs['error-code']).toBe('UNSAFE_VALUE');
    // Nothing on the store host, nothing on the target: not a file, container, volume or journal.
    expect(await snapshot()).toEqual(before);
    for (const host of [bed.host1, bed.host2, bed.host3]) {
      expect((await onHostResult(bed, host, `test -e ${pwned}`)).code).not.toBe(0);
    }
    return run;
  } finally {
    await write(original);
  }
}

beforeAll(async () => {
  bed = loadTestbed();
  await removeFaults(bed);
  for (const host of [bed.host1, bed.host2]) {
    await onHostResult(bed, host, `docker rm -f ${name}; docker volume rm ${volume}; rm -f ${pwned}`);
  }
  await onHostResult(bed, bed.host3, `rm -rf ${store} ${pwned}`);
  await onHost(
    bed,
    bed.host1,
    `docker volume create ${volume} >/dev/null && echo kept >"$(docker volume inspect -f '{{.Mountpoint}}' ${volume})/file"`,
  );
  await startCounter(bed, bed.host1, name, { mb: 8, extraArgs: `-v ${volume}:/data` });
  const taken = await runAction({
    container: name,
    mode: 'checkpoint',
    source: bed.host1,
    'store-host': bed.host3,
    'store-path': store,
    ...sshInputs(bed),
  });
  expect(taken.exitCode, taken.stdout).toBe(0);
  // The container's host "dies": only the store remains.
  await onHost(bed, bed.host1, `docker rm -f ${name}`);
});

afterAll(async () => {
  for (const host of [bed.host1, bed.host2]) {
    await onHostResult(bed, host, `docker rm -f ${name}; docker volume rm ${volume}; rm -f ${pwned}`);
  }
  await onHostResult(bed, bed.host3, `rm -rf ${store}`);
});

describe('restore mode and an edited manifest in the store', () => {
  it('refuses a volume named ../../etc before anything is touched', async () => {
    const run = await editedRestore((manifest) => {
      const [stored] = manifest.volumes as { name: string; info: { name: string }; archives: string[] }[];
      stored!.name = '../../etc';
      stored!.info.name = '../../etc';
      stored!.archives = stored!.archives.map((archive) => archive.replace(volume, '../../etc'));
    });
    expect(run.stdout).toContain('volume "../../etc" is not a Docker volume name');
  });

  it('refuses an archive name holding $(...) before anything is touched', async () => {
    const run = await editedRestore((manifest) => {
      const [stored] = manifest.volumes as { archives: string[] }[];
      stored!.archives = [`volumes/${volume}/$(touch ${pwned}).tar`];
    });
    expect(run.stdout).toContain(`archive "volumes/${volume}/$(touch ${pwned}).tar"`);
  });

  it('restores the untouched checkpoint afterwards', async () => {
    const run = await runAction({
      container: name,
      mode: 'restore',
      source: bed.host1,
      'store-host': bed.host3,
      'store-path': store,
      target: bed.host2,
      ...sshInputs(bed),
      'verify-stable-seconds': '1',
    });
    expect(run.exitCode, run.stdout).toBe(0);
    expect(await onHost(bed, bed.host2, `docker exec ${name} cat /data/file`)).toBe('kept\n');
  });
});
