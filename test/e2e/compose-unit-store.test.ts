import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ComposeProject } from './compose-project.js';
import { installWrapper, release, removeFaults, waitHeld } from './faults.js';
import { containerState } from './invariants.js';
import { runAction, runPostStep, startAction } from './run-action.js';
import {
  ensurePackageImage,
  loadTestbed,
  onHost,
  onHostResult,
  SERVICES_IMAGE,
  sshInputs,
  type Testbed,
} from './testbed.js';

// A real compose project checkpointed into the store as one unit, then restored elsewhere: the
// web+Redis+named-volume project of compose-unit.test.ts, under its own name and port.
let bed: Testbed;
let project: ComposeProject;
const PROJECT = 'e2e-cus';
const PORT = 18093;
const WEB = `${PROJECT}-web-1`;
const REDIS = `${PROJECT}-redis-1`;
const NETWORK = `${PROJECT}_default`;
const STORE = '/var/lib/criu-migrate/e2e-cus-store';
/** The web counter, Redis's run_id, network and endpoints at the complete unit checkpoint. */
let atCheckpoint:
  | {
      count: number;
      runId: string;
      network: string;
      endpoints: Record<string, { IPAddress: string; Aliases: string[] }>;
    }
  | undefined;

async function clean(): Promise<void> {
  await removeFaults(bed);
  await project.remove([bed.host1, bed.host2]);
  await onHostResult(bed, bed.host3, `rm -rf ${STORE}`);
}

async function networkOf(host: string): Promise<string> {
  return (
    await onHost(
      bed,
      host,
      `docker network inspect ${NETWORK} --format '{{json .IPAM.Config}} {{json .Labels}}'`,
    )
  ).trim();
}

/** Every file of the store with its checksum: what a restore must leave as it found it. */
async function storeFiles(): Promise<string> {
  return onHost(bed, bed.host3, `cd ${STORE} && find . -type f -print0 | sort -z | xargs -0 sha256sum`);
}

function common(extra: Record<string, string>): Record<string, string> {
  return {
    unit: `compose:${PROJECT}`,
    ...sshInputs(bed),
    'store-host': bed.host3,
    'store-path': STORE,
    timeout: '10',
    'upload-artifact': 'false',
    ...extra,
  };
}

function checkpointInputs(name: string): Record<string, string> {
  return common({ mode: 'checkpoint', source: bed.host1, 'checkpoint-name': name });
}

function restoreInputs(): Record<string, string> {
  return common({ mode: 'restore', target: bed.host2, 'verify-timeout': '20', 'verify-stable-seconds': '2' });
}

async function nothingOnHost2(): Promise<void> {
  expect(
    await onHost(
      bed,
      bed.host2,
      `docker ps -aq --filter label=com.docker.compose.project=${PROJECT} | wc -l`,
    ),
  ).toBe('0\n');
  expect((await onHostResult(bed, bed.host2, `docker network inspect ${NETWORK}`)).code).not.toBe(0);
}

beforeAll(async () => {
  bed = loadTestbed();
  project = new ComposeProject(bed, PROJECT, PORT);
  await ensurePackageImage(bed, bed.host1, SERVICES_IMAGE);
  await clean();
  await project.up();
});

afterAll(async () => {
  await clean();
});

