import { createHash } from 'node:crypto';
import { getEventListeners } from 'node:events';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MigrationError } from '../../src/errors.js';
import type { CommandResult, Host } from '../../src/host/host.js';
import { openHost, requireRoot } from '../../src/host/host-factory.js';
import { LocalHost } from '../../src/host/local-host.js';
import { checkSudo, sudoCommand, withSudo } from '../../src/host/sudo.js';
import type { HostLocation, SshSettings } from '../../src/settings.js';

const host = new LocalHost('source');

describe('LocalHost.run', () => {
  it('collects stdout and stderr and the exit code', async () => {
    const result = await host.run('echo out; echo err >&2; exit 3');
    expect(result).toEqual({ exitCode: 3, stdout: 'out\n', stderr: 'err\n' });
  });

  it('runs POSIX sh text with pipes, variables and quotes', async () => {
    const result = await host.run(`x='a b'; printf '%s\\n' "$x" | tr a-z A-Z`);
    expect(result.stdout).toBe('A B\n');
    expect(result.exitCode).toBe(0);
  });

  it('decodes UTF-8 output', async () => {
    const result = await host.run(`printf '%s' 'héllo 日本 🙂'`);
    expect(result.stdout).toBe('héllo 日本 🙂');
  });

  it('feeds input to stdin, as a string or a Buffer', async () => {
    expect((await host.run('cat', { input: 'line one\nline two\n' })).stdout).toBe('line one\nline two\n');
    const bytes = Buffer.from([0, 1, 2, 255]);
    const result = await host.run('od -An -tu1', { input: bytes });
    expect(result.stdout.trim().split(/\s+/)).toEqual(['0', '1', '2', '255']);
  });

  it('closes stdin when there is no input, so readers see end of file', async () => {
    const result = await host.run('cat; echo done', { timeoutMs: 5_000 });
    expect(result).toMatchObject({ exitCode: 0, stdout: 'done\n' });
  });

  it('does not fail when the command ignores a large input', async () => {
    const result = await host.run('exit 0', { input: Buffer.alloc(4 * 1024 * 1024) });
    expect(result.exitCode).toBe(0);
  });

  it('kills a command that runs past its timeout, pipeline included, and reports -1', async () => {
    const started = Date.now();
    const result = await host.run('echo started; sleep 30 | cat; echo never', { timeoutMs: 300 });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(result.exitCode).toBe(-1);
    expect(result.stdout).toBe('started\n');
    expect(result.stderr).toContain('timed out after 300 ms');
  });

  it('reports a missing command as exit 127', async () => {
    const result = await host.run('no-such-command-xyz');
    expect(result.exitCode).toBe(127);
    expect(result.stderr).toContain('not found');
  });

  it('does not wait forever for a background child that keeps the pipes open', async () => {
    const quick = new LocalHost('source', { pipeCloseGraceMs: 300 });
    const started = Date.now();
    const result = await quick.run('sleep 3 & echo parent');
    expect(Date.now() - started).toBeLessThan(2_500);
    expect(result).toMatchObject({ exitCode: 0, stdout: 'parent\n' });
  });
});

