import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { type ErrorCode, MigrationError } from '../../src/errors.js';
import { getInputs, INPUT_NAMES, secretsToMask } from '../../src/inputs.js';
import type { MigrateSettings, Settings } from '../../src/settings.js';

const CLOCK = () => new Date('2026-03-04T05:06:07.891Z');

/** A structurally valid openssh-key-v1 blob; no real key material. */
function openSshKey(cipher = 'none'): string {
  const str = (s: string) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(s.length);
    return Buffer.concat([len, Buffer.from(s, 'latin1')]);
  };
  const kdf = cipher === 'none' ? 'none' : 'bcrypt';
  const blob = Buffer.concat([
    Buffer.from('openssh-key-v1\0', 'latin1'),
    str(cipher),
    str(kdf),
    str(''),
    Buffer.alloc(64, 7),
  ]);
  const lines = blob.toString('base64').match(/.{1,70}/g) ?? [];
  return ['-----BEGIN OPENSSH PRIVATE KEY-----', ...lines, '-----END OPENSSH PRIVATE KEY-----', ''].join(
    '\n',
  );
}

const KEY = openSshKey();
const KNOWN_HOSTS = [
  '127.0.0.2 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBtestkeyAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
  '[127.0.0.3]:2222 ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTY=',
  '# hashed entries and markers are fine too',
  '|1|AIQm7x/YbHGYA/LWi99UQaHm8Vw=|ulTNvYoR1sh32MisfUFKhrSLqc4= ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA',
  '@cert-authority *.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB',
].join('\n');

type Inputs = Partial<Record<(typeof INPUT_NAMES)[number], string>>;

const BASE: Inputs = {
  container: 'web',
  target: 'root@127.0.0.3:2222',
  'ssh-key': KEY,
  'known-hosts': KNOWN_HOSTS,
};

function reader(inputs: Inputs): (name: string) => string {
  const map = new Map<string, string>(Object.entries(inputs));
  return (name) => map.get(name) ?? '';
}

function settingsFor(inputs: Inputs, readFile?: (path: string) => string) {
  return getInputs(reader(inputs), CLOCK, readFile);
}

/** The settings of a mode that has a target and verification (migrate, the default). */
function migrateSettings(inputs: Inputs, readFile?: (path: string) => string): MigrateSettings {
  const settings = settingsFor(inputs, readFile);
  if (settings.mode !== 'migrate') throw new Error(`expected migrate settings, got ${settings.mode}`);
  return settings;
}

/** Settings of any mode with a target. */
function targeted(inputs: Inputs): Extract<Settings, { target: unknown }> {
  const settings = settingsFor(inputs);
  if (!('target' in settings)) throw new Error(`mode ${settings.mode} has no target`);
  return settings;
}

function failure(inputs: Inputs, readFile?: (path: string) => string): MigrationError {
  try {
    settingsFor(inputs, readFile);
  } catch (error) {
    if (error instanceof MigrationError) return error;
    throw error;
  }
  throw new Error('expected getInputs to throw');
}

