import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseKnownHosts } from '../../src/host/known-hosts.js';
import { shellQuote } from '../../src/host/shell.js';
import {
  authorizedKeyLine,
  authorizeScript,
  CHECK_ANSWER,
  chooseRoute,
  isStreamName,
  pageForwardArgs,
  parseReach,
  parseRouteSource,
  pinnedKnownHosts,
  type RouteFacts,
  receiveScript,
  sameEndpoint,
  sshClientArgs,
  unauthorizeScript,
} from '../../src/policy/direct-route.js';
import { planRecovery } from '../../src/policy/recovery.js';
import type { HostLocation } from '../../src/settings.js';

const run = promisify(execFile);
const KEY = 'AAAAC3NzaC1lZDI1NTE5AAAAIG0V2x4p1wC7cRkN1pDq0q8f1dM6QwW0z3v9G3h4c5e6';
const sh = (script: string, env: Record<string, string> = {}) =>
  run('sh', ['-c', script], { env: { ...process.env, ...env } });

describe('parseReach: what the source saw of the target', () => {
  it('a server that asks for a key was reached, its host key as pinned', () => {
    expect(parseReach('root@127.0.0.3: Permission denied (publickey).\ncriu-migrate-reach 255\n')).toEqual({
      reach: 'reachable',
    });
  });
  it('a refused or timed-out connection is unreachable, with its words', () => {
    expect(
      parseReach('ssh: connect to host 10.0.0.9 port 22: Connection refused\ncriu-migrate-reach 255\n'),
    ).toEqual({
      reach: 'unreachable',
      why: 'ssh: connect to host 10.0.0.9 port 22: Connection refused',
    });
    expect(parseReach('criu-migrate-reach 124\n')).toEqual({ reach: 'unreachable', why: 'ssh exited 124' });
  });
  it('another host key than pinned is its own verdict, even though the server was reached', () => {
    const said = parseReach(
      'No ED25519 host key is known for criu-migrate-target and you have requested strict checking.\nHost key verification failed.\ncriu-migrate-reach 255\n',
    );
    expect(said.reach).toBe('host-key-mismatch');
  });
  it('no ssh client on the source', () => {
    expect(parseReach('no-client\n').reach).toBe('no-client');
  });
});

describe('chooseRoute', () => {
  const base: RouteFacts = {
    setting: 'auto',
    jumpHost: false,
    localHost: false,
    targetUser: 'root',
    pinnedKeys: 1,
    reach: { reach: 'reachable' },
  };
  it('auto and direct take the direct route when the source reaches the target', () => {
    expect(chooseRoute(base).route).toBe('direct');
    expect(chooseRoute({ ...base, setting: 'direct' }).route).toBe('direct');
  });
  it('relay never probes and never goes direct', () => {
    expect(chooseRoute({ ...base, setting: 'relay' })).toEqual({
      route: 'relay',
      reason: 'route: relay',
      refused: false,
    });
  });
  it('unreachable: auto falls back, direct is refused, both with the reason', () => {
    const reach = { reach: 'unreachable' as const, why: 'Connection refused' };
    expect(chooseRoute({ ...base, reach })).toMatchObject({ route: 'relay', refused: false });
    const refused = chooseRoute({ ...base, setting: 'direct', reach });
    expect(refused).toMatchObject({ route: 'relay', refused: true });
    expect(refused.reason).toContain('Connection refused');
  });
  it.each([
    [{ jumpHost: true }, 'jump host'],
    [{ targetUser: 'deploy' }, 'not root'],
    [{ pinnedKeys: 0 }, 'pins no key'],
    [{ localHost: true }, 'runner itself'],
  ])('rules out %o before asking the source', (change, words) => {
    const choice = chooseRoute({ ...base, ...change, reach: undefined });
    expect(choice.route).toBe('relay');
    expect(choice.reason).toContain(words);
    expect(chooseRoute({ ...base, ...change, setting: 'direct', reach: undefined })).toMatchObject({
      refused: true,
    });
  });
  it('a changed host key is never taken', () => {
    const choice = chooseRoute({
      ...base,
      reach: { reach: 'host-key-mismatch', why: 'Host key verification failed.' },
    });
    expect(choice).toMatchObject({ route: 'relay' });
    expect(choice.reason).toContain('another host key');
  });
});

