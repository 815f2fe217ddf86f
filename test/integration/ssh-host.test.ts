import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { dirname } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import ssh2 from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MigrationError } from '../../src/errors.js';
import { bindSignal, killByTagScript, tagCommand } from '../../src/host/abortable.js';
import type { Host, HostProcess } from '../../src/host/host.js';
import { openHost } from '../../src/host/host-factory.js';
import { type HostSpec, parseHostSpec } from '../../src/host/host-spec.js';
import { fingerprint } from '../../src/host/known-hosts.js';
import { channelEnd, connectSsh, type SshConnectOptions, type SshHost } from '../../src/host/ssh-host.js';
import { TESTBED_ENV } from '../e2e/testbed.js';

// The same test bed the end-to-end tests use (TESTBED_ENV names its env file).
const CLIENT_DIR = dirname(TESTBED_ENV);
const FILES = ['id_ed25519', 'known_hosts', 'env'] as const;

interface Bed {
  host1: HostSpec;
  host2: HostSpec;
  privateKey: string;
  knownHosts: string;
}

function loadBed(): Bed {
  const missing = FILES.filter((name) => !existsSync(`${CLIENT_DIR}/${name}`));
  if (missing.length > 0) {
    throw new Error(
      `the SSH test bed is not up: ${missing.map((name) => `${CLIENT_DIR}/${name}`).join(', ')} missing (run \`npm run testbed:up\` as root)`,
    );
  }
  const env = readFileSync(`${CLIENT_DIR}/env`, 'utf8');
  const read = (name: string): string => {
    const match = new RegExp(`^${name}=(.*)$`, 'm').exec(env);
    if (!match?.[1]) throw new Error(`${CLIENT_DIR}/env has no ${name}`);
    return match[1];
  };
  return {
    host1: parseHostSpec(read('TESTBED_HOST1'), 'TESTBED_HOST1'),
    host2: parseHostSpec(read('TESTBED_HOST2'), 'TESTBED_HOST2'),
    privateKey: readFileSync(`${CLIENT_DIR}/id_ed25519`, 'utf8'),
    knownHosts: readFileSync(`${CLIENT_DIR}/known_hosts`, 'utf8'),
  };
}

async function failure(promise: Promise<unknown>): Promise<MigrationError> {
  const outcome = await promise.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  if (!('error' in outcome)) throw new Error('expected a failure, got success');
  expect(outcome.error).toBeInstanceOf(MigrationError);
  return outcome.error as MigrationError;
}