describe('a compose project checkpointed into the store as one unit', () => {
  it('every member frozen and dumped together, one unit record naming members, order and network', async () => {
    await project.hit(bed.host1);
    const count = await project.hit(bed.host1);
    const redis = await project.redisFacts(bed.host1);
    const endpoints: Record<string, { IPAddress: string; Aliases: string[] }> = {
      [WEB]: await project.endpoint(bed.host1, WEB),
      [REDIS]: await project.endpoint(bed.host1, REDIS),
    };
    const network = await networkOf(bed.host1);

    const run = await runAction(checkpointInputs('cus-1'));
    expect(run.exitCode, run.stdout).toBe(0);
    expect(run.outputs.status).toBe('succeeded');
    expect(run.outputs['checkpoint-path']).toBe(`${STORE}/.units/${PROJECT}/cus-1.json`);
    const unit = JSON.parse(run.outputs.unit ?? '{}');
    expect(unit.members.map((m: { container: string; status: string }) => [m.container, m.status])).toEqual([
      [REDIS, 'succeeded'],
      [WEB, 'succeeded'],
    ]);
    expect(Number(run.outputs['frozen-ms'])).toBeGreaterThan(0);
    console.log(
      `unit checkpoint frozen window: ${run.outputs['frozen-ms']} ms (members: ${unit.members.map((m: { downtimeMs: number }) => m.downtimeMs).join(', ')} ms)`,
    );
    // The record in the store: members with their own checkpoints, restore order, network as the source has it.
    const record = JSON.parse(await onHost(bed, bed.host3, `cat ${STORE}/.units/${PROJECT}/cus-1.json`));
    expect(record.order).toEqual([REDIS, WEB]);
    expect(record.waitsFor[WEB]).toEqual([REDIS]);
    expect(record.networks.map((n: { name: string }) => n.name)).toEqual([NETWORK]);
    expect(record.networks[0].ipam[0].subnet).toBe(JSON.parse(network.split(' ')[0] ?? '[]')[0].Subnet);
    for (const member of record.members) {
      expect(member.checkpoint).toBe(`cus-1-${member.container}`);
      expect(member.endpoints[0].address).toBe(endpoints[member.container]?.IPAddress);
      expect(member.endpoints[0].aliases).toEqual(endpoints[member.container]?.Aliases);
      // Each member's checkpoint is complete in its own series.
      await onHost(
        bed,
        bed.host3,
        `test -s ${STORE}/${member.container}/${member.series}/${member.checkpoint}/manifest.json`,
      );
    }
    // Every member runs on host 1, unpaused, the same Redis.
    for (const name of [WEB, REDIS]) {
      expect(await containerState(bed, bed.host1, name)).toMatchObject({ Running: true, Paused: false });
    }
    expect((await project.redisFacts(bed.host1)).runId).toBe(redis.runId);
    atCheckpoint = { count, runId: redis.runId, network, endpoints };
  });

  it('a fault while dumping the second member: every member runs on unpaused, no unit checkpoint of the run', async () => {
    const webId = (await onHost(bed, bed.host1, `docker inspect --format '{{.Id}}' ${WEB}`)).trim();
    const redisBefore = await project.redisFacts(bed.host1);
    // The dump of web (second in order) fails for real in runc; Redis's dump goes through.
    await installWrapper(
      bed,
      bed.host1,
      '/usr/local/bin/runc',
      `#!/bin/sh
case " $* " in
  *" checkpoint "*" ${webId} "*) echo "e2e: dump of ${WEB} refused" >&2; exit 1 ;;
esac
exec /usr/sbin/runc "$@"
`,
    );
    const run = await runAction(checkpointInputs('cus-2'));
    await removeFaults(bed);
    expect(run.exitCode, run.stdout).toBe(1);
    expect(run.outputs.status).toBe('rolled-back');
    expect(run.outputs['error-code']).toBe('COMPOSE_MEMBER_FAILED');
    expect(run.outputs['checkpoint-path']).toBe('');
    const unit = JSON.parse(run.outputs.unit ?? '{}');
    expect(unit.members[1].container).toBe(WEB);
    expect(unit.members[1].error.code).toBe('CHECKPOINT_FAILED');
    expect(unit.members.map((m: { status: string }) => m.status)).toEqual(['rolled-back', 'rolled-back']);
    // Both members run on host 1, unpaused, the same processes.
    for (const name of [WEB, REDIS]) {
      expect(await containerState(bed, bed.host1, name)).toMatchObject({ Running: true, Paused: false });
    }
    expect((await project.redisFacts(bed.host1)).runId).toBe(redisBefore.runId);
    // No record of cus-2, and no member checkpoint of it (complete or partial) in the store.
    expect(await onHost(bed, bed.host3, `ls ${STORE}/.units/${PROJECT}`)).toBe('cus-1.json\n');
    expect(await onHost(bed, bed.host3, `find ${STORE} -name '*cus-2*' | wc -l`)).toBe('0\n');
    // The project keeps counting on host 1: a restore below proves it took cus-1, not this state.
    expect(await project.hit(bed.host1)).toBeGreaterThan(atCheckpoint?.count ?? 0);
  });
});

