import { type CommandResult, describeHost, type Host } from '../host/host.js';
import { parseVersion, type Version } from '../policy/versions.js';

/**
 * CRIU features we record; `criu check --feature <name>` exits 0 when supported.
 * `breakpoints` (CRIU 4.2+): hardware breakpoints work; without them CRIU before 4.2 hangs in the dump.
 */
export const CRIU_FEATURES = ['mem_dirty_track', 'uffd-noncoop', 'breakpoints'] as const;
export type CriuFeature = (typeof CRIU_FEATURES)[number];

/** Every command gatherHostFacts runs; all read-only. */
export const FACT_COMMANDS = {
  kernelRelease: 'uname -r',
  machine: 'uname -m',
  criuPath: 'command -v criu',
  criuVersion: 'criu --version',
  criuCheck: 'criu check',
  runcPath: 'command -v runc',
  runcVersion: 'runc --version',
  dockerVersion: "docker version --format '{{json .}}'",
  dockerInfo: "docker info --format '{{json .}}'",
} as const;

export function criuFeatureCommand(feature: CriuFeature): string {
  return `criu check --feature ${feature}`;
}

/** `criu check` creates test processes and namespaces: give it longer than a version query. */
export const FACT_TIMEOUT_MS = { quick: 30_000, criuCheck: 120_000 } as const;

export interface KernelFacts {
  /** `uname -r`, e.g. "6.18.44-fc-v782". */
  release?: string;
  version?: Version;
  /** `uname -m`, e.g. "x86_64". */
  arch?: string;
  /** Why release or arch could not be read. */
  error?: string;
}

export interface CriuCheckResult {
  ok: boolean;
  exitCode: number;
  /** The last few non-empty lines of stdout and stderr. */
  tail: string[];
  /** The very last of those: "Looks good." or the error CRIU ended on. */
  summary: string;
}

export interface CriuFacts {
  present: boolean;
  /** `command -v criu`, e.g. "/usr/sbin/criu". */
  path?: string;
  /** Undefined when present but `criu --version` printed nothing we could read. */
  version?: Version;
  check?: CriuCheckResult;
  /** True/false per feature; absent when CRIU is missing or does not know the feature. */
  features: Partial<Record<CriuFeature, boolean>>;
  /** Why it is missing or unreadable: the stderr of the failing command. */
  error?: string;
}

export interface RuncFacts {
  present: boolean;
  path?: string;
  version?: Version;
  error?: string;
}

export interface DockerFacts extends Partial<Omit<DockerInfoFacts, 'runtimes'>> {
  /** The docker client is installed. */
  present: boolean;
  /** The daemon answered `docker version`. */
  reachable: boolean;
  /** Why it is missing or unreachable. */
  error?: string;
  apiVersion?: string;
  /** From Server.Components of `docker version`: what the daemon actually uses. */
  containerdVersion?: Version;
  runcVersion?: Version;
  /** Names of the configured runtimes ("runc", "io.containerd.runc.v2", ...). */
  runtimes: string[];
}

export interface HostFacts {
  /** Role and address, for messages: "source root@10.0.0.1:22". */
  host: string;
  kernel: KernelFacts;
  criu: CriuFacts;
  runc: RuncFacts;
  docker: DockerFacts;
}

