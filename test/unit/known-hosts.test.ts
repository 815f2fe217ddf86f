import { execFileSync } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  checkHostKey,
  fingerprint,
  keyTypeOf,
  knownHostsName,
  matchHostKeys,
  parseKnownHosts,
} from '../../src/host/known-hosts.js';

function sshString(data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  return Buffer.concat([length, data]);
}

/** A public key blob of the given type; the key material is random, which parsing does not mind. */
function keyBlob(type = 'ssh-ed25519'): Buffer {
  return Buffer.concat([sshString(Buffer.from(type)), sshString(randomBytes(32))]);
}

function b64(blob: Buffer): string {
  return blob.toString('base64');
}

/** A hashed host field as `ssh-keygen -H` writes it. */
function hashed(name: string, salt = randomBytes(20)): string {
  const hash = createHmac('sha1', salt).update(name).digest();
  return `|1|${salt.toString('base64')}|${hash.toString('base64')}`;
}

const keyA = keyBlob();
const keyB = keyBlob();
const keyC = keyBlob('ecdsa-sha2-nistp256');

describe('knownHostsName', () => {
  it.each([
    ['example.com', 22, 'example.com'],
    ['Example.COM', 22, 'example.com'],
    ['10.0.0.5', 2222, '[10.0.0.5]:2222'],
    ['2001:db8::5', 22, '2001:db8::5'],
    ['2001:db8::5', 2200, '[2001:db8::5]:2200'],
  ])('%s port %i is looked up as %s', (host, port, name) => {
    expect(knownHostsName(host, port)).toBe(name);
  });
});

