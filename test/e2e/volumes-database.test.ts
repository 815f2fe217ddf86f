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
while :; do
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
      'ssh-key': readFileSync(bed.sshKeyPath, 'utf8'),
      'known-hosts': readFileSync(bed.knownHostsPath, 'utf8'),
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
});