describe('getInputs defaults', () => {
  it('fills every default for a minimal migrate run', () => {
    const settings = migrateSettings(BASE);
    expect(settings).toEqual({
      mode: 'migrate',
      container: 'web',
      source: { kind: 'local' },
      target: { kind: 'ssh', spec: { user: 'root', host: '127.0.0.3', port: 2222 } },
      ssh: { privateKey: KEY, knownHosts: `${KNOWN_HOSTS}\n`, insecureSkipHostKeyCheck: false },
      sudo: false,
      checkpointName: 'web-20260304T050607891Z',
      verifyStableSeconds: 5,
      verifyShowLogs: false,
      verifyTimeoutSeconds: 30,
      sourceAfter: 'stop',
      memory: 'eager',
      route: 'auto',
      streamStallSeconds: 120,
      timeoutMinutes: 30,
      uploadArtifact: true,
      artifactName: 'criu-migration-web-20260304T050607891Z',
      kernelPolicy: 'same-minor',
      strict: false,
      compression: 'auto',
      volumePrecopy: true,
      volumeReplace: false,
      volumeUseTargetOptions: false,
      networkHolder: false,
    });
    expect(settings.verifyLogPattern).toBeUndefined();
    expect(settings.ssh.passphrase).toBeUndefined();
    expect(settings.ssh.jumpHost).toBeUndefined();
  });

  it('reads every declared input exactly once', () => {
    const counts = new Map<string, number>();
    getInputs((name) => {
      counts.set(name, (counts.get(name) ?? 0) + 1);
      return reader(BASE)(name);
    }, CLOCK);
    expect([...counts.keys()].sort()).toEqual([...INPUT_NAMES].sort());
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
  });

  it('needs neither key nor known_hosts when no host is reached over SSH', () => {
    const settings = settingsFor({ container: 'web', mode: 'checkpoint' });
    expect(settings.source).toEqual({ kind: 'local' });
    expect('target' in settings).toBe(false);
    expect(settings.ssh).toEqual({ knownHosts: '', insecureSkipHostKeyCheck: false });
  });

  it('accepts local as target when the source is remote', () => {
    const settings = targeted({ ...BASE, source: 'admin@127.0.0.2', target: 'LOCAL' });
    expect(settings.source).toEqual({ kind: 'ssh', spec: { user: 'admin', host: '127.0.0.2', port: 22 } });
    expect(settings.target).toEqual({ kind: 'local' });
  });

  it('parses every option that was set', () => {
    const settings = migrateSettings({
      ...BASE,
      mode: ' Migrate ',
      source: 'deploy@10.0.0.1:2200',
      'jump-host': 'bastion.example.com',
      'ssh-passphrase': ' secret words ',
      sudo: 'yes',
      'checkpoint-name': 'nightly.1_a-b',
      'verify-log-pattern': '^ready after \\d+ ms$',
      'verify-timeout': '90',
      'source-after': 'remove',
      timeout: '45',
      'upload-artifact': 'no',
      'artifact-name': 'my-run',
      'kernel-policy': 'exact',
      strict: 'TRUE',
      'insecure-skip-host-key-check': 'false',
    });
    expect(settings.mode).toBe('migrate');
    expect(settings.ssh.jumpHost).toEqual({ user: 'root', host: 'bastion.example.com', port: 22 });
    expect(settings.ssh.passphrase).toBe(' secret words ');
    expect(settings.sudo).toBe(true);
    expect(settings.checkpointName).toBe('nightly.1_a-b');
    expect(settings.verifyLogPattern?.test('ready after 12 ms')).toBe(true);
    expect(settings.verifyTimeoutSeconds).toBe(90);
    expect(settings.sourceAfter).toBe('remove');
    expect(settings.timeoutMinutes).toBe(45);
    expect(settings.uploadArtifact).toBe(false);
    expect(settings.artifactName).toBe('my-run');
    expect(settings.kernelPolicy).toBe('exact');
    expect(settings.strict).toBe(true);
  });

  it('allows skipping the host key check without known_hosts', () => {
    const settings = settingsFor({ ...BASE, 'known-hosts': '', 'insecure-skip-host-key-check': 'true' });
    expect(settings.ssh.insecureSkipHostKeyCheck).toBe(true);
    expect(settings.ssh.knownHosts).toBe('');
  });

  it('does not require a target in checkpoint mode, and gives it the store defaults', () => {
    const settings = settingsFor({ ...BASE, mode: 'checkpoint', target: '' });
    expect(settings).toMatchObject({
      mode: 'checkpoint',
      store: { host: settings.source, path: '/var/lib/criu-migrate/checkpoints' },
      retention: 3,
      leaveRunning: true,
    });
  });

  it('reads the store, retention and leave-running in checkpoint mode', () => {
    const settings = settingsFor({
      ...BASE,
      mode: 'checkpoint',
      'store-host': 'backup@10.0.0.9:2222',
      'store-path': '/srv/checkpoints/',
      retention: '0',
      'leave-running': 'false',
    });
    expect(settings).toMatchObject({
      store: {
        host: { kind: 'ssh', spec: { user: 'backup', host: '10.0.0.9', port: 2222 } },
        path: '/srv/checkpoints',
      },
      retention: 0,
      leaveRunning: false,
    });
  });

  it('restores the newest checkpoint unless one is named', () => {
    const newest = settingsFor({ ...BASE, mode: 'restore' });
    expect(newest.mode === 'restore' && newest.restoreFrom).toBeUndefined();
    const named = settingsFor({ ...BASE, mode: 'restore', 'checkpoint-name': 'web-1' });
    expect(named.mode === 'restore' && named.restoreFrom).toBe('web-1');
  });

  it('reads checkpoint-name: latest in restore mode as the newest checkpoint', () => {
    const latest = settingsFor({ ...BASE, mode: 'restore', 'checkpoint-name': 'latest' });
    const newest = settingsFor({ ...BASE, mode: 'restore' });
    expect(latest.mode === 'restore' && latest.restoreFrom).toBeUndefined();
    // Its work directory and artifact are named as for an empty checkpoint-name.
    expect(latest.checkpointName).toBe(newest.checkpointName);
    expect(latest.artifactName).toBe(newest.artifactName);
  });

  it('refuses a checkpoint named latest, which restore mode could not name', () => {
    expect(() => settingsFor({ ...BASE, mode: 'checkpoint', 'checkpoint-name': 'latest' })).toThrow(
      /checkpoint-name: "latest" is reserved/,
    );
  });

  it.each([
    [{ mode: 'restore', target: '' }, /target: is required in restore mode/],
    [
      { mode: 'checkpoint', 'store-path': 'relative/dir' },
      /store-path: "relative\/dir" is not an absolute path/,
    ],
    [{ mode: 'checkpoint', 'store-path': '/srv/../etc' }, /is not an absolute path without "\.\."/],
    [{ mode: 'checkpoint', retention: '-1' }, /retention: "-1" is not a whole number/],
  ])('refuses %o', (extra, message) => {
    expect(failure({ ...BASE, ...extra }).message).toMatch(message);
  });
});