describe('chooseRoute from the store host (restore, drill) and into it (checkpoint)', () => {
  const base: RouteFacts = {
    setting: 'auto',
    jumpHost: false,
    localHost: false,
    targetUser: 'root',
    pinnedKeys: 1,
    reach: { reach: 'reachable' },
    ends: { from: 'the store host', to: 'the drill host' },
  };
  it('names the sending and receiving hosts in every reason', () => {
    expect(chooseRoute(base)).toEqual({
      route: 'direct',
      reason: "the store host reaches the drill host's SSH server",
    });
    expect(chooseRoute({ ...base, reach: { reach: 'unreachable', why: 'Connection refused' } }).reason).toBe(
      "the store host cannot reach the drill host's SSH server (Connection refused)",
    );
    expect(chooseRoute({ ...base, jumpHost: true }).reason).toBe(
      'the runner reaches the drill host through a jump host, and the store host has no key for it: streams go through the runner',
    );
    expect(chooseRoute({ ...base, targetUser: 'deploy' }).reason).toContain(
      'direct needs a root login on the drill host',
    );
    expect(parseReach('no-client\n', base.ends)).toEqual({
      reach: 'no-client',
      why: 'no OpenSSH client (ssh) on the store host',
    });
  });
  it('a store on the receiving host itself relays under auto and is refused under direct, before any probe', () => {
    const same = { ...base, sameHost: true, reach: undefined };
    expect(chooseRoute(same)).toEqual({
      route: 'relay',
      reason: 'the store host is the drill host itself: there is no second host to stream to',
      refused: false,
    });
    expect(chooseRoute({ ...same, setting: 'direct' })).toMatchObject({ route: 'relay', refused: true });
    expect(chooseRoute({ ...same, setting: 'relay' }).reason).toBe('route: relay');
  });
});

describe('sameEndpoint', () => {
  const at = (host: string, port = 22, user = 'root'): HostLocation => ({
    kind: 'ssh',
    spec: { host, port, user },
  });
  it('one host and port is one machine, whatever the login; local only matches local', () => {
    expect(sameEndpoint(at('127.0.0.4'), at('127.0.0.4', 22, 'deploy'))).toBe(true);
    expect(sameEndpoint(at('127.0.0.4'), at('127.0.0.3'))).toBe(false);
    expect(sameEndpoint(at('127.0.0.4'), at('127.0.0.4', 2222))).toBe(false);
    expect(sameEndpoint({ kind: 'local' }, { kind: 'local' })).toBe(true);
    expect(sameEndpoint({ kind: 'local' }, at('127.0.0.4'))).toBe(false);
  });
});

