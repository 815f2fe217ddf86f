import { parseTop } from '../engine/docker/docker-cli.js';
import {
  type ContainerInspect,
  containerName,
  type ImageConfig,
  parseImageInspect,
} from '../engine/docker/inspect.js';
import type { ProcessRow } from '../engine/engine.js';
import { errorMessage } from '../errors.js';
import type { CommandResult, Host } from '../host/host.js';
import { shellQuote } from '../host/shell.js';
import { STATE_ROOT } from '../state/host-records.js';
import { failureText } from './facts.js';
import {
  type CpuFacts,
  criuErrorLines,
  type DiskFree,
  type Identity,
  type MemoryUse,
  type PathKind,
  type PublishedPort,
  parseCpuinfo,
  parseDf,
  parseDockerPsPorts,
  parseDuKib,
  parseIdentity,
  parseMemAvailable,
  parseMemoryProbe,
  parseNameList,
  parsePathKinds,
  parseProcNet,
  parseSections,
  parseSocketOwners,
  type SectionCommand,
  type SectionOutput,
  type SocketEntry,
  type SocketOwner,
  sectionScript,
} from './parsers.js';

/**
 * What the preflight gate reads besides the host facts of facts.ts: the
 * container's size and connections on the source, and on the target whether
 * its ports, mounts, volumes, networks and disk space are there for it. Every
 * command is read-only; the CPU comparison writes only into a temporary
 * directory it removes.
 */

/** Where containerd unpacks a checkpoint on restore (its TMPDIR): it needs the checkpoint's size. */
export const RESTORE_TMP_DIR = '/tmp';

export const PROBE_TIMEOUT_MS = 60_000;

export const DEFAULT_DOCKER_ROOT = '/var/lib/docker';

export interface HostProbe {
  identity?: Identity;
  cpu?: CpuFacts;
  memAvailableBytes?: number;
  /** Section name to a one-line reason, for what could not be read. */
  unreadable: Record<string, string>;
}

export interface DiskAt {
  /** The directory the migration uses. */
  path: string;
  /** The directory df measured (the nearest existing parent of path). */
  measured: string;
  disk?: DiskFree;
}

export interface SourceProbe extends HostProbe {
  /** Only for a running container. */
  memory?: MemoryUse;
  /** TCP sockets of the container's network namespace (all states). */
  tcp?: SocketEntry[];
  /** The processes in the container's cgroup (docker top), by host PID. */
  processes?: ProcessRow[];
  /** Which of those processes holds which socket. */
  socketOwners?: SocketOwner[];
  writableLayerBytes?: number;
  imageBytes?: number;
  imageConfig?: ImageConfig;
  /** Kind of each bind-mount source on the source. */
  bindKinds: Record<string, PathKind>;
  stateDir: DiskAt;
}

export interface TargetProbe extends HostProbe {
  dockerRoot: DiskAt;
  restoreTmp: DiskAt;
  /** Where the checkpoint's pages are staged on the target (the action's work directory). */
  stateDir: DiskAt;
  /** Sockets in dockerd's network namespace, where published ports are bound. */
  listeners?: { tcp: SocketEntry[]; udp: SocketEntry[] };
  /** Ports published by the target's running containers. */
  published?: PublishedPort[];
  bindKinds: Record<string, PathKind>;
  volumes?: string[];
  networks?: string[];
  imagePresent?: boolean;
  /** The target already has a container of the source container's name. */
  nameTaken?: boolean;
}

export interface CpuComparison {
  /** `criu cpuinfo dump` on the source worked. */
  dumped: boolean;
  dumpError?: string;
  /** Exit status of `criu cpuinfo check` on the target; undefined when it did not run. */
  checkExitCode?: number;
  /** CRIU's error lines from the check. */
  checkErrors: string[];
  /** The check's last line of output when it failed, for a failure without error lines. */
  checkMessage?: string;
}

// --- scripts -----------------------------------------------------------------------------------

const HOST_SECTIONS: SectionCommand[] = [
  { name: 'identity', command: `id -u; id -un; printf '%s\\n' "\${SUDO_USER:-}"` },
  {
    name: 'cpuinfo',
    command: "grep -m1 '^model name' /proc/cpuinfo; grep -m1 -E '^(flags|Features)' /proc/cpuinfo",
  },
  { name: 'meminfo', command: "grep -E '^(MemTotal|MemAvailable):' /proc/meminfo" },
];

/** df of the directory, or of its nearest existing parent; prints the directory and the one measured first. */
function dfCommand(path: string): string {
  return `p=${path}; echo "$p"; while [ ! -d "$p" ]; do p=$(dirname "$p"); done; echo "$p"; df -Pk "$p"`;
}