describe('checkHostKey', () => {
  const cases: Array<{
    name: string;
    text: string;
    host: string;
    port: number;
    key: Buffer;
    expected: ReturnType<typeof checkHostKey>;
  }> = [
    {
      name: 'plain host name',
      text: `host1.example.com ssh-ed25519 ${b64(keyA)}`,
      host: 'host1.example.com',
      port: 22,
      key: keyA,
      expected: { ok: true },
    },
    {
      name: 'plain host with a trailing comment',
      text: `10.0.0.2 ssh-ed25519 ${b64(keyA)} root@host1`,
      host: '10.0.0.2',
      port: 22,
      key: keyA,
      expected: { ok: true },
    },
    {
      name: 'host name matching ignores case',
      text: `HOST1.example.com ssh-ed25519 ${b64(keyA)}`,
      host: 'host1.EXAMPLE.com',
      port: 22,
      key: keyA,
      expected: { ok: true },
    },
    {
      name: 'a different key for a known host',
      text: `10.0.0.2 ssh-ed25519 ${b64(keyA)}`,
      host: '10.0.0.2',
      port: 22,
      key: keyB,
      expected: { ok: false, reason: 'mismatch' },
    },
    {
      name: 'a host not listed at all',
      text: `10.0.0.2 ssh-ed25519 ${b64(keyA)}`,
      host: '10.0.0.3',
      port: 22,
      key: keyA,
      expected: { ok: false, reason: 'unknown' },
    },
    {
      name: 'empty file',
      text: '',
      host: '10.0.0.3',
      port: 22,
      key: keyA,
      expected: { ok: false, reason: 'unknown' },
    },
    {
      name: 'comma list, second name',
      text: `host1,10.0.0.2,host1.example.com ssh-ed25519 ${b64(keyA)}`,
      host: '10.0.0.2',
      port: 22,
      key: keyA,
      expected: { ok: true },
    },
    {
      name: 'non-standard port needs [host]:port',
      text: `[10.0.0.2]:2222 ssh-ed25519 ${b64(keyA)}`,
      host: '10.0.0.2',
      port: 2222,
      key: keyA,
      expected: { ok: true },
    },
    {
      name: 'a bare host does not cover another port',
      text: `10.0.0.2 ssh-ed25519 ${b64(keyA)}`,
      host: '10.0.0.2',
      port: 2222,
      key: keyA,
      expected: { ok: false, reason: 'unknown' },
    },
    {
      name: '[host]:port does not cover port 22',
      text: `[10.0.0.2]:2222 ssh-ed25519 ${b64(keyA)}`,
      host: '10.0.0.2',
      port: 22,
      key: keyA,
      expected: { ok: false, reason: 'unknown' },
    },
    {
      name: '[host]:22 is not how OpenSSH writes port 22',
      text: `[10.0.0.2]:22 ssh-ed25519 ${b64(keyA)}`,
      host: '10.0.0.2',
      port: 22,
      key: keyA,
      expected: { ok: false, reason: 'unknown' },
    },
    {
      name: 'IPv6 on a non-standard port',
      text: `[2001:db8::5]:2200 ssh-ed25519 ${b64(keyA)}`,
      host: '2001:db8::5',
      port: 2200,
      key: keyA,
      expected: { ok: true },
    },
    {
      name: 'hashed entry, port 22',
      text: `${hashed('10.0.0.2')} ssh-ed25519 ${b64(keyA)}`,
      host: '10.0.0.2',
      port: 22,
      key: keyA,
      expected: { ok: true },
    },
    {
      name: 'hashed entry, other host',
      text: `${hashed('10.0.0.2')} ssh-ed25519 ${b64(keyA)}`,
      host: '10.0.0.20',
      port: 22,
      key: keyA,
      expected: { ok: false, reason: 'unknown' },
    },
    {
      name: 'hashed entry, non-standard port hashes [host]:port',
      text: `${hashed('[10.0.0.2]:2222')} ssh-ed25519 ${b64(keyA)}`,
      host: '10.0.0.2',
      port: 2222,
      key: keyA,
      expected: { ok: true },
    },
    {
      name: 'hashed entry of the bare host does not cover another port',
      text: `${hashed('10.0.0.2')} ssh-ed25519 ${b64(keyA)}`,
      host: '10.0.0.2',
      port: 2222,
      key: keyA,
      expected: { ok: false, reason: 'unknown' },
    },
    {
      name: 'hashed entry with a different key',
      text: `${hashed('host1.example.com')} ssh-ed25519 ${b64(keyA)}`,
      host: 'host1.example.com',
      port: 22,
      key: keyB,
      expected: { ok: false, reason: 'mismatch' },
    },
    {
      name: 'hashed entries are of the lower-cased name',
      text: `${hashed('host1.example.com')} ssh-ed25519 ${b64(keyA)}`,
      host: 'Host1.Example.com',
      port: 22,
      key: keyA,
      expected: { ok: true },
    },
    {
      name: '* wildcard',
      text: `*.example.com ssh-ed25519 ${b64(keyA)}`,
      host: 'db.eu.example.com',
      port: 22,
      key: keyA,
      expected: { ok: true },
    },
    {
      name: '* wildcard does not match another domain',
      text: `*.example.com ssh-ed25519 ${b64(keyA)}`,
      host: 'example.org',
      port: 22,
      key: keyA,
      expected: { ok: false, reason: 'unknown' },
    },
    {
      name: '? wildcard matches one character',
      text: `10.0.0.? ssh-ed25519 ${b64(keyA)}`,
      host: '10.0.0.7',
      port: 22,
      key: keyA,
      expected: { ok: true },
    },
    {
      name: '? wildcard does not match two characters',
      text: `10.0.0.? ssh-ed25519 ${b64(keyA)}`,
      host: '10.0.0.17',
      port: 22,
      key: keyA,
      expected: { ok: false, reason: 'unknown' },
    },
    {
      name: 'wildcards inside [host]:port',
      text: `[10.0.0.*]:2222 ssh-ed25519 ${b64(keyA)}`,
      host: '10.0.0.44',
      port: 2222,
      key: keyA,
      expected: { ok: true },
    },
    {
      name: 'dots are literal, not regular expression wildcards',
      text: `10.0.0.2 ssh-ed25519 ${b64(keyA)}`,
      host: '10x0x0x2',
      port: 22,
      key: keyA,
      expected: { ok: false, reason: 'unknown' },
    },
    {
      name: 'negation excludes a host a wildcard covers',
      text: `*.example.com,!bad.example.com ssh-ed25519 ${b64(keyA)}`,
      host: 'bad.example.com',
      port: 22,
      key: keyA,
      expected: { ok: false, reason: 'unknown' },
    },
    {
      name: 'negation order does not matter',
      text: `!bad.example.com,*.example.com ssh-ed25519 ${b64(keyA)}`,
      host: 'bad.example.com',
      port: 22,
      key: keyA,
      expected: { ok: false, reason: 'unknown' },
    },
    {
      name: 'negation leaves other hosts matched',
      text: `*.example.com,!bad.example.com ssh-ed25519 ${b64(keyA)}`,
      host: 'good.example.com',
      port: 22,
      key: keyA,
      expected: { ok: true },
    },
    {
      name: 'a negation alone matches nothing',
      text: `!bad.example.com ssh-ed25519 ${b64(keyA)}`,
      host: 'good.example.com',
      port: 22,
      key: keyA,
      expected: { ok: false, reason: 'unknown' },
    },
    {
      name: 'revoked key',
      text: `@revoked 10.0.0.2 ssh-ed25519 ${b64(keyA)}`,
      host: '10.0.0.2',
      port: 22,
      key: keyA,
      expected: { ok: false, reason: 'revoked' },
    },
    {
      name: 'revoked wins over an allowing line',
      text: `10.0.0.2 ssh-ed25519 ${b64(keyA)}\n@revoked * ssh-ed25519 ${b64(keyA)}`,
      host: '10.0.0.2',
      port: 22,
      key: keyA,
      expected: { ok: false, reason: 'revoked' },
    },
    {
      name: 'revoking one key leaves another allowed',
      text: `10.0.0.2 ssh-ed25519 ${b64(keyB)}\n@revoked * ssh-ed25519 ${b64(keyA)}`,
      host: '10.0.0.2',
      port: 22,
      key: keyB,
      expected: { ok: true },
    },
    {
      name: 'a revoked line alone does not make a host known',
      text: `@revoked 10.0.0.2 ssh-ed25519 ${b64(keyA)}`,
      host: '10.0.0.2',
      port: 22,
      key: keyB,
      expected: { ok: false, reason: 'unknown' },
    },
    {
      name: '@cert-authority lines vouch for nothing',
      text: `@cert-authority *.example.com ssh-ed25519 ${b64(keyA)}`,
      host: 'host1.example.com',
      port: 22,
      key: keyA,
      expected: { ok: false, reason: 'unknown' },
    },
    {
      name: 'unknown markers are ignored',
      text: `@trusted 10.0.0.2 ssh-ed25519 ${b64(keyA)}`,
      host: '10.0.0.2',
      port: 22,
      key: keyA,
      expected: { ok: false, reason: 'unknown' },
    },
    {
      name: 'several keys of different types for one host',
      text: `10.0.0.2 ecdsa-sha2-nistp256 ${b64(keyC)}\n10.0.0.2 ssh-ed25519 ${b64(keyA)}`,
      host: '10.0.0.2',
      port: 22,
      key: keyA,
      expected: { ok: true },
    },
    {
      name: 'comments, blank lines, CRLF and indentation',
      text: `# written by ssh-keyscan\r\n\r\n   \r\n  10.0.0.2   ssh-ed25519\t${b64(keyA)}  # host 1\r\n`,
      host: '10.0.0.2',
      port: 22,
      key: keyA,
      expected: { ok: true },
    },
  ];

  it.each(cases)('$name', ({ text, host, port, key, expected }) => {
    expect(checkHostKey(parseKnownHosts(text), host, port, key)).toEqual(expected);
  });
});

