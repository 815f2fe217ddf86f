import { getEventListeners } from 'node:events';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MigrationError } from '../../src/errors.js';
import { bindSignal, killByTagScript, TAG_VARIABLE, tagCommand } from '../../src/host/abortable.js';
import type {
  CommandResult,
  Host,
  HostProcess,
  ProcessExit,
  RunOptions,
  SpawnOptions,
} from '../../src/host/host.js';
import { LocalHost } from '../../src/host/local-host.js';
import { withSudo } from '../../src/host/sudo.js';

const TAGGED = /^CRIU_MIGRATE_CMD=([0-9a-f]{16}); export CRIU_MIGRATE_CMD; exec sh -c /;

function tagOf(command: string): string {
  const match = TAGGED.exec(command);
  if (!match?.[1]) throw new Error(`not a tagged command: ${command}`);
  return match[1];
}

interface RunCall {
  command: string;
  options: RunOptions | undefined;
}

interface SpawnCall {
  command: string;
  options: SpawnOptions | undefined;
  killed: number;
  finish(exit: ProcessExit): void;
}

/**
 * Records what it is asked to run. Tagged commands run until their signal
 * aborts (like a real host, they then answer -1 "[aborted]"), or end at once
 * with `answer`; the kill script gets `killAnswer`.
 */
class FakeHost implements Host {
  readonly role = 'source';
  readonly address = 'root@10.0.0.1:22';
  readonly runs: RunCall[] = [];
  readonly spawns: SpawnCall[] = [];
  answer: CommandResult | undefined = { exitCode: 0, stdout: 'ok\n', stderr: '' };
  killAnswer: () => Promise<CommandResult> = async () => ({ exitCode: 0, stdout: '', stderr: '' });

  async run(command: string, options?: RunOptions): Promise<CommandResult> {
    this.runs.push({ command, options });
    if (!TAGGED.test(command)) return this.killAnswer();
    const signal = options?.signal;
    if (signal?.aborted) return { exitCode: -1, stdout: '', stderr: '[aborted]\n' };
    if (this.answer) return this.answer;
    return new Promise((resolve) => {
      signal?.addEventListener('abort', () => resolve({ exitCode: -1, stdout: '', stderr: '[aborted]\n' }), {
        once: true,
      });
    });
  }

  async spawn(command: string, options?: SpawnOptions): Promise<HostProcess> {
    let finish: (exit: ProcessExit) => void = () => {};
    const exit = new Promise<ProcessExit>((resolve) => {
      finish = resolve;
    });
    const call: SpawnCall = { command, options, killed: 0, finish };
    this.spawns.push(call);
    return {
      stdin: new PassThrough(),
      stdout: new PassThrough(),
      stderr: new PassThrough(),
      exit,
      kill: () => {
        call.killed++;
      },
    };
  }

  async close(): Promise<void> {}

  get killRuns(): RunCall[] {
    return this.runs.filter((call) => !TAGGED.test(call.command));
  }
}

function caught(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (error: unknown) => error,
  );
}

/** Lets queued promise callbacks run. */
const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('tagCommand and killByTagScript', () => {
  it('puts the tag in the environment of a shell that runs the command', () => {
    expect(tagCommand(`echo 'a b' | cat`, '0123456789abcdef')).toBe(
      `CRIU_MIGRATE_CMD=0123456789abcdef; export CRIU_MIGRATE_CMD; exec sh -c "echo 'a b' | cat"`,
    );
  });

  it('refuses anything but 16 hex digits as a tag', () => {
    expect(() => tagCommand('true', 'abc')).toThrow(TypeError);
    expect(() => killByTagScript(`0123456789abcde'`)).toThrow(TypeError);
  });

  it('looks for the exact tag line with grep -z, falls back to a loop, and spares itself', () => {
    const script = killByTagScript('fedcba9876543210');
    expect(script).toContain(`t='CRIU_MIGRATE_CMD=fedcba9876543210'`);
    expect(script).toContain('grep -l -s -z -x -F -e "$t" /proc/[0-9]*/environ');
    // Only when grep also fails a NUL-separated probe: exit 2 alone may mean an unreadable environ.
    expect(script).toContain(`! printf '%s\\0' "$t" | grep -q -z -x -F -e "$t"`);
    expect(script).toContain(`tr '\\0' '\\n' 2>/dev/null <"$f"`);
    expect(script).toContain('grep -qx -F -e "$t"');
    expect(script).toContain('[ "$p" = "$$" ]');
    expect(script).toMatch(/kill -TERM[\s\S]*kill -KILL/);
  });
});