describe('drill and list modes', () => {
  it('drills the newest checkpoint, a named one or one of a series, on a target, from the store', () => {
    const drill = settingsFor({
      ...BASE,
      mode: 'drill',
      'store-host': 'backup@10.0.0.9',
      'verify-stable-seconds': '60',
    });
    expect(drill).toMatchObject({
      mode: 'drill',
      container: 'web',
      target: { kind: 'ssh', spec: { user: 'root', host: '127.0.0.3', port: 2222 } },
      store: { host: { kind: 'ssh', spec: { user: 'backup', host: '10.0.0.9' } } },
      verifyStableSeconds: 60,
    });
    expect(drill.mode === 'drill' && drill.restoreFrom).toBeUndefined();
    const named = settingsFor({ ...BASE, mode: 'drill', 'checkpoint-name': 'web-1', series: 'abc123' });
    expect(named).toMatchObject({ restoreFrom: 'web-1', series: 'abc123' });
    const latest = settingsFor({ ...BASE, mode: 'drill', 'checkpoint-name': 'latest' });
    expect(latest.mode === 'drill' && latest.restoreFrom).toBeUndefined();
  });

  it('needs a target to drill on', () => {
    expect(failure({ ...BASE, mode: 'drill', target: '' }).message).toMatch(
      /target: is required in drill mode/,
    );
  });

  it('lists one container, one series, or with no container every one', () => {
    expect(settingsFor({ ...BASE, mode: 'list', 'store-host': 'backup@10.0.0.9' })).toMatchObject({
      mode: 'list',
      container: 'web',
    });
    const all = settingsFor({
      ...BASE,
      mode: 'list',
      container: '',
      target: '',
      'store-host': 'backup@10.0.0.9',
    });
    expect(all).toMatchObject({ mode: 'list', container: '' });
    expect(all.checkpointName).toMatch(/^store-\d{8}T\d{9}Z$/);
    expect(settingsFor({ ...BASE, mode: 'list', series: 'abc123' })).toMatchObject({ series: 'abc123' });
    expect(failure({ ...BASE, mode: 'list', series: '../x' }).message).toMatch(
      /series: "\.\.\/x" is not a series ID/,
    );
  });

  it('still requires a container in every other mode', () => {
    expect(failure({ ...BASE, mode: 'drill', container: '' }).message).toMatch(/container: is required/);
  });
});

describe('checkpoint name', () => {
  it.each([
    ['web', 'web-20260304T050607891Z'],
    ['/web', 'web-20260304T050607891Z'],
    ['my_app.v2', 'my_app.v2-20260304T050607891Z'],
    ['3f2a9c', '3f2a9c-20260304T050607891Z'],
  ])('defaults to <container>-<UTC timestamp> for %s', (container, expected) => {
    const name = settingsFor({ ...BASE, container }).checkpointName;
    expect(name).toBe(expected);
    expect(name).toMatch(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/);
  });

  it('shortens a long container name so the default stays within 128 characters', () => {
    const container = `a${'b'.repeat(200)}`;
    const name = settingsFor({ ...BASE, container }).checkpointName;
    expect(name).toHaveLength(128);
    expect(name.endsWith('-20260304T050607891Z')).toBe(true);
  });

  it('uses the clock at call time, in UTC', () => {
    const settings = getInputs(reader(BASE), () => new Date(Date.UTC(2030, 11, 31, 23, 59, 59)));
    expect(settings.checkpointName).toBe('web-20301231T235959000Z');
  });

  it('accepts a 128-character name', () => {
    const name = `x${'y'.repeat(127)}`;
    expect(settingsFor({ ...BASE, 'checkpoint-name': name }).checkpointName).toBe(name);
  });
});