function pathKindsCommand(paths: readonly string[]): string {
  return `for p in ${shellQuote([...paths])}; do if [ -d "$p" ]; then echo d; elif [ -e "$p" ]; then echo f; else echo -; fi; done`;
}

/** Finds the container's memory cgroup (v1 or v2) and prints memory.stat and usage; docker stats otherwise. */
function memoryCommand(pid: number, id: string): string {
  return [
    'v1=; v2=',
    `while IFS=: read -r _ ctrl path; do case ",$ctrl," in *,memory,*) v1=$path;; ,,) v2=$path;; esac; done </proc/${pid}/cgroup`,
    'if [ -n "$v1" ] && [ -r "/sys/fs/cgroup/memory$v1/memory.stat" ]; then',
    '  echo "cgroup v1"; cat "/sys/fs/cgroup/memory$v1/memory.stat"; echo "usage_bytes $(cat "/sys/fs/cgroup/memory$v1/memory.usage_in_bytes")"',
    'elif [ -n "$v2" ] && [ -r "/sys/fs/cgroup$v2/memory.stat" ]; then',
    '  echo "cgroup v2"; cat "/sys/fs/cgroup$v2/memory.stat"; echo "usage_bytes $(cat "/sys/fs/cgroup$v2/memory.current")"',
    'else',
    `  echo "docker_stats $(docker stats --no-stream --format '{{.MemUsage}}' ${shellQuote([id])})"`,
    'fi',
  ].join('\n');
}

/** "<pid> <inode>" for every socket a process of the container holds. */
export function socketOwnersCommand(containerId: string): string {
  return [
    `for p in $(${shellQuote(['docker', 'top', containerId, '-o', 'pid'])} | tail -n +2); do`,
    '  for f in /proc/$p/fd/*; do l=$(readlink "$f" 2>/dev/null) || continue',
    `    case $l in 'socket:['*) i=\${l#socket:[}; echo "$p \${i%]}" ;; esac`,
    '  done',
    'done',
  ].join('\n');
}

export function bindSources(container: ContainerInspect | undefined): string[] {
  const sources = (container?.Mounts ?? [])
    .filter((mount) => mount.Type === 'bind' && mount.Source !== '')
    .map((mount) => mount.Source);
  return [...new Set(sources)];
}

export function sourceProbeSections(container: ContainerInspect | undefined): SectionCommand[] {
  const sections = [...HOST_SECTIONS, { name: 'state_df', command: dfCommand(shellQuote([STATE_ROOT])) }];
  if (!container) return sections;
  const pid = container.State.Pid ?? 0;
  if (container.State.Running && pid > 0) {
    sections.push(
      { name: 'memory', command: memoryCommand(pid, container.Id) },
      { name: 'tcp', command: `cat /proc/${pid}/net/tcp /proc/${pid}/net/tcp6` },
      { name: 'procs', command: shellQuote(['docker', 'top', container.Id, '-o', 'pid,ppid,args']) },
      { name: 'sockets', command: socketOwnersCommand(container.Id) },
    );
  }
  const upper = container.GraphDriver?.Data?.UpperDir;
  if (upper) sections.push({ name: 'upper', command: `du -skx ${shellQuote([upper])}` });
  sections.push({ name: 'image', command: shellQuote(['docker', 'image', 'inspect', container.Image]) });
  const binds = bindSources(container);
  if (binds.length > 0) sections.push({ name: 'binds', command: pathKindsCommand(binds) });
  return sections;
}

function hasPublishedPorts(container: ContainerInspect): boolean {
  return Object.values(container.HostConfig.PortBindings ?? {}).some((bindings) =>
    bindings.some((binding) => /^[1-9]\d*(-\d+)?$/.test(binding.HostPort ?? '')),
  );
}

function usesUserNetwork(container: ContainerInspect): boolean {
  const mode = container.HostConfig.NetworkMode ?? '';
  return !['', 'default', 'bridge', 'host', 'none'].includes(mode) && !mode.startsWith('container:');
}

/**
 * The target's side. Each docker CLI call costs a process start (100 ms or
 * more on a busy host), so only the questions this container raises are asked.
 */