function text(stream: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('error', reject);
    stream.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

/** A TCP relay on 127.0.0.1 to a test bed sshd, which the test can cut. */
async function startRelay(to: HostSpec): Promise<{ port: number; server: Server; cut(): void }> {
  const sockets = new Set<Socket>();
  const server = createServer((inbound) => {
    const outbound = tcpConnect(to.port, to.host);
    sockets.add(inbound);
    sockets.add(outbound);
    inbound.on('error', () => {});
    outbound.on('error', () => {});
    inbound.pipe(outbound).pipe(inbound);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('relay has no port');
  return {
    port: address.port,
    server,
    cut: () => {
      for (const socket of sockets) socket.destroy();
    },
  };
}

/** A relay that closes its first `drops` connections at once, as sshd does beyond MaxStartups. */
async function startDroppingRelay(
  to: HostSpec,
  drops: number,
): Promise<{ port: number; close(): void; accepted(): number }> {
  const relay = await startRelay(to);
  let accepted = 0;
  const server = createServer((inbound) => {
    accepted++;
    if (accepted <= drops) {
      inbound.destroy();
      return;
    }
    const outbound = tcpConnect(relay.port, '127.0.0.1');
    inbound.on('error', () => {});
    outbound.on('error', () => {});
    inbound.pipe(outbound).pipe(inbound);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('relay has no port');
  return {
    port: address.port,
    accepted: () => accepted,
    close: () => {
      relay.cut();
      relay.server.close();
      server.close();
    },
  };
}

/** The known_hosts lines of one test bed host, rewritten for another name. */
function linesFor(knownHosts: string, host: string, as: string): string {
  return knownHosts
    .split('\n')
    .filter((line) => line.split(' ')[0] === host)
    .map((line) => line.replace(/^\S+/, as))
    .join('\n');
}

describe('ssh host against the test bed', () => {
  let bed: Bed;
  let host1: SshHost;
  let host2: SshHost;
  const opened: SshHost[] = [];

  const options = (spec: HostSpec, overrides: Partial<SshConnectOptions> = {}): SshConnectOptions => ({
    role: 'source',
    spec,
    privateKey: bed.privateKey,
    knownHosts: bed.knownHosts,
    insecureSkipHostKeyCheck: false,
    readyTimeoutMs: 10_000,
    ...overrides,
  });

  const connect = async (opts: SshConnectOptions): Promise<SshHost> => {
    const host = await connectSsh(opts);
    opened.push(host);
    return host;
  };

  beforeAll(async () => {
    bed = loadBed();
    host1 = await connect(options(bed.host1));
    host2 = await connect(options(bed.host2, { role: 'target' }));
  });

  afterAll(async () => {
    await Promise.all(opened.map((host) => host.close()));
  });

  describe('run', () => {
    it('returns stdout, stderr and exit codes', async () => {
      expect(await host1.run('echo out; echo err >&2; exit 3')).toEqual({
        exitCode: 3,
        stdout: 'out\n',
        stderr: 'err\n',
      });
      expect((await host1.run('true')).exitCode).toBe(0);
      expect((await host1.run('no-such-command-xyz')).exitCode).toBe(127);
    });

    it('runs the command with sh, whatever the login shell', async () => {
      const result = await host1.run('readlink /proc/$$/exe; x="a b"; printf "%s\\n" "$x"');
      expect(result.stdout).toMatch(/\/(dash|sh|bash)\n/);
      expect(result.stdout.endsWith('a b\n')).toBe(true);
    });

    it('keeps quoting and UTF-8 intact', async () => {
      const result = await host1.run(`printf '%s|' "it's" '$HOME' 'héllo 日本 🙂'`);
      expect(result.stdout).toBe(`it's|$HOME|héllo 日本 🙂|`);
    });

    it('feeds input to stdin', async () => {
      expect((await host1.run('cat', { input: 'one\ntwo\n' })).stdout).toBe('one\ntwo\n');
      const bytes = Buffer.alloc(3 * 1024 * 1024);
      for (let i = 0; i < bytes.length; i++) bytes[i] = i % 253;
      const result = await host2.run('sha256sum', { input: bytes });
      expect(result.stdout.split(' ')[0]).toBe(createHash('sha256').update(bytes).digest('hex'));
    });

    it('gives stdin end of file when there is no input', async () => {
      const result = await host1.run('cat; echo done', { timeoutMs: 10_000 });
      expect(result).toMatchObject({ exitCode: 0, stdout: 'done\n' });
    });

    it('stops a command past its timeout and reports -1', async () => {
      const started = Date.now();
      const result = await host1.run('echo started; exec sleep 41.5', { timeoutMs: 500 });
      expect(Date.now() - started).toBeLessThan(6_000);
      expect(result.exitCode).toBe(-1);
      expect(result.stdout).toBe('started\n');
      expect(result.stderr).toContain('timed out after 500 ms');
      // The signal reached the far side: the sleep is gone.
      const left = await host1.run('pgrep -f "[s]leep 41.5" || true');
      expect(left.stdout.trim()).toBe('');
    });

    it('reports a command killed by a signal as -1 with a note', async () => {
      const result = await host1.run("exec sh -c 'kill -KILL $$'");
      expect(result.exitCode === -1 || result.exitCode === 137).toBe(true);
      if (result.exitCode === -1) expect(result.stderr).toContain('signal SIGKILL');
    });

    it('runs many commands at once on one connection', async () => {
      const results = await Promise.all(Array.from({ length: 8 }, (_, i) => host2.run(`echo ${i}`)));
      expect(results.map((r) => r.stdout)).toEqual(Array.from({ length: 8 }, (_, i) => `${i}\n`));
    });
  });

  describe('spawn', () => {
    it('streams 200 MB from host 1 through the runner into sha256sum on host 2 with bounded memory', async () => {
      const size = 200_000_000;
      const zeros = Buffer.alloc(1_000_000);
      const expected = createHash('sha256');
      for (let i = 0; i < size / zeros.length; i++) expected.update(zeros);

      const baseline = process.memoryUsage().rss;
      let peak = baseline;
      const sampler = setInterval(() => {
        peak = Math.max(peak, process.memoryUsage().rss);
      }, 50);

      const target = await host2.spawn('sha256sum');
      const source = await host1.spawn(`head -c ${size} /dev/zero`);
      source.stdin.end();
      const targetOut = text(target.stdout);
      const errors = Promise.all([text(source.stderr), text(target.stderr)]);
      let moved = 0;
      const counter = new Transform({
        transform(chunk: Buffer, _encoding, done) {
          moved += chunk.length;
          done(null, chunk);
        },
      });
      try {
        await pipeline(source.stdout, counter, target.stdin);
      } finally {
        clearInterval(sampler);
      }
      expect(moved).toBe(size);
      expect(await source.exit).toEqual({ exitCode: 0, signal: null });
      expect(await target.exit).toEqual({ exitCode: 0, signal: null });
      expect((await targetOut).split(' ')[0]).toBe(expected.digest('hex'));
      expect(await errors).toEqual(['', '']);
      expect(peak - baseline).toBeLessThan(100 * 1024 * 1024);
    });

    it('pipes a channel straight into another with stream.pipeline', async () => {
      const size = 20_000_000;
      const target = await host2.spawn('wc -c');
      const source = await host1.spawn(`head -c ${size} /dev/urandom`);
      source.stdin.end();
      source.stderr.resume();
      target.stderr.resume();
      const counted = text(target.stdout);
      await pipeline(source.stdout, target.stdin);
      expect((await counted).trim()).toBe(String(size));
      expect((await target.exit).exitCode).toBe(0);
      expect((await source.exit).exitCode).toBe(0);
    });

    it('holds back a producer nobody reads from', async () => {
      const source = await host1.spawn('head -c 100000000 /dev/zero');
      source.stdin.end();
      source.stderr.resume();
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      // ssh2 buffers at most its 2 MiB window on the runner.
      expect(source.stdout.readableLength).toBeLessThanOrEqual(4 * 1024 * 1024);
      source.kill();
      const exit = await source.exit;
      expect(exit.exitCode === 0).toBe(false);
    });

    it('reports exit codes and stderr', async () => {
      const proc = await host2.spawn('echo oops >&2; exit 5');
      proc.stdin.end();
      proc.stdout.resume();
      expect(await text(proc.stderr)).toBe('oops\n');
      expect(await proc.exit).toEqual({ exitCode: 5, signal: null });
    });

    it('kill() stops a running command', async () => {
      const proc: HostProcess = await host2.spawn('exec sleep 42.5');
      const started = Date.now();
      proc.kill();
      const exit = await proc.exit;
      expect(Date.now() - started).toBeLessThan(6_000);
      expect(exit.exitCode === 0).toBe(false);
      const left = await host2.run('pgrep -f "[s]leep 42.5" || true');
      expect(left.stdout.trim()).toBe('');
    });
  });

  describe('abort', () => {
    /** Pids on the host whose environment holds the tag line, read with a fresh command. */
    const taggedOn = async (host: Host, tag: string): Promise<string[]> => {
      const result = await host.run(
        `grep -l -s -z -x -F -e 'CRIU_MIGRATE_CMD=${tag}' /proc/[0-9]*/environ || true`,
      );
      return result.stdout.split('\n').filter((line) => line !== '');
    };

    const waitForTagged = async (host: Host, tag: string, count: number): Promise<void> => {
      const until = Date.now() + 10_000;
      while ((await taggedOn(host, tag)).length < count) {
        if (Date.now() > until) throw new Error(`fewer than ${count} processes carry tag ${tag}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    };

    /** Hands everything to `inner` and keeps the commands, to learn the tag. */
    const recording = (inner: Host): Host & { commands: string[] } => {
      const commands: string[] = [];
      return {
        role: inner.role,
        address: inner.address,
        commands,
        run: (command, options) => {
          commands.push(command);
          return inner.run(command, options);
        },
        spawn: (command, options) => {
          commands.push(command);
          return inner.spawn(command, options);
        },
        close: () => inner.close(),
      };
    };

    const tagIn = (command: string | undefined): string => {
      const tag = /^CRIU_MIGRATE_CMD=([0-9a-f]{16});/.exec(command ?? '')?.[1];
      if (tag === undefined) throw new Error(`no tag in ${command}`);
      return tag;
    };

    it('resolves -1 with an "[aborted]" note when the signal aborts', async () => {
      const controller = new AbortController();
      const running = host1.run('echo started; exec sleep 43.5', { signal: controller.signal });
      await new Promise((resolve) => setTimeout(resolve, 300));
      controller.abort();
      const result = await running;
      expect(result).toEqual({ exitCode: -1, stdout: 'started\n', stderr: '[aborted]\n' });
      const pre = new AbortController();
      pre.abort();
      expect(await host1.run('echo never', { signal: pre.signal })).toEqual({
        exitCode: -1,
        stdout: '',
        stderr: '[aborted]\n',
      });
      await expect(host1.spawn('echo never', { signal: pre.signal })).rejects.toMatchObject({
        code: 'CANCELLED',
      });
    });

    // A pipeline, plus a sleep that left the process group with setsid.
    const escaping = `(setsid sleep 300 </dev/null >/dev/null 2>&1 &); sleep 300 | cat`;

    it('a channel signal stops the process group, but not a child that left it', async () => {
      const tag = '0000000000a1b2c3';
      const controller = new AbortController();
      const running = host1.run(tagCommand(escaping, tag), { signal: controller.signal });
      // The shell, the setsid sleep, sleep and cat.
      await waitForTagged(host1, tag, 4);
      controller.abort();
      expect((await running).exitCode).toBe(-1);
      try {
        // sshd (OpenSSH 10) signals the session's process group: only the setsid sleep is left.
        expect(await taggedOn(host1, tag)).toHaveLength(1);
      } finally {
        await host1.run(killByTagScript(tag));
      }
      expect(await taggedOn(host1, tag)).toEqual([]);
    });

    it('through bindSignal, kills every tagged process, those that left the group too', async () => {
      const inner = recording(host1);
      const controller = new AbortController();
      const running = failure(bindSignal(inner, controller.signal).run(escaping));
      const tag = tagIn(inner.commands[0]);
      await waitForTagged(host1, tag, 4);
      const started = Date.now();
      controller.abort();
      const error = await running;
      expect(error.code).toBe('CANCELLED');
      expect(error.host).toBe(`source root@${bed.host1.host}:22`);
      expect(error.detail).toBeUndefined();
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(await taggedOn(host1, tag)).toEqual([]);
    });

    it('stops the shell too, so the command does not go on to its next step', async () => {
      const inner = recording(host2);
      const controller = new AbortController();
      const marker = `/tmp/abort-marker-${Date.now()}`;
      // With input the channel's stdin has ended, so ssh2 cannot signal at all: only the tag reaches it.
      // Stderr goes elsewhere, else dash dies of SIGPIPE printing "Terminated" and hides the difference.
      const running = failure(
        bindSignal(inner, controller.signal).run(
          `exec 2>/dev/null; cat >/dev/null; sleep 300; touch ${marker}`,
          {
            input: 'x',
          },
        ),
      );
      const tag = tagIn(inner.commands[0]);
      await waitForTagged(host2, tag, 1);
      controller.abort();
      expect((await running).code).toBe('CANCELLED');
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(await taggedOn(host2, tag)).toEqual([]);
      expect((await host2.run(`test -e ${marker}`)).exitCode).toBe(1);
    });

    it('kills a spawned pipeline on abort and on kill()', async () => {
      const inner = recording(host2);
      const controller = new AbortController();
      const bound = bindSignal(inner, controller.signal);
      const first = await bound.spawn('sleep 300 | cat');
      const second = await bound.spawn('sleep 300 | cat', { signal: new AbortController().signal });
      const [one, two] = [tagIn(inner.commands[0]), tagIn(inner.commands[1])];
      await waitForTagged(host2, one, 3);
      await waitForTagged(host2, two, 3);
      second.kill();
      expect((await second.exit).exitCode === 0).toBe(false);
      controller.abort();
      first.stdout.resume();
      first.stderr.resume();
      expect((await first.exit).exitCode === 0).toBe(false);
      // The kill script is fired, not awaited, by spawn: give it its two seconds.
      const until = Date.now() + 10_000;
      while ((await taggedOn(host2, one)).length + (await taggedOn(host2, two)).length > 0) {
        if (Date.now() > until) throw new Error('tagged processes are still there');
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    });
  });

  describe('jump host', () => {
    it('reaches host 2 through host 1, and closing closes both connections', async () => {
      const viaJump = await connectSsh(options(bed.host2, { role: 'target', jump: bed.host1 }));
      try {
        expect(viaJump.address).toBe(
          `root@${bed.host2.host}:${bed.host2.port} via root@${bed.host1.host}:22`,
        );
        const direct = await host2.run('cat /etc/hostname; hostname');
        const tunneled = await viaJump.run('cat /etc/hostname; hostname');
        expect(tunneled).toEqual(direct);
        const target = await viaJump.spawn('sha256sum');
        const source = await host1.spawn('head -c 10000000 /dev/zero');
        source.stdin.end();
        source.stderr.resume();
        target.stderr.resume();
        const sum = text(target.stdout);
        await pipeline(source.stdout, target.stdin);
        expect((await sum).split(' ')[0]).toBe(
          createHash('sha256').update(Buffer.alloc(10_000_000)).digest('hex'),
        );
      } finally {
        await viaJump.close();
      }
      const afterClose = await failure(viaJump.run('true'));
      expect(afterClose.code).toBe('SSH_DISCONNECTED');
    });

    it('loses the target when the jump connection drops', async () => {
      // The bastion is reached through a relay the test can cut.
      const relay = await startRelay(bed.host1);
      const jump = { user: 'root', host: '127.0.0.1', port: relay.port };
      const knownHosts = `${bed.knownHosts}\n${linesFor(bed.knownHosts, bed.host1.host, `[127.0.0.1]:${relay.port}`)}\n`;
      try {
        const viaJump = await connectSsh(options(bed.host2, { role: 'target', jump, knownHosts }));
        expect((await viaJump.run('echo ok')).stdout).toBe('ok\n');
        const running = viaJump.run('sleep 20');
        await new Promise((resolve) => setTimeout(resolve, 300));
        relay.cut();
        const error = await failure(running);
        expect(error.code).toBe('SSH_DISCONNECTED');
        await viaJump.close();
      } finally {
        relay.server.close();
        await host2.run('pkill -f "^sleep 20$" || true');
      }
    });

    it('says so when the jump host cannot reach the target', async () => {
      const error = await failure(
        connectSsh(options({ ...bed.host2, port: 1 }, { role: 'target', jump: bed.host1 })),
      );
      expect(error.code).toBe('SSH_UNREACHABLE');
      expect(error.message).toContain('jump host');
    });

    it('checks the jump host key too', async () => {
      const onlyHost2 = linesFor(bed.knownHosts, bed.host2.host, bed.host2.host);
      const error = await failure(
        connectSsh(options(bed.host2, { role: 'target', jump: bed.host1, knownHosts: onlyHost2 })),
      );
      expect(error.code).toBe('HOST_KEY_UNKNOWN');
      expect(error.host).toContain('jump');
    });
  });

  describe('host keys', () => {
    const wrongKey = (): string => {
      const pair = ssh2.utils.generateKeyPairSync('ed25519');
      return pair.public.split(' ').slice(0, 2).join(' ');
    };

    it('refuses a host whose key differs from known_hosts with HOST_KEY_MISMATCH', async () => {
      const error = await failure(
        connectSsh(options(bed.host1, { knownHosts: `${bed.host1.host} ${wrongKey()}\n` })),
      );
      expect(error.code).toBe('HOST_KEY_MISMATCH');
      expect(error.remedy).toContain('attack');
      expect(error.remedy).toContain('reinstalled');
      expect(error.host).toBe(`source root@${bed.host1.host}:22`);
    });

    it('refuses a revoked key', async () => {
      const revoked = linesFor(bed.knownHosts, bed.host1.host, `@revoked ${bed.host1.host}`);
      const error = await failure(
        connectSsh(options(bed.host1, { knownHosts: `${bed.knownHosts}\n${revoked}\n` })),
      );
      expect(error.code).toBe('HOST_KEY_MISMATCH');
      expect(error.message).toContain('revoked');
    });

    it('refuses an unknown host with HOST_KEY_UNKNOWN and says how to fix it', async () => {
      const error = await failure(connectSsh(options(bed.host1, { knownHosts: '' })));
      expect(error.code).toBe('HOST_KEY_UNKNOWN');
      expect(error.remedy).toContain(`ssh-keyscan -p 22 ${bed.host1.host}`);
      expect(error.remedy).toContain('known-hosts');
    });

    it('accepts any key when told to skip the check, and shows its fingerprint', async () => {
      const host = await connect(options(bed.host1, { knownHosts: '', insecureSkipHostKeyCheck: true }));
      expect((await host.run('echo ok')).stdout).toBe('ok\n');
      expect(host.hostKeyFingerprint).toMatch(/^SHA256:/);
    });

    it('negotiates a key type known_hosts lists, not only the preferred one', async () => {
      const ecdsaOnly = bed.knownHosts
        .split('\n')
        .filter((line) => line.startsWith(`${bed.host1.host} ecdsa-`))
        .join('\n');
      expect(ecdsaOnly).not.toBe('');
      const host = await connect(options(bed.host1, { knownHosts: ecdsaOnly }));
      const key = Buffer.from(ecdsaOnly.split(' ')[2] ?? '', 'base64');
      expect(host.hostKeyFingerprint).toBe(fingerprint(key));
    });

    it('treats a host offering none of the known key types as a mismatch', async () => {
      const pair = ssh2.utils.generateKeyPairSync('rsa', { bits: 2048 });
      const rsaOnly = `${bed.host1.host} ${pair.public.split(' ').slice(0, 2).join(' ')}\n`;
      const error = await failure(connectSsh(options(bed.host1, { knownHosts: rsaOnly })));
      expect(error.code).toBe('HOST_KEY_MISMATCH');
    });

    it('matches [host]:port lines for a non-standard port', async () => {
      const relay = await startRelay(bed.host1);
      try {
        const lines = linesFor(bed.knownHosts, bed.host1.host, `[127.0.0.1]:${relay.port}`);
        const host = await connect(
          options({ user: 'root', host: '127.0.0.1', port: relay.port }, { knownHosts: lines }),
        );
        expect((await host.run('echo ok')).stdout).toBe('ok\n');
        const wrong = linesFor(bed.knownHosts, bed.host1.host, '127.0.0.1');
        const error = await failure(
          connectSsh(options({ user: 'root', host: '127.0.0.1', port: relay.port }, { knownHosts: wrong })),
        );
        expect(error.code).toBe('HOST_KEY_UNKNOWN');
        expect(error.remedy).toContain(`ssh-keyscan -p ${relay.port} 127.0.0.1`);
      } finally {
        relay.cut();
        relay.server.close();
      }
    });
  });

  describe('connection failures', () => {
    it('reports a refused key as SSH_AUTH_FAILED', async () => {
      const pair = ssh2.utils.generateKeyPairSync('ed25519');
      const error = await failure(connectSsh(options(bed.host1, { privateKey: pair.private })));
      expect(error.code).toBe('SSH_AUTH_FAILED');
      expect(error.remedy).toContain('authorized_keys');
      expect(error.remedy).toContain('root');
      expect(error.remedy).toContain('passphrase');
    });

    it('reports a key it cannot read, and a missing key', async () => {
      expect((await failure(connectSsh(options(bed.host1, { privateKey: 'not a key' })))).code).toBe(
        'INPUT_INVALID',
      );
      expect((await failure(connectSsh(options(bed.host1, { privateKey: undefined })))).code).toBe(
        'SSH_KEY_MISSING',
      );
    });

    it('reports a closed port as SSH_UNREACHABLE', async () => {
      const error = await failure(connectSsh(options({ user: 'root', host: '127.0.0.9', port: 1 })));
      expect(error.code).toBe('SSH_UNREACHABLE');
      expect(error.host).toBe('source root@127.0.0.9:1');
    });

    it('reports a server that never speaks SSH as SSH_TIMEOUT', async () => {
      const held = new Set<Socket>();
      const silent = createServer((socket) => held.add(socket));
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
      const address = silent.address();
      if (address === null || typeof address === 'string') throw new Error('no port');
      try {
        const error = await failure(
          connectSsh(
            options({ user: 'root', host: '127.0.0.1', port: address.port }, { readyTimeoutMs: 500 }),
          ),
        );
        expect(error.code).toBe('SSH_TIMEOUT');
      } finally {
        for (const socket of held) socket.destroy();
        silent.close();
      }
    });

    it('tries again, bounded and saying so, while sshd drops connections before the handshake', async () => {
      const relay = await startDroppingRelay(bed.host1, 3);
      const notes: string[] = [];
      const waits: number[] = [];
      try {
        const spec = { user: 'root', host: '127.0.0.1', port: relay.port };
        const host = await connectSsh(
          options(spec, {
            knownHosts: linesFor(bed.knownHosts, bed.host1.host, `[127.0.0.1]:${relay.port}`),
            onRetry: (message) => notes.push(message),
            sleep: async (ms) => {
              waits.push(ms);
            },
          }),
        );
        opened.push(host);
        expect((await host.run('echo through')).stdout).toBe('through\n');
        expect(relay.accepted()).toBe(4);
        expect(notes).toHaveLength(3);
        expect(notes[0]).toMatch(
          /source root@127\.0\.0\.1:\d+: sshd closed the connection before the SSH handshake/,
        );
        expect(notes[0]).toMatch(/MaxStartups/);
        expect(notes[2]).toMatch(/attempt 4 of 6/);
        // Doubling from 0.5 s, each with jitter of -50 % to +50 %.
        expect(waits[0]).toBeGreaterThanOrEqual(250);
        expect(waits[0]).toBeLessThanOrEqual(750);
        expect(waits[2]).toBeGreaterThanOrEqual(1000);
        expect(waits[2]).toBeLessThanOrEqual(3000);
      } finally {
        relay.close();
      }
    });

    it('gives up after six drops with SSH_DISCONNECTED and the MaxStartups remedy', async () => {
      const relay = await startDroppingRelay(bed.host1, 100);
      const notes: string[] = [];
      try {
        const error = await failure(
          connectSsh(
            options(
              { user: 'root', host: '127.0.0.1', port: relay.port },
              { onRetry: (message) => notes.push(message), sleep: async () => {} },
            ),
          ),
        );
        expect(error.code).toBe('SSH_DISCONNECTED');
        expect(error.remedy).toMatch(/MaxStartups \(docs\/hosts\.md\)/);
        expect(relay.accepted()).toBe(6);
        expect(notes).toHaveLength(5);
      } finally {
        relay.close();
      }
    });

    it('reports a connection cut mid-command as SSH_DISCONNECTED', async () => {
      const relay = await startRelay(bed.host2);
      try {
        const lines = linesFor(bed.knownHosts, bed.host2.host, `[127.0.0.1]:${relay.port}`);
        const host = await connectSsh(
          options(
            { user: 'root', host: '127.0.0.1', port: relay.port },
            { knownHosts: lines, role: 'target' },
          ),
        );
        const running = host.run('sleep 20');
        const proc = await host.spawn('exec sleep 21');
        proc.stdout.resume();
        proc.stderr.resume();
        await new Promise((resolve) => setTimeout(resolve, 300));
        relay.cut();
        const error = await failure(running);
        expect(error.code).toBe('SSH_DISCONNECTED');
        expect(error.host).toContain('target');
        expect(await proc.exit).toEqual({ exitCode: null, signal: null });
        expect(host.connectionError?.code).toBe('SSH_DISCONNECTED');
        expect((await failure(host.run('true'))).code).toBe('SSH_DISCONNECTED');
        await host.close();
      } finally {
        relay.server.close();
        await host2.run('pkill -f "^sleep 2[01]$" || true');
      }
    });
  });

  describe('openHost over SSH', () => {
    it('opens a root login without wrapping commands in sudo, and warns about skipped host keys', async () => {
      const warnings: string[] = [];
      const host = await openHost(
        'target',
        { kind: 'ssh', spec: bed.host2 },
        { privateKey: bed.privateKey, knownHosts: '', insecureSkipHostKeyCheck: true },
        true,
        { warn: (message) => warnings.push(message) },
      );
      try {
        expect((await host.run('id -u')).stdout).toBe('0\n');
        expect(warnings).toHaveLength(1);
        expect(warnings[0]).toContain('SHA256:');
      } finally {
        await host.close();
      }
    });
  });
});

/** Stands in for an ssh2 channel: only the events channelEnd listens to. */
class FakeChannel extends EventEmitter {}

describe('channelEnd', () => {
  it('takes the status from an exit before close', async () => {
    const channel = new FakeChannel();
    const end = channelEnd(channel);
    channel.emit('exit', 3);
    channel.emit('close');
    expect(await end).toEqual({ exitCode: 3, signal: null });
  });

  it('takes the status from an exit after close', async () => {
    const channel = new FakeChannel();
    const end = channelEnd(channel);
    channel.emit('close');
    channel.emit('exit', 4);
    expect(await end).toEqual({ exitCode: 4, signal: null });
  });

  it('takes the status close carries when exit never came', async () => {
    const channel = new FakeChannel();
    const end = channelEnd(channel);
    channel.emit('close', 5);
    expect(await end).toEqual({ exitCode: 5, signal: null });
  });

  it('reports signals with their SIG prefix', async () => {
    const channel = new FakeChannel();
    const end = channelEnd(channel);
    channel.emit('exit', null, 'SIGTERM', false, '');
    channel.emit('close', null, 'SIGTERM');
    expect(await end).toEqual({ exitCode: null, signal: 'SIGTERM' });
    const other = new FakeChannel();
    const otherEnd = channelEnd(other);
    other.emit('close');
    other.emit('exit', null, 'KILL');
    expect(await otherEnd).toEqual({ exitCode: null, signal: 'SIGKILL' });
  });

  it('settles with no status when the channel closed without one', async () => {
    const channel = new FakeChannel();
    const end = channelEnd(channel);
    channel.emit('close');
    expect(await end).toEqual({ exitCode: null, signal: null });
  });
});
