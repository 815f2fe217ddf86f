import { describe, expect, it } from 'vitest';
import type { ContainerInspect } from '../../src/engine/docker/inspect.js';
import { parseNetworkInspect } from '../../src/engine/docker/networks.js';
import { MigrationError } from '../../src/errors.js';
import { UnitCoordinator } from '../../src/modes/migrate/unit-coordinator.js';
import {
  memberAddresses,
  networkCreateArgs,
  networkDifferences,
  parseUnitRef,
  peerConnectionChecks,
  projectNetworks,
  restoreOrder,
  unitFailure,
  unitStatus,
} from '../../src/policy/compose-unit.js';
import { parseProcNet } from '../../src/probe/parsers.js';

/** Just the fields a compose unit reads. */
function member(
  service: string,
  options: { dependsOn?: string; networks?: Record<string, string> } = {},
): ContainerInspect {
  return {
    Id: `${service}${'0'.repeat(64)}`.slice(0, 64),
    Name: `/shop-${service}-1`,
    Config: {
      Labels: {
        'com.docker.compose.project': 'shop',
        'com.docker.compose.service': service,
        ...(options.dependsOn !== undefined ? { 'com.docker.compose.depends_on': options.dependsOn } : {}),
      },
    },
    NetworkSettings: {
      Networks: Object.fromEntries(
        Object.entries(options.networks ?? { shop_default: '172.18.0.2' }).map(([name, ip]) => [
          name,
          { IPAddress: ip, Aliases: [`shop-${service}-1`, service] },
        ]),
      ),
    },
  } as unknown as ContainerInspect;
}

describe('unit input', () => {
  it('reads compose:<project> and a container name, refuses the rest', () => {
    expect(parseUnitRef('compose:shop')).toEqual({ kind: 'compose', project: 'shop' });
    expect(parseUnitRef(' web-1 ')).toEqual({ kind: 'container', name: 'web-1' });
    expect(() => parseUnitRef('compose:')).toThrow(/names no valid compose project/);
    expect(() => parseUnitRef('a;b')).toThrow(/neither compose:<project> nor a container name/);
  });
});

describe('restoreOrder', () => {
  it('puts each dependency before what depends on it, as compose recorded it', () => {
    const { order, waitsFor } = restoreOrder([
      member('web', { dependsOn: 'api:service_started:false' }),
      member('api', { dependsOn: 'cache:service_started:false,db:service_healthy:true' }),
      member('db'),
      member('cache', { dependsOn: '' }),
    ]);
    expect(order).toEqual(['shop-cache-1', 'shop-db-1', 'shop-api-1', 'shop-web-1']);
    expect(waitsFor.get('shop-api-1')).toEqual(['shop-cache-1', 'shop-db-1']);
    expect(waitsFor.get('shop-db-1')).toEqual([]);
  });

  it('ignores a dependency outside the unit and refuses a cycle', () => {
    expect(restoreOrder([member('web', { dependsOn: 'gone:service_started:false' })]).order).toEqual([
      'shop-web-1',
    ]);
    expect(() =>
      restoreOrder([
        member('a', { dependsOn: 'b:service_started:false' }),
        member('b', { dependsOn: 'a:x:y' }),
      ]),
    ).toThrow(/form a cycle/);
  });
});

describe('project networks', () => {
  it("lists the members' user networks, not Docker's own", () => {
    const members = [
      member('web', { networks: { shop_front: '172.19.0.2', shop_default: '172.18.0.3' } }),
      member('cache', { networks: { bridge: '172.17.0.2', shop_default: '172.18.0.2' } }),
    ];
    expect(projectNetworks(members)).toEqual(['shop_default', 'shop_front']);
    expect(memberAddresses(members[1]!)).toEqual(['172.18.0.2']);
  });

  const inspect = JSON.stringify([
    {
      Name: 'shop_default',
      Driver: 'bridge',
      EnableIPv6: false,
      Internal: false,
      Attachable: false,
      IPAM: {
        Driver: 'default',
        Options: null,
        Config: [{ Subnet: '172.18.0.0/16', Gateway: '172.18.0.1' }],
      },
      Options: { 'com.docker.network.bridge.enable_icc': 'true' },
      Labels: { 'com.docker.compose.network': 'default', 'com.docker.compose.project': 'shop' },
    },
  ]);

  it('creates the same network on the target: driver, subnet, gateway, options, labels', () => {
    expect(networkCreateArgs(parseNetworkInspect(inspect))).toEqual([
      'network',
      'create',
      '--driver',
      'bridge',
      '--subnet',
      '172.18.0.0/16',
      '--gateway',
      '172.18.0.1',
      '--opt',
      'com.docker.network.bridge.enable_icc=true',
      '--label',
      'com.docker.compose.network=default',
      '--label',
      'com.docker.compose.project=shop',
      'shop_default',
    ]);
  });

  it('tells a network of the same name but another subnet or project apart', () => {
    const spec = parseNetworkInspect(inspect);
    expect(networkDifferences(spec, spec)).toEqual([]);
    const other = { ...spec, ipam: [{ subnet: '10.9.0.0/24', gateway: '10.9.0.1' }], labels: {} };
    expect(networkDifferences(spec, other)).toEqual([
      'subnet 10.9.0.0/24 via 10.9.0.1, not 172.18.0.0/16 via 172.18.0.1',
      'compose project none, not shop',
    ]);
  });

  it('refuses a label or option that cannot become an argument', () => {
    const bad = inspect.replace(
      '"com.docker.compose.network":"default"',
      '"com.docker.compose.network":"de\\nfault"',
    );
    expect(() => parseNetworkInspect(bad)).toThrow(/unusable value/);
  });
});