describe('a unit checkpoint run killed outright', () => {
  it('while the second member dumps: the post step resumes every member, and no unit checkpoint exists', async () => {
    const webId = (await onHost(bed, bed.host1, `docker inspect --format '{{.Id}}' ${WEB}`)).trim();
    const redisBefore = await project.redisFacts(bed.host1);
    // Held, then failing without dumping: the killed run's command must not dump later.
    await installWrapper(
      bed,
      bed.host1,
      '/usr/local/bin/runc',
      `#!/bin/sh
case " $* " in
  *" checkpoint "*" ${webId} "*)
    touch /tmp/e2e-held-unit-ckpt-kill
    i=0
    while [ ! -e /tmp/e2e-release-unit-ckpt-kill ] && [ "$i" -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
    exit 1 ;;
esac
exec /usr/sbin/runc "$@"
`,
    );
    const inputs = checkpointInputs('cus-3');
    const running = startAction(inputs);
    await waitHeld(bed, bed.host1, 'unit-ckpt-kill', 120_000, running);
    const main = await running.kill();
    await release(bed, bed.host1, 'unit-ckpt-kill');
    await removeFaults(bed);
    // What the killed run left: both members frozen on host 1.
    for (const name of [WEB, REDIS]) {
      expect(await containerState(bed, bed.host1, name)).toMatchObject({ Paused: true });
    }
    const post = await runPostStep(inputs, main);
    expect(post.exitCode, post.stdout).toBe(0);
    expect(post.stdout).toMatch(
      new RegExp(`left ${WEB} of the unit unfinished; run cus-3-${WEB} rolled back`),
    );
    expect(post.stdout).toMatch(
      new RegExp(`left ${REDIS} of the unit unfinished; run cus-3-${REDIS} rolled back`),
    );
    for (const name of [WEB, REDIS]) {
      expect(await containerState(bed, bed.host1, name)).toMatchObject({ Running: true, Paused: false });
    }
    expect((await project.redisFacts(bed.host1)).runId).toBe(redisBefore.runId);
    expect(await project.hit(bed.host1)).toBeGreaterThan(atCheckpoint?.count ?? 0);
    // No record of cus-3 and nothing of it in the store.
    expect(await onHost(bed, bed.host3, `ls ${STORE}/.units/${PROJECT}`)).toBe('cus-1.json\n');
    expect(await onHost(bed, bed.host3, `find ${STORE} -name '*cus-3*' | wc -l`)).toBe('0\n');
  });
});

describe('list mode shows unit checkpoints as units', () => {
  it('the complete unit with its members in restore order, each member checkpoint marked with its unit', async () => {
    const run = await runAction(common({ mode: 'list', unit: '' }));
    expect(run.exitCode, run.stdout).toBe(0);
    const listing = JSON.parse(run.outputs.listing ?? '{}');
    expect(listing.units).toHaveLength(1);
    expect(listing.units[0]).toMatchObject({
      unit: `compose:${PROJECT}`,
      name: 'cus-1',
      complete: true,
      networks: [NETWORK],
    });
    expect(
      listing.units[0].members.map((m: { container: string; listed: boolean }) => [m.container, m.listed]),
    ).toEqual([
      [REDIS, true],
      [WEB, true],
    ]);
    const members = listing.series.flatMap(
      (series: { checkpoints: { name: string; unit?: string }[] }) => series.checkpoints,
    );
    expect(members.map((c: { name: string; unit?: string }) => [c.name, c.unit]).sort()).toEqual([
      [`cus-1-${REDIS}`, `compose:${PROJECT}/cus-1`],
      [`cus-1-${WEB}`, `compose:${PROJECT}/cus-1`],
    ]);
    expect(run.stdout).toContain(`unit compose:${PROJECT} checkpoint cus-1 (`);
    expect(run.summary).toContain('Unit checkpoints (compose projects)');
  });
});

describe('a drill of a unit', () => {
  it('is refused before any host is touched: INPUT_INVALID, naming the way to drill one member', async () => {
    const run = await runAction(common({ mode: 'drill', target: bed.host2 }));
    expect(run.exitCode, run.stdout).toBe(1);
    expect(run.outputs['error-code']).toBe('INPUT_INVALID');
    expect(run.stdout).toContain('not in drill mode');
    expect(run.stdout).toContain('drill one member');
    expect(await onHost(bed, bed.host2, 'docker ps -aq | wc -l')).toBe('0\n');
  });
});

