/**
 * A real service: Debian's redis-server (image testbed/services:1, built by
 * test/testbed/package-image.sh) holding N MiB of random values, moved by a
 * migration way. Checked by INFO server's run_id (unchanged by a restore, new
 * after a restart) and DBSIZE. Downtime: the longest stretch without a PONG,
 * polled on both hosts through `docker exec` / `podman exec` while it moves.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { SERVICES_IMAGE } from '../../../test/e2e/testbed.js';
import { check, sleep } from '../bed.js';
import type { MigrationRun } from '../report.js';
import { memoryVerdict } from '../stats.js';
import { copyImage } from './images.js';
import {
  type BenchContext,
  type ContainerSpec,
  cleanHost,
  log,
  type Migration,
  PODMAN,
  type Runtime,
  startContainer,
  type Way,
  withPodman,
} from './way.js';

const VALUE_BYTES = 4096;

let imageReady = false;

/** Builds (cached) and loads the services image on host 1, then copies it like the counter's. */
async function ensureImage(ctx: BenchContext): Promise<void> {
  if (imageReady) return;
  const { bed } = ctx;
  if ((await bed.on(bed.host1, `docker image inspect ${SERVICES_IMAGE.tag} >/dev/null 2>&1`)).code !== 0) {
    log(`building or taking from the cache ${SERVICES_IMAGE.tag} (test/testbed/package-image.sh)`);
    const built = await check(
      [
        'bash',
        join(ctx.root, 'test/testbed/package-image.sh'),
        SERVICES_IMAGE.tag,
        ...SERVICES_IMAGE.packages,
      ],
      { timeoutMs: 1_800_000 },
    );
    const tar = built.stdout.trim().split('\n').at(-1) ?? '';
    if (!existsSync(tar)) throw new Error(`package-image.sh printed no image archive: ${built.stdout}`);
    const ssh = bed
      .ssh(bed.host1)
      .map((a) => `'${a}'`)
      .join(' ');
    await check(['bash', '-o', 'pipefail', '-c', `${ssh} 'docker load -q >/dev/null' <'${tar}'`], {
      timeoutMs: 900_000,
    });
  }
  await copyImage(ctx, SERVICES_IMAGE.tag, withPodman(ctx));
  imageReady = true;
}

const exec = (runtime: Runtime, name: string, command: string) =>
  `${runtime === 'docker' ? 'docker' : PODMAN} exec ${name} ${command}`;

async function info(
  ctx: BenchContext,
  runtime: Runtime,
  host: string,
  name: string,
): Promise<{ runId: string; keys: number; digest?: string; why?: string }> {
  const out = await ctx.bed.must(
    host,
    `${exec(runtime, name, 'redis-cli INFO server')} | tr -d '\\r' | sed -n 's/^run_id://p'; ${exec(runtime, name, 'redis-cli DBSIZE')}; ${exec(runtime, name, 'redis-cli DEBUG DIGEST')} 2>&1`,
  );
  const [runId = '', keys = '', digest = ''] = out.trim().split('\n');
  // The server's own digest of every key and value: its memory by content.
  return /^[0-9a-f]{40}$/.test(digest.trim())
    ? { runId, keys: Number(keys), digest: digest.trim() }
    : { runId, keys: Number(keys), why: `DEBUG DIGEST answered: ${digest.trim().slice(0, 120)}` };
}

/**
 * Polls PING on both hosts every 50 ms until stopped (a stop file on each
 * host ends its loop; 30 min bound); returns the longest gap between PONGs.
 */
function pinger(ctx: BenchContext, runtime: Runtime, name: string): { stop(): Promise<number | undefined> } {
  const stopFile = `/tmp/bench-ping-stop-${name}`;
  const loop = `rm -f ${stopFile}; end=$(($(date +%s) + 1800)); while [ ! -e ${stopFile} ] && [ $(date +%s) -lt $end ]; do if ${exec(runtime, name, 'redis-cli PING')} 2>/dev/null | grep -q PONG; then date +%s%3N; fi; sleep 0.05; done; rm -f ${stopFile}`;
  const hosts = [ctx.bed.host1, ctx.bed.host2];
  const polls = hosts.map((host) => ctx.bed.on(host, loop, { timeoutMs: 1_900_000 }));
  return {
    async stop() {
      await Promise.all(hosts.map((host) => ctx.bed.on(host, `touch ${stopFile}`)));
      const all = (await Promise.all(polls))
        .flatMap((r) => r.stdout.split('\n'))
        .filter((line) => /^\d{13}$/.test(line))
        .map(Number)
        .sort((a, b) => a - b);
      let gap: number | undefined;
      for (let i = 1; i < all.length; i++) gap = Math.max(gap ?? 0, all[i]! - all[i - 1]!);
      return gap;
    },
  };
}

