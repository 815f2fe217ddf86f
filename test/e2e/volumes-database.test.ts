import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { expectNothingLeft } from './invariants.js';
import { runAction } from './run-action.js';
import {
  containerLogs,
  ensurePackageImage,
  loadTestbed,
  onHost,
  onHostResult,
  SERVICES_IMAGE,
  sshInputs,
  type Testbed,
  waitForLog,
} from './testbed.js';

let bed: Testbed;

beforeAll(async () => {
  bed = loadTestbed();
  // Only the source needs it: the migration copies the image to the target.
  await ensurePackageImage(bed, bed.host1, SERVICES_IMAGE);
}, 20 * 60_000);

const DATA = '/data';

/**
 * Debian's Redis with its append-only file on the volume, fsynced before
 * every reply (appendfsync always), and a client in the same container
 * appending one id at a time; it prints "committed N" only after Redis
 * acknowledged the write. No TCP: a Unix socket in /tmp.
 *
 * Why not PostgreSQL: this machine's capability bounding set lacks
 * CAP_SYS_RESOURCE, so CRIU cannot read the rlimits of a process owned by
 * another user ("Can't get rlimit 0: Operation not permitted"), and
 * PostgreSQL refuses to run as root. Redis runs as root.
 */
const REDIS_LOAD = `set -e
cd ${DATA}
redis-server --dir ${DATA} --appendonly yes --appendfsync always --save '' --port 0 \\
  --unixsocket /tmp/redis.sock --logfile ${DATA}/redis.log --daemonize yes
for n in $(seq 1 100); do redis-cli -s /tmp/redis.sock ping >/dev/null 2>&1 && break; sleep 0.1; done
i=$(redis-cli -s /tmp/redis.sock llen committed)
echo ready
set +e
while [ "$i" -lt 100000 ]; do
  i=$((i + 1))
  if [ "$(redis-cli -s /tmp/redis.sock rpush committed "$i" 2>/dev/null)" -gt 0 ] 2>/dev/null; then echo "committed $i"; else echo "failed $i"; fi
  sleep 0.03
done`;

function committed(logs: string): number[] {
  return [...logs.matchAll(/^committed (\d+)$/gm)].map((m) => Number(m[1]));
}

async function storedOn(host: string, name: string): Promise<Set<number>> {
  const out = await onHost(
    bed,
    host,
    `docker exec ${name} redis-cli -s /tmp/redis.sock lrange committed 0 -1`,
  );
  return new Set(out.split('\n').filter(Boolean).map(Number));
}

async function clean(name: string, volume: string): Promise<void> {
  for (const host of [bed.host1, bed.host2]) {
    await onHostResult(
      bed,
      host,
      `docker rm -f ${name} >/dev/null 2>&1; docker volume rm ${volume} >/dev/null 2>&1; true`,
    );
  }
}

async function startDatabase(host: string, name: string, volume: string): Promise<void> {
  await onHost(
    bed,
    host,
    `docker run -d --name ${name} -v ${volume}:${DATA} ${SERVICES_IMAGE.tag} bash -c '${REDIS_LOAD.replaceAll("'", `'"'"'`)}' >/dev/null`,
  );
  await waitForLog(bed, host, name, /^committed 30$/m, 60_000);
}

/** The server on `host` started once and never loaded its files again (no recovery), and its AOF is valid. */
async function expectNoRecovery(host: string, name: string): Promise<void> {
  const log = await onHost(bed, host, `docker exec ${name} cat ${DATA}/redis.log`);
  expect(log.match(/Ready to accept connections/g)?.length).toBe(1);
  expect(log).not.toMatch(/loaded from (append only file|disk)|Reading RDB|AOF loaded/i);
  const check = await onHost(
    bed,
    host,
    `docker exec ${name} sh -c 'redis-check-aof ${DATA}/appendonlydir/appendonly.aof.manifest 2>&1'`,
  );
  expect(check).toMatch(/is valid/);
}

