import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ComposeProject } from './compose-project.js';
import { installHold, installWrapper, release, removeFaults, waitHeld } from './faults.js';
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

// A real compose project moved as one unit: a web service (busybox httpd, a CGI that increments
// a Redis key named after its service on each request) and Redis with a named volume.
let bed: Testbed;
let project: ComposeProject;
const PROJECT = 'e2e-cu';
const PORT = 18091;
const WEB = `${PROJECT}-web-1`;
const REDIS = `${PROJECT}-redis-1`;
const NETWORK = `${PROJECT}_default`;
/** The web counter and Redis's run_id as the killed run froze them. */
let frozenAt: { count: number; runId: string } | undefined;

async function clean(): Promise<void> {
  await removeFaults(bed);
  await project.remove([bed.host1, bed.host2]);
}

function inputs(extra: Record<string, string> = {}): Record<string, string> {
  return {
    mode: 'migrate',
    unit: `compose:${PROJECT}`,
    source: bed.host1,
    target: bed.host2,
    ...sshInputs(bed),
    'verify-timeout': '20',
    timeout: '10',
    'upload-artifact': 'false',
    ...extra,
  };
}

async function networkOf(
  host: string,
): Promise<{ subnet: string; gateway: string; labels: Record<string, string> }> {
  const out = await onHost(
    bed,
    host,
    `docker network inspect ${NETWORK} --format '{{json .IPAM.Config}} {{json .Labels}}'`,
  );
  const [config, labels] = out.trim().split(' ');
  const pool = JSON.parse(config ?? '[]')[0] as { Subnet: string; Gateway: string };
  return { subnet: pool.Subnet, gateway: pool.Gateway, labels: JSON.parse(labels ?? '{}') };
}

beforeAll(async () => {
  bed = loadTestbed();
  project = new ComposeProject(bed, PROJECT, PORT);
  await ensurePackageImage(bed, bed.host1, SERVICES_IMAGE);
  await clean();
});

afterAll(async () => {
  await clean();
});

/** Nothing of the project on host 2 (container or network), every member running on host 1, unpaused, the same Redis. */
async function expectUnitOnHost1(before: { count: number; runId: string }): Promise<void> {
  expect(
    await onHost(
      bed,
      bed.host2,
      `docker ps -aq --filter label=com.docker.compose.project=${PROJECT} | wc -l`,
    ),
  ).toBe('0\n');
  expect((await onHostResult(bed, bed.host2, `docker network inspect ${NETWORK}`)).code).not.toBe(0);
  for (const name of [WEB, REDIS]) {
    expect(await containerState(bed, bed.host1, name)).toMatchObject({ Running: true, Paused: false });
  }
  const redis = await project.redisFacts(bed.host1);
  expect(redis.runId).toBe(before.runId);
  expect(redis.hits).toBe(before.count);
}

