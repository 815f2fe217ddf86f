import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installWrapper, removeFaults } from './faults.js';
import { containerState } from './invariants.js';
import { runAction } from './run-action.js';
import { loadTestbed, onHost, onHostResult, sshInputs, type Testbed, waitForLog } from './testbed.js';

// Checkpoints of containers that write files in their own writable layer: what
// the store holds is the state at the freeze, so the process restored from it
// finds its files as its memory remembers them. The workloads keep a counter in
// memory and check it against their files on request ("check" lines).
let bed: Testbed;
const store = '/var/lib/criu-migrate-e2e-consistent-store';
const names = { log: 'e2e-cons-log', db: 'e2e-cons-db', late: 'e2e-cons-late', bad: 'e2e-cons-bad' };

/**
 * Appends one line per record through a descriptor held open for the whole run
 * (write-only, append: a log); `db` also writes rows through a read-write
 * descriptor (CRIU checks its size at restore) and rewrites a header in place.
 * On request (/tmp/check) it prints its token, its counter and what its files hold.
 */
function workload(db: boolean): string {
  const script = [
    'mkdir -p /data',
    'token=$(cat /proc/sys/kernel/random/uuid)',
    'echo "start token=$token"',
    'exec 3>>/data/log',
    ...(db ? ['exec 4<>/data/db'] : []),
    'n=0',
    'while [ "$n" -lt 500000 ]; do',
    '  n=$((n + 1))',
    '  echo "rec $n" >&3',
    ...(db ? ['  echo "row $n" >&4', `  printf '%08d\\n' "$n" 1<>/data/head`] : []),
    '  if [ -e /tmp/check ]; then',
    '    rm -f /tmp/check',
    `    echo "check token=$token n=$n log=$(wc -l </data/log)${db ? ' db=$(wc -l </data/db) head=$(cat /data/head)' : ''}"`,
    '  fi',
    '  sleep 0.01',
    'done',
  ].join('\n');
  return script;
}

async function startWriter(host: string, name: string, db: boolean): Promise<string> {
  await onHostResult(bed, host, `docker rm -f ${name}`);
  const quoted = `'${workload(db).replace(/'/g, `'\\''`)}'`;
  await onHost(bed, host, `docker run -d --name ${name} ${bed.image} sh -c ${quoted}`);
  const logs = await waitForLog(bed, host, name, /^start token=\S+$/m);
  // Let it write for a while: a few hundred records in its layer before the checkpoint.
  await new Promise((resolve) => setTimeout(resolve, 1500));
  return /^start token=(\S+)$/m.exec(logs)?.[1] ?? '';
}

interface Check {
  token: string;
  n: number;
  log: number;
  db?: number;
  head?: number;
}

/** Asks the process to compare its counter with its files, and reads its answer. */
async function check(host: string, name: string): Promise<Check> {
  await onHost(bed, host, `docker exec ${name} touch /tmp/check`);
  const logs = await waitForLog(bed, host, name, /^check token=/m, 20_000);
  const match = /^check token=(\S+) n=(\d+) log=(\d+)(?: db=(\d+) head=(\d+))?$/m.exec(logs);
  if (!match) throw new Error(`no check line in\n${logs}`);
  return {
    token: match[1]!,
    n: Number(match[2]),
    log: Number(match[3]),
    ...(match[4] === undefined ? {} : { db: Number(match[4]), head: Number(match[5]) }),
  };
}

function inputs(name: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    container: name,
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
  for (const host of [bed.host1, bed.host2]) {
    await onHostResult(bed, host, `docker rm -f ${Object.values(names).join(' ')}`);
  }
});

afterAll(async () => {
  await removeFaults(bed);
  for (const host of [bed.host1, bed.host2]) {
    await onHostResult(bed, host, `docker rm -f ${Object.values(names).join(' ')}`);
  }
  await onHostResult(bed, bed.host3, `rm -rf ${store}`);
});

describe('consistent checkpoints of containers writing in their own layer', () => {
  it.each([
    ['an append-only log', names.log, false],
    [
      'a database-like file written through a read-write descriptor and a header rewritten in place',
      names.db,
      true,
    ],
  ])(
    '%s: checkpointed while it writes, restored on another host, files agree with memory',
    async (_what, name, db) => {
      const token = await startWriter(bed.host1, name, db);
      const taken = await runAction(
        inputs(name, {
          mode: 'checkpoint',
          source: bed.host1,
          'leave-running': 'true',
          'checkpoint-name': 'c1',
        }),
      );
      expect(taken.exitCode, taken.stdout).toBe(0);
      expect(taken.outputs.status).toBe('succeeded');
      expect(taken.stdout).toMatch(
        /stored layer agrees with the dump: \d+ open file\(s\) of the layer checked/,
      );
      // The manifest proves what was stored: CRIU's sizes (db) and append offsets (log) against the layer.
      const manifest = JSON.parse(
        await onHost(bed, bed.host3, `cat ${taken.outputs['checkpoint-path']}/manifest.json`),
      );
      const open = new Map<string, { criuSize?: number; appendOffset?: number; storedBytes?: number }>(
        manifest.openFiles.map((file: { path: string }) => [file.path, file]),
      );
      const logFile = open.get('/data/log');
      expect(logFile?.appendOffset).toBeGreaterThan(0);
      expect(logFile?.storedBytes).toBe(logFile?.appendOffset);
      if (db) {
        const dbFile = open.get('/data/db');
        expect(dbFile?.criuSize).toBeGreaterThan(0);
        expect(dbFile?.storedBytes).toBe(dbFile?.criuSize);
      }
      expect(manifest.layer.archives).toEqual(['layer/bulk.tar', 'layer/frozen.tar']);
      expect(Number(taken.outputs['frozen-ms'])).toBeGreaterThan(0);

      // It writes on after the checkpoint, then its host "dies".
      const before = await check(bed.host1, name);
      expect(before).toMatchObject({ token, log: before.n });
      await new Promise((resolve) => setTimeout(resolve, 1000));
      await onHost(bed, bed.host1, `docker rm -f ${name}`);

      const restored = await runAction(
        inputs(name, { mode: 'restore', source: bed.host1, target: bed.host2, 'verify-stable-seconds': '1' }),
      );
      expect(restored.exitCode, restored.stdout).toBe(0);
      expect(restored.outputs.status).toBe('succeeded');
      expect(await containerState(bed, bed.host2, name)).toMatchObject({ Running: true, Paused: false });
      // The same process (its token), and its files hold exactly what its counter says.
      const after = await check(bed.host2, name);
      expect(after.token).toBe(token);
      expect(after.log).toBe(after.n);
      if (db) expect(after).toMatchObject({ db: after.n, head: after.n });
      await onHostResult(bed, bed.host2, `docker rm -f ${name}`);
    },
  );

  it('a layer that changed between the freeze and its copy fails the checkpoint run, which leaves nothing', async () => {
    const name = names.late;
    await startWriter(bed.host1, name, true);
    // The layer copied late, as before this check existed: the container runs on for a moment first.
    await installWrapper(
      bed,
      bed.host1,
      '/usr/local/bin/tar',
      `#!/bin/sh
case " $* " in
  *layer.snar*no-file-changed*) ;;
  *layer.snar*) docker unpause ${name} >/dev/null 2>&1; sleep 0.5; docker pause ${name} >/dev/null 2>&1 ;;
