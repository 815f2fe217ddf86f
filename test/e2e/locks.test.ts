import { existsSync, readlinkSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { installHold, installWrapper, release, removeFaults, waitHeld } from './faults.js';
import {
  containerState,
  expectCounterContinued,
  expectNothingLeft,
  expectRunningOnlyOn,
} from './invariants.js';
import { ACTION_NODE, DIST_ENTRY, runAction, runPostStep, startAction } from './run-action.js';
import { loadTestbed, onHost, onHostResult, sshInputs, startCounter, type Testbed } from './testbed.js';

// Locks, rollback by ID and commit durability, each caused for real on the default bed: two runs
// racing for one stale lock, a lock owner in another PID namespace, a run given the ID against
// one given the name, a target name taken between the check and docker create, commit writes
// failing on every host, and a checkpoint journal left by a run whose container was removed since.
let bed: Testbed;
const name = 'e2e-lock';
const ckpt = 'e2e-lock-ckpt';
const store = '/var/lib/criu-migrate-e2e-lock-store';
const lockDir = `/var/lib/criu-migrate/containers/${name}/lock`;
/** Held while a run waits at docker create on the target (stage). */
const CREATE = '*" --env-file "*';

/** A cat that fails every journal write carrying the commit point (the journal's own writes only). */
const FAIL_COMMIT = `#!/bin/sh
if [ $# -eq 0 ] && tr '\\0' ' ' </proc/$PPID/cmdline 2>/dev/null | grep -q 'journal\\.json'; then
  t=$(mktemp) || exit 1
  /usr/bin/cat >"$t"
  if grep -q '"kind": "committed"' "$t"; then rm -f "$t"; echo "e2e: injected journal write failure" >&2; exit 1; fi
  /usr/bin/cat "$t"; s=$?; rm -f "$t"; exit $s
fi
exec /usr/bin/cat "$@"
`;

function inputs(extra: Record<string, string> = {}): Record<string, string> {
  return {
    container: name,
    source: bed.host1,
    target: bed.host2,
    ...sshInputs(bed),
    'verify-stable-seconds': '2',
    ...extra,
  };
}

async function fresh(): Promise<void> {
  await removeFaults(bed);
  for (const host of [bed.host1, bed.host2]) {
    await onHostResult(
      bed,
      host,
      `rm -f /usr/local/bin/stat /usr/local/bin/cat /tmp/e2e-held-race.*; docker rm -f ${name} other-${name}; rm -rf /var/lib/criu-migrate/containers/${name} /var/lib/criu-migrate/work/*`,
    );
  }
  await startCounter(bed, bed.host1, name, { mb: 16 });
}

beforeAll(() => {
  bed = loadTestbed();
});

afterEach(async () => {
  await removeFaults(bed);
  for (const host of [bed.host1, bed.host2]) {
    await onHostResult(bed, host, 'rm -f /usr/local/bin/stat /usr/local/bin/cat /tmp/e2e-held-race.*');
  }
});

afterAll(async () => {
  for (const host of [bed.host1, bed.host2]) {
    await onHostResult(
      bed,
      host,
      `docker rm -f ${name} ${ckpt}; docker ps -aq --filter label=e2e-lock-other | xargs -r docker rm -f; rm -rf /var/lib/criu-migrate/containers/${name} /var/lib/criu-migrate/containers/${ckpt}`,
    );
  }
  await onHostResult(bed, bed.host3, `rm -rf ${store}`);
});

describe('locks', () => {
  it('two runs racing for the same stale lock: exactly one proceeds', async () => {
    await fresh();
    // A lock left by a run that is gone: another machine's, not renewed for ten minutes.
    const stale = JSON.stringify({
      token: 'gone',
      githubRunId: '7',
      machine: 'gone-runner',
      pid: 1,
      startedAt: '2026-12-01T00:00:00.000Z',
    });
    for (const host of [bed.host1, bed.host2]) {
      await onHost(
        bed,
        host,
        `umask 077; mkdir -p ${lockDir} && printf '%s' '${stale}' >${lockDir}/owner.json && touch -d '-10 min' ${lockDir}/owner.json`,
      );
    }
    // Both runs are held while reading the source's lock, so both judge it stale before either takes it over.
    await installWrapper(
      bed,
      bed.host1,
      '/usr/local/bin/stat',
      `#!/bin/sh
case " $* " in
  *"${lockDir}/owner.json"*)
    touch /tmp/e2e-held-race.$$
    i=0
    while [ ! -e /tmp/e2e-release-race ] && [ "$i" -lt 600 ]; do sleep 0.1; i=$((i + 1)); done ;;
esac
exec /usr/bin/stat "$@"
`,
    );
    const first = startAction(inputs(), { runId: '301' });
    const second = startAction(inputs(), { runId: '302' });
    for (let i = 0; i < 600; i++) {
      const held = await onHost(bed, bed.host1, 'ls /tmp/e2e-held-race.* 2>/dev/null | wc -l');
      if (Number(held) >= 2) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(Number(await onHost(bed, bed.host1, 'ls /tmp/e2e-held-race.* | wc -l'))).toBeGreaterThanOrEqual(2);
    await release(bed, bed.host1, 'race');
    const runs = await Promise.all([first.done, second.done]);
    const statuses = runs.map((run) => run.outputs.status).sort();
    expect(statuses, runs.map((run) => run.stdout).join('\n----\n')).toEqual(['refused', 'succeeded']);
    const refused = runs.find((run) => run.outputs.status === 'refused')!;
    expect(refused.outputs['error-code']).toBe('MIGRATION_IN_PROGRESS');
    expect(refused.stdout).toMatch(
      /MIGRATION_IN_PROGRESS: .*(renewed or took it over first|another run is working)/,
    );
    const winner = runs.find((run) => run.outputs.status === 'succeeded')!;
    expect(winner.stdout).toMatch(/which is gone \(not renewed for \d+ s\); taking it over/);
    await expectRunningOnlyOn(bed, bed.host2, name);
    await expectCounterContinued(bed, bed.host2, name);
    await expectNothingLeft(bed, name);
  });

  it('the owner of a lock alive in another PID namespace on this machine keeps its lock', async () => {
    await fresh();
    // The first run runs in a PID namespace of its own, with a PID that no process has here.
    let pid = 30_000;
    while (existsSync(`/proc/${pid}`) && pid > 20_000) pid--;
    await installHold(bed, bed.host2, 'docker', CREATE, 'pidns');
    const owner = startAction(inputs(), {
      runId: '401',
      command: [
        'unshare',
        '--pid',
        '--fork',
        '--mount-proc',
        // Node, not a shell, in between: sh drops the INPUT_* variables whose names have a dash.
        ACTION_NODE,
        '-e',
        "require('node:fs').writeFileSync('/proc/sys/kernel/ns_last_pid', process.argv[1]); const r = require('node:child_process').spawnSync(process.argv[2], [process.argv[3]], { stdio: 'inherit' }); process.exit(r.status ?? 1);",
        String(pid - 1),
        ACTION_NODE,
        DIST_ENTRY,
      ],
    });
    await waitHeld(bed, bed.host2, 'pidns', 60_000, owner);
    const held = JSON.parse(await onHost(bed, bed.host1, `cat ${lockDir}/owner.json`));
    // What made the old rule take the lock over: same machine and boot, a PID that is not alive here.
    expect(held.githubRunId).toBe('401');
    expect(held.pid).toBe(pid);
    expect(existsSync(`/proc/${held.pid}`)).toBe(false);
    expect(held.pidNs).not.toBe(readlinkSync('/proc/self/ns/pid'));
    const other = await runAction(inputs(), { runId: '402' });
    expect(other.outputs.status, other.stdout).toBe('refused');
    expect(other.outputs['error-code']).toBe('MIGRATION_IN_PROGRESS');
    expect(other.stdout).toMatch(/another run is working on container e2e-lock: GitHub run 401/);
    // The refused run left the lock to its owner.
    expect(JSON.parse(await onHost(bed, bed.host1, `cat ${lockDir}/owner.json`)).githubRunId).toBe('401');
    await release(bed, bed.host2, 'pidns');
    const done = await owner.done;
    expect(done.outputs.status, done.stdout).toBe('succeeded');
    await expectRunningOnlyOn(bed, bed.host2, name);
    await expectCounterContinued(bed, bed.host2, name);
    await expectNothingLeft(bed, name);
  });

  it('a run given the container ID and a run given its name exclude each other', async () => {
    await fresh();
    const id = await onHost(bed, bed.host1, `docker inspect --format '{{.Id}}' ${name}`);
    await installHold(bed, bed.host2, 'docker', CREATE, 'byid');
    const byId = startAction(inputs({ container: id }), { runId: '501' });
    await waitHeld(bed, bed.host2, 'byid', 60_000, byId);
    const byName = await runAction(inputs(), { runId: '502' });
    expect(byName.outputs.status, byName.stdout).toBe('refused');
    expect(byName.stdout).toMatch(
      /MIGRATION_IN_PROGRESS: another run is working on container e2e-lock: GitHub run 501/,
    );
    // And the other way round: a short ID prefix while the name's run holds it.
    const byPrefix = await runAction(inputs({ container: id.slice(0, 12) }), { runId: '503' });
    expect(byPrefix.outputs.status, byPrefix.stdout).toBe('refused');
    expect(byPrefix.outputs['error-code']).toBe('MIGRATION_IN_PROGRESS');
    await release(bed, bed.host2, 'byid');
    const done = await byId.done;
    expect(done.outputs.status, done.stdout).toBe('succeeded');
    await expectRunningOnlyOn(bed, bed.host2, name);
    await expectCounterContinued(bed, bed.host2, name);
    await expectNothingLeft(bed, name);
  });
});

describe('rollback removes only what the run made', () => {
  it('a target name taken between the check and docker create: the other container is left alone', async () => {
    await fresh();
    await installHold(bed, bed.host2, 'docker', CREATE, 'taken');
    const running = startAction(inputs());
    await waitHeld(bed, bed.host2, 'taken', 60_000, running);
    // Someone else's container takes the name meanwhile (the image is on the target by now).
    const otherId = (
      await onHost(
        bed,
        bed.host2,
        `/usr/bin/docker create --name ${name} --label e2e-lock-other=1 ${bed.image} sleep 1000`,
      )
    ).trim();
    await release(bed, bed.host2, 'taken');
    const run = await running.done;
    expect(run.outputs.status, run.stdout).toBe('rolled-back');
    expect(run.outputs['error-code']).toBe('TARGET_CREATE_FAILED');
    expect(run.stdout).toMatch(/already in use/);
    expect(run.stdout).toMatch(/left container e2e-lock \(\w{12}\) on the target alone/);
    const there = await onHost(bed, bed.host2, `docker inspect --format '{{.Id}} {{.Name}}' ${otherId}`);
    expect(there.trim()).toBe(`${otherId} /${name}`);
    expect(await containerState(bed, bed.host1, name)).toMatchObject({ Running: true, Paused: false });
    await expectCounterContinued(bed, bed.host1, name);
    await onHost(bed, bed.host2, `docker rm -f ${otherId}`);
    await expectNothingLeft(bed, name);
  });
});

describe('the commit point', () => {
  it('commit writes failing on every host: the source is not killed, the report says so', async () => {
    await fresh();
    // Every journal write that carries the commit point fails, on both hosts.
    for (const host of [bed.host1, bed.host2])
      await installWrapper(bed, host, '/usr/local/bin/cat', FAIL_COMMIT);
    const run = await runAction(inputs());
    expect(run.outputs.status, run.stdout).toBe('failed');
    expect(run.outputs['error-code']).toBe('COMMIT_NOT_DURABLE');
    expect(run.stdout).toMatch(
      /COMMIT_NOT_DURABLE: the commit point could not be written to the journal on any host/,
    );
    expect(run.stdout).toMatch(/writing the run journal failed: exited with 1/);
    expect(run.summary).toContain('COMMIT_NOT_DURABLE');
    expect(run.summary).toMatch(/source is still frozen \(paused\), not killed/);
    // Not killed: frozen where it was, next to the verified target.
    expect(await containerState(bed, bed.host1, name)).toMatchObject({ Running: true, Paused: true });
    expect(await containerState(bed, bed.host2, name)).toMatchObject({ Running: true, Paused: false });
    // The post step leaves both be; the hosts keep the journal open for the next run.
    const post = await runPostStep(inputs(), run);
    expect(post.stdout).toContain('nothing to do');
    expect(await containerState(bed, bed.host1, name)).toMatchObject({ Running: true, Paused: true });
    const open = JSON.parse(
      await onHost(bed, bed.host1, `/usr/bin/cat /var/lib/criu-migrate/containers/${name}/journal.json`),
    );
    expect(open.status).toBe('running');
    expect(JSON.stringify(open.entries)).not.toContain('"committed"');

    // Once the hosts take writes again, the next run rolls that back (the source can resume) and migrates.
    for (const host of [bed.host1, bed.host2]) await onHost(bed, host, 'rm -f /usr/local/bin/cat');
    const next = await runAction(inputs());
    expect(next.outputs.status, next.stdout).toBe('succeeded');
    expect(next.stdout).toMatch(/found an unfinished run of e2e-lock .*rolling it back/);
    await expectRunningOnlyOn(bed, bed.host2, name);
    await expectCounterContinued(bed, bed.host2, name);
    await expectNothingLeft(bed, name);
  });
});

describe('a rollback checks the source can resume before it removes a running target', () => {
  it('the source removed while the target runs unverified: the next run keeps the target', async () => {
    await fresh();
    // Killed while verifying: the restored target runs, the journal is short of the commit point.
    await installHold(bed, bed.host2, 'docker', '*" top "*', 'guard');
    const killed = startAction(inputs());
    await waitHeld(bed, bed.host2, 'guard', 60_000, killed);
    await killed.kill();
    await release(bed, bed.host2, 'guard');
    await removeFaults(bed);
    expect(await containerState(bed, bed.host2, name)).toMatchObject({ Running: true, Paused: false });
    // The frozen source goes (an operator, a cleanup job): the target is now the only copy.
    await onHost(bed, bed.host1, `docker rm -f ${name}`);
    const next = await runAction(inputs());
    expect(next.outputs.status, next.stdout).toBe('refused');
    expect(next.outputs['error-code']).toBe('ROLLBACK_FAILED');
    expect(next.stdout).toMatch(
      /kept it: it runs, and the source container \w{12} is gone, so it cannot take over/,
    );
    expect(next.stdout).toMatch(/it may be the only copy of the service/);
    expect(await containerState(bed, bed.host2, name)).toMatchObject({ Running: true, Paused: false });
    await expectCounterContinued(bed, bed.host2, name);
    // The journal stays open on the hosts for whoever decides.
    expect(await onHost(bed, bed.host2, `ls /var/lib/criu-migrate/containers/${name}`)).toContain(
      'journal.json',
    );
    for (const host of [bed.host1, bed.host2]) {
      await onHost(
        bed,
        host,
        `docker rm -f ${name} >/dev/null 2>&1; rm -rf /var/lib/criu-migrate/containers/${name} /var/lib/criu-migrate/work/${name}.*`,
      );
    }
  });
});

describe('the commit point of checkpoint mode', () => {
  it('with leave-running false and the commit write failing, the container is resumed, not killed', async () => {
    await removeFaults(bed);
    await onHostResult(
      bed,
      bed.host1,
      `docker rm -f ${ckpt}; rm -rf /var/lib/criu-migrate/containers/${ckpt}`,
    );
    await onHostResult(bed, bed.host3, `rm -rf ${store}`);
    await startCounter(bed, bed.host1, ckpt, { mb: 8 });
    // Checkpoint mode keeps its journal on the source only.
    await installWrapper(bed, bed.host1, '/usr/local/bin/cat', FAIL_COMMIT);
    const run = await runAction({
      mode: 'checkpoint',
      container: ckpt,
      source: bed.host1,
      'store-host': bed.host3,
      'store-path': store,
      'leave-running': 'false',
      ...sshInputs(bed),
    });
    expect(run.outputs['error-code'], run.stdout).toBe('COMMIT_NOT_DURABLE');
    expect(run.outputs.status).toBe('rolled-back');
    expect(run.stdout).toMatch(
      /COMMIT_NOT_DURABLE: the commit point could not be written to the journal on any host/,
    );
    expect(run.stdout).not.toMatch(/source container stopped/);
    await onHost(bed, bed.host1, 'rm -f /usr/local/bin/cat');
    expect(await containerState(bed, bed.host1, ckpt)).toMatchObject({ Running: true, Paused: false });
    await expectCounterContinued(bed, bed.host1, ckpt);
  });
});

describe('a checkpoint journal whose container was removed', () => {
  it('does not block the next run: archived as moot with a warning', async () => {
    await removeFaults(bed);
    await onHostResult(
      bed,
      bed.host1,
      `docker rm -f ${ckpt}; rm -rf /var/lib/criu-migrate/containers/${ckpt}`,
    );
    await onHostResult(bed, bed.host3, `rm -rf ${store}`);
    await startCounter(bed, bed.host1, ckpt, { mb: 8 });
    const ckptInputs = {
      mode: 'checkpoint',
      container: ckpt,
      source: bed.host1,
      'store-host': bed.host3,
      'store-path': store,
      ...sshInputs(bed),
    };
    await installHold(bed, bed.host1, 'runc', '*" checkpoint --leave-running "*', 'moot');
    const killed = startAction(ckptInputs, { runId: '601' });
    await waitHeld(bed, bed.host1, 'moot', 60_000, killed);
    await killed.kill();
    await release(bed, bed.host1, 'moot');
    expect((await containerState(bed, bed.host1, ckpt))?.Paused).toBe(true);
    // The container is removed and another made under its name; the journal stays behind.
    await onHost(bed, bed.host1, `docker rm -f ${ckpt}`);
    expect(await onHost(bed, bed.host1, `ls /var/lib/criu-migrate/containers/${ckpt}`)).toContain(
      'journal.json',
    );
    await removeFaults(bed);
    await startCounter(bed, bed.host1, ckpt, { mb: 8 });
    const next = await runAction(ckptInputs, { runId: '602' });
    expect(next.outputs.status, next.stdout).toBe('succeeded');
    expect(next.stdout).toMatch(/the source container \w{12} is gone \(removed since\): nothing to resume/);
    expect(next.stdout).toMatch(
      /earlier run .* is moot: its source container was removed since; its journal is archived/,
    );
    expect(next.stdout).not.toContain('ROLLBACK_FAILED');
    expect(await containerState(bed, bed.host1, ckpt)).toMatchObject({ Running: true, Paused: false });
    const left = await onHost(
      bed,
      bed.host1,
      `ls -d /var/lib/criu-migrate/containers/${ckpt}/journal.json /var/lib/criu-migrate/containers/${ckpt}/lock /var/lib/criu-migrate/work/${ckpt}.* 2>/dev/null; true`,
    );
    expect(left).toBe('');
  });
});
