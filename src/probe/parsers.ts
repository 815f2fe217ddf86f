/**
 * Pure readers for the outputs the preflight probes collect (see preflight-facts.ts).
 * Each takes the text a command printed and returns what the rules need; none
 * does I/O, and each tolerates lines it does not know.
 */

// --- sections ----------------------------------------------------------------------------------

export interface SectionOutput {
  /** Exit status of the section's command. */
  exitCode: number;
  /** What it printed, standard output and error together. */
  text: string;
}

export interface SectionCommand {
  /** Letters, digits and "_" only: it is written into the script unquoted. */
  name: string;
  command: string;
}

const SECTION_NAME = /^[a-z][a-z0-9_]*$/;

/**
 * One shell script answering several read-only questions over one SSH channel.
 * The commands run at the same time, each into a file of a temporary directory
 * the script removes; then their outputs are printed in order, framed by markers.
 */
export function sectionScript(sections: readonly SectionCommand[]): string {
  for (const { name } of sections) {
    if (!SECTION_NAME.test(name)) throw new TypeError(`bad section name ${name}`);
  }
  const start = sections.map(
    ({ command }, i) => `{ ( ${command}
) >"$d/${i}" 2>&1; echo $? >"$d/${i}.rc"; } </dev/null &`,
  );
  // The echo before the end marker keeps it on a line of its own when the output has no final newline.
  const print = sections.map(
    ({ name }, i) => `echo '@@begin ${name}'; cat "$d/${i}"; echo; echo "@@end ${name} $(cat "$d/${i}.rc")"`,
  );
  return [
    `d=$(mktemp -d "\${TMPDIR:-/tmp}/criu-migrate-probe.XXXXXX") || exit 1`,
    `trap 'rm -rf "$d"' EXIT`,
    ...start,
    'wait',
    ...print,
  ].join('\n');
}

/** Splits sectionScript output back into its sections; a section cut short is left out. */
export function parseSections(stdout: string): Map<string, SectionOutput> {
  const sections = new Map<string, SectionOutput>();
  let current: { name: string; lines: string[] } | undefined;
  for (const line of stdout.split('\n')) {
    const begin = /^@@begin ([a-z][a-z0-9_]*)$/.exec(line);
    if (begin) {
      current = { name: begin[1] ?? '', lines: [] };
      continue;
    }
    const end = /^@@end ([a-z][a-z0-9_]*) (\d+)$/.exec(line);
    if (end && current && end[1] === current.name) {
      // sectionScript echoes one newline before the marker: an empty last line is that echo.
      if (current.lines.at(-1) === '') current.lines.pop();
      sections.set(current.name, { exitCode: Number(end[2]), text: current.lines.join('\n') });
      current = undefined;
      continue;
    }
    current?.lines.push(line);
  }
  return sections;
}

function numberOrUndefined(text: string | undefined): number | undefined {
  if (text === undefined || !/^\d+$/.test(text.trim())) return undefined;
  return Number(text.trim());
}

function lines(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
}

// --- /proc/<pid>/net/{tcp,tcp6,udp,udp6} -------------------------------------------------------

export interface SocketAddress {
  ip: string;
  port: number;
}

export interface SocketEntry {
  local: SocketAddress;
  remote: SocketAddress;
  /** The kernel's state number: 0x01 established, 0x0A listen (TCP); 0x07 for bound UDP. */
  state: number;
  /** The socket's inode: which process holds it (/proc/<pid>/fd links to socket:[inode]). */
  inode?: number;
}

export const TCP_ESTABLISHED = 0x01;
export const TCP_LISTEN = 0x0a;

