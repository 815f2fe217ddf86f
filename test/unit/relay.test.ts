import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { MigrationError } from '../../src/errors.js';
import type { Host } from '../../src/host/host.js';
import { LocalHost } from '../../src/host/local-host.js';
import {
  HASH_SUM,
  hashedConsumer,
  hashedProducer,
  parseHostSum,
  streamBetween,
} from '../../src/host/relay.js';

const log = {
  lines: [] as string[],
  info(message: string) {
    this.lines.push(message);
  },
};
const from = new LocalHost('source');
const to = new LocalHost('target');

/**
 * A sender shaped like an ssh2 channel: it sends for ever; destroy() (and kill) only ask the
 * remote side to close, and the channel ends, then reports its exit, only once its buffered
 * output was read.
 */
function ssh2LikeSender(options: { highWaterMark?: number } = {}): { host: Host; remoteClose: () => void } {
  let sending = true;
  const output = new Readable({
    ...options,
    read() {
      setImmediate(() => {
        if (sending) this.push(Buffer.alloc(65536));
      });
    },
  });
  // The remote side closes: the end of the data, behind whatever is still buffered.
  const remoteClose = (): void => {
    if (!sending) return;
    sending = false;
    setTimeout(() => output.push(null), 50);
  };
  output.destroy = () => {
    remoteClose();
    return output;
  };
  const exit = new Promise<{ exitCode: number | null; signal: string | null }>((resolve) =>
    output.once('end', () => resolve({ exitCode: null, signal: 'SIGTERM' })),
  );
  const host: Host = {
    role: 'source',
    address: 'fake',
    run: () => Promise.reject(new Error('not used')),
    spawn: async () => ({
      stdin: new Writable({ write: (_chunk, _encoding, done) => done() }),
      stdout: output,
      stderr: Readable.from([]),
      exit,
      kill: remoteClose,
    }),
    close: async () => {},
  };
  return { host, remoteClose };
}

describe('hashed producer and consumer wrappers', () => {
  it('prints the sha256 of what the producer wrote and keeps its exit status', async () => {
    const ok = await from.run(hashedProducer('printf hello'));
    expect(ok.exitCode).toBe(0);
    expect(ok.stdout).toBe('hello');
    expect(parseHostSum(ok.stderr)).toBe(createHash('sha256').update('hello').digest('hex'));
    const failed = await from.run(hashedProducer('printf partial; exit 3'));
    expect(failed.exitCode).toBe(3);
  });

  it('keeps the failure of any stage of a pipeline, not only the last', async () => {
    const first = await from.run(hashedProducer(['printf abc; exit 7', 'cat']));
    expect(first.exitCode).toBe(7);
    const killed = await from.run(hashedProducer(["sh -c 'printf abc; kill -9 $$'", 'cat']));
    expect(killed.exitCode).not.toBe(0);
    const fine = await from.run(hashedProducer(['printf abc', 'tr a b']));
    expect([fine.exitCode, fine.stdout]).toEqual([0, 'bbc']);
    const consumer = await to.run(hashedConsumer(['exit 3', 'cat >/dev/null']), { input: 'abc' });
    expect(consumer.exitCode).toBe(3);
  });

  it('hashes what the consumer received before the command read it', async () => {
    const result = await to.run(hashedConsumer('wc -c'), { input: 'abc' });
    expect(result.stdout.trim()).toBe('3');
    expect(parseHostSum(result.stderr)).toBe(createHash('sha256').update('abc').digest('hex'));
  });
});