describe('parseKnownHosts', () => {
  it.each([
    ['a host field only', '10.0.0.2'],
    ['no key', '10.0.0.2 ssh-ed25519'],
    ['key that is not base64', '10.0.0.2 ssh-ed25519 not*base64!'],
    ['key whose blob names another type', `10.0.0.2 ssh-rsa ${b64(keyA)}`],
    ['truncated blob', `10.0.0.2 ssh-ed25519 ${b64(keyA.subarray(0, 6))}`],
    ['hashed field with a bad version', `|2|c2FsdA==|aGFzaA== ssh-ed25519 ${b64(keyA)}`],
    ['hashed field with a short hash', `|1|c2FsdA==|aGFzaA== ssh-ed25519 ${b64(keyA)}`],
    ['hashed field with missing parts', `|1|c2FsdA== ssh-ed25519 ${b64(keyA)}`],
    ['empty negation', `! ssh-ed25519 ${b64(keyA)}`],
    ['only commas', `,,, ssh-ed25519 ${b64(keyA)}`],
    ['a marker and nothing else', '@revoked'],
  ])('skips a malformed line: %s', (_name, line) => {
    expect(parseKnownHosts(line)).toEqual([]);
  });

  it('keeps good lines around bad ones, with their line numbers', () => {
    const text = [
      'garbage',
      `10.0.0.2 ssh-ed25519 ${b64(keyA)}`,
      '# comment',
      `10.0.0.3 ssh-ed25519 ${b64(keyB)}`,
    ].join('\n');
    const entries = parseKnownHosts(text);
    expect(entries.map((entry) => entry.line)).toEqual([2, 4]);
    expect(entries[0]?.key.equals(keyA)).toBe(true);
  });

  it('a malformed line for a host does not turn a presented key into a mismatch', () => {
    const entries = parseKnownHosts(`10.0.0.2 ssh-ed25519 AAAA!!!\n`);
    expect(checkHostKey(entries, '10.0.0.2', 22, keyA)).toEqual({ ok: false, reason: 'unknown' });
  });
});

