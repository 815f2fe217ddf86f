import { readFileSync } from 'node:fs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { installHold, installWrapper, release, removeFaults, waitHeld } from './faults.js';
import { containerState, expectNothingLeft } from './invariants.js';
import { type ActionRun, runAction, startAction } from './run-action.js';
import {
  containerLogs,
  loadTestbed,
  onHost,
  onHostResult,
  sshInputs,
  type Testbed,
  waitForLog,
} from './testbed.js';

let bed: Testbed;

beforeAll(() => {
  bed = loadTestbed();
});

afterEach(async () => {
  await removeFaults(bed);
});

function inputs(source: string, target: string, container: string, more: Record<string, string> = {}) {
  return {
    mode: 'migrate',
    container,
    source,
    target,
    ...sshInputs(bed),
    'verify-timeout': '30',
    timeout: '10',
    ...more,
  };
}

function metadataOf(run: ActionRun): {
  run: { status: string };
  timings: { downtimeMs?: number };
  volumes?: {
    name: string;
    sizeBytes?: number;
    target: string;
    contentsMoved: boolean;
    passes: { pass: string; bytes: number; sha256: string }[];
    sha256?: string;
  }[];
} {
  return JSON.parse(readFileSync(run.outputs['metadata-path']!, 'utf8'));
}

/** Removes containers and volumes of a test on both hosts. */
async function clean(containers: string[], volumes: string[]): Promise<void> {
  for (const host of [bed.host1, bed.host2]) {
    await onHostResult(
      bed,
      host,
      `docker rm -f ${containers.join(' ')} >/dev/null 2>&1; docker volume rm ${volumes.join(' ')} >/dev/null 2>&1; true`,
    );
  }
}

async function mountpoint(host: string, volume: string): Promise<string> {
  return (await onHost(bed, host, `docker volume inspect --format '{{.Mountpoint}}' ${volume}`)).trim();
}

// Extended attributes through perl's syscall (x86_64 numbers): the hosts have no setfattr/getfattr.
const SETXATTR = (path: string, name: string, value: string) =>
  `perl -e 'exit(syscall(188, $ARGV[0], $ARGV[1], $ARGV[2], length($ARGV[2]), 0) == 0 ? 0 : 1)' '${path}' '${name}' '${value}'`;
const LISTXATTRS = `perl -e '
  my $p = $ARGV[0]; my $b = "\\0" x 4096; my $n = syscall(195, $p, $b, 4096);
  exit 0 if $n <= 0;
  for my $k (sort grep { length } split /\\0/, substr($b, 0, $n)) {
    my $v = "\\0" x 4096; my $m = syscall(192, $p, $k, $v, 4096);
    print " $k=", substr($v, 0, $m < 0 ? 0 : $m);
  }'`;

/**
 * Everything about a directory tree that must survive: per entry its type,
 * mode, owner, link count, size, allocated blocks (sparse files), device
 * numbers, link target, sha256 and xattrs; then which paths share an inode.
 */
function listingScript(dir: string): string {
  return `cd '${dir}' || exit 1
find . -mindepth 1 | LC_ALL=C sort | while IFS= read -r p; do
  t=$(stat -c '%F' "$p")
  extra=""
  case "$t" in
    "regular file"|"regular empty file") extra="size=$(stat -c %s "$p") blocks=$(stat -c %b "$p") mtime=$(stat -c %Y "$p") sha=$(sha256sum <"$p" | cut -c1-64)" ;;
    "character special file"|"block special file") extra="dev=$(stat -c '%t:%T' "$p")" ;;
    "symbolic link") extra="-> $(readlink "$p")" ;;
  esac
  echo "$p|$t|$(stat -c '%a %u:%g links=%h' "$p")|$extra|$(${LISTXATTRS} "$p")"
done
echo "root|$(stat -c '%a %u:%g' .)"
find . -type f -links +1 -printf '%i %p\\n' | LC_ALL=C sort -k2 | awk '{ g[$1] = g[$1] " " $2 } END { for (i in g) print "hardlinks" g[i] }' | LC_ALL=C sort`;
}

async function listing(host: string, volume: string): Promise<string> {
  return onHost(bed, host, listingScript(await mountpoint(host, volume)));
}