// --- small JSON guards -------------------------------------------------------------------------

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function stringField(obj: JsonObject, key: string): string | undefined {
  const value = obj[key];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function boolField(obj: JsonObject, key: string): boolean | undefined {
  const value = obj[key];
  if (typeof value === 'boolean') return value;
  // Server.Components[].Details carries booleans as strings.
  if (value === 'true') return true;
  if (value === 'false') return false;
  return undefined;
}

function parseJsonObject(text: string): JsonObject | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return isObject(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

// --- pure parsers --------------------------------------------------------------------------------

/** Exit 127 is the shell's "not found"; sudo says "command not found" with exit 1. */
export function isCommandMissing(result: CommandResult): boolean {
  return result.exitCode === 127 || /command not found/i.test(result.stderr);
}

/** One line saying why a command failed, for facts and messages. */
export function failureText(result: CommandResult): string {
  if (result.exitCode === -1) return 'timed out';
  const line = lastLines(result.stderr, 1)[0] ?? lastLines(result.stdout, 1)[0];
  return line ?? `exit code ${result.exitCode}`;
}

function lastLines(text: string, count: number): string[] {
  const lines = text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
  return lines.slice(-count);
}

/** First line of `command -v`; only an absolute path counts (a shell builtin or alias does not). */
export function parseCommandPath(result: CommandResult): string | undefined {
  if (result.exitCode !== 0) return undefined;
  const line = result.stdout.split('\n')[0]?.trim() ?? '';
  return line.startsWith('/') ? line : undefined;
}

export function parseKernel(release: CommandResult, machine: CommandResult): KernelFacts {
  const facts: KernelFacts = {};
  const releaseText = release.exitCode === 0 ? release.stdout.trim() : '';
  const archText = machine.exitCode === 0 ? machine.stdout.trim() : '';
  if (releaseText !== '') {
    facts.release = releaseText;
    const version = parseVersion(releaseText);
    if (version) facts.version = version;
  }
  if (archText !== '') facts.arch = archText;
  const errors = [
    releaseText === '' && `uname -r: ${failureText(release)}`,
    archText === '' && `uname -m: ${failureText(machine)}`,
  ].filter((e): e is string => typeof e === 'string');
  if (errors.length > 0) facts.error = errors.join('; ');
  return facts;
}

/** `criu --version` prints "Version: 4.2.1" (and a "GitID:" line on git builds). */
export function parseCriuVersion(stdout: string): Version | undefined {
  const match = /(?:^|\s)Version:\s*(\S+)/m.exec(stdout);
  return match ? parseVersion(match[1]) : undefined;
}

/** CRIU writes "Looks good." to stdout and warnings and errors to stderr; keep the end of both. */
export function parseCriuCheck(result: CommandResult): CriuCheckResult {
  const tail = [...lastLines(result.stderr, 3), ...lastLines(result.stdout, 3)].slice(-3);
  const ok = result.exitCode === 0;
  const summary = ok
    ? (tail.at(-1) ?? 'exit code 0')
    : // On failure the error is on stderr; stdout may be empty or hold unrelated lines.
      (lastLines(result.stderr, 1)[0] ?? tail.at(-1) ?? failureText(result));
  return { ok, exitCode: result.exitCode, tail, summary };
}

/** Exit 0 means supported; undefined when this CRIU does not know the feature ("Unknown feature"). */
export function parseCriuFeature(result: CommandResult): boolean | undefined {
  if (result.exitCode === 0) return true;
  return /Unknown feature/i.test(result.stderr + result.stdout) ? undefined : false;
}

/** First line of `runc --version`: "runc version 1.1.15+ds1". */
export function parseRuncVersion(stdout: string): Version | undefined {
  const match = /^runc version\s+(\S+)/m.exec(stdout);
  return match ? parseVersion(match[1]) : undefined;
}

export interface DockerVersionFacts {
  serverVersion?: Version;
  apiVersion?: string;
  containerdVersion?: Version;
  runcVersion?: Version;
  experimental?: boolean;
}

/** `docker version --format '{{json .}}'`; undefined when there is no Server part (daemon unreachable). */
export function parseDockerVersion(stdout: string): DockerVersionFacts | undefined {
  const root = parseJsonObject(stdout.trim());
  const server = root?.Server;
  if (!isObject(server)) return undefined;
  const facts: DockerVersionFacts = {};
  const components = Array.isArray(server.Components) ? server.Components.filter(isObject) : [];
  const componentVersion = (name: string): Version | undefined => {
    const component = components.find((c) => typeof c.Name === 'string' && c.Name.toLowerCase() === name);
    return component ? parseVersion(stringField(component, 'Version')) : undefined;
  };
  const engine = componentVersion('engine') ?? parseVersion(stringField(server, 'Version'));
  if (engine) facts.serverVersion = engine;
  const api = stringField(server, 'ApiVersion');
  if (api) facts.apiVersion = api;
  const containerd = componentVersion('containerd');
  if (containerd) facts.containerdVersion = containerd;
  const runc = componentVersion('runc');
  if (runc) facts.runcVersion = runc;
  const experimental = boolField(server, 'Experimental');
  if (experimental !== undefined) facts.experimental = experimental;
  return facts;
}

export interface DockerInfoFacts {
  experimental?: boolean;
  defaultRuntime?: string;
  runtimes: string[];
  /** "1" or "2". */
  cgroupVersion?: string;
  /** "cgroupfs" or "systemd". */
  cgroupDriver?: string;
  /** `docker info` Driver, e.g. "overlay2"; "overlayfs" under the containerd image store. */
  storageDriver?: string;
  rootDir?: string;
  /** The containerd image store (snapshotters) is in use instead of graph drivers. */
  containerdImageStore: boolean;
  serverVersion?: Version;
}

/** `docker info --format '{{json .}}'`; undefined when it is not JSON or the daemon did not answer. */
export function parseDockerInfo(stdout: string): DockerInfoFacts | undefined {
  const info = parseJsonObject(stdout.trim());
  if (!info) return undefined;
  // Without a daemon the client still prints the structure, with every server field empty.
  const serverErrors = Array.isArray(info.ServerErrors) ? info.ServerErrors : [];
  const serverVersion = parseVersion(stringField(info, 'ServerVersion'));
  if (serverErrors.length > 0 || !serverVersion) return undefined;
  const driverStatus = Array.isArray(info.DriverStatus) ? info.DriverStatus : [];
  const containerdImageStore = driverStatus.some(
    (pair) => Array.isArray(pair) && pair[0] === 'driver-type' && pair[1] === 'io.containerd.snapshotter.v1',
  );
  const facts: DockerInfoFacts = {
    runtimes: isObject(info.Runtimes) ? Object.keys(info.Runtimes).sort() : [],
    containerdImageStore,
    serverVersion,
  };
  const experimental = boolField(info, 'ExperimentalBuild');
  if (experimental !== undefined) facts.experimental = experimental;
  const defaultRuntime = stringField(info, 'DefaultRuntime');
  if (defaultRuntime) facts.defaultRuntime = defaultRuntime;
  const cgroupVersion = stringField(info, 'CgroupVersion');
  if (cgroupVersion) facts.cgroupVersion = cgroupVersion;
  const cgroupDriver = stringField(info, 'CgroupDriver');
  if (cgroupDriver) facts.cgroupDriver = cgroupDriver;
  const storageDriver = stringField(info, 'Driver');
  if (storageDriver) facts.storageDriver = storageDriver;
  const rootDir = stringField(info, 'DockerRootDir');
  if (rootDir) facts.rootDir = rootDir;
  return facts;
}

/** Combines the two docker queries into DockerFacts. */
export function parseDockerFacts(version: CommandResult, info: CommandResult): DockerFacts {
  if (isCommandMissing(version)) {
    return { present: false, reachable: false, runtimes: [], error: failureText(version) };
  }
  const fromVersion = version.exitCode === 0 ? parseDockerVersion(version.stdout) : undefined;
  if (!fromVersion) {
    return { present: true, reachable: false, runtimes: [], error: failureText(version) };
  }
  const fromInfo = info.exitCode === 0 ? parseDockerInfo(info.stdout) : undefined;
  const facts: DockerFacts = { present: true, reachable: true, runtimes: fromInfo?.runtimes ?? [] };
  const serverVersion = fromVersion.serverVersion ?? fromInfo?.serverVersion;
  if (serverVersion) facts.serverVersion = serverVersion;
  if (fromVersion.apiVersion) facts.apiVersion = fromVersion.apiVersion;
  if (fromVersion.containerdVersion) facts.containerdVersion = fromVersion.containerdVersion;
  if (fromVersion.runcVersion) facts.runcVersion = fromVersion.runcVersion;
  // docker info reports the daemon's own setting; version's Server.Experimental is the same flag.
  const experimental = fromInfo?.experimental ?? fromVersion.experimental;
  if (experimental !== undefined) facts.experimental = experimental;
  if (!fromInfo) {
    facts.error = `docker info: ${failureText(info)}`;
    return facts;
  }
  if (fromInfo.defaultRuntime) facts.defaultRuntime = fromInfo.defaultRuntime;
  if (fromInfo.cgroupVersion) facts.cgroupVersion = fromInfo.cgroupVersion;
  if (fromInfo.cgroupDriver) facts.cgroupDriver = fromInfo.cgroupDriver;
  if (fromInfo.storageDriver) facts.storageDriver = fromInfo.storageDriver;
  if (fromInfo.rootDir) facts.rootDir = fromInfo.rootDir;
  facts.containerdImageStore = fromInfo.containerdImageStore;
  return facts;
}

// --- gathering -------------------------------------------------------------------------------------

async function gatherCriu(host: Host, pathResult: CommandResult): Promise<CriuFacts> {
  const path = parseCommandPath(pathResult);
  if (!path) {
    const error = pathResult.stderr.trim() !== '' ? failureText(pathResult) : 'criu not found in PATH';
    return { present: false, features: {}, error };
  }
  const quick = { timeoutMs: FACT_TIMEOUT_MS.quick };
  const [versionResult, checkResult, ...featureResults] = await Promise.all([
    host.run(FACT_COMMANDS.criuVersion, quick),
    host.run(FACT_COMMANDS.criuCheck, { timeoutMs: FACT_TIMEOUT_MS.criuCheck }),
    ...CRIU_FEATURES.map((feature) =>
      host.run(criuFeatureCommand(feature), { timeoutMs: FACT_TIMEOUT_MS.criuCheck }),
    ),
  ]);
  const facts: CriuFacts = { present: true, path, features: {}, check: parseCriuCheck(checkResult) };
  const version = parseCriuVersion(versionResult.stdout);
  if (version) facts.version = version;
  else facts.error = `criu --version: ${failureText(versionResult)}`;
  CRIU_FEATURES.forEach((feature, index) => {
    const result = featureResults[index];
    const supported = result && parseCriuFeature(result);
    if (supported !== undefined) facts.features[feature] = supported;
  });
  return facts;
}

async function gatherRunc(host: Host, pathResult: CommandResult): Promise<RuncFacts> {
  const path = parseCommandPath(pathResult);
  if (!path) {
    const error = pathResult.stderr.trim() !== '' ? failureText(pathResult) : 'runc not found in PATH';
    return { present: false, error };
  }
  const result = await host.run(FACT_COMMANDS.runcVersion, { timeoutMs: FACT_TIMEOUT_MS.quick });
  const version = parseRuncVersion(result.stdout);
  return version ? { present: true, path, version } : { present: true, path, error: failureText(result) };
}

/** Runs read-only queries on the host and records what it has; missing tools are facts, not errors. */
export async function gatherHostFacts(host: Host): Promise<HostFacts> {
  const quick = { timeoutMs: FACT_TIMEOUT_MS.quick };
  const [release, machine, criuPath, runcPath, dockerVersion, dockerInfo] = await Promise.all([
    host.run(FACT_COMMANDS.kernelRelease, quick),
    host.run(FACT_COMMANDS.machine, quick),
    host.run(FACT_COMMANDS.criuPath, quick),
    host.run(FACT_COMMANDS.runcPath, quick),
    host.run(FACT_COMMANDS.dockerVersion, quick),
    host.run(FACT_COMMANDS.dockerInfo, quick),
  ]);
  const [criu, runc] = await Promise.all([gatherCriu(host, criuPath), gatherRunc(host, runcPath)]);
  return {
    host: describeHost(host),
    kernel: parseKernel(release, machine),
    criu,
    runc,
    docker: parseDockerFacts(dockerVersion, dockerInfo),
  };
}