export function targetProbeSections(container: ContainerInspect | undefined): SectionCommand[] {
  // dockerd's own network namespace holds the published ports (the runner's may differ).
  const dockerdNet = (files: string): string =>
    `p=$(cat /var/run/docker.pid 2>/dev/null || pidof -s dockerd) && [ -n "$p" ] && cd /proc/$p/net && cat ${files}`;
  const sections: SectionCommand[] = [
    ...HOST_SECTIONS,
    { name: 'tmp_df', command: dfCommand(shellQuote([RESTORE_TMP_DIR])) },
    { name: 'state_df', command: dfCommand(shellQuote([STATE_ROOT])) },
  ];
  if (!container) return sections;
  if (hasPublishedPorts(container)) {
    sections.push(
      { name: 'listen_tcp', command: dockerdNet('tcp tcp6') },
      { name: 'listen_udp', command: dockerdNet('udp udp6') },
      { name: 'published', command: "docker ps --format '{{.Names}}\t{{.Ports}}'" },
    );
  }
  const binds = bindSources(container);
  if (binds.length > 0) sections.push({ name: 'binds', command: pathKindsCommand(binds) });
  if (container.Mounts.some((mount) => mount.Type === 'volume'))
    sections.push({ name: 'volumes', command: 'docker volume ls -q' });
  if (usesUserNetwork(container))
    sections.push({ name: 'networks', command: "docker network ls --format '{{.Name}}'" });
  sections.push(
    {
      name: 'image',
      command: shellQuote(['docker', 'image', 'inspect', '--format', '{{.Id}}', container.Image]),
    },
    {
      name: 'name',
      command: shellQuote([
        'docker',
        'container',
        'inspect',
        '--format',
        '{{.Id}}',
        containerName(container),
      ]),
    },
  );
  return sections;
}

// --- readers -------------------------------------------------------------------------------------

function firstLine(text: string): string {
  return (
    text
      .split('\n')
      .map((line) => line.trim())
      .find(Boolean) ?? ''
  );
}

/** The df commands print the directory, the one measured (it or a parent), then df's output. */
export function readDisk(
  section: SectionOutput | undefined,
  fallback: string,
): { at: DiskAt; problem?: string } {
  if (!section) return { at: { path: fallback, measured: fallback }, problem: 'no answer' };
  const [path = fallback, measured = path, ...rest] = section.text.split('\n');
  const disk = section.exitCode === 0 ? parseDf(rest.join('\n')) : undefined;
  if (disk) return { at: { path, measured, disk } };
  const why = firstLine(rest.join('\n')) || `exit code ${section.exitCode}`;
  return { at: { path, measured }, problem: `df: ${why.slice(0, 160)}` };
}

class SectionReader {
  readonly unreadable: Record<string, string> = {};

  constructor(private readonly sections: Map<string, SectionOutput>) {}

  /** The section's text when its command succeeded; otherwise notes why and returns undefined. */
  ok(name: string): string | undefined {
    const section = this.sections.get(name);
    if (!section) {
      this.unreadable[name] = 'no answer';
      return undefined;
    }
    if (section.exitCode !== 0) {
      this.unreadable[name] = firstLine(section.text) || `exit code ${section.exitCode}`;
      return undefined;
    }
    return section.text;
  }

  raw(name: string): SectionOutput | undefined {
    return this.sections.get(name);
  }

  /** A /proc/net socket table: what cat printed counts even when a second file was missing. */
  table(name: string): SocketEntry[] | undefined {
    const section = this.sections.get(name);
    if (section && /\blocal_address\b/.test(section.text)) return parseProcNet(section.text);
    this.unreadable[name] = section
      ? firstLine(section.text) || `exit code ${section.exitCode}`
      : 'no answer';
    return undefined;
  }

  /** Runs a parser and notes a section whose output it could not read. */
  parse<T>(name: string, parser: (text: string) => T | undefined): T | undefined {
    const text = this.ok(name);
    if (text === undefined) return undefined;
    const value = parser(text);
    if (value === undefined) this.unreadable[name] = `unexpected output: ${firstLine(text).slice(0, 120)}`;
    return value;
  }

  disk(name: string, fallback: string): DiskAt {
    const { at, problem } = readDisk(this.sections.get(name), fallback);
    if (problem) this.unreadable[name] = problem;
    return at;
  }
}

function readHost(reader: SectionReader): Omit<HostProbe, 'unreadable'> {
  const probe: Omit<HostProbe, 'unreadable'> = {};
  const identity = reader.parse('identity', parseIdentity);
  if (identity) probe.identity = identity;
  // grep exits 1 when there is no "model name" line (arm64) but the flags came: read it regardless.
  const cpu = parseCpuinfo(reader.raw('cpuinfo')?.text ?? '');
  if (cpu) probe.cpu = cpu;
  else reader.unreadable.cpuinfo = 'no flags in /proc/cpuinfo';
  const memAvailable = reader.parse('meminfo', parseMemAvailable);
  if (memAvailable !== undefined) probe.memAvailableBytes = memAvailable;
  return probe;
}