describe('a unit checkpoint restored as one unit', () => {
  it('a network of the same name with another subnet on the target: COMPOSE_NETWORK_CONFLICT, nothing touched', async () => {
    await onHost(bed, bed.host2, `docker network create --subnet 10.252.0.0/24 ${NETWORK} >/dev/null`);
    try {
      const run = await runAction(restoreInputs());
      expect(run.exitCode, run.stdout).toBe(1);
      expect(run.outputs.status).toBe('refused');
      expect(run.outputs['error-code']).toBe('COMPOSE_NETWORK_CONFLICT');
      expect(run.stdout).toMatch(
        new RegExp(`the target has a network ${NETWORK} with subnet 10\\.252\\.0\\.0/24, not `),
      );
      expect(await onHost(bed, bed.host2, 'docker ps -aq | wc -l')).toBe('0\n');
      // The namesake is the target's own: left as it was.
      expect(
        await onHost(
          bed,
          bed.host2,
          `docker network inspect ${NETWORK} --format '{{(index .IPAM.Config 0).Subnet}}'`,
        ),
      ).toBe('10.252.0.0/24\n');
    } finally {
      await onHostResult(bed, bed.host2, `docker network rm ${NETWORK}`);
    }
  });

  it('a fault while restoring the second member rolls the unit back: nothing on host 2, the store intact', async () => {
    const before = await storeFiles();
    await installWrapper(
      bed,
      bed.host2,
      '/usr/local/bin/docker',
      `#!/bin/sh
case " $* " in
  *" start --checkpoint "*"-${WEB} "*) echo "e2e: restore of ${WEB} refused" >&2; exit 1 ;;
esac
exec /usr/bin/docker "$@"
`,
    );
    const run = await runAction(restoreInputs());
    await removeFaults(bed);
    expect(run.exitCode, run.stdout).toBe(1);
    expect(run.outputs.status).toBe('rolled-back');
    expect(run.outputs['error-code']).toBe('COMPOSE_MEMBER_FAILED');
    expect(run.outputs['checkpoint-name']).toBe('cus-1');
    const unit = JSON.parse(run.outputs.unit ?? '{}');
    expect(unit.members.map((m: { status: string }) => m.status)).toEqual(['rolled-back', 'rolled-back']);
    expect(unit.members[1].error.code).toBe('RESTORE_FAILED');
    expect(unit.networks).toEqual([{ name: NETWORK, created: true, removed: true }]);
    await nothingOnHost2();
    expect(await storeFiles()).toBe(before);
  });

  it('restores onto host 2: the newest complete unit, network and aliases, Redis data and run_id, compose ps', async () => {
    const before = atCheckpoint;
    if (!before) throw new Error('the unit checkpoint test above did not complete');
    const run = await runAction(restoreInputs());
    expect(run.exitCode, run.stdout).toBe(0);
    expect(run.outputs.status).toBe('succeeded');
    // cus-2 never became a unit checkpoint: the newest complete one is cus-1.
    expect(run.outputs['checkpoint-name']).toBe('cus-1');
    const unit = JSON.parse(run.outputs.unit ?? '{}');
    expect(unit.members.map((m: { container: string; status: string }) => [m.container, m.status])).toEqual([
      [REDIS, 'succeeded'],
      [WEB, 'succeeded'],
    ]);
    expect(unit.networks).toEqual([{ name: NETWORK, created: true }]);
    // The network on host 2 as on host 1 at the checkpoint; each member its address and aliases.
    expect(await networkOf(bed.host2)).toBe(before.network);
    for (const name of [WEB, REDIS]) {
      const after = await project.endpoint(bed.host2, name);
      expect(after.IPAddress).toBe(before.endpoints[name]?.IPAddress);
      for (const alias of before.endpoints[name]?.Aliases ?? []) expect(after.DNSNames).toContain(alias);
      expect(after.Aliases).toContain(name === WEB ? 'web' : 'redis');
    }
    // Redis as it was at cus-1: the same process and its data.
    const redis = await project.redisFacts(bed.host2);
    expect(redis.runId).toBe(before.runId);
    expect(redis.hits).toBe(before.count);
    // The web service answers on host 2's published port and reaches Redis by its service name.
    expect(await project.hit(bed.host2)).toBe(before.count + 1);
    const ps = await onHost(
      bed,
      bed.host2,
      `docker-compose -p ${PROJECT} ps --format '{{.Service}} {{.State}}'`,
    );
    expect(ps.trim().split('\n').sort()).toEqual(['redis running', 'web running']);
  });

  it('a unit that the store does not have is refused: CHECKPOINT_NOT_FOUND, naming what it has', async () => {
    const run = await runAction({ ...restoreInputs(), 'checkpoint-name': 'cus-2' });
    expect(run.exitCode, run.stdout).toBe(1);
    expect(run.outputs.status).toBe('refused');
    expect(run.outputs['error-code']).toBe('CHECKPOINT_NOT_FOUND');
    expect(run.stdout).toContain('complete unit checkpoints: cus-1');
  });
});

describe('retention of unit checkpoints', () => {
  it('counts units: with retention 1 the older unit goes, its record first and then its members', async () => {
    const before = JSON.parse(await onHost(bed, bed.host3, `cat ${STORE}/.units/${PROJECT}/cus-1.json`));
    const run = await runAction({ ...checkpointInputs('cus-4'), retention: '1' });
    expect(run.exitCode, run.stdout).toBe(0);
    expect(run.outputs.status).toBe('succeeded');
    expect(run.stdout).toContain('retention: removed unit checkpoint cus-1 (keeping the newest 1)');
    expect(await onHost(bed, bed.host3, `ls ${STORE}/.units/${PROJECT}`)).toBe('cus-4.json\n');
    for (const member of before.members) {
      const dir = `${STORE}/${member.container}/${member.series}/${member.checkpoint}`;
      expect((await onHostResult(bed, bed.host3, `test -e ${dir}`)).code).not.toBe(0);
    }
    for (const name of [WEB, REDIS]) {
      await onHost(bed, bed.host3, `ls -d ${STORE}/${name}/*/cus-4-${name}`);
    }
    // The image files the removed members used are still used by cus-4: kept.
    expect(Number(await onHost(bed, bed.host3, `ls ${STORE}/images/*.tar | wc -l`))).toBe(2);
  });
});