describe('the run key and its line', () => {
  it('restricts the key to the forced command, from the source address', () => {
    expect(
      authorizedKeyLine(
        `ssh-ed25519 ${KEY} tag-on-source`,
        '/var/lib/criu-migrate/direct/x/receive',
        'criu-migrate-direct-abc',
        '10.0.0.5',
      ),
    ).toBe(
      `restrict,command="/bin/sh /var/lib/criu-migrate/direct/x/receive",from="10.0.0.5" ssh-ed25519 ${KEY} criu-migrate-direct-abc`,
    );
    expect(authorizedKeyLine(`ssh-ed25519 ${KEY}`, '/r', 't')).not.toContain('from=');
  });
  it('memory: overlap adds one forward, to the page server on the target loopback, and no other', () => {
    const line = authorizedKeyLine(`ssh-ed25519 ${KEY}`, '/r', 't', '10.0.0.5', 47_803);
    expect(line).toBe(
      `restrict,command="/bin/sh /r",from="10.0.0.5",port-forwarding,permitopen="127.0.0.1:47803" ssh-ed25519 ${KEY} t`,
    );
    expect(() => authorizedKeyLine(`ssh-ed25519 ${KEY}`, '/r', 't', undefined, 0)).toThrow();
    expect(() => authorizedKeyLine(`ssh-ed25519 ${KEY}`, '/r', 't', undefined, 70_000)).toThrow();
    expect(pageForwardArgs(41_000, 47_803)).toEqual([
      '-N',
      '-o',
      'ExitOnForwardFailure=yes',
      '-L',
      '127.0.0.1:41000:127.0.0.1:47803',
    ]);
  });
  it('refuses anything that could break out of its options', () => {
    expect(() => authorizedKeyLine(`ssh-rsa ${KEY}`, '/r', 't')).toThrow();
    expect(() => authorizedKeyLine(`ssh-ed25519 ${KEY}`, '/r" x', 't')).toThrow();
    expect(() => authorizedKeyLine(`ssh-ed25519 ${KEY}`, '/r', 't\nssh-ed25519 AAAA')).toThrow();
    expect(() => authorizedKeyLine(`ssh-ed25519 ${KEY}`, '/r', 't', '1.2.3.4",command="x')).toThrow();
  });
  it('pins only unrevoked keys of the target under the alias ssh is told', () => {
    const text = `127.0.0.3 ssh-ed25519 ${KEY}\n@revoked 127.0.0.3 ssh-ed25519 ${KEY.replace('G0V', 'H0V')}\n`;
    expect(pinnedKnownHosts(parseKnownHosts(text))).toBe(`criu-migrate-target ssh-ed25519 ${KEY}\n`);
    const args = sshClientArgs({
      user: 'root',
      host: '10.0.0.3',
      port: 2222,
      keyFile: '/k',
      knownHostsFile: '/kh',
    });
    expect(args).toEqual(
      expect.arrayContaining([
        'StrictHostKeyChecking=yes',
        'HostKeyAlias=criu-migrate-target',
        'UserKnownHostsFile=/kh',
        '/k',
      ]),
    );
    expect(args.slice(-5)).toEqual(['-p', '2222', '-l', 'root', '10.0.0.3']);
  });
  it('reads the source address ip route get prints', () => {
    expect(parseRouteSource('10.0.0.3 via 10.0.0.1 dev eth0 src 10.0.0.5 uid 0')).toBe('10.0.0.5');
    expect(parseRouteSource('local 127.0.0.3 dev lo src 127.0.0.1 uid 0')).toBe('127.0.0.1');
    expect(parseRouteSource('')).toBeUndefined();
  });
  it('accepts only stream names the runner makes', () => {
    expect(isStreamName('s12')).toBe(true);
    expect(isStreamName('check')).toBe(true);
    for (const bad of ['', 's', '../s1', 's1;rm', 'S1', 's1 ']) expect(isStreamName(bad)).toBe(false);
  });
});

describe('authorized_keys edits, run for real with sh and flock', () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'direct-keys-'));
    file = join(dir, 'authorized_keys');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('appends after a last line without newline, and removes exactly its own line', async () => {
    const others = `ssh-ed25519 ${KEY} admin@laptop\n# a comment\ncommand="backup" ssh-ed25519 ${KEY} backup`;
    writeFileSync(file, others, { mode: 0o600 });
    const line = authorizedKeyLine(`ssh-ed25519 ${KEY}`, '/r', 'criu-migrate-direct-run1');
    await sh(authorizeScript(file, line));
    expect(readFileSync(file, 'utf8')).toBe(`${others}\n${line}\n`);
    await sh(unauthorizeScript(file, 'criu-migrate-direct-run1'));
    expect(readFileSync(file, 'utf8')).toBe(`${others}\n`);
    // Twice is harmless; a missing file too.
    await sh(unauthorizeScript(file, 'criu-migrate-direct-run1'));
    await sh(unauthorizeScript(join(dir, 'none'), 'criu-migrate-direct-run1'));
    expect(readFileSync(file, 'utf8')).toBe(`${others}\n`);
  });

  it("a tag that is a prefix of another run's tag removes only its own line", async () => {
    writeFileSync(file, '', { mode: 0o600 });
    await sh(
      authorizeScript(file, authorizedKeyLine(`ssh-ed25519 ${KEY}`, '/r', 'criu-migrate-direct-run1')),
    );
    await sh(
      authorizeScript(file, authorizedKeyLine(`ssh-ed25519 ${KEY}`, '/r', 'criu-migrate-direct-run10')),
    );
    await sh(unauthorizeScript(file, 'criu-migrate-direct-run1'));
    expect(readFileSync(file, 'utf8')).toMatch(/^restrict,.* criu-migrate-direct-run10\n$/);
  });

  it('concurrent runs adding and removing their lines never lose one another', async () => {
    writeFileSync(file, `ssh-ed25519 ${KEY} keep-me\n`, { mode: 0o600 });
    const tags = Array.from({ length: 12 }, (_, i) => `criu-migrate-direct-c${i}`);
    await Promise.all(
      tags.map((tag) => sh(authorizeScript(file, authorizedKeyLine(`ssh-ed25519 ${KEY}`, '/r', tag)))),
    );
    const gone = tags.filter((_, i) => i % 2 === 0);
    await Promise.all([
      ...gone.map((tag) => sh(unauthorizeScript(file, tag))),
      sh(authorizeScript(file, authorizedKeyLine(`ssh-ed25519 ${KEY}`, '/r', 'criu-migrate-direct-late'))),
    ]);
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    expect(lines[0]).toBe(`ssh-ed25519 ${KEY} keep-me`);
    const kept = lines.slice(1).map((line) => line.split(' ').at(-1));
    expect(kept.sort()).toEqual(
      [...tags.filter((tag) => !gone.includes(tag)), 'criu-migrate-direct-late'].sort(),
    );
  });
});