function kindsRecord(kinds: Map<string, PathKind>): Record<string, PathKind> {
  return Object.fromEntries(kinds);
}

/** The image's size from `docker image inspect` (the typed reader keeps only its Config). */
function imageSize(json: string): number | undefined {
  try {
    const value: unknown = JSON.parse(json);
    const first: unknown = Array.isArray(value) ? value[0] : value;
    if (typeof first === 'object' && first !== null && 'Size' in first && typeof first.Size === 'number')
      return first.Size;
  } catch {
    return undefined;
  }
  return undefined;
}

export function readSourceProbe(result: CommandResult, container: ContainerInspect | undefined): SourceProbe {
  const reader = new SectionReader(parseSections(result.stdout));
  const asked = new Set(sourceProbeSections(container).map((entry) => entry.name));
  const probe: SourceProbe = {
    ...readHost(reader),
    bindKinds: {},
    stateDir: reader.disk('state_df', STATE_ROOT),
    unreadable: reader.unreadable,
  };
  if (!container) return probe;
  if (asked.has('memory')) {
    const memory = reader.parse('memory', parseMemoryProbe);
    if (memory) probe.memory = memory;
  }
  if (asked.has('tcp')) {
    // tcp6 is absent when IPv6 is off: cat then fails, but what it printed of tcp still counts.
    const tcp = reader.table('tcp');
    if (tcp) probe.tcp = tcp;
  }
  if (asked.has('procs')) {
    const processes = reader.parse('procs', (text) => (/\bPID\b/.test(text) ? parseTop(text) : undefined));
    if (processes) probe.processes = processes;
  }
  if (asked.has('sockets')) {
    const owners = reader.parse('sockets', parseSocketOwners);
    if (owners) probe.socketOwners = owners;
  }
  if (asked.has('upper')) {
    const upper = reader.parse('upper', parseDuKib);
    if (upper !== undefined) probe.writableLayerBytes = upper;
  }
  const image = reader.ok('image');
  if (image !== undefined) {
    const size = imageSize(image);
    if (size !== undefined) probe.imageBytes = size;
    try {
      probe.imageConfig = parseImageInspect(image).Config;
    } catch (error) {
      probe.unreadable.image = errorMessage(error);
    }
  }
  const binds = bindSources(container);
  if (binds.length > 0) {
    const text = reader.ok('binds');
    if (text !== undefined) probe.bindKinds = kindsRecord(parsePathKinds(text, binds));
  }
  return probe;
}

export function readTargetProbe(
  result: CommandResult,
  container: ContainerInspect | undefined,
  dockerRoot: DiskAt,
): TargetProbe {
  const reader = new SectionReader(parseSections(result.stdout));
  const asked = new Set(targetProbeSections(container).map((entry) => entry.name));
  const probe: TargetProbe = {
    ...readHost(reader),
    dockerRoot,
    restoreTmp: reader.disk('tmp_df', RESTORE_TMP_DIR),
    stateDir: reader.disk('state_df', STATE_ROOT),
    bindKinds: {},
    unreadable: reader.unreadable,
  };
  if (!container) return probe;
  if (asked.has('listen_tcp')) {
    // A host without IPv6 has no tcp6/udp6: cat fails on that one but printed the other.
    const tcp = reader.table('listen_tcp');
    const udp = reader.table('listen_udp');
    if (tcp && udp) probe.listeners = { tcp, udp };
    const published = reader.ok('published');
    if (published !== undefined) probe.published = parseDockerPsPorts(published);
  }
  const binds = bindSources(container);
  if (binds.length > 0) {
    const text = reader.ok('binds');
    if (text !== undefined) probe.bindKinds = kindsRecord(parsePathKinds(text, binds));
  }
  if (asked.has('volumes')) {
    const volumes = reader.ok('volumes');
    if (volumes !== undefined) probe.volumes = parseNameList(volumes);
  }
  if (asked.has('networks')) {
    const networks = reader.ok('networks');
    if (networks !== undefined) probe.networks = parseNameList(networks);
  }
  const image = reader.raw('image');
  if (image?.exitCode === 0 && /sha256:[0-9a-f]{64}/.test(image.text)) probe.imagePresent = true;
  else if (image && /no such (image|object)/i.test(image.text)) probe.imagePresent = false;
  else probe.unreadable.image = image ? firstLine(image.text) || `exit code ${image.exitCode}` : 'no answer';
  const name = reader.raw('name');
  if (name?.exitCode === 0 && /^[0-9a-f]{64}$/m.test(name.text)) probe.nameTaken = true;
  else if (name && /no such (container|object)/i.test(name.text)) probe.nameTaken = false;
  else probe.unreadable.name = name ? firstLine(name.text) || `exit code ${name.exitCode}` : 'no answer';
  return probe;
}