describe('named volumes move with their container', () => {
  it('a volume with sparse, hard-linked, special files, xattrs and odd owners arrives identical, changes made before the freeze included', async () => {
    const name = 'e2e-vol-files';
    const volume = 'e2e-vol-files';
    await clean([name], [volume]);
    await onHost(bed, bed.host1, `docker volume create --label purpose=e2e --label team=storage ${volume}`);
    const mp = await mountpoint(bed.host1, volume);
    await onHost(
      bed,
      bed.host1,
      [
        `cd '${mp}'`,
        'mkdir -p deep/er/still && chmod 2750 deep && chown 1234:5678 deep',
        'head -c 3000000 /dev/urandom >deep/er/random.bin',
        'truncate -s 1G sparse.img && printf middle | dd of=sparse.img bs=1 seek=500000000 conv=notrunc 2>/dev/null && printf end | dd of=sparse.img bs=1 seek=1073741000 conv=notrunc 2>/dev/null',
        'echo shared >linked-a && ln linked-a deep/linked-b && ln linked-a deep/er/linked-c',
        'echo odd >odd-owner && chown 4242:777 odd-owner && chmod 4710 odd-owner',
        'mkfifo pipe && chown 99:99 pipe && chmod 620 pipe',
        'mknod null-like c 1 3 && mknod block-like b 7 200',
        'ln -s deep/er/random.bin a-link',
        'echo colored >colored',
        SETXATTR('colored', 'user.color', 'blue'),
        SETXATTR('colored', 'trusted.secret', 'kept'),
        SETXATTR('deep', 'user.dir', 'yes'),
        'for i in $(seq 1 50); do echo "$i" >"deep/er/still/f$i"; done',
        'echo gone-before-freeze >will-be-deleted',
      ].join(' && '),
    );
    await onHost(
      bed,
      bed.host1,
      `docker run -d --name ${name} -v ${volume}:/data ${bed.image} sh -c 'i=0; while [ $i -lt 100000 ]; do i=$((i+1)); echo "tick $i"; sleep 0.1; done'`,
    );
    await waitForLog(bed, bed.host1, name, /tick 3\b/);

    // Between the bulk pass and the freeze the container changes its volume: new, changed,
    // deleted files, a new hard link, a removed directory. Only the frozen pass can carry these.
    await installHold(bed, bed.host1, 'docker', '*" pause "*', 'vol-pause');
    const running = startAction(inputs(bed.host1, bed.host2, name, { 'verify-log-pattern': '^tick ' }));
    await waitHeld(bed, bed.host1, 'vol-pause', 60_000, running);
    await onHost(
      bed,
      bed.host1,
      `docker exec ${name} sh -c 'rm /data/will-be-deleted && rm -r /data/deep/er/still && echo more >>/data/colored && ln /data/linked-a /data/late-link && echo new >/data/late-new && chmod 600 /data/deep/er/random.bin'`,
    );
    await release(bed, bed.host1, 'vol-pause');
    const run = await running.done;
    expect(run.exitCode, run.stdout).toBe(0);
    expect(run.outputs.status).toBe('succeeded');

    // The source container is stopped at the freeze: its volume is the state the target got,
    // and the container on the target does not write to it.
    const target = await listing(bed.host2, volume);
    const source = await listing(bed.host1, volume);
    expect(target.split('\n')).toEqual(source.split('\n'));
    expect(target).toContain('./sparse.img|regular file|');
    expect(target).toContain('user.color=blue');
    expect(target).toContain('trusted.secret=kept');
    expect(target).toContain('./deep|directory|2750 1234:5678');
    expect(target).toMatch(/hardlinks \.\/deep\/er\/linked-c \.\/deep\/linked-b \.\/late-link \.\/linked-a/);
    expect(target).toContain('./pipe|fifo|620 99:99');
    expect(target).toContain('./null-like|character special file|644 0:0 links=1|dev=1:3');
    expect(target).toContain('./block-like|block special file|');
    expect(target).toContain('./late-new|');
    expect(target).toContain('./deep/er/random.bin|regular file|600 ');
    expect(target).not.toContain('./will-be-deleted|');
    expect(target).not.toContain('./deep/er/still');
    expect(await onHost(bed, bed.host2, `cat '${await mountpoint(bed.host2, volume)}/colored'`)).toBe(
      'colored\nmore\n',
    );
    const sparse = /\.\/sparse\.img\|regular file\|[^|]*\|size=(\d+) blocks=(\d+)/.exec(target);
    expect(Number(sparse?.[1])).toBe(1073741824);
    expect(Number(sparse?.[2])).toBeLessThan(1000);

    // Created with the source's labels; listed in the metadata with both passes.
    const labels = JSON.parse(
      await onHost(bed, bed.host2, `docker volume inspect --format '{{json .Labels}}' ${volume}`),
    );
    expect(labels).toEqual({ purpose: 'e2e', team: 'storage' });
    const meta = metadataOf(run);
    const moved = meta.volumes?.find((v) => v.name === volume);
    expect(moved).toMatchObject({ target: 'created', contentsMoved: true });
    expect(moved?.passes.map((p) => p.pass)).toEqual(['bulk', 'frozen']);
    expect(moved?.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(moved?.passes[1]?.bytes).toBeLessThan(moved?.passes[0]?.bytes ?? 0);
    expect(run.summary).toContain(`Volume: ${volume}`);
    await expectNothingLeft(bed, name);
    await clean([name], [volume]);
  });

  it('refuses a target volume with other contents, naming it, unless volume-replace; rollback puts them back', async () => {
    const name = 'e2e-vol-replace';
    const volume = 'e2e-vol-replace';
    await clean([name], [volume]);
    await onHost(bed, bed.host1, `docker volume create ${volume} >/dev/null`);
    await onHost(bed, bed.host2, `docker volume create ${volume} >/dev/null`);
    await onHost(bed, bed.host2, `echo theirs >'${await mountpoint(bed.host2, volume)}/other'`);
    await onHost(
      bed,
      bed.host1,
      `docker run -d --name ${name} -v ${volume}:/data ${bed.image} sh -c 'echo mine >/data/mine; i=0; while [ $i -lt 100000 ]; do i=$((i+1)); echo "tick $i"; sleep 0.2; done'`,
    );
    await waitForLog(bed, bed.host1, name, /tick 2\b/);

    const refused = await runAction(inputs(bed.host1, bed.host2, name, { 'verify-log-pattern': '^tick ' }));
    expect(refused.exitCode).not.toBe(0);
    expect(refused.outputs.status).toBe('refused');
    expect(refused.stdout).toContain('VOLUME_TARGET_NOT_EMPTY');
    expect(refused.stdout).toContain(`"${volume}" exists on the target with other contents`);
    expect(await containerState(bed, bed.host1, name)).toMatchObject({ Running: true, Paused: false });
    expect(await onHost(bed, bed.host2, `cat '${await mountpoint(bed.host2, volume)}/other'`)).toBe(
      'theirs\n',
    );

    // With volume-replace, a fault in the frozen pass: the rollback gives the target its contents back.
    await installWrapper(
      bed,
      bed.host2,
      '/usr/local/bin/tar',
      `#!/bin/sh
case " $* " in
  *--listed-incremental=/dev/null*)
    n=$(cat /tmp/e2e-vol-tar 2>/dev/null || echo 0); echo $((n + 1)) >/tmp/e2e-vol-tar
    if [ "$n" -ge 1 ]; then cat >/dev/null; echo "e2e: volume receive fault" >&2; exit 2; fi ;;
esac
exec /usr/bin/tar "$@"
`,
    );
    await onHost(bed, bed.host2, 'rm -f /tmp/e2e-vol-tar');
    const faulted = await runAction(
      inputs(bed.host1, bed.host2, name, { 'verify-log-pattern': '^tick ', 'volume-replace': 'true' }),
    );
    expect(faulted.exitCode).not.toBe(0);
    expect(faulted.outputs.status).toBe('rolled-back');
    expect(faulted.stdout).toContain('VOLUME_TRANSFER_FAILED');
    expect(faulted.stdout).toContain('e2e: volume receive fault');
    expect(await containerState(bed, bed.host1, name)).toMatchObject({ Running: true, Paused: false });
    const targetMp = await mountpoint(bed.host2, volume);
    expect(await onHost(bed, bed.host2, `ls -A '${targetMp}'`)).toBe('other\n');
    expect(await onHost(bed, bed.host2, `ls -d '${targetMp}'.* 2>/dev/null; true`)).toBe('');
    await removeFaults(bed);

    const replaced = await runAction(
      inputs(bed.host1, bed.host2, name, { 'verify-log-pattern': '^tick ', 'volume-replace': 'true' }),
    );
    expect(replaced.exitCode, replaced.stdout).toBe(0);
    expect(await onHost(bed, bed.host2, `ls -A '${targetMp}'`)).toBe('mine\n');
    expect(metadataOf(replaced).volumes?.[0]).toMatchObject({ name: volume, target: 'replaced' });
    await expectNothingLeft(bed, name);
    expect(await onHost(bed, bed.host2, `ls -d '${targetMp}'.* 2>/dev/null; true`)).toBe('');
    await clean([name], [volume]);
  });

  it('refuses a volume another running container on the source mounts, naming that container', async () => {
    const name = 'e2e-vol-shared';
    const other = 'e2e-vol-shared-peer';
    const volume = 'e2e-vol-shared';
    await clean([name, other], [volume]);
    for (const container of [name, other]) {
      await onHost(
        bed,
        bed.host1,
        `docker run -d --name ${container} -v ${volume}:/data ${bed.image} sh -c 'for n in $(seq 1 3600); do echo tick; sleep 1; done'`,
      );
    }
    const run = await runAction(inputs(bed.host1, bed.host2, name));
    expect(run.exitCode).not.toBe(0);
    expect(run.outputs.status).toBe('refused');
    expect(run.stdout).toContain('VOLUME_SHARED');
    expect(run.stdout).toContain(`also mounted by container ${other} on the source`);
    expect(await containerState(bed, bed.host1, name)).toMatchObject({ Running: true, Paused: false });
    expect((await onHostResult(bed, bed.host2, `docker volume inspect ${volume}`)).code).not.toBe(0);
    await clean([name, other], [volume]);
  });

  it('rollback after a fault in the volume transfer removes the volume the run created on the target', async () => {
    const name = 'e2e-vol-fault';
    const volume = 'e2e-vol-fault';
    await clean([name], [volume]);
    await onHost(
      bed,
      bed.host1,
      `docker run -d --name ${name} -v ${volume}:/data ${bed.image} sh -c 'head -c 1000000 /dev/urandom >/data/blob; i=0; while [ $i -lt 100000 ]; do i=$((i+1)); echo "$i" >>/data/log; echo "tick $i"; sleep 0.1; done'`,
    );
    await waitForLog(bed, bed.host1, name, /tick 3\b/);
    // The sending tar of the frozen pass (the source's second volume tar) fails for real.
    await installWrapper(
      bed,
      bed.host1,
      '/usr/local/bin/tar',
      `#!/bin/sh
case " $* " in
  *--listed-incremental=/var/lib/criu-migrate/work/*)
    n=$(cat /tmp/e2e-vol-tar 2>/dev/null || echo 0); echo $((n + 1)) >/tmp/e2e-vol-tar
    if [ "$n" -ge 1 ]; then echo "e2e: volume send fault" >&2; exit 2; fi ;;
esac
exec /usr/bin/tar "$@"
`,
    );
    await onHost(bed, bed.host1, 'rm -f /tmp/e2e-vol-tar');
    const run = await runAction(inputs(bed.host1, bed.host2, name, { 'verify-log-pattern': '^tick ' }));
    expect(run.exitCode).not.toBe(0);
    expect(run.outputs.status).toBe('rolled-back');
    expect(run.stdout).toContain('VOLUME_TRANSFER_FAILED');
    // streamBetween names the receiver first (it saw no archive); the sender's own words are not shown.
    expect(run.stdout).toContain(`volume ${volume} (frozen)`);
    expect(run.stdout).toContain(`removed volume ${volume} this run created on the target`);
    expect((await onHostResult(bed, bed.host2, `docker volume inspect ${volume}`)).code).not.toBe(0);
    expect(await containerState(bed, bed.host1, name)).toMatchObject({ Running: true, Paused: false });
    // The source went on where it was frozen.
    const before = (await containerLogs(bed, bed.host1, name)).match(/tick \d+/g)?.length ?? 0;
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect((await containerLogs(bed, bed.host1, name)).match(/tick \d+/g)?.length ?? 0).toBeGreaterThan(
      before,
    );
    await expectNothingLeft(bed, name);
    await clean([name], [volume]);
  });

  it('volume-precopy: false copies the whole volume while frozen; source-after: remove takes the moved volume off the source', async () => {
    const name = 'e2e-vol-remove';
    const volume = 'e2e-vol-remove';
    await clean([name], [volume]);
    await onHost(
      bed,
      bed.host1,
      `docker run -d --name ${name} -v ${volume}:/data ${bed.image} sh -c 'head -c 2000000 /dev/urandom >/data/blob; i=0; while [ $i -lt 100000 ]; do i=$((i+1)); echo "tick $i"; sleep 0.1; done'`,
    );
    await waitForLog(bed, bed.host1, name, /tick 3\b/);
    const sum = async (host: string) =>
      onHost(bed, host, `sha256sum '${await mountpoint(host, volume)}/blob' | cut -c1-64`);
    const before = await sum(bed.host1);
    const run = await runAction(
      inputs(bed.host1, bed.host2, name, {
        'verify-log-pattern': '^tick ',
        'volume-precopy': 'false',
        'source-after': 'remove',
      }),
    );
    expect(run.exitCode, run.stdout).toBe(0);
    const moved = metadataOf(run).volumes?.[0];
    expect(moved?.passes.map((p) => p.pass)).toEqual(['frozen']);
    expect(moved?.passes[0]?.bytes).toBeGreaterThan(2_000_000);
    expect(await sum(bed.host2)).toBe(before);
    expect(run.stdout).toContain(`removed volumes ${volume} from the source`);
    expect((await onHostResult(bed, bed.host1, `docker volume inspect ${volume}`)).code).not.toBe(0);
    expect((await onHostResult(bed, bed.host1, `docker inspect ${name}`)).code).not.toBe(0);
    await expectNothingLeft(bed, name);
    await clean([name], [volume]);
  });

  it('memory: overlap moves a volume beside the pages: the volume identical, the pages and the volume each summed the same on both hosts', async () => {
    const name = 'e2e-vol-overlap';
    const volume = 'e2e-vol-overlap';
    await clean([name], [volume]);
    // 32 MiB of memory the process holds, and a volume it keeps writing to while it runs.
    await onHost(
      bed,
      bed.host1,
      `docker run -d --name ${name} -v ${volume}:/data ${bed.image} sh -c 'head -c 2000000 /dev/urandom >/data/blob; m=$(head -c 33554432 /dev/urandom | od -An -tx1 | head -c 33554432); i=0; while [ $i -lt 100000 ]; do i=$((i+1)); echo "tick $i \${#m}" | tee -a /data/ticks; sleep 0.1; done'`,
    );
    await waitForLog(bed, bed.host1, name, /tick 3\b/);
    const run = await runAction(
      inputs(bed.host1, bed.host2, name, { 'verify-log-pattern': '^tick ', memory: 'overlap' }),
    );
    expect(run.exitCode, run.stdout).toBe(0);
    expect(run.stdout).toMatch(/overlap: \d+\.\d MiB of pages, sha256 [0-9a-f]{16}… the same on both hosts/);
    const metadata = JSON.parse(readFileSync(run.outputs['metadata-path']!, 'utf8'));
    expect(metadata.checkpoint.streams.pages.bytes).toBeGreaterThan(32 * 1024 * 1024);
    const moved = metadataOf(run).volumes?.[0];
    expect(moved?.passes.map((p) => p.pass)).toEqual(['bulk', 'frozen']);
    // What the source's volume held at the freeze arrived byte for byte; the target's ticks file
    // has only grown since (the same process writes on there).
    const read = async (host: string, file: string) =>
      onHost(
        bed,
        host,
        `cd '${await mountpoint(host, volume)}' && ${file === 'blob' ? 'sha256sum blob' : 'cat ticks'}`,
      );
    expect(await read(bed.host2, 'blob')).toBe(await read(bed.host1, 'blob'));
    const frozen = await read(bed.host1, 'ticks');
    expect(frozen).toMatch(/^tick 1 /);
    expect((await read(bed.host2, 'ticks')).startsWith(frozen)).toBe(true);
    // The same process goes on on the target: its tick count continues in the moved file.
    const last = Number(
      /tick (\d+)/.exec(
        await onHost(bed, bed.host1, `tail -n1 '${await mountpoint(bed.host1, volume)}/ticks'`),
      )?.[1],
    );
    const next = await waitForLog(bed, bed.host2, name, new RegExp(`tick ${last + 1} `));
    expect(next).toContain(`tick ${last + 1} `);
    await expectNothingLeft(bed, name);
    await clean([name], [volume]);
  });
});