describe('the forced command', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'direct-recv-'));
    writeFileSync(join(dir, 'receive'), receiveScript(dir));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const receive = (name: string, input = '') =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn('sh', [join(dir, 'receive')], {
        env: { SSH_ORIGINAL_COMMAND: name, PATH: process.env.PATH },
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
      });
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      child.on('close', (code) => resolve({ code, stdout, stderr }));
      // A refused name exits before reading: its closed stdin is part of the answer.
      child.stdin.on('error', () => {});
      child.stdin.end(input);
    });

  it('answers the check and refuses every other name but an existing stream fifo', async () => {
    expect((await receive('check')).stdout.trim()).toBe(CHECK_ANSWER);
    for (const bad of ['sh', '../../etc/passwd', 's1;id', 's1 x', '']) {
      const result = await receive(bad);
      expect(result.code, bad).toBe(2);
    }
    expect((await receive('s7')).stderr).toContain('no stream s7');
  });

  /** The receiving command's side of the hand-over (host/armed.ts armedConsumer), saying which way it read. */
  const receiver = (name: string) => {
    const f = shellQuote([join(dir, name)]);
    const done = shellQuote([join(dir, `${name}.done`)]);
    return sh(
      [
        `mkfifo ${f} ${done}`,
        `exec <${f}`,
        'IFS= read -r pid',
        `exec 7>${done}`,
        'if (exec <"/proc/$pid/fd/5") 2>/dev/null; then exec <"/proc/$pid/fd/5"; echo proc >&2; else echo cat >&7; echo cat >&2; fi',
        'cat',
      ].join('\n'),
    );
  };
  const whenMade = async (name: string) => {
    for (let i = 0; i < 200 && !existsSync(join(dir, `${name}.done`)); i++)
      await new Promise((resolve) => setTimeout(resolve, 10));
  };

  it("hands sshd's pipe to the receiving command, which reads it itself, and ends with it", async () => {
    const reading = receiver('s3');
    await whenMade('s3');
    // As under sshd: the forced command's standard input is a pipe.
    // execFile rejects on any exit status but 0.
    const result = await sh(`printf %s 'the bytes' | sh ${shellQuote([join(dir, 'receive')])}`, {
      SSH_ORIGINAL_COMMAND: 's3',
    });
    expect(result.stderr).toBe('');
    const read = await reading;
    expect(read.stderr.trim()).toBe('proc');
    expect(read.stdout).toBe('the bytes');
  });

  it('copies into the fifo when its input cannot be opened again (a socket here)', async () => {
    const reading = receiver('s4');
    await whenMade('s4');
    const result = await receive('s4', 'the bytes');
    expect(result.code).toBe(0);
    const read = await reading;
    expect(read.stderr.trim()).toBe('cat');
    expect(read.stdout).toBe('the bytes');
  });
});

describe('recovery removes the run key whichever way it goes', () => {
  const key = {
    kind: 'authorized-key' as const,
    side: 'target' as const,
    file: '/root/.ssh/authorized_keys',
    tag: 't1',
  };
  it('on rollback', () => {
    const plan = planRecovery({
      sourceAfter: 'stop',
      entries: [{ seq: 1, state: 'done', at: '', action: key }],
    });
    expect(plan.steps).toEqual([
      { kind: 'remove-authorized-key', side: 'target', file: key.file, tag: 't1' },
    ]);
  });
  it('on roll-forward', () => {
    const plan = planRecovery({
      sourceAfter: 'stop',
      entries: [
        { seq: 1, state: 'done', at: '', action: key },
        { seq: 2, state: 'done', at: '', action: { kind: 'committed', targetContainerId: 'x' } },
      ],
    });
    expect(plan.direction).toBe('roll-forward');
    expect(plan.steps).toContainEqual({
      kind: 'remove-authorized-key',
      side: 'target',
      file: key.file,
      tag: 't1',
    });
  });
});