describe('the copy that feeds the hash', () => {
  const big = 'head -c 3145728 /dev/urandom | tee "$t/sent"';
  const sumOf = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

  it.each([
    ['perl, in 1 MiB chunks', ''],
    ['tee, where perl is missing', 'PATH=$t/bin'],
  ])('hashes a stream larger than a pipe with %s', async (_name, path) => {
    const dir = mkdtempSync(join(tmpdir(), 'hashtee-'));
    try {
      mkdirSync(join(dir, 'bin'));
      for (const tool of ['mktemp', 'mkfifo', 'sha256sum', 'tee', 'cut', 'rm', 'cat', 'head'])
        symlinkSync(
          execFileSync('sh', ['-c', `command -v ${tool}`])
            .toString()
            .trim(),
          join(dir, 'bin', tool),
        );
      const script = `t=${dir}\n${path}\n${hashedConsumer('cat >"$t/got"')}`;
      const result = await to.run(`t=${dir}; ${big} | { ${script}\n}`);
      expect(result.exitCode).toBe(0);
      expect(parseHostSum(result.stderr)).toBe(sumOf(join(dir, 'sent')));
      expect(sumOf(join(dir, 'got'))).toBe(sumOf(join(dir, 'sent')));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the hash itself', () => {
  // Each case's PATH holds exactly one of the two hashers, so the sum proves which one ran.
  it.each([
    ['openssl, where it runs', 'openssl'],
    ['sha256sum, where openssl is missing', 'sha256sum'],
  ])('agrees with node on a stream hashed by %s', async (_name, hasher) => {
    const dir = mkdtempSync(join(tmpdir(), 'hashsum-'));
    try {
      mkdirSync(join(dir, 'bin'));
      for (const tool of [hasher, 'cat', 'perl'])
        symlinkSync(
          execFileSync('sh', ['-c', `command -v ${tool}`])
            .toString()
            .trim(),
          join(dir, 'bin', tool),
        );
      const input = join(dir, 'input');
      writeFileSync(input, randomBytes(2_000_000));
      writeFileSync(join(dir, 'script'), `PATH=${dir}/bin\n${hashedProducer(`cat ${input}`)}\n`);
      const result = await from.run(`sh ${join(dir, 'script')} >/dev/null`);
      expect(result.exitCode).toBe(0);
      expect(parseHostSum(result.stderr)).toBe(
        createHash('sha256').update(readFileSync(input)).digest('hex'),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a hash whose copy never started', () => {
  // The copy (perl, else tee) is the hash's only writer. With a named fifo, sha256sum waited for
  // ever to open it when that writer died first, and the script with it; a pipe just ends.
  it('ends with the stream instead of waiting for a writer, and leaves nothing in TMPDIR', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hash-no-writer-'));
    try {
      mkdirSync(join(dir, 'bin'));
      mkdirSync(join(dir, 'tmp'));
      // Neither perl nor tee: hashtee fails at once (the rest is what the fifo version needed).
      for (const tool of ['sha256sum', 'cat', 'mktemp', 'mkfifo', 'rm', 'cut'])
        symlinkSync(
          execFileSync('sh', ['-c', `command -v ${tool}`])
            .toString()
            .trim(),
          join(dir, 'bin', tool),
        );
      const script = `PATH=${dir}/bin; TMPDIR=${dir}/tmp; export PATH TMPDIR\n${hashedConsumer('cat >/dev/null')}`;
      const result = await to.run(script, { input: 'abc', timeoutMs: 20_000 });
      // Not stopped by the bound: it ended by itself, with the hash of what reached it (nothing).
      expect(result.stderr).not.toMatch(/timed out/);
      expect(parseHostSum(result.stderr)).toBe(createHash('sha256').update('').digest('hex'));
      expect(readdirSync(join(dir, 'tmp'))).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('streamBetween', () => {
  it('moves a large stream and agrees on its checksum at both ends', async () => {
    const result = await streamBetween(from, 'head -c 50000000 /dev/zero', to, 'cat >/dev/null', {
      label: 'test',
      step: 'transfer',
      log,
      progressSeconds: 0.05,
    });
    expect(result.bytes).toBe(50_000_000);
    expect(result.sha256).toBe(createHash('sha256').update(Buffer.alloc(50_000_000)).digest('hex'));
    expect(log.lines.at(-1)).toMatch(/test: 47\.7 MiB in .* the same on both hosts/);
  });

  it.each([
    [
      'the producer fails',
      'printf x; echo boom >&2; exit 4',
      'cat >/dev/null',
      /sending command failed \(exit 4\)/,
      'source',
    ],
    [
      'the consumer fails',
      'head -c 1000000 /dev/zero',
      'head -c 10 >/dev/null; echo nope >&2; exit 5',
      /receiving command failed \(exit 5\)/,
      'target',
    ],
  ])('names the host when %s', async (_case, produce, consume, message, role) => {
    const error = await streamBetween(from, produce, to, consume, {
      label: 'x',
      step: 'transfer',
      log,
    }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(MigrationError);
    const failure = error as MigrationError;
    expect(failure.code).toBe('TRANSFER_FAILED');
    expect(failure.message).toMatch(message);
    expect(failure.host).toContain(role);
    expect(failure.detail).toMatch(/boom|nope/);
  });

  it('hands back what either end noted, sender first', async () => {
    const result = await streamBetween(
      from,
      "printf 'criu-migrate-note from the source\\n' >&2; printf abc",
      to,
      "cat >/dev/null; printf 'criu-migrate-note restore-path staged-pages\\n' >&2",
      { label: 'notes', step: 'transfer', log },
    );
    expect(result.notes).toEqual(['from the source', 'restore-path staged-pages']);
  });

  it('refuses a stream whose bytes changed on the way', async () => {
    // A target whose input is altered before its own hashing: corruption in transit.
    const corrupting: Host = {
      role: 'target',
      address: 'local',
      run: (command, options) => to.run(command, options),
      spawn: (command) => to.spawn(`tr a b | { ${command}; }`),
      close: () => to.close(),
    };
    const error = await streamBetween(from, 'printf abc', corrupting, 'cat >/dev/null', {
      label: 'x',
      step: 'transfer',
      log,
    }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(MigrationError);
    expect((error as MigrationError).code).toBe('CHECKSUM_MISMATCH');
    expect((error as MigrationError).detail).toMatch(
      /sent by .*: [0-9a-f]{64}\nreceived by .*: [0-9a-f]{64}/,
    );
  });
  it('ends a stream whose receiver exited while writes waited for it (ssh2 drops their callbacks)', async () => {
    // Like an ssh2 channel closed while its window was full: the parked write is never called back.
    let ended!: (exit: { exitCode: number | null; signal: string | null }) => void;
    const receiver: Host = {
      role: 'target',
      address: 'fake',
      run: () => Promise.reject(new Error('not used')),
      spawn: async () => ({
        stdin: new Writable({ highWaterMark: 1024, write: () => {} }),
        stdout: Readable.from([]),
        stderr: Readable.from([]),
        exit: new Promise((resolve) => {
          ended = resolve;
        }),
        kill: () => {},
      }),
      close: async () => {},
    };
    const moving = streamBetween(from, 'head -c 1000000 /dev/zero', receiver, 'ignored', {
      label: 'x',
      step: 'transfer',
      log,
    }).catch((caught: unknown) => caught);
    await new Promise((resolve) => setTimeout(resolve, 200));
    ended({ exitCode: null, signal: 'SIGTERM' });
    const error = await moving;
    expect(error).toBeInstanceOf(MigrationError);
    expect((error as MigrationError).message).toMatch(/receiving command failed \(exit SIGTERM\)/);
  });

  it('settles when the receiver fails, though the sender (like an ssh2 channel) reports its exit only once its output was read to the end', async () => {
    const { host: sender } = ssh2LikeSender();
    const error = await streamBetween(sender, 'ignored', to, 'head -c 10 >/dev/null; exit 5', {
      label: 'x',
      step: 'transfer',
      log,
    }).catch((caught: unknown) => caught);
    expect((error as MigrationError).message).toMatch(/receiving command failed \(exit 5\)/);
  });

  it('settles when a cancel kills both ends while the sender is held back (Node 24 pipeline)', async () => {
    const { host: sender, remoteClose } = ssh2LikeSender({ highWaterMark: 65536 });
    // The receiver as a held ssh2 channel: its window is full, so the write is parked, and once
    // the channel has closed it is never called back (ssh2#1508).
    let receiverKilled!: () => void;
    const receiver: Host = {
      role: 'target',
      address: 'fake',
      run: () => Promise.reject(new Error('not used')),
      spawn: async () => ({
        stdin: new Writable({ highWaterMark: 65536, write: () => {} }),
        stdout: Readable.from([]),
        stderr: Readable.from([]),
        exit: new Promise((resolve) => {
          receiverKilled = () => resolve({ exitCode: null, signal: 'SIGTERM' });
        }),
        kill: () => receiverKilled(),
      }),
      close: async () => {},
    };
    const moving = streamBetween(sender, 'ignored', receiver, 'ignored', {
      label: 'x',
      step: 'transfer',
      log,
    }).catch((caught: unknown) => caught);
    await new Promise((resolve) => setTimeout(resolve, 200));
    // The cancel: both commands are stopped on their hosts.
    remoteClose();
    receiverKilled();
    const error = await moving;
    expect(error).toBeInstanceOf(MigrationError);
    expect((error as MigrationError).message).toMatch(/receiving command failed \(exit SIGTERM\)/);
  });

  it('gives up on a stream that stops moving', async () => {
    const error = await streamBetween(from, 'printf start; sleep 30', to, 'cat >/dev/null', {
      label: 'x',
      step: 'transfer',
      log,
      stallSeconds: 0.5,
    }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(MigrationError);
    expect((error as MigrationError).message).toMatch(/no data moved for 0.5 s after 5 B/);
  });
});

describe('streamBetween: the two ends start together', () => {
  /** A host whose spawn always fails. */
  function failingHost(role: 'source' | 'target'): Host {
    return {
      role,
      address: 'unreachable',
      run: () => Promise.reject(new Error('not used')),
      spawn: () => Promise.reject(new MigrationError('SSH_DISCONNECTED', `${role}: channel refused`)),
      close: async () => {},
    };
  }
  /** The local host, recording whether a process it started was killed. */
  function watchedHost(role: 'source' | 'target'): { host: Host; killed: () => boolean } {
    const local = new LocalHost(role);
    let killed = false;
    const host: Host = {
      role,
      address: 'local',
      run: (command, options) => local.run(command, options),
      spawn: async (command) => {
        const process = await local.spawn(command);
        return {
          ...process,
          kill: () => {
            killed = true;
            process.kill();
          },
        };
      },
      close: async () => {},
    };
    return { host, killed: () => killed };
  }

  it.each([
    ['the sender', 'source'],
    ['the receiver', 'target'],
  ] as const)(
    'when %s cannot start, the other end is stopped and the error is the failed one',
    async (_which, failing) => {
      const other = watchedHost(failing === 'source' ? 'target' : 'source');
      const broken = failingHost(failing);
      const [fromHost, toHost] = failing === 'source' ? [broken, other.host] : [other.host, broken];
      await expect(
        streamBetween(fromHost, 'printf abc', toHost, 'cat >/dev/null', {
          label: 'small',
          step: 'transfer',
          log,
        }),
      ).rejects.toThrow(`${failing}: channel refused`);
      expect(other.killed()).toBe(true);
    },
  );
});

describe('hashsum: which tool sums a stream', () => {
  const sum = createHash('sha256').update('pages\n').digest('hex');
  /** Runs hashsum on "pages\n" with a sha256sum that says `version` and sums as `fake`. */
  function hashWith(version: string): string {
    const dir = mkdtempSync(join(tmpdir(), 'hashsum-'));
    try {
      writeFileSync(
        join(dir, 'sha256sum'),
        `#!/bin/sh\nif [ "$1" = --version ]; then printf '%s\\n' ${JSON.stringify(version)}; exit 0; fi\ncat >/dev/null; echo "fake  -"\n`,
      );
      chmodSync(join(dir, 'sha256sum'), 0o755);
      return execFileSync('sh', ['-c', `${HASH_SUM}\nprintf 'pages\\n' | hashsum`], {
        env: { ...process.env, PATH: `${dir}:${process.env.PATH}` },
      }).toString();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  it.each([
    ['sha256sum (GNU coreutils) 9.2', 'fake  -\n'],
    ['sha256sum (GNU coreutils) 9.7', 'fake  -\n'],
    ['sha256sum (GNU coreutils) 9.10', 'fake  -\n'],
    ['sha256sum (GNU coreutils) 10.0', 'fake  -\n'],
    ['sha256sum (GNU coreutils) 9.1', `${sum} -\n`],
    ['sha256sum (GNU coreutils) 8.32', `${sum} -\n`],
    ['BusyBox v1.36.1', `${sum} -\n`],
  ])('%s', (version, expected) => {
    expect(hashWith(version)).toBe(expected);
  });
});