describe('host addresses', () => {
  it.each([
    ['[2001:db8::5]', { user: 'root', host: '2001:db8::5', port: 22 }],
    ['deploy@[2001:db8::5]:2222', { user: 'deploy', host: '2001:db8::5', port: 2222 }],
    ['[::1]:22', { user: 'root', host: '::1', port: 22 }],
    ['[fe80::1%eth0]', { user: 'root', host: 'fe80::1%eth0', port: 22 }],
    ['host-2.example.com', { user: 'root', host: 'host-2.example.com', port: 22 }],
  ])('target %s', (target, spec) => {
    expect(targeted({ ...BASE, target }).target).toEqual({ kind: 'ssh', spec });
  });

  it('names the IPv6 target in the keyscan advice when known_hosts is missing', () => {
    const error = failure({ ...BASE, target: 'root@[2001:db8::5]:2222', 'known-hosts': '' });
    expect(error.remedy).toContain('ssh-keyscan -p 2222 2001:db8::5');
  });

  it('lists every SSH host, jump host included, in the keyscan advice', () => {
    const error = failure({
      ...BASE,
      source: '127.0.0.2',
      'jump-host': 'jump@bastion:2022',
      'known-hosts': '',
    });
    expect(error.code).toBe('INPUT_INVALID');
    expect(error.message).toContain('known-hosts');
    expect(error.remedy).toContain('ssh-keyscan -p 22 127.0.0.2');
    expect(error.remedy).toContain('ssh-keyscan -p 2222 127.0.0.3');
    expect(error.remedy).toContain('ssh-keyscan -p 2022 bastion');
  });
});

describe('ssh keys', () => {
  const ec = (options: { cipher?: string; passphrase?: string; type?: 'sec1' | 'pkcs8' } = {}) =>
    generateKeyPairSync('ec', {
      namedCurve: 'P-256',
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: {
        type: options.type ?? 'sec1',
        format: 'pem',
        ...(options.cipher ? { cipher: options.cipher, passphrase: options.passphrase ?? '' } : {}),
      },
    }).privateKey;

  it('accepts a PEM EC key and normalises line endings', () => {
    const pem = ec();
    const settings = settingsFor({ ...BASE, 'ssh-key': pem.replace(/\n/g, '\r\n') });
    expect(settings.ssh.privateKey).toBe(`${pem.trim()}\n`);
  });

  it('accepts an encrypted key with a passphrase', () => {
    const pem = ec({ cipher: 'aes-128-cbc', passphrase: 'pw' });
    expect(pem).toContain('Proc-Type: 4,ENCRYPTED');
    expect(settingsFor({ ...BASE, 'ssh-key': pem, 'ssh-passphrase': 'pw' }).ssh.passphrase).toBe('pw');
  });

  it('accepts an encrypted OpenSSH key with a passphrase', () => {
    const key = openSshKey('aes256-ctr');
    expect(settingsFor({ ...BASE, 'ssh-key': key, 'ssh-passphrase': 'pw' }).ssh.privateKey).toBe(key);
  });

  it('accepts a PuTTY key', () => {
    const ppk = 'PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nComment: x\nPublic-Lines: 2\nAAAA\n';
    expect(settingsFor({ ...BASE, 'ssh-key': ppk }).ssh.privateKey).toBe(ppk);
  });

  it('reads ssh-key-path through the given reader, expanding ~', () => {
    const paths: string[] = [];
    const settings = settingsFor({ ...BASE, 'ssh-key': '', 'ssh-key-path': '~/.ssh/id_ed25519' }, (path) => {
      paths.push(path);
      return KEY;
    });
    expect(paths).toEqual([`${homedir()}/.ssh/id_ed25519`]);
    expect(settings.ssh.privateKey).toBe(KEY);
  });

  it('keeps the key and passphrase for masking, line by line too', () => {
    const settings = settingsFor({ ...BASE, 'ssh-passphrase': 'hunter22' });
    const secrets = secretsToMask(settings);
    expect(secrets).toContain(KEY);
    expect(secrets).toContain('hunter22');
    const bodyLines = KEY.split('\n').filter((line) => line.length >= 8 && !line.startsWith('-----'));
    expect(bodyLines.length).toBeGreaterThan(1);
    for (const line of bodyLines) expect(secrets).toContain(line);
    expect(secrets).not.toContain('-----BEGIN OPENSSH PRIVATE KEY-----');
    expect(secrets).not.toContain('-----END OPENSSH PRIVATE KEY-----');
  });

  it('has nothing to mask without SSH', () => {
    expect(secretsToMask(settingsFor({ container: 'web', target: '', mode: 'checkpoint' }))).toEqual([]);
  });

  it('never puts the key text in an error', () => {
    const pem = ec({ type: 'pkcs8' });
    const error = failure({ ...BASE, 'ssh-key': pem });
    const body = pem.split('\n')[1] ?? '';
    expect(body.length).toBeGreaterThan(20);
    expect(`${error.message} ${error.remedy}`).not.toContain(body);
  });
});