describe('LocalHost with an abort signal', () => {
  it('starts nothing when the signal has already aborted', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aborted-'));
    try {
      const controller = new AbortController();
      controller.abort();
      const result = await host.run(`touch ${dir}/ran`, { signal: controller.signal });
      expect(result).toEqual({ exitCode: -1, stdout: '', stderr: '[aborted]\n' });
      expect(existsSync(join(dir, 'ran'))).toBe(false);
      const error = await host
        .spawn(`touch ${dir}/ran`, { signal: controller.signal })
        .catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'CANCELLED', host: 'source local' });
      expect(existsSync(join(dir, 'ran'))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('stops a running pipeline as a timeout would, and says it was aborted', async () => {
    const controller = new AbortController();
    const started = Date.now();
    setTimeout(() => controller.abort(), 300);
    const result = await host.run('echo started; sleep 30 | cat; echo never', { signal: controller.signal });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(result).toEqual({ exitCode: -1, stdout: 'started\n', stderr: '[aborted]\n' });
    expect(getEventListeners(controller.signal, 'abort')).toEqual([]);
  });

  it('keeps the note of whichever came first, timeout or abort', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 1_000);
    const result = await host.run('sleep 30', { signal: controller.signal, timeoutMs: 200 });
    expect(result.exitCode).toBe(-1);
    expect(result.stderr).toBe('[timed out after 200 ms and was killed]\n');
  });

  it('changes nothing for a command that ended before the abort, and drops its listener', async () => {
    const controller = new AbortController();
    const result = await host.run('echo done; exit 2', { signal: controller.signal });
    controller.abort();
    expect(result).toEqual({ exitCode: 2, stdout: 'done\n', stderr: '' });
    expect(getEventListeners(controller.signal, 'abort')).toEqual([]);
  });

  it('kills a spawned command on abort as kill() does', async () => {
    const controller = new AbortController();
    const proc = await host.spawn('sleep 30 | cat', { signal: controller.signal });
    proc.stdout.resume();
    proc.stderr.resume();
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
    const started = Date.now();
    controller.abort();
    expect(await proc.exit).toEqual({ exitCode: null, signal: 'SIGTERM' });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(getEventListeners(controller.signal, 'abort')).toEqual([]);
  });
});

describe('LocalHost.spawn', () => {
  it('streams 50 MB through cat intact', async () => {
    const size = 50 * 1024 * 1024;
    const chunk = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 31) % 251;
    const expected = createHash('sha256');
    for (let i = 0; i < size / chunk.length; i++) expected.update(chunk);

    const proc = await host.spawn('cat');
    const received = createHash('sha256');
    let count = 0;
    const sink = new Writable({
      write(data: Buffer, _encoding, done) {
        received.update(data);
        count += data.length;
        done();
      },
    });
    const source = Readable.from(
      (function* () {
        for (let i = 0; i < size / chunk.length; i++) yield chunk;
      })(),
    );
    await Promise.all([pipeline(source, proc.stdin), pipeline(proc.stdout, sink), drainText(proc.stderr)]);
    expect(await proc.exit).toEqual({ exitCode: 0, signal: null });
    expect(count).toBe(size);
    expect(received.digest('hex')).toBe(expected.digest('hex'));
  });

  it('applies backpressure: a consumer that stops reading stops the producer', async () => {
    const proc = await host.spawn('cat');
    let produced = 0;
    const chunk = Buffer.alloc(64 * 1024, 7);
    const total = 50 * 1024 * 1024;
    const source = new Readable({
      read() {
        if (produced >= total) {
          this.push(null);
          return;
        }
        produced += chunk.length;
        this.push(chunk);
      },
    });
    const feeding = pipeline(source, proc.stdin);
    const stderr = drainText(proc.stderr);
    // Nobody reads stdout yet: only pipe and stream buffers may fill.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(produced).toBeLessThan(8 * 1024 * 1024);

    let consumed = 0;
    await pipeline(
      proc.stdout,
      new Writable({
        write(data: Buffer, _encoding, done) {
          consumed += data.length;
          done();
        },
      }),
    );
    await feeding;
    await stderr;
    expect(consumed).toBe(total);
    expect((await proc.exit).exitCode).toBe(0);
  });

  it('reports the exit code and stderr of a failing command', async () => {
    const proc = await host.spawn('echo oops >&2; exit 7');
    proc.stdin.end();
    proc.stdout.resume();
    const stderr = await drainText(proc.stderr);
    expect(stderr).toBe('oops\n');
    expect(await proc.exit).toEqual({ exitCode: 7, signal: null });
  });

  it('kill() stops the command and its children', async () => {
    const proc = await host.spawn('sleep 30 | cat');
    proc.stdout.resume();
    proc.stderr.resume();
    const started = Date.now();
    proc.kill();
    const exit = await proc.exit;
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(exit).toEqual({ exitCode: null, signal: 'SIGTERM' });
  });
});