describe('bindSignal with a fake host', () => {
  it('rejects at once, without running anything, when the signal has already aborted', async () => {
    const fake = new FakeHost();
    const controller = new AbortController();
    controller.abort();
    const bound = bindSignal(fake, controller.signal);
    const error = await caught(bound.run('echo hi'));
    expect(error).toBeInstanceOf(MigrationError);
    expect(error).toMatchObject({ code: 'CANCELLED', host: 'source root@10.0.0.1:22' });
    expect(await caught(bound.spawn('cat'))).toMatchObject({ code: 'CANCELLED' });
    expect(fake.runs).toEqual([]);
    expect(fake.spawns).toEqual([]);
  });

  it('keeps role, address and close, and passes results through', async () => {
    const fake = new FakeHost();
    const bound = bindSignal(fake, new AbortController().signal);
    expect(bound.role).toBe('source');
    expect(bound.address).toBe('root@10.0.0.1:22');
    expect(bound.hostKeyFingerprint).toBeUndefined();
    const keyed = Object.assign(new FakeHost(), { hostKeyFingerprint: 'SHA256:x' });
    expect(bindSignal(keyed, new AbortController().signal).hostKeyFingerprint).toBe('SHA256:x');
    expect(await bound.run('echo ok')).toEqual({ exitCode: 0, stdout: 'ok\n', stderr: '' });
    await expect(bound.close()).resolves.toBeUndefined();
  });

  it('tags every command with a fresh tag and hands the host the signal', async () => {
    const fake = new FakeHost();
    const controller = new AbortController();
    const bound = bindSignal(fake, controller.signal);
    await bound.run('echo one', { input: 'x' });
    await bound.run('echo two');
    const [one, two] = fake.runs;
    expect(one?.command).toMatch(TAGGED);
    expect(one?.command.endsWith(`exec sh -c 'echo one'`)).toBe(true);
    expect(tagOf(one?.command ?? '')).not.toBe(tagOf(two?.command ?? ''));
    expect(one?.options).toMatchObject({ input: 'x', signal: controller.signal });
    expect(fake.killRuns).toEqual([]);
  });

  it('puts the tag inside the sudo shell', async () => {
    const fake = new FakeHost();
    await bindSignal(withSudo(fake), new AbortController().signal).run('docker ps');
    expect(fake.runs[0]?.command).toMatch(
      /^sudo -n sh -c "CRIU_MIGRATE_CMD=[0-9a-f]{16}; export CRIU_MIGRATE_CMD; exec sh -c 'docker ps'"$/,
    );
  });

  it('on abort, stops the command and runs the kill script for its tag through the host, without the signal', async () => {
    const fake = new FakeHost();
    fake.answer = undefined;
    const controller = new AbortController();
    const running = caught(bindSignal(fake, controller.signal).run('sleep 300 | cat'));
    await tick();
    const tag = tagOf(fake.runs[0]?.command ?? '');
    controller.abort();
    const error = await running;
    expect(error).toMatchObject({ code: 'CANCELLED', message: 'the run was cancelled' });
    expect((error as MigrationError).detail).toBeUndefined();
    expect(fake.runs[0]?.options?.signal?.aborted).toBe(true);
    expect(fake.killRuns).toEqual([{ command: killByTagScript(tag), options: { timeoutMs: 15_000 } }]);
  });

  it('waits for the kill script before rejecting', async () => {
    const fake = new FakeHost();
    fake.answer = undefined;
    let release = (): void => {};
    fake.killAnswer = () =>
      new Promise((resolve) => {
        release = () => resolve({ exitCode: 0, stdout: '', stderr: '' });
      });
    const controller = new AbortController();
    let settled = false;
    const running = caught(bindSignal(fake, controller.signal).run('sleep 300')).finally(() => {
      settled = true;
    });
    await tick();
    controller.abort();
    await tick();
    await tick();
    expect(settled).toBe(false);
    release();
    await running;
    expect(settled).toBe(true);
  });

  it('rejects with a MigrationError given as the abort reason, or with what options.reason makes', async () => {
    const fake = new FakeHost();
    fake.answer = undefined;
    const controller = new AbortController();
    const running = caught(bindSignal(fake, controller.signal).run('sleep 300'));
    await tick();
    const deadline = new MigrationError('TIMEOUT', 'the migration ran past its deadline', {
      step: 'transfer',
    });
    controller.abort(deadline);
    expect(await running).toBe(deadline);

    const other = new AbortController();
    other.abort('because');
    const made = new MigrationError('CANCELLED', 'cancelled by the operator', { step: 'restore' });
    const bound = bindSignal(fake, other.signal, {
      reason: (signal) => {
        expect(signal.reason).toBe('because');
        return made;
      },
    });
    expect(await caught(bound.run('true'))).toBe(made);
  });

  it('puts a failing kill script into the detail instead of throwing it', async () => {
    const fake = new FakeHost();
    fake.answer = undefined;
    fake.killAnswer = async () => ({
      exitCode: 1,
      stdout: 'SIGTERM: 12 ',
      stderr: 'still running after SIGKILL: 12\n',
    });
    const controller = new AbortController();
    const deadline = new MigrationError('TIMEOUT', 'past the deadline', {
      step: 'checkpoint',
      detail: 'criu log',
    });
    const running = caught(bindSignal(fake, controller.signal).run('sleep 300'));
    await tick();
    controller.abort(deadline);
    const error = (await running) as MigrationError;
    expect(error).toMatchObject({ code: 'TIMEOUT', message: 'past the deadline', step: 'checkpoint' });
    expect(error.detail).toContain('criu log');
    expect(error.detail).toContain('stopping the command');
    expect(error.detail).toContain('still running after SIGKILL: 12');

    const lost = new FakeHost();
    lost.answer = undefined;
    lost.killAnswer = () => Promise.reject(new Error('the SSH connection is gone'));
    const again = new AbortController();
    const second = caught(bindSignal(lost, again.signal).run('sleep 300'));
    await tick();
    again.abort();
    expect((await second) as MigrationError).toMatchObject({
      code: 'CANCELLED',
      detail: expect.stringContaining('the SSH connection is gone'),
    });
  });

  it('kills a command past its own deadline by tag, the default one when it gives none', async () => {
    const fake = new FakeHost();
    fake.answer = undefined;
    const bound = bindSignal(fake, new AbortController().signal, { defaultTimeoutMs: 5 });
    const defaulted = await bound.run('sleep 300');
    expect(defaulted.exitCode).toBe(-1);
    expect(defaulted.stderr).toContain('[timed out after 5 ms and was killed]');
    const own = await bound.run('sleep 300', { timeoutMs: 10 });
    expect(own.stderr).toContain('[timed out after 10 ms and was killed]');
    expect(fake.killRuns).toHaveLength(2);
    // The inner host gets no timeout of its own: the deadline is kept here.
    const commands = fake.runs.filter((call) => !call.command.includes('SIGKILL'));
    expect(commands.map((call) => call.options?.timeoutMs)).toEqual([undefined, undefined]);
  });

  it("answers a call's own abort as the Host contract says, after killing by tag", async () => {
    const fake = new FakeHost();
    fake.answer = undefined;
    const run = new AbortController();
    const running = bindSignal(fake, new AbortController().signal).run('sleep 300', { signal: run.signal });
    await tick();
    run.abort();
    expect(await running).toEqual({ exitCode: -1, stdout: '', stderr: '[aborted]\n' });
    expect(fake.killRuns).toHaveLength(1);
  });

  it('leaves no abort listeners behind', async () => {
    const fake = new FakeHost();
    const controller = new AbortController();
    const bound = bindSignal(fake, controller.signal);
    const own = new AbortController();
    for (let i = 0; i < 20; i++) await bound.run('true', { signal: own.signal });
    const proc = await bound.spawn('cat', { signal: own.signal });
    expect(getEventListeners(controller.signal, 'abort').length).toBeGreaterThan(0);
    fake.spawns[0]?.finish({ exitCode: 0, signal: null });
    await proc.exit;
    await tick();
    expect(getEventListeners(controller.signal, 'abort')).toEqual([]);
    expect(getEventListeners(own.signal, 'abort')).toEqual([]);
  });

  it('spawn: an abort or kill() also kills by tag, once', async () => {
    const fake = new FakeHost();
    const controller = new AbortController();
    const bound = bindSignal(fake, controller.signal);
    const proc = await bound.spawn('sleep 300 | cat');
    const call = fake.spawns[0];
    const tag = tagOf(call?.command ?? '');
    expect(call?.options?.signal).toBe(controller.signal);
    controller.abort();
    await tick();
    expect(fake.killRuns).toEqual([{ command: killByTagScript(tag), options: { timeoutMs: 15_000 } }]);
    proc.kill();
    expect(call?.killed).toBe(1);
    expect(fake.killRuns).toHaveLength(1);

    const other = await bindSignal(fake, new AbortController().signal).spawn('cat');
    other.kill();
    expect(fake.spawns[1]?.killed).toBe(1);
    expect(fake.killRuns.map((run) => run.command)).toEqual([
      killByTagScript(tag),
      killByTagScript(tagOf(fake.spawns[1]?.command ?? '')),
    ]);
  });
});

