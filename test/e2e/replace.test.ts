import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installWrapper, removeFaults } from './faults.js';
import { containerState } from './invariants.js';
import { runAction } from './run-action.js';
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

// replace: true in restore mode: the stopped container of the same name on the
// target is only renamed aside once every check passed, removed once the
// restored container is verified, and put back when the restore fails.
let bed: Testbed;
const name = 'e2e-replace';
const store = '/var/lib/criu-migrate-e2e-replace-store';

function restoreInputs(): Record<string, string> {
  return {
    mode: 'restore',
    container: name,
    source: bed.host1,
    target: bed.host2,
    'store-host': bed.host3,
    'store-path': store,
    replace: 'true',
    'verify-stable-seconds': '1',
    ...sshInputs(bed),
  };
}

/** What must not change about the namesake: its ID, name, state, creation and configuration. */
async function namesake(): Promise<string> {
  return onHost(
    bed,
    bed.host2,
    `docker inspect --format '{{.Id}} {{.Name}} {{.State.Status}} {{.State.ExitCode}} {{.Created}} {{json .Config.Cmd}} {{json .Config.Labels}}' ${name}`,
  );
}

/** Every container on the target whose name starts with the test's: only the namesake may be there. */
async function namesOnTarget(): Promise<string[]> {
  const out = await onHost(bed, bed.host2, `docker ps -a --format '{{.Names}}' --filter name=${name}`);
  return out.split('\n').filter(Boolean).sort();
}

beforeAll(async () => {
  bed = loadTestbed();
  await removeFaults(bed);
  await onHostResult(bed, bed.host3, `rm -rf ${store}`);
  await onHostResult(bed, bed.host2, `docker ps -aq --filter name=${name} | xargs -r docker rm -f`);
  await startCounter(bed, bed.host1, name, { mb: 8 });
  const taken = await runAction({
    mode: 'checkpoint',
    container: name,
    source: bed.host1,
    'store-host': bed.host3,
    'store-path': store,
    'checkpoint-name': 'r1',
    ...sshInputs(bed),
  });
  if (taken.exitCode !== 0) throw new Error(`checkpoint failed:\n${taken.stdout}`);
  await onHost(bed, bed.host1, `docker rm -f ${name}`);
  // The target's namesake: stopped, its own command and label.
  await onHost(
    bed,
    bed.host2,
    `docker run --name ${name} --label role=namesake ${bed.image} sh -c 'echo namesake was here'`,
  );
});

afterAll(async () => {
  await removeFaults(bed);
  await onHostResult(bed, bed.host2, `docker ps -aq --filter name=${name} | xargs -r docker rm -f`);
  await onHostResult(bed, bed.host1, `docker rm -f ${name}`);
  await onHostResult(bed, bed.host3, `rm -rf ${store}`);
});

describe('restore with replace: true', () => {
  it('a restore refused by a check leaves the stopped namesake exactly as it was', async () => {
    const before = await namesake();
    // The target's CRIU says its CPU cannot run the checkpoint.
    await installWrapper(
      bed,
      bed.host2,
      '/usr/local/sbin/criu',
      `#!/bin/sh
case " $* " in
  *" cpuinfo check "*) echo "cpu feature avx512f missing (test)" >&2; exit 1 ;;
esac
exec /usr/sbin/criu "$@"
`,
    );
    try {
      const run = await runAction(restoreInputs());
      expect(run.exitCode).not.toBe(0);
      expect(run.outputs['error-code'], run.stdout).toBe('CPU_INCOMPATIBLE');
      expect(['refused', 'rolled-back']).toContain(run.outputs.status);
      expect(run.stdout).not.toMatch(/is renamed .* until the restore is verified/);
    } finally {
      await removeFaults(bed);
    }
    expect(await namesake()).toBe(before);
    expect(await namesOnTarget()).toEqual([name]);
  });

  it('a restore that fails after the namesake was moved aside puts it back', async () => {
    const before = await namesake();
    // The writable layer cannot be unpacked into the new container: a failure after every check.
    await installWrapper(
      bed,
      bed.host2,
      '/usr/local/bin/tar',
      `#!/bin/sh
case " $* " in
  *"--listed-incremental=/dev/null"*-xpf*) cat >/dev/null; echo "tar: disk full (test)" >&2; exit 2 ;;
esac
exec /usr/bin/tar "$@"
`,
    );
    try {
      const run = await runAction(restoreInputs());
      expect(run.exitCode).not.toBe(0);
      expect(run.outputs.status, run.stdout).toBe('rolled-back');
      expect(run.stdout).toMatch(
        /replace: the stopped container e2e-replace \([0-9a-f]{12}\) is renamed \S+ until/,
      );
      expect(run.stdout).toMatch(/put back the stopped container e2e-replace/);
    } finally {
      await removeFaults(bed);
    }
    expect(await namesake()).toBe(before);
    expect(await namesOnTarget()).toEqual([name]);
  });

  it('a restore that succeeds replaces the namesake, removed only after the restored container was verified', async () => {
    const oldId = (await namesake()).split(' ')[0];
    const run = await runAction(restoreInputs());
    expect(run.exitCode, run.stdout).toBe(0);
    expect(run.outputs.status).toBe('succeeded');
    expect(run.stdout).toMatch(/removed the replaced container e2e-replace/);
    expect(await containerState(bed, bed.host2, name)).toMatchObject({ Running: true, Paused: false });
    const now = await onHost(bed, bed.host2, `docker inspect --format '{{.Id}}' ${name}`);
    expect(now.trim()).not.toBe(oldId);
    expect(now.trim()).toBe(run.outputs['target-container-id']);
    expect(await namesOnTarget()).toEqual([name]);
    expect(await onHostResult(bed, bed.host2, `docker inspect ${oldId}`)).toMatchObject({ code: 1 });
    // The checkpoint's process, counting on.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(parseCounter(await containerLogs(bed, bed.host2, name)).length).toBeGreaterThan(0);
  });
});