describe('peerConnectionChecks', () => {
  // web 172.18.0.3:40000 connected to redis 172.18.0.2:6379 (6379 = 0x18EB), as each sees it.
  const web = parseProcNet(`  sl  local_address rem_address   st
   0: 030012AC:9C40 020012AC:18EB 01 00000000:00000000 00:00000000 00000000     0        0 1001 1
`);
  const redis = parseProcNet(`  sl  local_address rem_address   st
   0: 00000000:18EB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1002 1
   1: 020012AC:18EB 030012AC:9C40 01 00000000:00000000 00:00000000 00000000     0        0 1003 1
`);

  it('names both ends of a connection between members, once', () => {
    const checks = peerConnectionChecks([
      { name: 'shop-redis-1', addresses: ['172.18.0.2'], tcp: redis },
      { name: 'shop-web-1', addresses: ['172.18.0.3'], tcp: web },
    ]);
    expect(checks).toHaveLength(1);
    expect(checks[0]).toMatchObject({ status: 'fail', code: 'COMPOSE_PEER_CONNECTED' });
    expect(checks[0]!.observed).toBe('shop-redis-1 172.18.0.2:6379 ↔ shop-web-1 172.18.0.3:40000');
  });

  it('passes when only listeners and outside peers are there', () => {
    const checks = peerConnectionChecks([
      { name: 'shop-redis-1', addresses: ['172.18.0.2'], tcp: redis.slice(0, 1) },
      { name: 'shop-web-1', addresses: ['172.18.0.9'], tcp: web },
    ]);
    expect(checks).toEqual([expect.objectContaining({ status: 'pass', observed: 'none' })]);
  });
});

describe('UnitCoordinator', () => {
  const order = ['shop-cache-1', 'shop-web-1'];
  const waits = new Map([
    ['shop-cache-1', []],
    ['shop-web-1', ['shop-cache-1']],
  ]);

  it('lets no member past a meeting point before every member reached it, and restores in order', async () => {
    const unit = new UnitCoordinator(order, waits);
    const cache = unit.hooksFor('shop-cache-1');
    const web = unit.hooksFor('shop-web-1');
    const seen: string[] = [];
    const cachePaused = cache.allPaused().then(() => seen.push('cache past pause'));
    await Promise.resolve();
    expect(seen).toEqual([]);
    await web.allPaused();
    await cachePaused;
    const webRestore = web.beforeRestore().then(() => seen.push('web restores'));
    await cache.beforeRestore();
    seen.push('cache restores');
    cache.restored();
    await webRestore;
    expect(seen).toEqual(['cache past pause', 'cache restores', 'web restores']);
  });

  it('keeps a dumped member frozen until every member is dumped (checkpoint of a unit)', async () => {
    const unit = new UnitCoordinator(order, waits);
    const cache = unit.hooksFor('shop-cache-1');
    const web = unit.hooksFor('shop-web-1');
    const seen: string[] = [];
    const cacheDumped = cache.allDumped().then(() => seen.push('cache resumes'));
    await Promise.resolve();
    expect(seen).toEqual([]);
    seen.push('web dumped');
    await web.allDumped();
    await cacheDumped;
    expect(seen).toEqual(['web dumped', 'cache resumes']);
  });

  it('a member whose dump fails releases the dumped one into its rollback', async () => {
    const unit = new UnitCoordinator(order, waits);
    const waiting = unit.hooksFor('shop-cache-1').allDumped();
    unit.hooksFor('shop-web-1').failed(new MigrationError('CHECKPOINT_FAILED', 'dump refused'));
    await expect(waiting).rejects.toThrow(
      /shop-web-1 of the unit failed \(CHECKPOINT_FAILED: dump refused\)/,
    );
  });

  it('one failure stops every waiting member and every later wait, naming the member', async () => {
    const unit = new UnitCoordinator(order, waits);
    const cache = unit.hooksFor('shop-cache-1');
    const web = unit.hooksFor('shop-web-1');
    const waiting = cache.allVerified();
    web.failed(new MigrationError('RESTORE_FAILED', 'criu said no'));
    await expect(waiting).rejects.toMatchObject({ code: 'COMPOSE_MEMBER_FAILED' });
    await expect(cache.allReady()).rejects.toThrow(
      /shop-web-1 of the unit failed \(RESTORE_FAILED: criu said no\)/,
    );
    expect(unit.firstFailure?.code).toBe('COMPOSE_MEMBER_FAILED');
  });
});