type Case = [title: string, inputs: Inputs, code: ErrorCode, input: string, fragment?: string];

const EC_PKCS8 = generateKeyPairSync('ec', {
  namedCurve: 'P-256',
  publicKeyEncoding: { type: 'spki', format: 'pem' },
  privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
}).privateKey;
const EC_ENCRYPTED = generateKeyPairSync('ec', {
  namedCurve: 'P-256',
  publicKeyEncoding: { type: 'spki', format: 'pem' },
  privateKeyEncoding: { type: 'sec1', format: 'pem', cipher: 'aes-128-cbc', passphrase: 'pw' },
}).privateKey;

const ERROR_CASES: Case[] = [
  [
    'unknown mode',
    { ...BASE, mode: 'bogus' },
    'INPUT_INVALID',
    'mode',
    'migrate, preflight, checkpoint, restore',
  ],
  ['missing container', { ...BASE, container: '' }, 'INPUT_INVALID', 'container', 'required'],
  ['container with a space', { ...BASE, container: 'my app' }, 'INPUT_INVALID', 'container'],
  ['container with a slash inside', { ...BASE, container: 'a/b' }, 'INPUT_INVALID', 'container'],
  ['container starting with a dash', { ...BASE, container: '-web' }, 'INPUT_INVALID', 'container'],
  ['one-letter non-hex container', { ...BASE, container: 'x' }, 'INPUT_INVALID', 'container'],
  ['bad source', { ...BASE, source: 'root@host:99999' }, 'INPUT_INVALID', 'source', 'port'],
  ['bare IPv6 target', { ...BASE, target: '2001:db8::5' }, 'INPUT_INVALID', 'target', 'brackets'],
  ['unclosed IPv6 target', { ...BASE, target: '[2001:db8::5' }, 'INPUT_INVALID', 'target'],
  ['target missing in migrate', { ...BASE, target: '' }, 'INPUT_INVALID', 'target', 'required in migrate'],
  [
    'target missing in preflight',
    { ...BASE, target: '', mode: 'preflight' },
    'INPUT_INVALID',
    'target',
    'required in preflight',
  ],
  ['target same as source', { ...BASE, source: '127.0.0.3:2222' }, 'INPUT_INVALID', 'target', 'same host'],
  ['both local', { ...BASE, target: 'local' }, 'INPUT_INVALID', 'target', 'same host'],
  ['bad jump host', { ...BASE, 'jump-host': 'a b' }, 'INPUT_INVALID', 'jump-host'],
  ['no key for ssh', { ...BASE, 'ssh-key': '' }, 'SSH_KEY_MISSING', 'ssh-key', 'target root@127.0.0.3:2222'],
  ['key and key path', { ...BASE, 'ssh-key-path': '/k' }, 'INPUT_INVALID', 'ssh-key-path', 'only one'],
  [
    'public key',
    { ...BASE, 'ssh-key': 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB me@laptop' },
    'INPUT_INVALID',
    'ssh-key',
    'public key',
  ],
  ['PKCS#8 key', { ...BASE, 'ssh-key': EC_PKCS8 }, 'INPUT_INVALID', 'ssh-key', 'PKCS#8'],
  ['not a key', { ...BASE, 'ssh-key': 'hello' }, 'INPUT_INVALID', 'ssh-key', 'does not look like'],
  [
    'escaped newlines',
    { ...BASE, 'ssh-key': KEY.trim().replace(/\n/g, '\\n') },
    'INPUT_INVALID',
    'ssh-key',
    'literal',
  ],
  ['truncated key', { ...BASE, 'ssh-key': KEY.split('-----END')[0] }, 'INPUT_INVALID', 'ssh-key', 'cut off'],
  [
    'text around the key',
    { ...BASE, 'ssh-key': `my key:\n${KEY}` },
    'INPUT_INVALID',
    'ssh-key',
    'before or after',
  ],
  [
    'mismatched markers',
    { ...BASE, 'ssh-key': KEY.replace('END OPENSSH', 'END RSA') },
    'INPUT_INVALID',
    'ssh-key',
    'mismatched',
  ],
  [
    'damaged OpenSSH body',
    {
      ...BASE,
      'ssh-key': '-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----',
    },
    'INPUT_INVALID',
    'ssh-key',
    'damaged',
  ],
  [
    'encrypted OpenSSH key without passphrase',
    { ...BASE, 'ssh-key': openSshKey('aes256-ctr') },
    'INPUT_INVALID',
    'ssh-passphrase',
    'encrypted',
  ],
  [
    'encrypted PEM key without passphrase',
    { ...BASE, 'ssh-key': EC_ENCRYPTED },
    'INPUT_INVALID',
    'ssh-passphrase',
    'encrypted',
  ],
  [
    'encrypted PuTTY key without passphrase',
    { ...BASE, 'ssh-key': 'PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: aes256-cbc\nAAAA' },
    'INPUT_INVALID',
    'ssh-passphrase',
  ],
  ['missing known_hosts', { ...BASE, 'known-hosts': '' }, 'INPUT_INVALID', 'known-hosts', '127.0.0.3'],
  [
    'known_hosts given as a path',
    { ...BASE, 'known-hosts': '~/.ssh/known_hosts' },
    'INPUT_INVALID',
    'known-hosts',
    'file path',
  ],
  [
    'known_hosts line without host',
    { ...BASE, 'known-hosts': 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB' },
    'INPUT_INVALID',
    'known-hosts',
    'line 1',
  ],
  [
    'known_hosts garbage on line 2',
    { ...BASE, 'known-hosts': `${KNOWN_HOSTS.split('\n')[0]}\nnot a line` },
    'INPUT_INVALID',
    'known-hosts',
    'line 2',
  ],
  [
    'bad insecure flag',
    { ...BASE, 'insecure-skip-host-key-check': 'maybe' },
    'INPUT_INVALID',
    'insecure-skip-host-key-check',
  ],
  ['bad sudo', { ...BASE, sudo: 'sometimes' }, 'INPUT_INVALID', 'sudo', 'true or false'],
  [
    'checkpoint name as path',
    { ...BASE, 'checkpoint-name': '../etc/x' },
    'INPUT_INVALID',
    'checkpoint-name',
    'path',
  ],
  [
    'absolute checkpoint path',
    { ...BASE, 'checkpoint-name': '/tmp/x' },
    'INPUT_INVALID',
    'checkpoint-name',
    'path',
  ],
  ['checkpoint name with space', { ...BASE, 'checkpoint-name': 'a b' }, 'INPUT_INVALID', 'checkpoint-name'],
  [
    'checkpoint name starting with a dot',
    { ...BASE, 'checkpoint-name': '.x' },
    'INPUT_INVALID',
    'checkpoint-name',
  ],
  [
    'checkpoint name too long',
    { ...BASE, 'checkpoint-name': 'a'.repeat(129) },
    'INPUT_INVALID',
    'checkpoint-name',
  ],
  [
    'bad pattern',
    { ...BASE, 'verify-log-pattern': 'ready (' },
    'INPUT_INVALID',
    'verify-log-pattern',
    'regular expression',
  ],
  ['zero verify timeout', { ...BASE, 'verify-timeout': '0' }, 'INPUT_INVALID', 'verify-timeout'],
  ['fractional verify timeout', { ...BASE, 'verify-timeout': '1.5' }, 'INPUT_INVALID', 'verify-timeout'],
  ['verify timeout with unit', { ...BASE, 'verify-timeout': '30s' }, 'INPUT_INVALID', 'verify-timeout'],
  [
    'verify timeout longer than timeout',
    { ...BASE, 'verify-timeout': '600', timeout: '5' },
    'INPUT_INVALID',
    'verify-timeout',
    'timeout: 5 minutes',
  ],
  [
    'bad source-after',
    { ...BASE, 'source-after': 'delete' },
    'INPUT_INVALID',
    'source-after',
    'stop, remove',
  ],
  ['negative timeout', { ...BASE, timeout: '-1' }, 'INPUT_INVALID', 'timeout'],
  ['huge timeout', { ...BASE, timeout: '99999999' }, 'INPUT_INVALID', 'timeout', 'maximum'],
  ['bad upload-artifact', { ...BASE, 'upload-artifact': '1' }, 'INPUT_INVALID', 'upload-artifact'],
  ['artifact name with slash', { ...BASE, 'artifact-name': 'a/b' }, 'INPUT_INVALID', 'artifact-name'],
  [
    'bad kernel policy',
    { ...BASE, 'kernel-policy': 'major' },
    'INPUT_INVALID',
    'kernel-policy',
    'same-minor, exact, any',
  ],
  ['bad strict', { ...BASE, strict: 'on' }, 'INPUT_INVALID', 'strict'],
];

describe('validation errors', () => {
  it.each(ERROR_CASES)('%s', (_title, inputs, code, input, fragment) => {
    const error = failure(inputs);
    expect(error.code).toBe(code);
    expect(error.message.startsWith(`${input}:`)).toBe(true);
    if (fragment) expect(`${error.message} ${error.remedy}`).toContain(fragment);
    expect(error.remedy).toBeTruthy();
    expect(error.step).toBe('inputs');
  });

  it('reports an unreadable ssh-key-path with the reason', () => {
    const error = failure({ ...BASE, 'ssh-key': '', 'ssh-key-path': '/nope/id' }, () => {
      throw new Error('ENOENT: no such file or directory');
    });
    expect(error.code).toBe('INPUT_INVALID');
    expect(error.message).toBe('ssh-key-path: cannot read "/nope/id": ENOENT: no such file or directory');
  });

  it('reports an empty key file', () => {
    const error = failure({ ...BASE, 'ssh-key': '', 'ssh-key-path': '/k' }, () => '\n');
    expect(error.message).toContain('ssh-key-path');
    expect(error.message).toContain('empty');
  });

  it('checks a key file like key text', () => {
    const error = failure({ ...BASE, 'ssh-key': '', 'ssh-key-path': '/k.pub' }, () => 'ssh-rsa AAAAB3Nz me');
    expect(error.message).toMatch(/^ssh-key-path: holds a public key/);
  });
});

describe('action.yml', () => {
  const yaml = readFileSync(new URL('../../action.yml', import.meta.url), 'utf8');
  const section = yaml.slice(yaml.indexOf('\ninputs:'), yaml.indexOf('\noutputs:'));
  const declared = new Map<string, string | undefined>();
  let current = '';
  for (const line of section.split('\n')) {
    const name = /^ {2}([a-z0-9-]+):$/.exec(line);
    if (name?.[1]) {
      current = name[1];
      declared.set(current, undefined);
    }
    const fallback = /^ {4}default: '?([^']*)'?$/.exec(line);
    if (fallback && current) declared.set(current, fallback[1]);
  }

  it('declares exactly the inputs the code reads', () => {
    expect([...declared.keys()].sort()).toEqual([...INPUT_NAMES].sort());
  });

  it('has defaults that mean the same as leaving the inputs empty', () => {
    const withDefaults: Inputs = { ...BASE };
    for (const [name, value] of declared) {
      if (value !== undefined) Object.assign(withDefaults, { [name]: value });
    }
    expect(settingsFor(withDefaults)).toEqual(settingsFor(BASE));
  });

  it('declares the outputs', () => {
    const outputs = yaml.slice(yaml.indexOf('\noutputs:'), yaml.indexOf('\nruns:'));
    const names = [...outputs.matchAll(/^ {2}([a-z-]+):$/gm)].map((m) => m[1]);
    expect(names).toEqual([
      'status',
      'leftovers',
      'error-code',
      'checkpoint-name',
      'target-container-id',
      'downtime-ms',
      'duration-ms',
      'checkpoint-bytes',
      'transferred-bytes',
      'checkpoint-path',
      'frozen-ms',
      'series',
      'restorable',
      'restorable-reason',
      'drill-container',
      'listing',
      'artifact-id',
      'metadata-path',
      'unit',
      'report',
      'report-path',
      'matrix',
    ]);
    expect(yaml).toMatch(/runs:\n {2}using: node24\n {2}main: dist\/index\.js/);
  });
});

