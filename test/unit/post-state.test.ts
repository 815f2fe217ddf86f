import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { getInputs } from '../../src/inputs.js';
import {
  forgetPostSecrets,
  loadPostPlan,
  parseUnitMembers,
  planPost,
  SAVED,
  savePostPlan,
} from '../../src/state/post-state.js';

const KEY = generateKeyPairSync('rsa', { modulusLength: 1024 })
  .privateKey.export({ type: 'pkcs1', format: 'pem' })
  .toString();
const KEY_BODY = KEY.split('\n')[1] ?? '';
const KNOWN = '127.0.0.2 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBtestkey';

function settings(inputs: Record<string, string>) {
  const all: Record<string, string> = { container: 'web', 'known-hosts': KNOWN, ...inputs };
  return getInputs(
    (name) => all[name] ?? '',
    () => new Date('2026-12-06T10:00:00Z'),
    () => KEY,
  );
}

/** A runtime whose saved state is a map, as the runner hands it to the post step. */
function fakeRuntime(runnerTemp: string) {
  const state = new Map<string, string>();
  return {
    state,
    env: { RUNNER_TEMP: runnerTemp },
    saveState: (name: string, value: string) => state.set(name, value),
    getState: (name: string) => state.get(name) ?? '',
    newToken: () => 'token1',
  };
}

describe('post plan', () => {
  it('names the hosts the journal names, per mode, and nothing for preflight', () => {
    const migrate = planPost(
      settings({ source: 'root@127.0.0.2', target: 'root@127.0.0.3', 'ssh-key': KEY }),
    );
    expect(migrate).toMatchObject({ mode: 'migrate', container: 'web', sides: ['source', 'target'] });
    expect(migrate?.target).toEqual({ kind: 'ssh', spec: { user: 'root', host: '127.0.0.3', port: 22 } });
    const checkpoint = planPost(
      settings({
        mode: 'checkpoint',
        source: 'root@127.0.0.2',
        'store-host': 'root@127.0.0.4',
        'ssh-key': KEY,
      }),
    );
    expect(checkpoint).toMatchObject({
      sides: ['source'],
      target: { kind: 'ssh', spec: { host: '127.0.0.4' } },
    });
    const restore = planPost(
      settings({ mode: 'restore', target: 'root@127.0.0.3', 'store-host': 'root@127.0.0.4', 'ssh-key': KEY }),
    );
    expect(restore).toMatchObject({
      source: { kind: 'ssh', spec: { host: '127.0.0.4' } },
      sides: ['source', 'target'],
    });
    expect(
      planPost(
        settings({ mode: 'preflight', source: 'root@127.0.0.2', target: 'root@127.0.0.3', 'ssh-key': KEY }),
      ),
    ).toBeUndefined();
  });

  it('keeps the key out of the saved state, in a 0600 file the post step reads and removes', () => {
    const temp = mkdtempSync(join(tmpdir(), 'post-state-'));
    const runtime = fakeRuntime(temp);
    savePostPlan(
      settings({
        source: 'root@127.0.0.2',
        target: 'root@127.0.0.3',
        'ssh-key-path': '/gone/id',
        'ssh-passphrase': 'pw-123456',
      }),
      runtime,
    );
    const saved = runtime.state.get(SAVED.post) ?? '';
    expect(saved).not.toContain(KEY_BODY);
    expect(saved).not.toContain('pw-123456');
    const loaded = loadPostPlan(runtime);
    const file = loaded?.plan.secretFile ?? '';
    expect(file.startsWith(temp)).toBe(true);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(dirname(file)).mode & 0o777).toBe(0o700);
    expect(readFileSync(file, 'utf8')).toContain(KEY_BODY);
    expect(loaded?.connection.ssh.privateKey).toBe(KEY);
    expect(loaded?.connection.ssh.passphrase).toBe('pw-123456');
    expect(loaded?.connection.ssh.knownHosts).toContain(KNOWN);
    expect(loaded?.secrets).toEqual([KEY, 'pw-123456']);
    forgetPostSecrets(loaded!.plan);
    expect(existsSync(dirname(file))).toBe(false);
  });

  it('saves nothing for preflight, and loads nothing when nothing was saved', () => {
    const runtime = fakeRuntime(mkdtempSync(join(tmpdir(), 'post-state-')));
    savePostPlan(
      settings({ mode: 'preflight', source: 'root@127.0.0.2', target: 'root@127.0.0.3', 'ssh-key': KEY }),
      runtime,
    );
    expect(runtime.state.size).toBe(0);
    expect(loadPostPlan(runtime)).toBeUndefined();
  });
});

describe('parseUnitMembers', () => {
  it("reads the unit's member names the main step saved, and nothing that is not a container name", () => {
    expect(parseUnitMembers(JSON.stringify(['shop-redis-1', 'shop-web-1']))).toEqual([
      'shop-redis-1',
      'shop-web-1',
    ]);
    expect(parseUnitMembers('')).toEqual([]);
    expect(parseUnitMembers('not json')).toEqual([]);
    expect(parseUnitMembers(JSON.stringify({ a: 1 }))).toEqual([]);
    expect(parseUnitMembers(JSON.stringify(['ok', '../etc', 7, '-x', 'a b']))).toEqual(['ok']);
  });
});