function drainText(stream: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (data: Buffer) => chunks.push(data));
    stream.on('error', reject);
    stream.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

describe('withSudo and checkSudo through a stand-in sudo', () => {
  let dir: string;
  let savedPath: string | undefined;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'fake-sudo-'));
    // Stands in for sudo: checks -n, records its arguments, runs the rest.
    writeFileSync(
      join(dir, 'sudo'),
      `#!/bin/sh\n[ "$1" = -n ] || { echo "sudo: expected -n" >&2; exit 90; }\nshift\nif [ -e "${dir}/refuse" ]; then echo "sudo: a password is required" >&2; exit 1; fi\nexec "$@"\n`,
    );
    chmodSync(join(dir, 'sudo'), 0o755);
    savedPath = process.env.PATH;
    process.env.PATH = `${dir}:${savedPath ?? ''}`;
  });

  afterAll(() => {
    process.env.PATH = savedPath;
    rmSync(dir, { recursive: true, force: true });
  });

  it('wraps each command as sudo -n sh -c with its quoting intact', async () => {
    const sudoHost = withSudo(host);
    expect(sudoHost.role).toBe('source');
    expect(sudoHost.address).toBe('local');
    const odd = `printf '%s|' "it's" '$HOME' "a\\"b"; echo; exit 4`;
    const result = await sudoHost.run(odd);
    expect(result).toMatchObject({ exitCode: 4, stdout: `it's|$HOME|a"b|\n` });
    expect(sudoCommand('echo hi')).toBe(`sudo -n sh -c 'echo hi'`);
  });

  it('passes input and spawns through sudo too', async () => {
    const sudoHost = withSudo(host);
    expect((await sudoHost.run('cat', { input: 'x y' })).stdout).toBe('x y');
    const proc = await sudoHost.spawn('echo spawned');
    proc.stdin.end();
    proc.stderr.resume();
    expect(await drainText(proc.stdout)).toBe('spawned\n');
    expect((await proc.exit).exitCode).toBe(0);
  });

  it('hands the abort signal on through sudo, for run and spawn', async () => {
    const sudoHost = withSudo(host);
    const controller = new AbortController();
    const proc = await sudoHost.spawn('sleep 30', { signal: controller.signal });
    proc.stdout.resume();
    proc.stderr.resume();
    const running = sudoHost.run('sleep 30', { signal: controller.signal });
    controller.abort();
    expect((await proc.exit).exitCode).toBeNull();
    expect(await running).toMatchObject({ exitCode: -1, stderr: '[aborted]\n' });
  });

  it('checkSudo passes when sudo -n works and throws SUDO_REFUSED when it does not', async () => {
    await expect(checkSudo(host)).resolves.toBeUndefined();
    writeFileSync(join(dir, 'refuse'), '');
    try {
      const error = await checkSudo(host).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(MigrationError);
      expect(error).toMatchObject({ code: 'SUDO_REFUSED', host: 'source local' });
      expect((error as MigrationError).detail).toContain('password is required');
      expect((error as MigrationError).remedy).toContain('sudo: false');
    } finally {
      rmSync(join(dir, 'refuse'));
    }
  });
});