describe('memory in preflight mode', () => {
  it('reads memory, so preflight can run the lazy checks migrate would run', () => {
    const lazy = settingsFor({ ...BASE, mode: 'preflight', memory: 'lazy' });
    expect(lazy.mode === 'preflight' && lazy.memory).toBe('lazy');
    const plain = settingsFor({ ...BASE, mode: 'preflight' });
    expect(plain.mode === 'preflight' && plain.memory).toBe('eager');
    expect(() => settingsFor({ ...BASE, mode: 'preflight', memory: 'lasy' })).toThrow(/memory/);
  });
});

describe('selection', () => {
  it('names several containers in preflight mode, in place of container', () => {
    const settings = settingsFor({ ...BASE, container: '', mode: 'preflight', selection: 'compose=shop' });
    expect(settings.mode === 'preflight' && settings.selection).toEqual({ kind: 'compose', project: 'shop' });
    expect(settings.container).toBe('selection');
  });
  it('is refused beside container, and in the modes that move one container', () => {
    expect(() => settingsFor({ ...BASE, mode: 'preflight', selection: 'all' })).toThrow(
      /selection: and container are both set/,
    );
    expect(() => settingsFor({ ...BASE, container: '', selection: 'all' })).toThrow(
      /selection: works in preflight mode only, not in migrate mode/,
    );
  });
});