describe('matchHostKeys', () => {
  it('returns allowed and revoked keys with their types and lines', () => {
    const text = [
      `10.0.0.2,10.0.0.3 ssh-ed25519 ${b64(keyA)}`,
      `10.0.0.2 ecdsa-sha2-nistp256 ${b64(keyC)}`,
      `@revoked 10.0.0.* ssh-ed25519 ${b64(keyB)}`,
      `10.0.0.3 ssh-ed25519 ${b64(keyB)}`,
    ].join('\n');
    const { allowed, revoked } = matchHostKeys(parseKnownHosts(text), '10.0.0.2', 22);
    expect(allowed.map((k) => [k.keyType, k.line])).toEqual([
      ['ssh-ed25519', 1],
      ['ecdsa-sha2-nistp256', 2],
    ]);
    expect(allowed[1]?.key.equals(keyC)).toBe(true);
    expect(revoked.map((k) => k.line)).toEqual([3]);
    expect(revoked[0]?.key.equals(keyB)).toBe(true);
  });
});

describe('key helpers', () => {
  it('reads the key type from a blob', () => {
    expect(keyTypeOf(keyC)).toBe('ecdsa-sha2-nistp256');
    expect(keyTypeOf(Buffer.from([0, 0, 0, 9, 1]))).toBeUndefined();
  });

  it('formats fingerprints like ssh-keygen -l', () => {
    // ssh-keygen prints SHA256 fingerprints as unpadded base64.
    expect(fingerprint(keyA)).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });
});

function hasSshKeygen(): boolean {
  try {
    execFileSync('sh', ['-c', 'command -v ssh-keygen'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe.skipIf(!hasSshKeygen())('against OpenSSH itself', () => {
  it('reads files hashed by ssh-keygen -H and matches its fingerprints', () => {
    const dir = mkdtempSync(join(tmpdir(), 'known-hosts-'));
    try {
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'key')]);
      const [type, base64] = readFileSync(join(dir, 'key.pub'), 'utf8').split(' ');
      const file = join(dir, 'known_hosts');
      writeFileSync(file, `10.1.2.3 ${type} ${base64}\n[10.1.2.3]:2222 ${type} ${base64}\n`);
      execFileSync('ssh-keygen', ['-q', '-H', '-f', file], { stdio: 'ignore' });
      const text = readFileSync(file, 'utf8');
      expect(text).not.toContain('10.1.2.3');
      const entries = parseKnownHosts(text);
      const key = Buffer.from(base64 ?? '', 'base64');
      expect(checkHostKey(entries, '10.1.2.3', 22, key)).toEqual({ ok: true });
      expect(checkHostKey(entries, '10.1.2.3', 2222, key)).toEqual({ ok: true });
      expect(checkHostKey(entries, '10.1.2.3', 2223, key)).toEqual({ ok: false, reason: 'unknown' });
      const listed = execFileSync('ssh-keygen', ['-l', '-f', join(dir, 'key.pub')], { encoding: 'utf8' });
      expect(listed).toContain(fingerprint(key));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