describe('the gate of a unit refuses before touching anything', () => {
  it('a network of the same name with another subnet on the target: COMPOSE_NETWORK_CONFLICT', async () => {
    await project.up();
    await onHost(bed, bed.host2, `docker network create --subnet 10.251.0.0/24 ${NETWORK} >/dev/null`);
    try {
      const run = await runAction(inputs());
      expect(run.exitCode, run.stdout).toBe(1);
      expect(run.outputs.status).toBe('refused');
      expect(run.outputs['error-code']).toBe('COMPOSE_NETWORK_CONFLICT');
      // The source's subnet is whatever Docker's pool gave the project.
      expect(run.stdout).toMatch(
        new RegExp(
          `the target has a network ${NETWORK} with subnet 10\\.251\\.0\\.0/24, not \\d+\\.\\d+\\.\\d+\\.\\d+/\\d+ via `,
        ),
      );
      expect(await onHost(bed, bed.host2, 'docker ps -aq | wc -l')).toBe('0\n');
      for (const name of [WEB, REDIS]) {
        expect(await containerState(bed, bed.host1, name)).toMatchObject({ Running: true, Paused: false });
      }
    } finally {
      await onHostResult(bed, bed.host2, `docker network rm ${NETWORK}`);
    }
  });

  it('depends_on labels that form a cycle: COMPOSE_DEPENDENCY_CYCLE', async () => {
    const labels = (service: string, other: string) =>
      `-l com.docker.compose.project=e2e-cycle -l com.docker.compose.service=${service} -l com.docker.compose.depends_on=${other}:service_started:false`;
    await onHost(
      bed,
      bed.host1,
      `docker run -d --name e2e-cycle-a ${labels('a', 'b')} ${bed.image} testbed-counter >/dev/null && docker run -d --name e2e-cycle-b ${labels('b', 'a')} ${bed.image} testbed-counter >/dev/null`,
    );
    try {
      const run = await runAction(inputs({ unit: 'compose:e2e-cycle' }));
      expect(run.exitCode, run.stdout).toBe(1);
      expect(run.outputs.status).toBe('refused');
      expect(run.outputs['error-code']).toBe('COMPOSE_DEPENDENCY_CYCLE');
      expect(run.stdout).toMatch(/e2e-cycle-a, e2e-cycle-b form a cycle/);
    } finally {
      await onHostResult(bed, bed.host1, 'docker rm -f e2e-cycle-a e2e-cycle-b');
    }
  });

  it('a member that is not running: the unit does not move without it', async () => {
    await onHost(bed, bed.host1, `docker stop -t 1 ${WEB} >/dev/null`);
    try {
      const run = await runAction(inputs());
      expect(run.exitCode, run.stdout).toBe(1);
      expect(run.outputs.status).toBe('refused');
      expect(run.outputs['error-code']).toBe('CONTAINER_NOT_RUNNING');
      expect(run.stdout).toContain(`${WEB} (not running (exited))`);
      expect(await containerState(bed, bed.host1, REDIS)).toMatchObject({ Running: true, Paused: false });
    } finally {
      await onHost(bed, bed.host1, `docker start ${WEB} >/dev/null`);
    }
  });
});