/** Pids of the runner's processes whose environment holds the tag line. */
function taggedPids(tag: string): number[] {
  const line = `${TAG_VARIABLE}=${tag}`;
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/environ`, 'latin1').split('\0').includes(line))
        pids.push(Number(entry));
    } catch {
      // Gone, or not ours to read.
    }
  }
  return pids;
}

async function waitFor(check: () => boolean, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A host that hands everything to `inner` and keeps the commands. */
function recording(inner: Host): Host & { commands: string[] } {
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
}

describe('bindSignal with LocalHost', () => {
  // A pipeline, plus a sleep that left the process group with setsid, which stopping the group misses.
  const command = `(setsid sleep 300 </dev/null >/dev/null 2>&1 &); sh -c 'sleep 300 | cat'`;

  async function abortAndCheck(host: Host): Promise<void> {
    const inner = recording(host);
    const controller = new AbortController();
    const running = caught(bindSignal(inner, controller.signal).run(command));
    const tag = tagOf(inner.commands[0] ?? '');
    // sh, its subshell's setsid sleep, sh -c, sleep and cat.
    await waitFor(() => taggedPids(tag).length >= 4, 5_000);
    controller.abort();
    // Settles long before the 300 s sleeps would end (a hang meets the test's own bound).
    expect(await running).toMatchObject({ code: 'CANCELLED', host: 'source local' });
    expect(taggedPids(tag)).toEqual([]);
  }

  it('leaves no process carrying the tag after an abort', async () => {
    await abortAndCheck(new LocalHost('source'));
  });

  it('needs the tag: stopping the process group alone misses the setsid child', async () => {
    const local = new LocalHost('source', { pipeCloseGraceMs: 300 });
    const tag = '00000000feedf00d';
    const controller = new AbortController();
    const running = local.run(tagCommand(command, tag), { signal: controller.signal });
    await waitFor(() => taggedPids(tag).length >= 4, 5_000);
    controller.abort();
    expect(await running).toMatchObject({ exitCode: -1, stderr: '[aborted]\n' });
    try {
      expect(taggedPids(tag)).toHaveLength(1);
    } finally {
      await local.run(killByTagScript(tag));
    }
    expect(taggedPids(tag)).toEqual([]);
  });

  describe('where grep has no -z', () => {
    let dir: string;
    let savedPath: string | undefined;

    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'no-grep-z-'));
      const real = ['/usr/bin/grep', '/bin/grep'].find((path) => existsSync(path)) ?? 'grep';
      // Refuses -z with a usage error, as a grep without it would.
      writeFileSync(
        join(dir, 'grep'),
        `#!/bin/sh\nfor a in "$@"; do [ "$a" = -z ] && { echo z >>"${dir}/refused"; exit 2; }; done\nexec ${real} "$@"\n`,
      );
      chmodSync(join(dir, 'grep'), 0o755);
      savedPath = process.env.PATH;
      process.env.PATH = `${dir}:${savedPath ?? ''}`;
    });

    afterAll(() => {
      process.env.PATH = savedPath;
      rmSync(dir, { recursive: true, force: true });
    });

    it('still finds and kills every tagged process', async () => {
      await abortAndCheck(new LocalHost('source'));
      expect(existsSync(join(dir, 'refused'))).toBe(true);
    });
  });

  it('kills a spawned command by tag on abort, and its exit settles', async () => {
    const inner = recording(new LocalHost('source'));
    const controller = new AbortController();
    const proc = await bindSignal(inner, controller.signal).spawn(command);
    proc.stdout.resume();
    proc.stderr.resume();
    const tag = tagOf(inner.commands[0] ?? '');
    await waitFor(() => taggedPids(tag).length >= 4, 5_000);
    controller.abort();
    const exit = await proc.exit;
    expect(exit.exitCode === 0).toBe(false);
    await waitFor(() => taggedPids(tag).length === 0, 8_000);
  });
});
