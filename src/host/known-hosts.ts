import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/** One usable line of a known_hosts file. */
export interface KnownHostEntry {
  /** 1-based line number, for messages. */
  line: number;
  revoked: boolean;
  patterns: HostPattern[];
  /** Key type as written, e.g. "ssh-ed25519". */
  keyType: string;
  /** The decoded public key blob, as the server presents it. */
  key: Buffer;
}

export type HostPattern =
  | { kind: 'glob'; negated: boolean; pattern: string }
  | { kind: 'hashed'; salt: Buffer; hash: Buffer };

export interface KnownKey {
  keyType: string;
  key: Buffer;
  line: number;
}

export interface HostKeyMatch {
  allowed: KnownKey[];
  revoked: KnownKey[];
}

export type HostKeyVerdict = { ok: true } | { ok: false; reason: 'unknown' | 'mismatch' | 'revoked' };

/**
 * Parses known_hosts text. Lines that cannot be used (comments, unknown
 * markers, @cert-authority, bad base64, a key blob that does not carry its
 * declared type) are skipped: a skipped line can only make a host unknown,
 * never trusted.
 */
export function parseKnownHosts(text: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  const lines = text.split(/\r?\n/);
  for (const [index, raw] of lines.entries()) {
    const entry = parseLine(raw, index + 1);
    if (entry) entries.push(entry);
  }
  return entries;
}

function parseLine(raw: string, line: number): KnownHostEntry | undefined {
  const text = raw.trim();
  if (text === '' || text.startsWith('#')) return undefined;
  const fields = text.split(/\s+/);
  let revoked = false;
  if (fields[0]?.startsWith('@')) {
    const marker = fields.shift();
    // Certificate authorities are not supported, so their lines vouch for nothing.
    if (marker !== '@revoked') return undefined;
    revoked = true;
  }
  const [hostField, keyType, keyText] = fields;
  if (hostField === undefined || keyType === undefined || keyText === undefined) return undefined;
  const patterns = parsePatterns(hostField);
  if (patterns === undefined) return undefined;
  const key = decodeKey(keyText, keyType);
  if (key === undefined) return undefined;
  return { line, revoked, patterns, keyType, key };
}

function parsePatterns(field: string): HostPattern[] | undefined {
  const patterns: HostPattern[] = [];
  for (const part of field.split(',')) {
    if (part === '') continue;
    if (part.startsWith('|')) {
      const hashed = parseHashed(part);
      if (hashed === undefined) return undefined;
      patterns.push(hashed);
    } else if (part.startsWith('!')) {
      const pattern = part.slice(1);
      if (pattern === '') return undefined;
      patterns.push({ kind: 'glob', negated: true, pattern: pattern.toLowerCase() });
    } else {
      patterns.push({ kind: 'glob', negated: false, pattern: part.toLowerCase() });
    }
  }
  return patterns.length > 0 ? patterns : undefined;
}

function parseHashed(part: string): HostPattern | undefined {
  const pieces = part.split('|');
  // "|1|salt|hash" splits into ["", "1", salt, hash].
  if (pieces.length !== 4 || pieces[0] !== '' || pieces[1] !== '1') return undefined;
  const salt = decodeBase64(pieces[2] ?? '');
  const hash = decodeBase64(pieces[3] ?? '');
  if (salt === undefined || hash === undefined || hash.length !== 20) return undefined;
  return { kind: 'hashed', salt, hash };
}

function decodeBase64(text: string): Buffer | undefined {
  if (text === '' || !/^[A-Za-z0-9+/]+={0,2}$/.test(text)) return undefined;
  const bytes = Buffer.from(text, 'base64');
  return bytes.length > 0 ? bytes : undefined;
}

function decodeKey(text: string, keyType: string): Buffer | undefined {
  const blob = decodeBase64(text);
  // The blob starts with its own type name; a disagreement means a corrupt line.
  if (blob === undefined || keyTypeOf(blob) !== keyType) return undefined;
  return blob;
}

/** The name OpenSSH looks a host up by: the bare host on port 22, "[host]:port" otherwise. */
export function knownHostsName(host: string, port: number): string {
  const name = host.toLowerCase();
  return port === 22 ? name : `[${name}]:${port}`;
}

function globMatches(pattern: string, name: string): boolean {
  let source = '';
  for (const char of pattern) {
    if (char === '*') source += '.*';
    else if (char === '?') source += '.';
    else source += char.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&');
  }
  return new RegExp(`^${source}$`, 'su').test(name);
}

function hashedMatches(salt: Buffer, hash: Buffer, name: string): boolean {
  const digest = createHmac('sha1', salt).update(name).digest();
  return digest.length === hash.length && timingSafeEqual(digest, hash);
}

/** Whether a line's host field covers the name: some pattern matches and no negated one does. */
export function entryMatchesHost(entry: KnownHostEntry, host: string, port: number): boolean {
  const name = knownHostsName(host, port);
  let matched = false;
  for (const pattern of entry.patterns) {
    if (pattern.kind === 'hashed') {
      if (hashedMatches(pattern.salt, pattern.hash, name)) matched = true;
    } else if (globMatches(pattern.pattern, name)) {
      if (pattern.negated) return false;
      matched = true;
    }
  }
  return matched;
}

/** The keys known_hosts allows and revokes for one host and port. */
export function matchHostKeys(entries: readonly KnownHostEntry[], host: string, port: number): HostKeyMatch {
  const allowed: KnownKey[] = [];
  const revoked: KnownKey[] = [];
  for (const entry of entries) {
    if (!entryMatchesHost(entry, host, port)) continue;
    const known = { keyType: entry.keyType, key: entry.key, line: entry.line };
    (entry.revoked ? revoked : allowed).push(known);
  }
  return { allowed, revoked };
}

/** Decides whether the key a server presented may be trusted for host and port. */
export function checkHostKey(
  entries: readonly KnownHostEntry[],
  host: string,
  port: number,
  presentedKey: Buffer,
): HostKeyVerdict {
  const { allowed, revoked } = matchHostKeys(entries, host, port);
  // A revoked key stays refused even when another line also lists it as allowed.
  if (revoked.some((known) => known.key.equals(presentedKey))) return { ok: false, reason: 'revoked' };
  if (allowed.some((known) => known.key.equals(presentedKey))) return { ok: true };
  return { ok: false, reason: allowed.length > 0 ? 'mismatch' : 'unknown' };
}

/** The key type named inside a public key blob, e.g. "ssh-ed25519". */
export function keyTypeOf(blob: Buffer): string | undefined {
  if (blob.length < 4) return undefined;
  const length = blob.readUInt32BE(0);
  if (4 + length > blob.length) return undefined;
  return blob.subarray(4, 4 + length).toString('latin1');
}

/** OpenSSH's fingerprint format, "SHA256:" and unpadded base64. */
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}
