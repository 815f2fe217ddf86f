import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { variantBed } from './global-setup.js';
import { containerState, expectCounterContinued, expectNothingLeft } from './invariants.js';
import { runAction } from './run-action.js';
import {
  checkCounterMemory,
  containerLogs,
  onHost,
  onHostResult,
  parseCounter,
  sshInputs,
  type Testbed,
  waitForLog,
} from './testbed.js';

// Restore mode onto the Docker a replacement host will have (issue 21). The variant bed
// (test/testbed/sid-bed.sh): host 1 Docker 26.1, host 2 Docker 28.5, host 3 the store.
// Found on this bed: a checkpoint dumped with its network namespace external (route holder)
// restores only into a holder's namespace, on 26 and 28 alike (directly on 26 CRIU fails);
// one dumped with the namespace (route direct) restores directly on 26 only (on 28 through
// a holder its processes came back in an empty namespace without eth0).
const sidBed = variantBed('sid-bed.sh');
let bed: Testbed;
const name = 'd28r';
const holder = `${name}-netholder`;
const store = '/var/lib/criu-migrate-e2e-d28r-store';
const PORT = 18090;
const MB = 16;
/** The counter's token and last number when the holder checkpoint was taken. */
let taken: { token: string; n: number };

async function clean(): Promise<void> {
  for (const host of [bed.host1, bed.host2]) {
    await onHostResult(
      bed,
      host,
      `docker rm -f ${name} ${holder}; rm -rf /var/lib/criu-migrate/containers/${name}`,
    );
  }
}

beforeAll(async () => {
  bed = sidBed.up();
  await clean();
  await onHostResult(bed, bed.host3, `rm -rf ${store}`);
});

afterAll(async () => {
  await clean();
  await onHostResult(bed, bed.host3, `rm -rf ${store}`);
  sidBed.down();
});

function common(extra: Record<string, string> = {}): Record<string, string> {
  return {
    container: name,
    'store-host': bed.host3,
    'store-path': store,
    ...sshInputs(bed),
    ...extra,
  };
}

function restoreInputs(target: string, extra: Record<string, string> = {}): Record<string, string> {
  return common({
    mode: 'restore',
    source: bed.host1,
    target,
    'verify-log-pattern': '^\\d+ \\d{13} ',
    'verify-stable-seconds': '2',
    timeout: '10',
    ...extra,
  });
}

/** The page busybox httpd serves beside the counter, through the host dockerd's published port. */
function page(host: string): Promise<string> {
  return onHost(
    bed,
    host,
    `nsenter -t "$(cat /run/testbed-dockerd.pid)" -n busybox wget -q -T 5 -O - http://127.0.0.1:${PORT}/`,
  );
}

async function manifestOf(checkpoint: string): Promise<Record<string, unknown>> {
  return JSON.parse(await onHost(bed, bed.host3, `cat ${store}/${name}/*/${checkpoint}/manifest.json`));
}

/** What a refused run must not have made on a host: containers, images, work files. */
async function hostSnapshot(host: string): Promise<string> {
  return onHost(
    bed,
    host,
    'docker ps -aq --no-trunc | sort; echo --; docker images -q --no-trunc | sort; echo --; ls -A /var/lib/criu-migrate/work 2>/dev/null; true',
  );
}

function metadataOf(run: { outputs: Record<string, string> }): Record<string, Record<string, unknown>> {
  return JSON.parse(readFileSync(run.outputs['metadata-path']!, 'utf8'));
}

/** The same process as at the checkpoint: its token, numbers going on from there, memory intact. */
async function expectSameProcess(host: string): Promise<void> {
  await waitForLog(bed, host, name, /^\d+ \d{13} /m);
  const lines = parseCounter(await containerLogs(bed, host, name));
  expect(lines[0]!.token).toBe(taken.token);
  // Restored at the freeze: the first number follows one the source had printed by then.
  expect(lines[0]!.n).toBeGreaterThan(1);
  expect(lines[0]!.n).toBeLessThanOrEqual(taken.n + 1);
  await expectCounterContinued(bed, host, name);
  await checkCounterMemory(bed, host, name, MB * 1048576);
}

