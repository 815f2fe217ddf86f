import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { type ProcessOptions, type ProcessResult, runProcess } from './process.js';

const execFileAsync = promisify(execFile);

/** The env file up.sh writes: the same variables choose it (TESTBED_OUT, else TESTBED_STATE/client). */
export const TESTBED_ENV =
  process.env.TESTBED_ENV ??
  `${process.env.TESTBED_OUT ?? `${process.env.TESTBED_STATE ?? '/var/lib/criu-migrate-testbed'}/client`}/env`;

export interface Testbed {
  host1: string;
  host2: string;
  /** Checkpoint store: sshd only, no dockerd; what runs there may rely on sh, tar and sha256sum only. */
  host3: string;
  host1Pid: number;
  host2Pid: number;
  host3Pid: number;
  sshKeyPath: string;
  knownHostsPath: string;
  image: string;
  /** An OpenSSH control socket directory: commands reuse one connection per host (the benchmark's). */
  controlDir?: string;
  /** Every host of the bed by number (variant beds have more than three), as up.sh describes it. */
  hosts: Map<number, BedHost>;
}

export interface BedHost {
  destination: string;
  pid: number;
  /** up.sh's words: role, root, cgroup version, init ("docker trixie cgroup-v2 systemd"). */
  kind: string;
}

/** Host n of the bed; fails when the bed has no such host. */
export function bedHost(bed: Testbed, n: number): BedHost {
  const host = bed.hosts.get(n);
  if (!host) throw new Error(`the test bed has no host ${n}`);
  return host;
}

/** The bed whose env file is `envFile` (up.sh writes it); the default bed's unless told. */
export function loadTestbed(envFile = TESTBED_ENV): Testbed {
  if (!existsSync(envFile)) {
    throw new Error(`test bed not found (${envFile}): run \`npm run testbed:up\` as root first`);
  }
  const vars = new Map<string, string>();
  for (const line of readFileSync(envFile, 'utf8').split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) vars.set(line.slice(0, eq), line.slice(eq + 1));
  }
  const need = (name: string): string => {
    const value = vars.get(name);
    if (!value) throw new Error(`${envFile} has no ${name}`);
    return value;
  };
  const hosts = new Map<number, BedHost>();
  for (const [key, value] of vars) {
    const match = /^TESTBED_HOST(\d+)$/.exec(key);
    if (!match) continue;
    hosts.set(Number(match[1]), {
      destination: value,
      pid: Number(need(`TESTBED_HOST${match[1]}_PID`)),
      kind: vars.get(`TESTBED_HOST${match[1]}_KIND`) ?? '',
    });
  }
  return {
    hosts,
    host1: need('TESTBED_HOST1'),
    host2: need('TESTBED_HOST2'),
    host3: need('TESTBED_HOST3'),
    host1Pid: Number(need('TESTBED_HOST1_PID')),
    host2Pid: Number(need('TESTBED_HOST2_PID')),
    host3Pid: Number(need('TESTBED_HOST3_PID')),
    sshKeyPath: need('TESTBED_SSH_KEY'),
    knownHostsPath: need('TESTBED_KNOWN_HOSTS'),
    image: need('TESTBED_IMAGE'),
  };
}

/** "root@127.0.0.2:22" -> ssh arguments. */
export function sshArgs(bed: Testbed, destination: string): string[] {
  const match = /^(.+)@(.+):(\d+)$/.exec(destination);
  if (!match) throw new Error(`bad destination ${destination}`);
  return [
    '-o',
    'BatchMode=yes',
    '-o',
    `UserKnownHostsFile=${bed.knownHostsPath}`,
    '-o',
    'StrictHostKeyChecking=yes',
    '-i',
    bed.sshKeyPath,
    '-o',
    'IdentitiesOnly=yes',
    ...(bed.controlDir ? ['-o', `ControlPath=${bed.controlDir}/%C`, '-o', 'ControlMaster=no'] : []),
    '-p',
    match[3]!,
    `${match[1]}@${match[2]}`,
  ];
}

/**
 * Runs a shell command on a test bed host with OpenSSH, independently of the
 * action's own SSH code, so assertions do not trust what they test.
 */