describe('openHost', () => {
  const ssh: SshSettings = { knownHosts: '', insecureSkipHostKeyCheck: false };

  function scriptedHost(uid: string, sudoWorks: boolean): Host & { commands: string[]; closed: boolean } {
    const commands: string[] = [];
    const fake = {
      role: 'source',
      address: 'local',
      commands,
      closed: false,
      run: async (command: string): Promise<CommandResult> => {
        commands.push(command);
        if (command === 'id -u') return { exitCode: 0, stdout: `${uid}\n`, stderr: '' };
        if (command === 'sudo -n sh -c true') {
          return sudoWorks
            ? { exitCode: 0, stdout: '', stderr: '' }
            : { exitCode: 1, stdout: '', stderr: 'sudo: a password is required\n' };
        }
        return { exitCode: 0, stdout: '', stderr: '' };
      },
      spawn: () => Promise.reject(new Error('not used')),
      close: async () => {
        fake.closed = true;
      },
    };
    return fake;
  }

  it('gives a LocalHost for the runner', async () => {
    const opened = await openHost('source', { kind: 'local' }, ssh, false);
    expect(opened).toBeInstanceOf(LocalHost);
    expect(opened.role).toBe('source');
  });

  it('skips sudo for root', async () => {
    const fake = scriptedHost('0', false);
    const opened = await openHost('source', { kind: 'local' }, ssh, true, { local: () => fake });
    expect(opened).toBe(fake);
    expect(fake.commands).toEqual(['id -u']);
  });

  it('checks sudo and wraps commands for other users', async () => {
    const fake = scriptedHost('1001', true);
    const opened = await openHost('source', { kind: 'local' }, ssh, true, { local: () => fake });
    await opened.run('docker ps');
    expect(fake.commands).toEqual(['id -u', 'sudo -n sh -c true', `sudo -n sh -c 'docker ps'`]);
  });

  it('closes the host and throws SUDO_REFUSED when sudo is refused', async () => {
    const fake = scriptedHost('1001', false);
    await expect(
      openHost('source', { kind: 'local' }, ssh, true, { local: () => fake }),
    ).rejects.toMatchObject({
      code: 'SUDO_REFUSED',
    });
    expect(fake.closed).toBe(true);
  });

  it('connects over SSH with the settings and warns when host keys are not checked', async () => {
    const warnings: string[] = [];
    const seen: unknown[] = [];
    const spec = { user: 'root', host: '10.0.0.3', port: 22 };
    const jumpHost = { user: 'ops', host: '10.0.0.1', port: 2222 };
    const opened = await openHost(
      'target',
      { kind: 'ssh', spec },
      { privateKey: 'KEY', passphrase: 'pw', knownHosts: '', insecureSkipHostKeyCheck: true, jumpHost },
      false,
      {
        warn: (message) => warnings.push(message),
        connect: async (options) => {
          seen.push(options);
          return {
            ...scriptedHost('0', true),
            role: 'target',
            address: 'root@10.0.0.3:22',
            hostKeyFingerprint: 'SHA256:abc',
          };
        },
      },
    );
    expect(opened.address).toBe('root@10.0.0.3:22');
    expect(seen).toEqual([
      expect.objectContaining({
        role: 'target',
        spec,
        privateKey: 'KEY',
        passphrase: 'pw',
        insecureSkipHostKeyCheck: true,
        jump: jumpHost,
      }),
    ]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('SHA256:abc');
    expect(warnings[0]).toContain('target root@10.0.0.3:22');
  });
});

describe('requireRoot', () => {
  const ssh = (user: string): HostLocation => ({ kind: 'ssh', spec: { user, host: '10.0.0.3', port: 22 } });
  function idHost(uid: string): Host & { commands: string[] } {
    const commands: string[] = [];
    return {
      role: 'source',
      address: 'deploy@10.0.0.3:22',
      commands,
      run: async (command: string): Promise<CommandResult> => {
        commands.push(command);
        return { exitCode: 0, stdout: `${uid}\n`, stderr: '' };
      },
      spawn: () => Promise.reject(new Error('not used')),
      close: async () => {},
    };
  }

  it('asks nothing of a root login, of sudo, or of the runner', async () => {
    for (const [location, sudo] of [
      [ssh('root'), false],
      [ssh('deploy'), true],
      [{ kind: 'local' }, false],
    ] as const) {
      const host = idHost('1000');
      await requireRoot(host, location, sudo);
      expect(host.commands).toEqual([]);
    }
  });

  it('refuses a non-root login without sudo with NOT_ROOT, and accepts one that is uid 0', async () => {
    await expect(requireRoot(idHost('1000'), ssh('deploy'), false)).rejects.toMatchObject({
      code: 'NOT_ROOT',
      step: 'connect',
    });
    await expect(requireRoot(idHost('0'), ssh('toor'), false)).resolves.toBeUndefined();
  });
});