describe('restore mode onto Docker 28 through a network holder (variant bed)', () => {
  it('checkpoint mode records the route: direct without the opt-in, holder with it', async () => {
    await onHost(
      bed,
      bed.host1,
      `docker run -d --name ${name} -p ${PORT}:8080 -e MB=${MB} ${bed.image} sh -c 'echo page-of-${name} >/tmp/index.html; httpd -p 8080 -h /tmp; exec testbed-counter'`,
    );
    await waitForLog(bed, bed.host1, name, /^5 \d{13} /m);
    expect(await page(bed.host1)).toContain(`page-of-${name}`);

    const direct = await runAction(
      common({ mode: 'checkpoint', source: bed.host1, 'checkpoint-name': 'direct-1' }),
    );
    expect(direct.exitCode, direct.stdout).toBe(0);
    expect(direct.stdout).toContain('network route: direct (bridge network');
    const held = await runAction(
      common({
        mode: 'checkpoint',
        source: bed.host1,
        'checkpoint-name': 'hold-1',
        'docker28-network-holder': 'true',
      }),
    );
    expect(held.exitCode, held.stdout).toBe(0);
    expect(held.stdout).toContain('network route: holder');
    const lines = parseCounter(await containerLogs(bed, bed.host1, name));
    taken = { token: lines.at(-1)!.token, n: lines.at(-1)!.n };
    // The source ran on, never frozen for longer than the dump.
    expect(await containerState(bed, bed.host1, name)).toMatchObject({ Running: true, Paused: false });

    expect((await manifestOf('direct-1')).network).toEqual({ route: 'direct', mode: 'bridge' });
    expect((await manifestOf('hold-1')).network).toMatchObject({
      route: 'holder',
      mode: 'bridge',
      holder: { network: 'bridge', aliases: [], ports: [`${PORT}:8080`] },
    });
    // The host "dies": its container is gone, its port with it.
    await onHost(bed, bed.host1, `docker rm -f ${name}`);
  });

  it('a checkpoint taken without the opt-in is refused on Docker 28 before anything is touched', async () => {
    const before = await hostSnapshot(bed.host2);
    // The opt-in on the restore does not help: a holder cannot take a dumped namespace.
    const run = await runAction(
      restoreInputs(bed.host2, { 'checkpoint-name': 'direct-1', 'docker28-network-holder': 'true' }),
    );
    expect(run.exitCode).not.toBe(0);
    expect(run.outputs.status).toBe('refused');
    const error = metadataOf(run).error!;
    expect(error).toMatchObject({ code: 'CHECKPOINT_DIRECT_ONLY', step: 'preflight' });
    expect(error.remedy).toMatch(/Docker 26\/27/);
    expect(error.remedy).toContain('docker28-network-holder: true');
    expect(run.outputs['error-code']).toBe('CHECKPOINT_DIRECT_ONLY');
    expect(await hostSnapshot(bed.host2)).toBe(before);
    expect(await containerState(bed, bed.host2, holder)).toBeUndefined();
  });

  it('a holder checkpoint without the opt-in is refused on Docker 26 too, before anything is touched', async () => {
    const before = await hostSnapshot(bed.host1);
    const run = await runAction(restoreInputs(bed.host1, { 'checkpoint-name': 'hold-1' }));
    expect(run.exitCode).not.toBe(0);
    expect(run.outputs.status).toBe('refused');
    const error = metadataOf(run).error!;
    expect(error).toMatchObject({ code: 'CHECKPOINT_NEEDS_HOLDER', step: 'preflight' });
    expect(error.remedy).toContain('docker28-network-holder: true');
    expect(await hostSnapshot(bed.host1)).toBe(before);
  });

  it('a checkpoint from before routes were recorded counts as direct: refused on 28, restored directly on 26', async () => {
    // direct-1 as an older run wrote it: no network in its manifest (not one of the hashed files).
    const { network: _recorded, ...older } = await manifestOf('direct-1');
    const written = await onHostResult(
      bed,
      bed.host3,
      `for d in ${store}/${name}/*/direct-1; do cat >"$d/manifest.json"; done`,
      { input: `${JSON.stringify(older, null, 2)}\n` },
    );
    expect(written.code).toBe(0);
    const legacy = await manifestOf('direct-1');
    expect(legacy.network).toBeUndefined();
    const before = await hostSnapshot(bed.host2);
    const refused = await runAction(restoreInputs(bed.host2, { 'checkpoint-name': 'direct-1' }));
    expect(refused.outputs.status).toBe('refused');
    expect(metadataOf(refused).error).toMatchObject({ code: 'CHECKPOINT_DIRECT_ONLY' });
    expect(refused.stdout).toContain('before routes were recorded');
    expect(await hostSnapshot(bed.host2)).toBe(before);

    const direct = await runAction(restoreInputs(bed.host1, { 'checkpoint-name': 'direct-1' }));
    expect(direct.exitCode, direct.stdout).toBe(0);
    expect(direct.stdout).toContain('restored directly');
    const app = JSON.parse(await onHost(bed, bed.host1, `docker inspect ${name}`))[0];
    expect(app.HostConfig.NetworkMode).toBe('bridge');
    expect(await containerState(bed, bed.host1, holder)).toBeUndefined();
    expect(await page(bed.host1)).toContain(`page-of-${name}`);
    await expectCounterContinued(bed, bed.host1, name);
    await checkCounterMemory(bed, bed.host1, name, MB * 1048576);
    await expectNothingLeft(bed, name);
    await onHost(bed, bed.host1, `docker rm -f ${name}`);
  });

  it('a container named like the holder on the target refuses the restore before anything is touched', async () => {
    // An empty image of its own: the bed's image is on host 2 only after an earlier restore loaded it.
    await onHost(
      bed,
      bed.host2,
      `tar -cf - -T /dev/null | docker import - e2e/empty:1 >/dev/null && docker create --name ${holder} e2e/empty:1 true`,
    );
    try {
      const before = await hostSnapshot(bed.host2);
      const run = await runAction(
        restoreInputs(bed.host2, { 'checkpoint-name': 'hold-1', 'docker28-network-holder': 'true' }),
      );
      expect(run.outputs.status).toBe('refused');
      const error = metadataOf(run).error!;
      expect(error).toMatchObject({ code: 'NETWORK_HOLDER_FAILED', step: 'preflight' });
      expect(error.remedy).toContain(`docker rm -f ${holder}`);
      expect(await hostSnapshot(bed.host2)).toBe(before);
      // Not ours: left alone.
      expect(await containerState(bed, bed.host2, holder)).toMatchObject({ Status: 'created' });
    } finally {
      await onHost(bed, bed.host2, `docker rm -f ${holder} && docker rmi e2e/empty:1`);
    }
  });

  it('a failure after the holder was made rolls it back with the container', async () => {
    // A real failure past the holder: the restored container never prints what verify waits for.
    const run = await runAction(
      restoreInputs(bed.host2, {
        'checkpoint-name': 'hold-1',
        'docker28-network-holder': 'true',
        'verify-log-pattern': '^never printed$',
        'verify-timeout': '3',
      }),
    );
    expect(run.exitCode).not.toBe(0);
    expect(run.stdout).toContain(`network holder ${holder}`);
    expect(run.outputs.status).toBe('rolled-back');
    expect(metadataOf(run).error).toMatchObject({ code: 'VERIFY_FAILED' });
    expect(await containerState(bed, bed.host2, name)).toBeUndefined();
    expect(await containerState(bed, bed.host2, holder)).toBeUndefined();
    await expectNothingLeft(bed, name);
  });

  it('the holder checkpoint from Docker 26 restores onto Docker 28 through a holder: same process, memory, port', async () => {
    const run = await runAction(
      restoreInputs(bed.host2, { 'checkpoint-name': 'hold-1', 'docker28-network-holder': 'true' }),
    );
    expect(run.exitCode, run.stdout).toBe(0);
    expect(run.outputs.status).toBe('succeeded');
    expect(run.stdout).toContain(`network holder ${holder}`);
    await expectSameProcess(bed.host2);
    const app = JSON.parse(await onHost(bed, bed.host2, `docker inspect ${name}`))[0];
    const held = JSON.parse(await onHost(bed, bed.host2, `docker inspect ${holder}`))[0];
    expect(app.HostConfig.NetworkMode).toMatch(new RegExp(`^container:(${held.Id}|${holder})$`));
    expect(held.State).toMatchObject({ Running: true });
    expect(held.HostConfig.PortBindings).toEqual({ '8080/tcp': [{ HostIp: '', HostPort: String(PORT) }] });
    // The restored process is in the holder's namespace, on the bridge, serving on the published port.
    expect(await onHost(bed, bed.host2, `docker exec ${name} ip -o addr show eth0`)).toMatch(/inet 172\./);
    expect(await page(bed.host2)).toContain(`page-of-${name}`);
    const metadata = metadataOf(run);
    console.log(
      `holder checkpoint 26 -> restore on 28: restore ${(metadata.timings!.phasesMs as Record<string, number>).restore} ms`,
    );
    await expectNothingLeft(bed, name);
  });

  it("replace: true on Docker 28: the restored container joins the stopped namesake's holder, which stays", async () => {
    const before = JSON.parse(await onHost(bed, bed.host2, `docker inspect ${holder}`))[0];
    const replaced = JSON.parse(await onHost(bed, bed.host2, `docker inspect ${name}`))[0];
    await onHost(bed, bed.host2, `docker stop ${name}`);
    const run = await runAction(
      restoreInputs(bed.host2, {
        'checkpoint-name': 'hold-1',
        'docker28-network-holder': 'true',
        replace: 'true',
      }),
    );
    expect(run.exitCode, run.stdout).toBe(0);
    expect(run.stdout).toContain(`network holder ${holder} of the replaced container stays`);
    const app = JSON.parse(await onHost(bed, bed.host2, `docker inspect ${name}`))[0];
    expect(app.Id).not.toBe(replaced.Id);
    expect(app.HostConfig.NetworkMode).toMatch(new RegExp(`^container:(${before.Id}|${holder})$`));
    // The same holder, never restarted; the namesake went at the commit.
    const after = JSON.parse(await onHost(bed, bed.host2, `docker inspect ${holder}`))[0];
    expect(after.Id).toBe(before.Id);
    expect(after.State.StartedAt).toBe(before.State.StartedAt);
    expect(await onHost(bed, bed.host2, `docker ps -aq --no-trunc | grep -c . || true`)).toBe('2\n');
    await expectSameProcess(bed.host2);
    expect(await page(bed.host2)).toContain(`page-of-${name}`);
    await expectNothingLeft(bed, name);
  });

  it("replace: true with a namesake's holder that owns another network: refused before anything is touched", async () => {
    await onHost(bed, bed.host2, `docker rm -f ${name} ${holder}`);
    // A holder of ours for the name, publishing another port, and a stopped namesake joined to it.
    await onHost(
      bed,
      bed.host2,
      `docker run -d --name ${holder} --label io.github.criu-migrate.network-holder-for=${name} -p ${PORT + 9}:8080 ${bed.image} sleep 100000 && docker create --name ${name} --network container:${holder} ${bed.image} true`,
    );
    try {
      const before = await hostSnapshot(bed.host2);
      const run = await runAction(
        restoreInputs(bed.host2, {
          'checkpoint-name': 'hold-1',
          'docker28-network-holder': 'true',
          replace: 'true',
        }),
      );
      expect(run.outputs.status).toBe('refused');
      const error = metadataOf(run).error!;
      expect(error).toMatchObject({ code: 'NETWORK_HOLDER_FAILED', step: 'preflight' });
      expect(error.message).toContain('owns another network than the checkpoint needs');
      expect(error.remedy).toContain(`docker rm -f ${holder}`);
      expect(await hostSnapshot(bed.host2)).toBe(before);
      expect(await containerState(bed, bed.host2, name)).toMatchObject({ Status: 'created' });
    } finally {
      await onHost(bed, bed.host2, `docker rm -f ${name} ${holder}`);
    }
  });

  it('the same checkpoint restores onto Docker 26 through a holder as well', async () => {
    const run = await runAction(
      restoreInputs(bed.host1, { 'checkpoint-name': 'hold-1', 'docker28-network-holder': 'true' }),
    );
    expect(run.exitCode, run.stdout).toBe(0);
    expect(run.outputs.status).toBe('succeeded');
    await expectSameProcess(bed.host1);
    const app = JSON.parse(await onHost(bed, bed.host1, `docker inspect ${name}`))[0];
    expect(app.HostConfig.NetworkMode).toMatch(/^container:/);
    expect(await page(bed.host1)).toContain(`page-of-${name}`);
    await expectNothingLeft(bed, name);
    await clean();
  });

  it('a container that joins a holder on Docker 28 is checkpointed for a holder and restored onto 26 through one', async () => {
    const joined = 'd28j';
    const joinedHolder = `${joined}-netholder`;
    const port = PORT + 1;
    const wipe = async () => {
      for (const host of [bed.host1, bed.host2]) {
        await onHostResult(
          bed,
          host,
          `docker rm -f ${joined} ${joinedHolder}; rm -rf /var/lib/criu-migrate/containers/${joined}`,
        );
      }
    };
    await wipe();
    try {
      await onHost(
        bed,
        bed.host1,
        `docker run -d --name ${joined} -p ${port}:8080 -e MB=${MB} ${bed.image} sh -c 'echo page-of-${joined} >/tmp/index.html; httpd -p 8080 -h /tmp; exec testbed-counter'`,
      );
      await waitForLog(bed, bed.host1, joined, /^5 \d{13} /m);
      // Onto Docker 28 by migrate, through a holder: there it joins <name>-netholder.
      const moved = await runAction({
        mode: 'migrate',
        container: joined,
        source: bed.host1,
        target: bed.host2,
        ...sshInputs(bed),
        'docker28-network-holder': 'true',
        'verify-log-pattern': '^\\d+ \\d{13} ',
        timeout: '10',
      });
      expect(moved.exitCode, moved.stdout).toBe(0);
      await onHost(bed, bed.host1, `docker rm ${joined}`);

      // Checkpointed there without the input: joined to a holder, it is dumped for one anyway.
      const taken = await runAction({
        ...common({ mode: 'checkpoint', source: bed.host2, 'checkpoint-name': 'joined-1' }),
        container: joined,
      });
      expect(taken.exitCode, taken.stdout).toBe(0);
      expect(taken.stdout).toContain(`network route: holder (joins network holder ${joinedHolder})`);
      const token = parseCounter(await containerLogs(bed, bed.host2, joined)).at(-1)!.token;
      const manifest = JSON.parse(
        await onHost(bed, bed.host3, `cat ${store}/${joined}/*/joined-1/manifest.json`),
      );
      expect(manifest.network).toMatchObject({
        route: 'holder',
        mode: expect.stringMatching(/^container:/),
        holder: { network: 'bridge', ports: [`${port}:8080`], sourceHolder: joinedHolder },
      });
      // Docker 28 host "dies".
      await onHost(bed, bed.host2, `docker rm -f ${joined} ${joinedHolder}`);

      const run = await runAction({
        ...restoreInputs(bed.host1, { 'checkpoint-name': 'joined-1', 'docker28-network-holder': 'true' }),
        container: joined,
      });
      expect(run.exitCode, run.stdout).toBe(0);
      const lines = parseCounter(await containerLogs(bed, bed.host1, joined));
      expect(lines[0]!.token).toBe(token);
      await expectCounterContinued(bed, bed.host1, joined);
      await checkCounterMemory(bed, bed.host1, joined, MB * 1048576);
      // The new holder on Docker 26 took the old holder's network and port.
      const held = JSON.parse(await onHost(bed, bed.host1, `docker inspect ${joinedHolder}`))[0];
      expect(held.HostConfig.PortBindings).toEqual({ '8080/tcp': [{ HostIp: '', HostPort: String(port) }] });
      expect(
        await onHost(
          bed,
          bed.host1,
          `nsenter -t "$(cat /run/testbed-dockerd.pid)" -n busybox wget -q -T 5 -O - http://127.0.0.1:${port}/`,
        ),
      ).toContain(`page-of-${joined}`);
      await expectNothingLeft(bed, joined);
    } finally {
      await wipe();
    }
  });
});