export async function onHost(bed: Testbed, destination: string, command: string): Promise<string> {
  const { stdout } = await execFileAsync('ssh', [...sshArgs(bed, destination), command], {
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout;
}

export async function onHostResult(
  bed: Testbed,
  destination: string,
  command: string,
  options: ProcessOptions = {},
): Promise<ProcessResult> {
  return runProcess(['ssh', ...sshArgs(bed, destination), command], options);
}

export interface CounterLine {
  n: number;
  ms: number;
  token: string;
}

/** Parses the workload's "<n> <epoch-ms> <token>" lines; other lines are ignored. */
export function parseCounter(logs: string): CounterLine[] {
  const lines: CounterLine[] = [];
  for (const line of logs.split('\n')) {
    const match = /^(\d+) (\d{13}) ([0-9a-f-]{36})$/.exec(line.trim());
    if (match) lines.push({ n: Number(match[1]), ms: Number(match[2]), token: match[3]! });
  }
  return lines;
}

/** Largest gap between consecutive timestamps: the downtime as the workload saw it. */
export function largestGapMs(lines: CounterLine[]): number {
  let gap = 0;
  for (let i = 1; i < lines.length; i++) gap = Math.max(gap, lines[i]!.ms - lines[i - 1]!.ms);
  return gap;
}

export async function containerLogs(bed: Testbed, destination: string, name: string): Promise<string> {
  return onHost(bed, destination, `docker logs ${name} 2>&1`);
}

/** What the counter's memory holds (test/testbed/workload/counter.sh): incompressible, text-like, or one repeated byte. */
export const MEMORY_PATTERNS = ['random', 'text', 'zeros'] as const;
export type MemoryPattern = (typeof MEMORY_PATTERNS)[number];

/** TESTBED_PATTERN runs the suite's counters with another pattern; counter.sh's own default otherwise. */
function defaultPattern(): MemoryPattern {
  const value = process.env.TESTBED_PATTERN ?? 'random';
  const pattern = MEMORY_PATTERNS.find((p) => p === value);
  if (!pattern) throw new Error(`TESTBED_PATTERN must be one of ${MEMORY_PATTERNS.join(', ')}, not ${value}`);
  return pattern;
}

/** Starts the counter workload on a host and waits until it has printed a few lines. */
export async function startCounter(
  bed: Testbed,
  destination: string,
  name: string,
  options: { mb?: number; extraArgs?: string; pattern?: MemoryPattern } = {},
): Promise<void> {
  await onHostResult(bed, destination, `docker rm -f ${name}`);
  await ensureBedImage(bed, destination);
  const pattern = options.pattern ?? defaultPattern();
  await onHost(
    bed,
    destination,
    `docker run -d --name ${name} -e MB=${options.mb ?? 16} -e PATTERN=${pattern} ${options.extraArgs ?? ''} ${bed.image} testbed-counter`,
  );
  for (let i = 0; i < 100; i++) {
    if (parseCounter(await containerLogs(bed, destination, name)).length >= 5) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`counter ${name} on ${destination} did not start`);
}

/**
 * The bed imports its image on host 1 only; other hosts usually get it by migration. A test
 * that starts a workload elsewhere first copies it from host 1, so it also runs alone.
 */
export async function ensureBedImage(bed: Testbed, destination: string): Promise<void> {
  if (destination === bed.host1) return;
  if ((await onHostResult(bed, destination, `docker image inspect ${bed.image} >/dev/null`)).code === 0)
    return;
  const ssh = (host: string, command: string) =>
    ['ssh', ...sshArgs(bed, host), command].map((word) => `'${word.replace(/'/g, `'\\''`)}'`).join(' ');
  await execFileAsync(
    'bash',
    [
      '-o',
      'pipefail',
      '-c',
      `${ssh(bed.host1, `docker save ${bed.image}`)} | ${ssh(destination, 'docker load -q')}`,
    ],
    { timeout: 5 * 60_000 },
  );
}

/** Polls a container's logs until the pattern shows up; fails after timeoutMs. */
export async function waitForLog(
  bed: Testbed,
  destination: string,
  name: string,
  pattern: RegExp,
  timeoutMs = 15_000,
): Promise<string> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const logs = await containerLogs(bed, destination, name);
    if (pattern.test(logs)) return logs;
    if (Date.now() > until)
      throw new Error(`${name} on ${destination}: ${pattern} not in its logs after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
}

/**
 * Asks a running counter to read its whole value once (counter.sh's memory
 * check) and waits for the answer: proof that the memory came along intact.
 */
export async function checkCounterMemory(
  bed: Testbed,
  destination: string,
  name: string,
  bytes: number,
): Promise<void> {
  await onHost(bed, destination, `docker exec ${name} sh -c 'date +%s%N >/tmp/testbed-counter-check'`);
  await waitForLog(bed, destination, name, new RegExp(`^len ${bytes}$`, 'm'), 60_000);
}

const PACKAGE_IMAGE_SCRIPT = new URL('../testbed/package-image.sh', import.meta.url).pathname;

/** The image of real services (Debian packages) the tests use: postgresql and redis-server in one. */
export const SERVICES_IMAGE = { tag: 'testbed/services:1', packages: ['postgresql', 'redis-server'] };

/**
 * Makes sure a host has an image built from Debian packages: builds it once
 * (cached, under a lock, by test/testbed/package-image.sh) and `docker load`s
 * it on the host when the host lacks it.
 */
export async function ensurePackageImage(
  bed: Testbed,
  destination: string,
  image: { tag: string; packages: readonly string[] } = SERVICES_IMAGE,
): Promise<void> {
  if ((await onHostResult(bed, destination, `docker image inspect ${image.tag} >/dev/null`)).code === 0)
    return;
  const { stdout } = await execFileAsync('bash', [PACKAGE_IMAGE_SCRIPT, image.tag, ...image.packages], {
    maxBuffer: 16 * 1024 * 1024,
    timeout: 15 * 60_000,
  });
  const tar = stdout.trim().split('\n').pop() ?? '';
  if (!existsSync(tar)) throw new Error(`package-image.sh printed no image archive: ${stdout}`);
  const { spawn } = await import('node:child_process');
  const { createReadStream } = await import('node:fs');
  const load = spawn('ssh', [...sshArgs(bed, destination), 'docker load'], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  load.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  createReadStream(tar).pipe(load.stdin);
  const code = await new Promise<number | null>((resolve) => load.on('close', resolve));
  if (code !== 0)
    throw new Error(`docker load of ${image.tag} on ${destination} failed (${code}): ${stderr}`);
}

/** A run from host 1 to host 2 (migrate unless extra says otherwise), with the bed's key and host keys. */
export function moveInputs(
  bed: Testbed,
  container: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    mode: 'migrate',
    container,
    source: bed.host1,
    target: bed.host2,
    ...sshInputs(bed),
    ...extra,
  };
}

/** The key and host keys every run against the bed passes, as action inputs. */
export function sshInputs(bed: Testbed): { 'ssh-key': string; 'known-hosts': string } {
  return {
    'ssh-key': readFileSync(bed.sshKeyPath, 'utf8'),
    'known-hosts': readFileSync(bed.knownHostsPath, 'utf8'),
  };
}