describe('a compose project moves as one unit', () => {
  it('a fault while restoring the second member rolls the whole unit back: nothing on host 2, every member running on host 1', async () => {
    await project.up();
    const before = await project.hit(bed.host1);
    const redisBefore = await project.redisFacts(bed.host1);
    // Redis restores first (web depends on it); the second restore, web's, is refused for real.
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
    const run = await runAction(inputs());
    await removeFaults(bed);
    expect(run.exitCode, run.stdout).toBe(1);
    expect(run.outputs.status).toBe('rolled-back');
    expect(run.outputs['error-code']).toBe('COMPOSE_MEMBER_FAILED');
    const unit = JSON.parse(run.outputs.unit ?? '{}');
    expect(unit.members.map((m: { container: string }) => m.container)).toEqual([REDIS, WEB]);
    expect(unit.members.map((m: { status: string }) => m.status)).toEqual(['rolled-back', 'rolled-back']);
    expect(unit.members[1].error.code).toBe('RESTORE_FAILED');
    expect(run.summary).toContain(`Unit compose:${PROJECT}: rolled-back`);
    expect(run.summary).toContain('RESTORE_FAILED: ');
    expect(unit.networks).toEqual([{ name: NETWORK, created: true, removed: true }]);
    // Nothing of the project on host 2: no container, no network.
    expect(
      await onHost(
        bed,
        bed.host2,
        `docker ps -aq --filter label=com.docker.compose.project=${PROJECT} | wc -l`,
      ),
    ).toBe('0\n');
    expect((await onHostResult(bed, bed.host2, `docker network inspect ${NETWORK}`)).code).not.toBe(0);
    // Every member runs on host 1, unpaused, the same processes: Redis's run_id and data, the counter continues.
    for (const name of [WEB, REDIS]) {
      expect(await containerState(bed, bed.host1, name)).toMatchObject({ Running: true, Paused: false });
    }
    const redisAfter = await project.redisFacts(bed.host1);
    expect(redisAfter.runId).toBe(redisBefore.runId);
    expect(redisAfter.hits).toBe(before);
    expect(await project.hit(bed.host1)).toBe(before + 1);
  });

  it('cancelled while its second member restores, the unit rolls back as one', async () => {
    const count = await project.hit(bed.host1);
    const redisBefore = await project.redisFacts(bed.host1);
    await installHold(bed, bed.host2, 'docker', `*" start --checkpoint "*"-${WEB} "*`, 'unit-cancel');
    const running = startAction(inputs());
    await waitHeld(bed, bed.host2, 'unit-cancel', 120_000, running);
    // Redis, the first member, is already restored on host 2 at this point.
    expect(await containerState(bed, bed.host2, REDIS)).toMatchObject({ Running: true });
    const cancelled = running.cancel();
    await release(bed, bed.host2, 'unit-cancel');
    const run = await cancelled;
    await removeFaults(bed);
    expect(run.outputs.status, run.stdout).toBe('rolled-back');
    expect(run.outputs['error-code']).toBe('CANCELLED');
    await expectUnitOnHost1({ count, runId: redisBefore.runId });
    expect(await project.hit(bed.host1)).toBe(count + 1);
  });

  it('a unit run killed while its second member restores: the post step rolls every member back', async () => {
    await removeFaults(bed);
    // Held, then failing without starting anything: the killed run's command must not restore later.
    await installWrapper(
      bed,
      bed.host2,
      '/usr/local/bin/docker',
      `#!/bin/sh
case " $* " in
  *" start --checkpoint "*"-${WEB} "*)
    touch /tmp/e2e-held-unit-post
    i=0
    while [ ! -e /tmp/e2e-release-unit-post ] && [ "$i" -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
    exit 1 ;;
esac
exec /usr/bin/docker "$@"
`,
    );
    const before = {
      count: await project.hit(bed.host1),
      runId: (await project.redisFacts(bed.host1)).runId,
    };
    const running = startAction(inputs());
    await waitHeld(bed, bed.host2, 'unit-post', 120_000, running);
    const main = await running.kill();
    await removeFaults(bed);
    await release(bed, bed.host2, 'unit-post');
    // What the kill left: both members frozen on host 1, Redis restored on host 2.
    for (const name of [WEB, REDIS]) {
      expect(await containerState(bed, bed.host1, name)).toMatchObject({ Paused: true });
    }
    const post = await runPostStep(inputs(), main);
    expect(post.exitCode, post.stdout).toBe(0);
    for (const name of [WEB, REDIS]) expect(post.stdout).toContain(`of ${name} unfinished`);
    expect(post.stdout.match(/rolled back \(source resumed\)/g)).toHaveLength(2);
    expect(post.stdout).toContain(`network ${NETWORK} removed from the target again`);
    // Nothing of the unit on host 2 (no member, no network); every member running on host 1.
    await expectUnitOnHost1(before);
    expect(await project.hit(bed.host1)).toBe(before.count + 1);
  });

  it('a unit run killed outright while its second member restores leaves both frozen members to the next run', async () => {
    await removeFaults(bed);
    // Held, then failing without starting anything: the killed run's command must not restore later.
    await installWrapper(
      bed,
      bed.host2,
      '/usr/local/bin/docker',
      `#!/bin/sh
case " $* " in
  *" start --checkpoint "*"-${WEB} "*)
    touch /tmp/e2e-held-unit-kill
    i=0
    while [ ! -e /tmp/e2e-release-unit-kill ] && [ "$i" -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
    exit 1 ;;
esac
exec /usr/bin/docker "$@"
`,
    );
    frozenAt = { count: await project.hit(bed.host1), runId: (await project.redisFacts(bed.host1)).runId };
    const running = startAction(inputs());
    await waitHeld(bed, bed.host2, 'unit-kill', 120_000, running);
    await running.kill();
    await release(bed, bed.host2, 'unit-kill');
    await removeFaults(bed);
    // What the killed run left: both members frozen on host 1, Redis restored on host 2.
    for (const name of [WEB, REDIS]) {
      expect(await containerState(bed, bed.host1, name)).toMatchObject({ Paused: true });
    }
    expect(await containerState(bed, bed.host2, REDIS)).toMatchObject({ Running: true });
  });

  it('migrates host 1 -> host 2: network, addresses and aliases, Redis data and run_id, compose ps, nothing left on host 1', async () => {
    // The killed run above left both members frozen: read them as they were frozen.
    const frozen = (await containerState(bed, bed.host1, WEB))?.Paused === true;
    const before =
      frozen && frozenAt
        ? frozenAt
        : { count: await project.hit(bed.host1), runId: (await project.redisFacts(bed.host1)).runId };
    const networkBefore = await networkOf(bed.host1);
    const endpoints = {
      web: await project.endpoint(bed.host1, WEB),
      redis: await project.endpoint(bed.host1, REDIS),
    };

    const run = await runAction(inputs());
    expect(run.exitCode, run.stdout).toBe(0);
    expect(run.outputs.status).toBe('succeeded');
    const unit = JSON.parse(run.outputs.unit ?? '{}');
    if (frozen) {
      // The next run settled the killed one first, member by member: target removed, source resumed.
      expect(unit.settled).toHaveLength(2);
      for (const line of unit.settled) expect(line).toMatch(/: rollback of /);
    }
    expect(unit.members.map((m: { container: string; status: string }) => [m.container, m.status])).toEqual([
      [REDIS, 'succeeded'],
      [WEB, 'succeeded'],
    ]);
    expect(Number(run.outputs['downtime-ms'])).toBeGreaterThan(0);
    expect(run.summary).toContain(`Unit compose:${PROJECT}: succeeded`);
    // After the killed run, its network is still on host 2: the same definition, so it is used as it is.
    expect(run.summary).toContain(frozen ? `networks: ${NETWORK}</p>` : `${NETWORK} (created)`);
    console.log(
      `unit frozen window: ${run.outputs['downtime-ms']} ms (members: ${unit.members.map((m: { downtimeMs: number }) => m.downtimeMs).join(', ')} ms)`,
    );

    // The network on host 2: same name, subnet, gateway and labels; each member the same address and aliases.
    expect(await networkOf(bed.host2)).toEqual(networkBefore);
    for (const [name, before] of [
      [WEB, endpoints.web],
      [REDIS, endpoints.redis],
    ] as const) {
      const after = await project.endpoint(bed.host2, name);
      expect(after.IPAddress).toBe(before.IPAddress);
      // Docker lists the container's own name and short ID among the DNS names by itself.
      for (const alias of before.Aliases) expect(after.DNSNames).toContain(alias);
      expect(after.Aliases).toContain(name === WEB ? 'web' : 'redis');
    }
    // The web service answers on host 2's published port and reaches Redis by its service name.
    expect(await project.hit(bed.host2)).toBe(before.count + 1);
    const redisAfter = await project.redisFacts(bed.host2);
    expect(redisAfter.runId).toBe(before.runId);
    expect(redisAfter.hits).toBe(before.count + 1);
    // compose knows the project on host 2.
    const ps = await onHost(
      bed,
      bed.host2,
      `docker-compose -p ${PROJECT} ps --format '{{.Service}} {{.State}}'`,
    );
    expect(ps.trim().split('\n').sort()).toEqual(['redis running', 'web running']);
    // Nothing of the project runs on host 1.
    expect(
      await onHost(
        bed,
        bed.host1,
        `docker ps -q --filter label=com.docker.compose.project=${PROJECT} | wc -l`,
      ),
    ).toBe('0\n');
  });
  it("killed between the unit's commit and a member's own: the post step finishes every member, never splits the unit", async () => {
    // The project runs on host 2 now: moved back to host 1. Web's own commit never reaches a
    // journal (held, then failing, on both hosts); Redis commits. Without the unit's marker the
    // post step would roll web back and leave Redis on host 1 alone.
    await removeFaults(bed);
    // The earlier move left the retired (stopped) members and the volume on host 1.
    await onHostResult(
      bed,
      bed.host1,
      `docker ps -aq --filter label=com.docker.compose.project=${PROJECT} | xargs -r docker rm -f; docker volume rm ${PROJECT}_data`,
    );
    // Host 1 still has the network compose made there, with a subnet Docker chose: members
    // cannot keep their addresses on it. Refused while staging, the unit stays on host 2.
    const back = await runAction(inputs({ source: bed.host2, target: bed.host1 }));
    expect(back.exitCode, back.stdout).not.toBe(0);
    expect(back.outputs.status, back.stdout).toBe('rolled-back');
    expect(back.stdout).toContain('COMPOSE_NETWORK_CONFLICT');
    expect(back.stdout).toContain(`docker network rm ${NETWORK}`);
    for (const name of [WEB, REDIS]) {
      expect(await containerState(bed, bed.host2, name)).toMatchObject({ Running: true, Paused: false });
    }
    await onHost(bed, bed.host1, `docker network rm ${NETWORK}`);
    const journalWrite = `#!/bin/sh
case "$(readlink /proc/$$/fd/1 2>/dev/null)" in
  */containers/${WEB}/journal.json.*.new)
    data=$(/usr/bin/cat)
    case "$data" in
      *'"kind": "committed"'*)
        touch /tmp/e2e-held-unit-commit
        i=0
        while [ ! -e /tmp/e2e-release-unit-commit ] && [ "$i" -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
        exit 1 ;;
    esac
    printf '%s\n' "$data"
    exit 0 ;;
esac
exec /usr/bin/cat "$@"
`;
    for (const host of [bed.host1, bed.host2])
      await installWrapper(bed, host, '/usr/local/bin/cat', journalWrite);
    const before = {
      count: await project.hit(bed.host2),
      runId: (await project.redisFacts(bed.host2)).runId,
    };
    const running = startAction(inputs({ source: bed.host2, target: bed.host1 }));
    await waitHeld(bed, bed.host1, 'unit-commit', 180_000, running);
    const main = await running.kill();
    await removeFaults(bed);
    for (const host of [bed.host1, bed.host2]) await release(bed, host, 'unit-commit');
    // Both members verified on host 1; the unit's marker is on the hosts.
    for (const name of [WEB, REDIS]) {
      expect(await containerState(bed, bed.host1, name)).toMatchObject({ Running: true });
    }
    expect(
      await onHost(bed, bed.host1, `ls /var/lib/criu-migrate/units/ | grep -c '^${PROJECT}-.*[.]committed$'`),
    ).toBe('1\n');

    const post = await runPostStep(inputs({ source: bed.host2, target: bed.host1 }), main);
    expect(post.exitCode, post.stdout).toBe(0);
    expect(post.stdout).toContain(`of ${WEB} unfinished`);
    expect(post.stdout).toMatch(new RegExp(`${WEB}: its unit .* was committed`));
    expect(post.stdout).not.toMatch(/rolled back \(source resumed\)/);
    // One unit, on host 1 only: every member running there, none on host 2.
    for (const name of [WEB, REDIS]) {
      expect(await containerState(bed, bed.host1, name)).toMatchObject({ Running: true, Paused: false });
    }
    expect(
      await onHost(
        bed,
        bed.host2,
        `docker ps -q --filter label=com.docker.compose.project=${PROJECT} | wc -l`,
      ),
    ).toBe('0\n');
    const redis = await project.redisFacts(bed.host1);
    expect(redis.runId).toBe(before.runId);
    expect(await project.hit(bed.host1)).toBe(before.count + 1);
    // Nothing of the run is left: no open journal, no marker.
    for (const host of [bed.host1, bed.host2]) {
      expect(
        await onHost(
          bed,
          host,
          `ls /var/lib/criu-migrate/containers/${WEB}/journal.json /var/lib/criu-migrate/containers/${REDIS}/journal.json /var/lib/criu-migrate/units/*.committed 2>/dev/null | wc -l`,
        ),
      ).toBe('0\n');
    }
  });

  it("moves the unit back to host 2 with memory: overlap: each member's pages summed the same on both hosts, Redis data and run_id kept", async () => {
    await removeFaults(bed);
    // The move back left the retired members and the volume on host 2.
    await onHostResult(
      bed,
      bed.host2,
      `docker ps -aq --filter label=com.docker.compose.project=${PROJECT} | xargs -r docker rm -f; docker volume rm ${PROJECT}_data`,
    );
    const before = {
      count: await project.hit(bed.host1),
      runId: (await project.redisFacts(bed.host1)).runId,
    };
    const run = await runAction(inputs({ memory: 'overlap' }));
    expect(run.exitCode, run.stdout).toBe(0);
    expect(run.outputs.status).toBe('succeeded');
    const unit = JSON.parse(run.outputs.unit ?? '{}');
    expect(unit.members.map((m: { container: string; status: string }) => [m.container, m.status])).toEqual([
      [REDIS, 'succeeded'],
      [WEB, 'succeeded'],
    ]);
    const summed = run.stdout.match(
      /overlap: \d+\.\d [KM]iB of pages, sha256 [0-9a-f]{16}… the same on both hosts/g,
    );
    expect(summed, run.stdout).toHaveLength(2);
    const redis = await project.redisFacts(bed.host2);
    expect(redis.runId).toBe(before.runId);
    expect(await project.hit(bed.host2)).toBe(before.count + 1);
    for (const host of [bed.host1, bed.host2]) {
      const left = await onHostResult(bed, host, "pgrep -af '[c]riu page-server|[I]O::Socket::INET'");
      expect(left.stdout, `left on ${host}`).toBe('');
    }
  });
});