export function redis(migration: Migration): Way<MigrationRun> {
  return {
    name: `redis-${migration.way}`,
    async measure(ctx, sizeMiB, rep) {
      const { bed } = ctx;
      await ensureImage(ctx);
      const runtime = migration.runtime;
      const common = '--security-opt seccomp=unconfined --network none';
      const spec: ContainerSpec = {
        name: `bench-redis-${migration.way}-${rep}`,
        image: SERVICES_IMAGE.tag,
        createOpts: runtime === 'docker' ? `--runtime=runc ${common}` : common,
        // DEBUG DIGEST (the content proof) needs the debug command, from inside the container only.
        command: "redis-server --save '' --appendonly no --protected-mode no --enable-debug-command local",
      };
      await Promise.all([cleanHost(ctx, bed.host1), cleanHost(ctx, bed.host2)]);
      await startContainer(ctx, runtime, bed.host1, spec);
      for (let i = 0; (await bed.on(bed.host1, exec(runtime, spec.name, 'redis-cli PING'))).code !== 0; i++) {
        if (i > 100) throw new Error('redis-server did not answer');
        await sleep(200);
      }
      // Random values (incompressible) written with the protocol redis-cli --pipe reads; perl is in every Debian root.
      const keys = Math.round((sizeMiB * 1024 * 1024) / VALUE_BYTES);
      const perl = [
        'open(U, "<", "/dev/urandom") or die; binmode U; binmode STDOUT;',
        `for my $i (1..${keys}) { read(U, my $v, ${VALUE_BYTES}); my $k = "key:$i";`,
        '  print "*3\\r\\n\\$3\\r\\nSET\\r\\n\\$" . length($k) . "\\r\\n$k\\r\\n\\$" . length($v) . "\\r\\n$v\\r\\n"; }',
      ].join('\n');
      log(`redis ${migration.way} rep ${rep}: populating ${keys} keys of ${VALUE_BYTES} random bytes`);
      // The script comes on stdin (perl -), its output goes to redis-cli --pipe.
      await bed.must(
        bed.host1,
        `${runtime === 'docker' ? 'docker' : PODMAN} exec -i ${spec.name} sh -c 'perl - | redis-cli --pipe >/dev/null'`,
        {
          input: perl,
          timeoutMs: 900_000,
        },
      );
      const before = await info(ctx, runtime, bed.host1, spec.name);
      if (before.keys !== keys) throw new Error(`redis holds ${before.keys} keys, not ${keys}`);
      log(
        `redis ${migration.way} rep ${rep}: migrating (run_id ${before.runId.slice(0, 12)}, ${before.keys} keys)`,
      );
      const ping = pinger(ctx, runtime, spec.name);
      const moving = (async () => {
        const moved = await migration.move(ctx, spec);
        for (let i = 0; ; i++) {
          const pong = await bed.on(bed.host2, exec(runtime, spec.name, 'redis-cli PING'));
          if (pong.code === 0) break;
          if (i > 100)
            throw new Error(
              `the moved redis-server did not answer: ${`${pong.stdout}${pong.stderr}`.trim().slice(-400)}`,
            );
          await sleep(100);
        }
        await sleep(500);
        return moved;
      })();
      // The poll loops stop whatever happened, so none outlives the run.
      let downtimeMs: number | undefined;
      let moved: Awaited<typeof moving>;
      try {
        moved = await moving;
      } finally {
        downtimeMs = await ping.stop();
      }
      const after = await info(ctx, runtime, bed.host2, spec.name);
      const memory = memoryVerdict(
        { sum: before.digest, why: before.why },
        { sum: after.digest, why: after.why },
      );
      log(
        `redis ${migration.way} rep ${rep}: down ${downtimeMs} ms, run_id ${after.runId === before.runId ? 'unchanged' : 'NEW'}, ${after.keys} keys, memory ${memory.status}`,
      );
      await Promise.all([cleanHost(ctx, bed.host1), cleanHost(ctx, bed.host2)]);
      return {
        method: migration.way,
        workload: 'redis',
        sizeMiB,
        rep,
        ...moved,
        downtimeMs,
        continued: after.runId === before.runId && after.keys === before.keys,
        memory,
        redis: { runIdKept: after.runId === before.runId, keysBefore: before.keys, keysAfter: after.keys },
      };
    },
  };
}