esac
exec /usr/bin/tar "$@"
`,
    );
    try {
      const run = await runAction(
        inputs(name, { mode: 'checkpoint', source: bed.host1, 'checkpoint-name': 'late' }),
      );
      expect(run.exitCode).not.toBe(0);
      expect(run.outputs['error-code'], run.stdout).toBe('CHECKPOINT_INCONSISTENT');
      expect(run.outputs.status).toBe('rolled-back');
      expect(run.stdout).toMatch(/\/data\/db: stored \d+ bytes, expected \d+ bytes \(CRIU\)/);
    } finally {
      await removeFaults(bed);
    }
    // Nothing stored, not even partly; the container runs on, unpaused.
    expect(
      await onHost(bed, bed.host3, `find ${store}/${name} -name 'late' -o -name '*.partial' | wc -l`),
    ).toBe('0\n');
    expect(await containerState(bed, bed.host1, name)).toMatchObject({ Running: true, Paused: false });
    const after = await check(bed.host1, name);
    expect(after.log).toBe(after.n);
    await onHostResult(bed, bed.host1, `docker rm -f ${name}`);
  });

  it('a restore CRIU refuses for a file of the wrong size points at the writable layer, not at criu check', async () => {
    const name = names.bad;
    await startWriter(bed.host1, name, true);
    const taken = await runAction(
      inputs(name, { mode: 'checkpoint', source: bed.host1, 'checkpoint-name': 'b1' }),
    );
    expect(taken.exitCode, taken.stdout).toBe(0);
    await onHost(bed, bed.host1, `docker rm -f ${name}`);
    // On the target, the layer is changed after it is unpacked: the database file grows by a line.
    await installWrapper(
      bed,
      bed.host2,
      '/usr/local/bin/tar',
      `#!/bin/sh
case " $* " in
  *"--listed-incremental=/dev/null"*-xpf*)
    up=$(printf '%s\\n' "$@" | sed -n '/^-C$/{n;p;q}')
    /usr/bin/tar "$@"; r=$?
    [ -f "$up/data/db" ] && echo tampered >>"$up/data/db"
    exit "$r" ;;
esac
exec /usr/bin/tar "$@"
`,
    );
    try {
      const run = await runAction(
        inputs(name, { mode: 'restore', source: bed.host1, target: bed.host2, 'verify-stable-seconds': '1' }),
      );
      expect(run.exitCode).not.toBe(0);
      expect(run.outputs['error-code'], run.stdout).toBe('RESTORE_FAILED');
      expect(run.outputs.status).toBe('rolled-back');
      expect(run.stdout).toMatch(/has bad size/);
      expect(run.stdout).toMatch(/the file \S*data\/db in the container's writable layer has \d+ bytes/);
      expect(run.stdout).not.toMatch(/Remedy: read the CRIU lines above; run `criu check`/);
    } finally {
      await removeFaults(bed);
    }
    expect(await containerState(bed, bed.host2, name)).toBeUndefined();
  });
});