// --- gathering -------------------------------------------------------------------------------------

export async function probeSource(host: Host, container: ContainerInspect | undefined): Promise<SourceProbe> {
  const script = sectionScript(sourceProbeSections(container));
  return readSourceProbe(await host.run(script, { timeoutMs: PROBE_TIMEOUT_MS }), container);
}

/**
 * The target's side; its Docker root comes from the host facts (docker info),
 * so it is measured on its own once they are in, while the rest runs already.
 */
export async function probeTarget(
  host: Host,
  container: ContainerInspect | undefined,
  dockerRoot: Promise<string | undefined>,
): Promise<TargetProbe> {
  const script = sectionScript(targetProbeSections(container));
  const [result, root] = await Promise.all([
    host.run(script, { timeoutMs: PROBE_TIMEOUT_MS }),
    dockerRoot.then((path) => measureDisk(host, path ?? DEFAULT_DOCKER_ROOT)),
  ]);
  const probe = readTargetProbe(result, container, root.at);
  if (root.problem) probe.unreadable.docker_df = root.problem;
  return probe;
}

export async function measureDisk(host: Host, path: string): Promise<{ at: DiskAt; problem?: string }> {
  const result = await host.run(dfCommand(shellQuote([path])), { timeoutMs: PROBE_TIMEOUT_MS });
  return readDisk({ exitCode: result.exitCode, text: `${result.stdout}${result.stderr}` }, path);
}

const CPUINFO_TMP = `"\${TMPDIR:-/tmp}/criu-migrate-cpuinfo.XXXXXX"`;

/** Source side: the CPU description CRIU would write into a checkpoint, base64 on stdout. */
export const CPUINFO_DUMP_COMMAND = [
  `d=$(mktemp -d ${CPUINFO_TMP}) || exit 1`,
  `trap 'rm -rf "$d"' EXIT`,
  `criu cpuinfo dump -D "$d" -W "$d" -o dump.log >/dev/null 2>"$d/stderr" || { rc=$?; cat "$d/stderr" >&2; grep Error "$d/dump.log" >&2 2>/dev/null; exit $rc; }`,
  `base64 "$d/cpuinfo.img"`,
].join('\n');

/** Target side: stdin is the source's image in base64; prints CRIU's error lines and exits as the check did. */
export const CPUINFO_CHECK_COMMAND = [
  `d=$(mktemp -d ${CPUINFO_TMP}) || exit 1`,
  `trap 'rm -rf "$d"' EXIT`,
  `base64 -d >"$d/cpuinfo.img" || exit 1`,
  `criu cpuinfo check -D "$d" -W "$d" -o check.log >/dev/null 2>&1`,
  'rc=$?',
  `grep Error "$d/check.log" 2>/dev/null`,
  'exit $rc',
].join('\n');

/** Interprets the two commands' results; pure, for tests. */
export function readCpuComparison(dump: CommandResult, check: CommandResult | undefined): CpuComparison {
  const image = dump.stdout.replace(/\s+/g, '');
  if (dump.exitCode !== 0 || image === '') {
    return { dumped: false, dumpError: failureText(dump), checkErrors: [] };
  }
  if (!check) return { dumped: true, checkErrors: [] };
  const comparison: CpuComparison = {
    dumped: true,
    checkExitCode: check.exitCode,
    checkErrors: criuErrorLines(`${check.stdout}\n${check.stderr}`),
  };
  if (check.exitCode !== 0) comparison.checkMessage = failureText(check);
  return comparison;
}

/** `criu cpuinfo dump` on the source, `criu cpuinfo check` of that image on the target. */
export async function compareCpus(source: Host, target: Host): Promise<CpuComparison> {
  const dump = await source.run(CPUINFO_DUMP_COMMAND, { timeoutMs: PROBE_TIMEOUT_MS });
  const image = dump.stdout.replace(/\s+/g, '');
  if (dump.exitCode !== 0 || image === '') return readCpuComparison(dump, undefined);
  const check = await target.run(CPUINFO_CHECK_COMMAND, { input: `${image}\n`, timeoutMs: PROBE_TIMEOUT_MS });
  return readCpuComparison(dump, check);
}
