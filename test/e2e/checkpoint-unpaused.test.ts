import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installWrapper, release, removeFaults, waitHeld } from './faults.js';
import { containerState, expectCounterContinued } from './invariants.js';
import { runAction, startAction } from './run-action.js';
import { loadTestbed, onHost, onHostResult, sshInputs, startCounter, type Testbed } from './testbed.js';

// leave-running: false stops the container once its checkpoint is complete. A run that dies
// right there leaves it frozen, an operator resumes it, and the next run finishes the first
// one's roll-forward: it must not kill what is now the running service.
let bed: Testbed;
const name = 'e2e-ckpt-unpaused';
const store = '/var/lib/criu-migrate-e2e-unpaused-store';

// The roll-forward's SIGKILL is held, then never carried out: the run dies there. The kill's first
// step asks whether the container is paused (killScript, docker-cli.ts), before it signals anything.
const KILL_NEVER_RUNS = `#!/bin/sh
case " $* " in
  *" --format {{.State.Paused}} "*)
    touch /tmp/e2e-held-ckptkill
    i=0
    while [ ! -e /tmp/e2e-release-ckptkill ] && [ "$i" -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
    exit 1 ;;
esac
exec /usr/bin/docker "$@"
`;

function inputs(extra: Record<string, string>): Record<string, string> {
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

beforeAll(async () => {
  bed = loadTestbed();
  await removeFaults(bed);
  await onHostResult(bed, bed.host3, `rm -rf ${store}`);
  await onHostResult(bed, bed.host1, `rm -rf /var/lib/criu-migrate/containers/${name}`);
  await startCounter(bed, bed.host1, name, { mb: 8 });
});

afterAll(async () => {
  await removeFaults(bed);
  await onHostResult(bed, bed.host1, `docker rm -f ${name}`);
  await onHostResult(bed, bed.host3, `rm -rf ${store}`);
});

describe("checkpoint mode's roll-forward", () => {
  it('leaves a container running that an operator resumed after the run died past its commit', async () => {
    await installWrapper(bed, bed.host1, '/usr/local/bin/docker', KILL_NEVER_RUNS);
    await onHost(bed, bed.host1, 'rm -f /tmp/e2e-held-ckptkill /tmp/e2e-release-ckptkill');
    const first = startAction(inputs({ 'checkpoint-name': 'unpaused-1', 'leave-running': 'false' }));
    await waitHeld(bed, bed.host1, 'ckptkill', 120_000, first);
    // Past the commit: the checkpoint is complete, the container still frozen.
    expect(await containerState(bed, bed.host1, name)).toMatchObject({ Paused: true });
    const killed = await first.kill();
    expect(killed.exitCode).not.toBe(0);
    await release(bed, bed.host1, 'ckptkill');
    await removeFaults(bed);
    const journal = JSON.parse(
      await onHost(bed, bed.host1, `cat /var/lib/criu-migrate/containers/${name}/journal.json`),
    );
    expect(journal.entries.some((e: { action: { kind: string } }) => e.action.kind === 'committed')).toBe(
      true,
    );

    // The operator resumes the service.
    await onHost(bed, bed.host1, `docker unpause ${name}`);
    await expectCounterContinued(bed, bed.host1, name);

    const next = await runAction(inputs({ 'checkpoint-name': 'unpaused-2' }));
    expect(next.exitCode, next.stdout).toBe(0);
    expect(next.outputs.status).toBe('succeeded');
    expect(next.stdout).toContain('found an unfinished run');
    expect(next.stdout).toContain('left the container running');
    expect(await containerState(bed, bed.host1, name)).toMatchObject({ Running: true, Paused: false });
    await expectCounterContinued(bed, bed.host1, name);
    // The earlier run was settled, not left open for the next one.
    expect(
      (await onHostResult(bed, bed.host1, `test -e /var/lib/criu-migrate/containers/${name}/journal.json`))
        .code,
    ).not.toBe(0);
  });

  it('leaves a container paused that someone resumed and paused again: nothing proves it the frozen copy', async () => {
    await startCounter(bed, bed.host1, name, { mb: 8 });
    await installWrapper(bed, bed.host1, '/usr/local/bin/docker', KILL_NEVER_RUNS);
    await onHost(bed, bed.host1, 'rm -f /tmp/e2e-held-ckptkill /tmp/e2e-release-ckptkill');
    const first = startAction(inputs({ 'checkpoint-name': 'unpaused-4', 'leave-running': 'false' }));
    await waitHeld(bed, bed.host1, 'ckptkill', 120_000, first);
    await first.kill();
    await release(bed, bed.host1, 'ckptkill');
    await removeFaults(bed);
    // Resumed (it ran), then paused again by hand: the same state as the run left, another history.
    await onHost(bed, bed.host1, `docker unpause ${name} && sleep 1 && docker pause ${name}`);

    const next = await runAction(inputs({ 'checkpoint-name': 'unpaused-5' }));
    expect(next.stdout).toContain(
      'left the container paused: nothing proves it is still the copy this run froze',
    );
    expect(next.stdout).toContain('events since the freeze: pause, unpause, pause');
    expect(await containerState(bed, bed.host1, name)).toMatchObject({ Running: true, Paused: true });
    // A paused container is not checkpointed either: refused, nothing done to it.
    expect(next.outputs['error-code']).toBe('CONTAINER_NOT_RUNNING');
    expect(next.outputs.status).toBe('refused');
    await onHost(bed, bed.host1, `docker unpause ${name}`);
    await expectCounterContinued(bed, bed.host1, name);
  });

  it('still stops the container it proves frozen (leave-running: false, nothing in between)', async () => {
    const run = await runAction(inputs({ 'checkpoint-name': 'unpaused-3', 'leave-running': 'false' }));
    expect(run.exitCode, run.stdout).toBe(0);
    expect(await containerState(bed, bed.host1, name)).toMatchObject({ Running: false, Paused: false });
  });
});