describe('a database on a named volume moves with its container', () => {
  it('Redis with an fsynced append-only file under a steady write load: on the target without recovery, every acknowledged write there, the load going on', async () => {
    const name = 'e2e-redis';
    const volume = 'e2e-redis-data';
    await clean(name, volume);
    await startDatabase(bed.host1, name, volume);

    const run = await runAction({
      mode: 'migrate',
      container: name,
      source: bed.host1,
      target: bed.host2,
      ...sshInputs(bed),
      'verify-log-pattern': '^committed \\d+',
      'verify-timeout': '30',
      timeout: '15',
    });
    expect(run.exitCode, run.stdout).toBe(0);
    expect(run.outputs.status).toBe('succeeded');

    const onSource = committed(await containerLogs(bed, bed.host1, name));
    await waitForLog(bed, bed.host2, name, /^committed \d+$/m, 30_000);
    const firstOnTarget = committed(await containerLogs(bed, bed.host2, name));
    // The client went on where it was frozen: the next number, no failed write.
    expect(firstOnTarget[0]).toBe((onSource.at(-1) ?? 0) + 1);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const targetLogs = await containerLogs(bed, bed.host2, name);
    expect(targetLogs).not.toMatch(/^failed /m);
    const later = committed(targetLogs);
    expect(later.length).toBeGreaterThan(firstOnTarget.length);
    const stored = await storedOn(bed.host2, name);
    const missing = [...onSource, ...later].filter((id) => !stored.has(id));
    expect(missing).toEqual([]);
    await expectNoRecovery(bed.host2, name);

    const meta = JSON.parse(readFileSync(run.outputs['metadata-path']!, 'utf8'));
    expect(meta.volumes[0]).toMatchObject({ name: volume, target: 'created', contentsMoved: true });
    console.log(
      `redis migrate: ${onSource.length} writes on the source, downtime ${meta.timings.downtimeMs} ms; volume passes ${JSON.stringify(meta.volumes[0].passes.map((p: { pass: string; bytes: number; ms: number }) => [p.pass, p.bytes, p.ms]))}`,
    );
    await expectNothingLeft(bed, name);
    await clean(name, volume);
  });

  it('the same database checkpointed into the store with its volume (leave-running: false), restored onto the other host; retention removes the stored volume', async () => {
    const name = 'e2e-redis-ckpt';
    const volume = 'e2e-redis-ckpt-data';
    const store = '/var/lib/criu-migrate-e2e-volume-store';
    await clean(name, volume);
    await onHostResult(bed, bed.host3, `rm -rf ${store}`);
    await startDatabase(bed.host1, name, volume);
    const common = {
      container: name,
      'store-host': bed.host3,
      'store-path': store,
      ...sshInputs(bed),
      timeout: '15',
    };

    const checkpoint = await runAction({
      ...common,
      mode: 'checkpoint',
      source: bed.host1,
      'checkpoint-name': 'db-1',
      'leave-running': 'false',
      retention: '1',
    });
    expect(checkpoint.exitCode, checkpoint.stdout).toBe(0);
    const dir = checkpoint.outputs['checkpoint-path']!;
    expect(dir).toBe(`${store}/${name}/${checkpoint.outputs.series}/db-1`);
    const stored = await onHost(bed, bed.host3, `cd ${dir} && find volumes -type f | sort`);
    expect(stored.split('\n').filter(Boolean)).toEqual([
      `volumes/${volume}/bulk.tar`,
      `volumes/${volume}/frozen.tar`,
    ]);
    const manifest = JSON.parse(await onHost(bed, bed.host3, `cat ${dir}/manifest.json`));
    expect(manifest.volumes[0]).toMatchObject({ name: volume, contentsMoved: true });
    expect(manifest.files.map((f: { path: string }) => f.path)).toContain(`volumes/${volume}/frozen.tar`);
    const checkpointMeta = JSON.parse(readFileSync(checkpoint.outputs['metadata-path']!, 'utf8'));
    expect(checkpointMeta.volumes[0]).toMatchObject({ name: volume, target: 'stored' });
    // Stopped once the checkpoint was complete: every write it acknowledged is in the checkpoint.
    const acknowledged = committed(await containerLogs(bed, bed.host1, name));
    expect(acknowledged.length).toBeGreaterThan(20);

    const restored = await runAction({
      ...common,
      mode: 'restore',
      target: bed.host2,
      'verify-log-pattern': '^committed \\d+',
      'verify-timeout': '30',
    });
    expect(restored.exitCode, restored.stdout).toBe(0);
    await waitForLog(bed, bed.host2, name, /^committed \d+$/m, 30_000);
    const first = committed(await containerLogs(bed, bed.host2, name));
    expect(first[0]).toBe((acknowledged.at(-1) ?? 0) + 1);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const logs = await containerLogs(bed, bed.host2, name);
    expect(logs).not.toMatch(/^failed /m);
    const later = committed(logs);
    expect(later.length).toBeGreaterThan(first.length);
    const have = await storedOn(bed.host2, name);
    expect([...acknowledged, ...later].filter((id) => !have.has(id))).toEqual([]);
    await expectNoRecovery(bed.host2, name);
    const restoreMeta = JSON.parse(readFileSync(restored.outputs['metadata-path']!, 'utf8'));
    expect(restoreMeta.volumes[0]).toMatchObject({ name: volume, target: 'created', contentsMoved: true });
    expect(restoreMeta.volumes[0].passes.map((p: { pass: string }) => p.pass)).toEqual(['bulk', 'frozen']);

    // The restored container continues the series: its checkpoint with retention 1 replaces the
    // first one, whose volume archives go with it.
    const second = await runAction({
      ...common,
      mode: 'checkpoint',
      source: bed.host2,
      'checkpoint-name': 'db-2',
      retention: '1',
    });
    expect(second.exitCode, second.stdout).toBe(0);
    expect(second.outputs.series).toBe(checkpoint.outputs.series);
    expect(await onHost(bed, bed.host3, `ls ${store}/${name}/${checkpoint.outputs.series}`)).toBe(
      'db-2\nseries.json\n',
    );
    expect(
      await onHost(bed, bed.host3, `find ${store}/${name} -name bulk.tar -path '*volumes*' | wc -l`),
    ).toBe('1\n');
    await clean(name, volume);
    await onHostResult(bed, bed.host3, `rm -rf ${store}`);
  });
});