/** "0100007F" (one little-endian 32-bit word per 4 bytes) to dotted or colon notation. */
function decodeIp(hex: string): string | undefined {
  if (!/^[0-9A-Fa-f]+$/.test(hex) || (hex.length !== 8 && hex.length !== 32)) return undefined;
  const bytes: number[] = [];
  for (let word = 0; word < hex.length; word += 8) {
    for (let i = 6; i >= 0; i -= 2) bytes.push(Number.parseInt(hex.slice(word + i, word + i + 2), 16));
  }
  if (bytes.length === 4) return bytes.join('.');
  // IPv4-mapped (::ffff:a.b.c.d) reads as the IPv4 address it is.
  if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) {
    return bytes.slice(12).join('.');
  }
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
  return compressIpv6(groups);
}

function compressIpv6(groups: string[]): string {
  // Longest run of zero groups becomes "::".
  let best = -1;
  let bestLength = 0;
  for (let i = 0; i < groups.length; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < groups.length && groups[j] === '0') j++;
    if (j - i > bestLength && j - i > 1) {
      best = i;
      bestLength = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLength).join(':')}`;
}

function decodeAddress(field: string): SocketAddress | undefined {
  const [hexIp, hexPort] = field.split(':');
  if (hexIp === undefined || hexPort === undefined || !/^[0-9A-Fa-f]{4}$/.test(hexPort)) return undefined;
  const ip = decodeIp(hexIp);
  return ip === undefined ? undefined : { ip, port: Number.parseInt(hexPort, 16) };
}

/** Rows of one or more /proc/net socket tables (v4 and v6 mixed); headers and other lines are skipped. */
export function parseProcNet(text: string): SocketEntry[] {
  const entries: SocketEntry[] = [];
  for (const line of lines(text)) {
    const fields = line.split(/\s+/);
    if (!/^\d+:$/.test(fields[0] ?? '')) continue;
    const local = decodeAddress(fields[1] ?? '');
    const remote = decodeAddress(fields[2] ?? '');
    const state = fields[3];
    if (!local || !remote || state === undefined || !/^[0-9A-Fa-f]{2}$/.test(state)) continue;
    const inode = Number(fields[9]);
    entries.push({
      local,
      remote,
      state: Number.parseInt(state, 16),
      ...(/^\d+$/.test(fields[9] ?? '') && inode > 0 ? { inode } : {}),
    });
  }
  return entries;
}

export function formatAddress(address: SocketAddress): string {
  return address.ip.includes(':') ? `[${address.ip}]:${address.port}` : `${address.ip}:${address.port}`;
}

export function isWildcardIp(ip: string): boolean {
  return ip === '' || ip === '0.0.0.0' || ip === '::';
}

export function isLoopbackIp(ip: string): boolean {
  return ip.startsWith('127.') || ip === '::1';
}

// --- df, du, meminfo ----------------------------------------------------------------------------

export interface DiskFree {
  filesystem: string;
  sizeBytes: number;
  availableBytes: number;
  mountedOn: string;
}

/** `df -Pk PATH`: a header, then one line (POSIX format never wraps). */
export function parseDf(text: string): DiskFree | undefined {
  const rows = lines(text).filter((line) => !/^Filesystem\s/.test(line));
  for (const row of rows) {
    const match = /^(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+\d+%\s+(\/.*)$/.exec(row);
    if (match) {
      return {
        filesystem: match[1] ?? '',
        sizeBytes: Number(match[2]) * 1024,
        availableBytes: Number(match[4]) * 1024,
        mountedOn: match[5] ?? '',
      };
    }
  }
  return undefined;
}

/** `du -skx DIR`: "<KiB>\t<dir>". */
export function parseDuKib(text: string): number | undefined {
  const match = /^(\d+)\s/m.exec(text);
  return match ? Number(match[1]) * 1024 : undefined;
}

/** MemAvailable from /proc/meminfo lines, in bytes. */
export function parseMemAvailable(text: string): number | undefined {
  const match = /^MemAvailable:\s+(\d+)\s+kB$/m.exec(text);
  return match ? Number(match[1]) * 1024 : undefined;
}

// --- identity and CPU ---------------------------------------------------------------------------

export interface Identity {
  uid: number;
  user: string;
  /** Set when the command ran through sudo: the login that invoked it. */
  sudoUser?: string;
}

/** Three lines: `id -u`, `id -un`, "$SUDO_USER" (empty without sudo). */
export function parseIdentity(text: string): Identity | undefined {
  const [uidLine, userLine, sudoLine] = text.split('\n').map((line) => line.trim());
  const uid = numberOrUndefined(uidLine);
  if (uid === undefined) return undefined;
  const identity: Identity = { uid, user: userLine || String(uid) };
  if (sudoLine) identity.sudoUser = sudoLine;
  return identity;
}

export interface CpuFacts {
  model?: string;
  /** Feature flags as the kernel names them ("avx2", "sha_ni"; "Features" on arm64). */
  flags: string[];
}

/** "model name : X" and "flags : a b c" lines of /proc/cpuinfo. */
export function parseCpuinfo(text: string): CpuFacts | undefined {
  const model = /^model name\s*:\s*(.*)$/m.exec(text)?.[1]?.trim();
  const flags = /^(?:flags|Features)\s*:\s*(.*)$/m.exec(text)?.[1];
  if (flags === undefined && model === undefined) return undefined;
  const facts: CpuFacts = { flags: flags === undefined ? [] : flags.trim().split(/\s+/).filter(Boolean) };
  if (model) facts.model = model;
  return facts;
}

/** Flags the source has and the target lacks, in the source's order. */
export function missingFlags(source: readonly string[], target: readonly string[]): string[] {
  const there = new Set(target);
  return source.filter((flag) => !there.has(flag));
}

/** The error lines of `criu cpuinfo check` (stderr, or a -v4 log), without timestamps. */
export function criuErrorLines(text: string): string[] {
  const found: string[] = [];
  for (const line of lines(text)) {
    const bare = line.replace(/^\(\d+\.\d+\)\s*/, '');
    if (/^Error\b/.test(bare) && !found.includes(bare)) found.push(bare);
  }
  return found;
}

// --- the container's memory ---------------------------------------------------------------------

export interface MemoryUse {
  /** What a checkpoint of it will hold, roughly: anonymous and shared memory. */
  bytes: number;
  /** Where the number came from, for the report. */
  how: string;
  /** Of it, shared memory and tmpfs (memory.stat shmem): what a dump may write locally even with a page server. */
  shmemBytes?: number;
}

const SIZE_UNITS: Record<string, number> = {
  B: 1,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  TB: 1e12,
  KIB: 1024,
  MIB: 1024 ** 2,
  GIB: 1024 ** 3,
  TIB: 1024 ** 4,
};

/** "9.715MiB" or "1.2GB" as docker prints sizes. */
export function parseDockerSize(text: string): number | undefined {
  const match = /^([\d.]+)\s*([KMGT]?i?B)$/i.exec(text.trim());
  const unit = match?.[2] ? SIZE_UNITS[match[2].toUpperCase()] : undefined;
  if (!match || unit === undefined) return undefined;
  const value = Number(match[1]);
  return Number.isFinite(value) ? Math.round(value * unit) : undefined;
}

/**
 * The memory probe prints "cgroup v1" or "cgroup v2", then memory.stat, then
 * "usage_bytes N"; or, when the cgroup is not readable, "docker_stats <MemUsage>".
 */
export function parseMemoryProbe(text: string): MemoryUse | undefined {
  const stats = /^docker_stats\s+(\S+)\s*\//m.exec(text);
  if (stats?.[1]) {
    const bytes = parseDockerSize(stats[1]);
    return bytes === undefined ? undefined : { bytes, how: 'docker stats memory usage' };
  }
  const version = /^cgroup (v1|v2)$/m.exec(text)?.[1];
  if (!version) return undefined;
  const values = new Map<string, number>();
  for (const line of lines(text)) {
    const [key, value] = line.split(/\s+/);
    const n = numberOrUndefined(value);
    if (key && n !== undefined) values.set(key, n);
  }
  const sum = (...keys: string[]): number | undefined => {
    const found = keys.map((key) => values.get(key));
    return found.every((n) => n !== undefined) ? found.reduce<number>((a, b) => a + (b ?? 0), 0) : undefined;
  };
  // Page cache is not dumped: anonymous memory plus shared memory (tmpfs, shm) is what CRIU writes.
  const dumped =
    version === 'v1' ? (sum('total_rss', 'total_shmem') ?? sum('rss', 'shmem')) : sum('anon', 'shmem');
  if (dumped !== undefined) {
    const fields = version === 'v1' ? 'rss + shmem' : 'anon + shmem';
    const shmem = version === 'v1' ? (values.get('total_shmem') ?? values.get('shmem')) : values.get('shmem');
    return {
      bytes: dumped,
      how: `cgroup ${version} memory.stat ${fields}`,
      ...(shmem !== undefined ? { shmemBytes: shmem } : {}),
    };
  }
  const usage = values.get('usage_bytes');
  return usage === undefined ? undefined : { bytes: usage, how: `cgroup ${version} memory usage` };
}

// --- docker ps, paths, name lists ---------------------------------------------------------------

export interface PublishedPort {
  container: string;
  hostIp: string;
  firstPort: number;
  lastPort: number;
  proto: string;
}

/**
 * `docker ps --format '{{.Names}}\t{{.Ports}}'`: "web\t0.0.0.0:8080->80/tcp, :::8080->80/tcp".
 * Ports that are only exposed ("80/tcp") are not published and are skipped.
 */
export function parseDockerPsPorts(text: string): PublishedPort[] {
  const found: PublishedPort[] = [];
  for (const line of text.split('\n')) {
    const tab = line.indexOf('\t');
    if (tab < 0) continue;
    const container = line.slice(0, tab).trim();
    for (const item of line.slice(tab + 1).split(',')) {
      const match = /^(.*):(\d+)(?:-(\d+))?->\d+(?:-\d+)?\/(\w+)$/.exec(item.trim());
      if (!match) continue;
      const hostIp = (match[1] ?? '').replace(/^\[(.*)\]$/, '$1');
      const firstPort = Number(match[2]);
      found.push({
        container,
        hostIp,
        firstPort,
        lastPort: match[3] ? Number(match[3]) : firstPort,
        proto: match[4] ?? 'tcp',
      });
    }
  }
  return found;
}

export type PathKind = 'directory' | 'file' | 'missing';

/** One line per path, in the order asked: "d", "f" or "-". */
export function parsePathKinds(text: string, paths: readonly string[]): Map<string, PathKind> {
  const answers = text.split('\n').map((line) => line.trim());
  const kinds = new Map<string, PathKind>();
  paths.forEach((path, i) => {
    const answer = answers[i];
    if (answer === 'd') kinds.set(path, 'directory');
    else if (answer === 'f') kinds.set(path, 'file');
    else if (answer === '-') kinds.set(path, 'missing');
  });
  return kinds;
}

/** One name a line, as `docker volume ls -q` or `docker network ls --format '{{.Name}}'` print them. */
export function parseNameList(text: string): string[] {
  return lines(text);
}

/** One process of a container and the sockets it holds ("<pid> <inode>" lines of the socket probe). */
export interface SocketOwner {
  pid: number;
  inode: number;
}

/** Lines "<pid> <inode>"; anything else is skipped. */
export function parseSocketOwners(text: string): SocketOwner[] {
  return lines(text)
    .map((line) => /^(\d+) (\d+)$/.exec(line.trim()))
    .filter((match): match is RegExpExecArray => match !== null)
    .map(([, pid, inode]) => ({ pid: Number(pid), inode: Number(inode) }));
}
