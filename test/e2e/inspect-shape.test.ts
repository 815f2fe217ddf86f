import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installWrapper, removeFaults } from './faults.js';
import { containerState, expectNothingLeft, expectRunningOnlyOn } from './invariants.js';
import { runAction } from './run-action.js';
import { loadTestbed, onHost, onHostResult, sshInputs, startCounter, type Testbed } from './testbed.js';

// A source whose docker inspect names a volume "../../etc" (a compromised or odd daemon: the
// wrapper below rewrites what Docker prints): refused before that name becomes a path or an
// argument on any host, in migrate and in checkpoint mode.
let bed: Testbed;
const name = 'e2e-shape-gate';
const volume = 'e2e-shape-gate-data';
const store = '/var/lib/criu-migrate-e2e-shape-gate-store';

beforeAll(async () => {
  bed = loadTestbed();
  await removeFaults(bed);
  for (const host of [bed.host1, bed.host2]) {
    await onHostResult(bed, host, `docker rm -f ${name}; docker volume rm ${volume}`);
  }
  await onHostResult(bed, bed.host3, `rm -rf ${store}`);
  await onHost(bed, bed.host1, `docker volume create ${volume} >/dev/null`);
  await startCounter(bed, bed.host1, name, { mb: 8, extraArgs: `-v ${volume}:/data` });
  await installWrapper(
    bed,
    bed.host1,
    '/usr/local/bin/docker',
    `#!/bin/sh
case " $* " in
  " container inspect "*)
    out=$(/usr/bin/docker "$@") || exit $?
    printf '%s\\n' "$out" | sed 's#"${volume}"#"../../etc"#g'
    exit 0 ;;
esac
exec /usr/bin/docker "$@"
`,
  );
  // The wrapper is in place: the source now says so.
  expect(await onHost(bed, bed.host1, `docker container inspect -- ${name}`)).toContain('"../../etc"');
});

afterAll(async () => {
  await removeFaults(bed);
  for (const host of [bed.host1, bed.host2]) {
    await onHostResult(bed, host, `docker rm -f ${name}; docker volume rm ${volume}`);
  }
  await onHostResult(bed, bed.host3, `rm -rf ${store}`);
});

describe("a hostile name in the source's docker inspect", () => {
  it('is refused by the gate of a migration before anything is paused or created', async () => {
    const run = await runAction({
      container: name,
      source: bed.host1,
      target: bed.host2,
      ...sshInputs(bed),
      'verify-stable-seconds': '1',
    });
    expect(run.exitCode, run.stdout).not.toBe(0);
    expect(run.outputs.status).toBe('refused');
    expect(run.outputs['error-code']).toBe('UNSAFE_VALUE');
    expect(run.stdout).toContain('volume "../../etc" is not a Docker volume name');
    await expectRunningOnlyOn(bed, bed.host1, name);
    expect(await containerState(bed, bed.host2, name)).toBeUndefined();
    expect(await onHost(bed, bed.host2, 'docker volume ls -q')).not.toContain(volume);
    await expectNothingLeft(bed, name);
  });

  it('is refused by checkpoint mode before the container is frozen or the store written', async () => {
    const run = await runAction({
      container: name,
      mode: 'checkpoint',
      source: bed.host1,
      'store-host': bed.host3,
      'store-path': store,
      ...sshInputs(bed),
    });
    expect(run.exitCode, run.stdout).not.toBe(0);
    expect(run.outputs.status).toBe('refused');
    expect(run.outputs['error-code']).toBe('UNSAFE_VALUE');
    expect(await containerState(bed, bed.host1, name)).toMatchObject({ Running: true, Paused: false });
    expect(await onHost(bed, bed.host3, `find ${store} -type f 2>/dev/null; true`)).toBe('');
    await expectNothingLeft(bed, name);
  });
});