describe('unit', () => {
  it('moves a compose project as one unit in migrate mode, named after the project', () => {
    const settings = settingsFor({ ...BASE, container: '', unit: 'compose:shop' });
    expect(settings.mode === 'migrate' && settings.compose).toEqual({ project: 'shop' });
    expect(settings.container).toBe('compose-shop');
    expect(settings.checkpointName).toMatch(/^compose-shop-/);
  });
  it("takes a plain container's matrix entry as container", () => {
    const settings = settingsFor({ ...BASE, container: '', unit: 'api' });
    expect(settings.container).toBe('api');
    expect(settings.mode === 'migrate' && settings.compose).toBeUndefined();
  });
  it('is refused beside container, and for a project outside migrate, checkpoint and restore modes', () => {
    expect(() => settingsFor({ ...BASE, unit: 'compose:shop' })).toThrow(/unit: and container are both set/);
    expect(() => settingsFor({ ...BASE, container: '', mode: 'preflight', unit: 'compose:shop' })).toThrow(
      /unit: a compose project moves as one unit in migrate, checkpoint and restore modes only, not in preflight mode/,
    );
    expect(() =>
      settingsFor({
        ...BASE,
        container: '',
        mode: 'drill',
        'store-host': 'root@store',
        unit: 'compose:shop',
      }),
    ).toThrow(/not in drill mode/);
  });
  it('checkpoints and restores a compose project as one unit', () => {
    const taken = settingsFor({
      ...BASE,
      container: '',
      mode: 'checkpoint',
      'store-host': 'root@store',
      unit: 'compose:shop',
    });
    expect(taken.mode === 'checkpoint' && taken.compose).toEqual({ project: 'shop' });
    expect(taken.checkpointName).toMatch(/^compose-shop-/);
    const restored = settingsFor({
      ...BASE,
      container: '',
      mode: 'restore',
      'store-host': 'root@store',
      unit: 'compose:shop',
      'checkpoint-name': 'nightly',
    });
    expect(restored.mode === 'restore' && restored.compose).toEqual({ project: 'shop' });
    expect(restored.mode === 'restore' && restored.restoreFrom).toBe('nightly');
  });
  it('refuses leave-running: false for a unit checkpoint (a half-stopped project on any failure)', () => {
    expect(() =>
      settingsFor({
        ...BASE,
        container: '',
        mode: 'checkpoint',
        'store-host': 'root@store',
        unit: 'compose:shop',
        'leave-running': 'false',
      }),
    ).toThrow(/leave-running: false is not supported for a compose unit/);
  });
});

describe('strict and insecure-skip-host-key-check', () => {
  it('refuses the pair in migrate mode', () => {
    expect(() =>
      settingsFor({ ...BASE, strict: 'true', 'insecure-skip-host-key-check': 'true', 'known-hosts': '' }),
    ).toThrow(/insecure-skip-host-key-check: is true, which strict: true does not allow in migrate mode/);
  });
  it('leaves it to the gate in preflight mode', () => {
    const settings = settingsFor({
      ...BASE,
      mode: 'preflight',
      strict: 'true',
      'insecure-skip-host-key-check': 'true',
      'known-hosts': '',
    });
    expect(settings.ssh.insecureSkipHostKeyCheck).toBe(true);
  });
});