describe("UnitCoordinator: the unit's one commit", () => {
  const order = ['shop-cache-1', 'shop-web-1'];
  const waits = new Map([
    ['shop-cache-1', []],
    ['shop-web-1', ['shop-cache-1']],
  ]);

  it('writes the commit once, after the last member is verified, and lets nobody past before it is written', async () => {
    let writes = 0;
    let finishWrite: () => void = () => {};
    const unit = new UnitCoordinator(order, waits, () => {
      writes += 1;
      return new Promise<void>((resolve) => {
        finishWrite = resolve;
      });
    });
    const cache = unit.hooksFor('shop-cache-1');
    const web = unit.hooksFor('shop-web-1');
    const past: string[] = [];
    const cacheDone = cache.allVerified().then(() => past.push('cache'));
    await Promise.resolve();
    expect(writes).toBe(0);
    const webDone = web.allVerified().then(() => past.push('web'));
    await Promise.resolve();
    expect(writes).toBe(1);
    expect(past).toEqual([]);
    expect(unit.committed).toBe(false);
    finishWrite();
    await Promise.all([cacheDone, webDone]);
    expect(past.sort()).toEqual(['cache', 'web']);
    expect(unit.committed).toBe(true);
    expect(writes).toBe(1);
  });

  it('a commit that reaches no host rolls every member back', async () => {
    const unit = new UnitCoordinator(order, waits, async () => {
      throw new MigrationError('COMMIT_NOT_DURABLE', 'no host took the marker');
    });
    const cache = unit.hooksFor('shop-cache-1');
    const web = unit.hooksFor('shop-web-1');
    const both = [cache.allVerified(), web.allVerified()];
    for (const waiting of both)
      await expect(waiting).rejects.toThrow(/COMMIT_NOT_DURABLE: no host took the marker/);
    expect(unit.committed).toBe(false);
  });

  it('a member failing after the commit (its own journal write) does not undo the unit', async () => {
    const unit = new UnitCoordinator(order, waits);
    const cache = unit.hooksFor('shop-cache-1');
    const web = unit.hooksFor('shop-web-1');
    await Promise.all([cache.allVerified(), web.allVerified()]);
    web.failed(new MigrationError('COMMIT_NOT_DURABLE', 'its journal could not be written'));
    expect(unit.firstFailure).toBeUndefined();
    expect(unit.committed).toBe(true);
  });
});

describe("a unit's end from its members' (unitStatus, unitFailure)", () => {
  it('succeeds only when every member did, and is failed when any undo did not finish', () => {
    expect(unitStatus(['succeeded', 'succeeded'])).toBe('succeeded');
    expect(unitStatus(['succeeded', 'rolled-back'])).toBe('failed');
    expect(unitStatus(['rolled-back', 'refused'])).toBe('rolled-back');
    expect(unitStatus(['refused', 'refused'])).toBe('refused');
    expect(unitStatus(['rolled-back', 'failed'])).toBe('failed');
  });

  it('a unit checkpoint that failed counts its succeeded members as undone (their checkpoints are removed)', () => {
    expect(unitStatus(['succeeded', 'rolled-back'], true)).toBe('rolled-back');
    expect(unitStatus(['succeeded', 'refused'], true)).toBe('rolled-back');
    expect(unitStatus(['refused'], true)).toBe('refused');
    expect(unitStatus(['succeeded', 'failed'], true)).toBe('failed');
  });

  it('names the first failing member, unless a cancellation or timeout stopped them all', () => {
    const own = new MigrationError('RESTORE_FAILED', 'criu said no');
    const first = new MigrationError('COMPOSE_MEMBER_FAILED', 'web failed', { cause: own });
    expect(unitFailure(first, [undefined, first])).toBe(first);
    const cancelled = new MigrationError('CANCELLED', 'cancelled');
    expect(unitFailure(new MigrationError('COMPOSE_MEMBER_FAILED', 'x', { cause: cancelled }), [])).toBe(
      cancelled,
    );
    const memberError = new MigrationError('CHECKPOINT_FAILED', 'dump failed');
    expect(unitFailure(undefined, [undefined, memberError])).toBe(memberError);
    expect(unitFailure(undefined, [])).toBeUndefined();
  });
});
