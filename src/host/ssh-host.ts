import type { Duplex, Readable } from 'node:stream';
import ssh2, { type Client, type ClientChannel, type ConnectConfig, type ServerHostKeyAlgorithm } from 'ssh2';
import { errorMessage, MigrationError } from '../errors.js';
import { abortReason } from './abortable.js';
import type {
  CommandResult,
  Host,
  HostProcess,
  LoopbackListener,
  LoopbackTunnels,
  ProcessExit,
  RunOptions,
  SpawnOptions,
} from './host.js';
import { formatHostSpec, type HostSpec } from './host-spec.js';
import {
  checkHostKey,
  fingerprint,
  type HostKeyVerdict,
  type KnownHostEntry,
  keyTypeOf,
  matchHostKeys,
  parseKnownHosts,
} from './known-hosts.js';
import { appendNotes, shellQuote } from './shell.js';

export interface SshLogger {
  debug(message: string): void;
}

export interface SshConnectOptions {
  /** "source", "target", ...; the bastion always gets the role "jump". */
  role: string;
  spec: HostSpec;
  privateKey?: string | Buffer;
  passphrase?: string;
  /** known_hosts text; checked for both the host and the jump host. */
  knownHosts: string;
  /** Accept any host key. The caller warns about it. */
  insecureSkipHostKeyCheck: boolean;
  jump?: HostSpec;
  readyTimeoutMs?: number;
  logger?: SshLogger;
  /** Told when a connection sshd dropped before the handshake is tried again. */
  onRetry?: (message: string) => void;
  /** Stand-in for tests. */
  sleep?: (ms: number) => Promise<void>;
}

/**
 * A connection sshd closed before the SSH handshake: what its MaxStartups limit does to
 * connections beyond ten unauthenticated ones, as when a matrix starts many runs at once.
 */
export class StartupDropped extends MigrationError {}

/** How often, and for how long, a connection dropped before the handshake is tried again. */
export const STARTUP_RETRY = { attempts: 6, withinMs: 60_000, firstMs: 500, maxMs: 8_000 } as const;

/** Pure: the wait before attempt `attempt + 1`, doubling, with jitter so runs started together spread out. */
export function startupRetryDelay(attempt: number, random: number): number {
  const base = Math.min(STARTUP_RETRY.firstMs * 2 ** (attempt - 1), STARTUP_RETRY.maxMs);
  return Math.round(base * (0.5 + random));
}

/** Pure: the error of a connection that ended before the server showed its host key, as sshd drops one. */
export function isStartupDrop(error: unknown, keyPresented: boolean): boolean {
  if (keyPresented) return false;
  const code = typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : '';
  return (
    code === 'ECONNRESET' ||
    /before handshake|closed before SSH was ready|ECONNRESET/i.test(errorMessage(error))
  );
}

const DEFAULT_READY_TIMEOUT_MS = 20_000;
const KEEPALIVE_INTERVAL_MS = 10_000;
const KEEPALIVE_COUNT_MAX = 3;
/** Between SIGTERM and SIGKILL (and closing the channel) when stopping a command. */
const KILL_GRACE_MS = 3_000;
/** Wait this long for an 'exit' that lags behind 'close' before calling the exit status missing. */
const LATE_EXIT_WAIT_MS = 100;
const CLOSE_TIMEOUT_MS = 5_000;
const ABORTED_NOTE = 'aborted';

const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

/** Host key algorithm names ssh2 negotiates, per key type as known_hosts writes it. */
const HOST_KEY_ALGORITHMS: Record<string, ServerHostKeyAlgorithm[]> = {
  'ssh-ed25519': ['ssh-ed25519'],
  'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
  'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
  'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
};

/** Connects (through the jump host when given) and checks the host keys against known_hosts. */
export async function connectSsh(options: SshConnectOptions): Promise<SshHost> {
  const privateKey = checkPrivateKey(options);
  const entries = parseKnownHosts(options.knownHosts);
  const base = {
    privateKey,
    passphrase: options.passphrase,
    entries,
    insecure: options.insecureSkipHostKeyCheck,
    readyTimeoutMs: options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS,
    logger: options.logger,
  };
  const openClient = (params: ClientParams): Promise<OpenClient> =>
    openClientRetrying(params, options.onRetry, options.sleep ?? delay);
  if (options.jump === undefined) {
    const target = await openClient({ ...base, role: options.role, spec: options.spec });
    return new SshHost(options.role, formatHostSpec(options.spec), target);
  }
  const jump = await openClient({ ...base, role: 'jump', spec: options.jump });
  try {
    const sock = await forwardTo(jump, options.role, options.spec, options.jump);
    const target = await openClient({
      ...base,
      role: options.role,
      spec: options.spec,
      sock,
      via: formatHostSpec(options.jump),
    });
    const address = `${formatHostSpec(options.spec)} via ${formatHostSpec(options.jump)}`;
    return new SshHost(options.role, address, target, jump);
  } catch (error) {
    await endClient(jump);
    throw error;
  }
}

/** One live SSH connection (and its bastion, if any) as a Host. */
export class SshHost implements Host {
  private closing = false;
  private lost: MigrationError | undefined;
  private readonly channels = new Set<ClientChannel>();

  constructor(
    readonly role: string,
    readonly address: string,
    private readonly target: OpenClient,
    private readonly jump?: OpenClient,
  ) {
    for (const side of [target, jump]) {
      side?.client.on('close', () => this.onConnectionClosed(side));
    }
  }

  /** The SHA256 fingerprint of the host key the server presented. */
  get hostKeyFingerprint(): string {
    return this.target.hostKeyFingerprint;
  }

  /** Set once the connection dropped without close() being called. */
  get connectionError(): MigrationError | undefined {
    return this.lost;
  }

  async run(command: string, options: RunOptions = {}): Promise<CommandResult> {
    const { signal } = options;
    if (signal?.aborted) return { exitCode: -1, stdout: '', stderr: appendNotes('', [ABORTED_NOTE]) };
    // Without input, stdin comes from /dev/null on the far side, so the channel
    // stays writable: ssh2 refuses to send signals on a channel whose stdin ended.
    const quoted = `sh -c ${shellQuote([command])}`;
    const channel = await this.exec(options.input === undefined ? `${quoted} </dev/null` : quoted);
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    // The outcome comes from 'close'; a stream error must not go unhandled.
    channel.on('error', () => {});
    channel.on('data', (chunk: Buffer) => stdout.push(chunk));
    channel.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    const ended = channelEnd(channel);
    if (options.input !== undefined) channel.end(options.input);

    // The first of timeout and abort decides the note.
    let stopped: 'timeout' | 'abort' | undefined;
    const stop = (why: 'timeout' | 'abort'): void => {
      if (stopped !== undefined) return;
      stopped = why;
      stopChannel(channel);
    };
    let timer: NodeJS.Timeout | undefined;
    if (options.timeoutMs !== undefined) timer = setTimeout(() => stop('timeout'), options.timeoutMs);
    const onAbort = (): void => stop('abort');
    signal?.addEventListener('abort', onAbort, { once: true });
    // Aborted while the channel was opening.
    if (signal?.aborted) onAbort();
    const end = await ended;
    if (timer) clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
    if (end.exitCode === null && end.signal === null && stopped === undefined && this.lost) throw this.lost;

    const notes: string[] = [];
    let exitCode = end.exitCode ?? -1;
    if (stopped === 'timeout') {
      exitCode = -1;
      notes.push(`timed out after ${options.timeoutMs} ms and was stopped`);
    } else if (stopped === 'abort') {
      exitCode = -1;
      notes.push(ABORTED_NOTE);
    } else if (end.signal !== null) {
      notes.push(`killed by signal ${end.signal}`);
    } else if (end.exitCode === null) {
      notes.push('the SSH channel closed without an exit status');
    }
    return {
      exitCode,
      stdout: Buffer.concat(stdout).toString('utf8'),
      stderr: appendNotes(Buffer.concat(stderr).toString('utf8'), notes),
    };
  }

  async spawn(command: string, options: SpawnOptions = {}): Promise<HostProcess> {
    const { signal } = options;
    if (signal?.aborted) throw abortReason(signal, this);
    const channel = await this.exec(`sh -c ${shellQuote([command])}`);
    let killed = false;
    const kill = (): void => {
      // A second SIGTERM and grace timer would add nothing.
      if (killed) return;
      killed = true;
      stopChannel(channel);
      // 'close' only comes once both streams ended; drain what nobody reads any more.
      drain(channel);
      drain(channel.stderr);
    };
    signal?.addEventListener('abort', kill, { once: true });
    // Aborted while the channel was opening.
    if (signal?.aborted) kill();
    const exit = channelEnd(channel).then((end): ProcessExit => {
      signal?.removeEventListener('abort', kill);
      return { exitCode: end.exitCode, signal: end.signal };
    });
    return {
      stdin: channel,
      stdout: channel,
      stderr: channel.stderr,
      exit,
      kill,
    };
  }

  /** direct-tcpip and tcpip-forward on the host's own 127.0.0.1 (sshd's AllowTcpForwarding). */
  readonly tunnels: LoopbackTunnels = {
    connect: (port: number): Promise<Duplex> =>
      new Promise((resolve, reject) => {
        try {
          this.target.client.forwardOut('127.0.0.1', 0, '127.0.0.1', port, (error, stream) => {
            if (error) reject(this.forwardError(error, `connecting to 127.0.0.1:${port}`));
            else resolve(stream);
          });
        } catch (error) {
          reject(this.forwardError(error, `connecting to 127.0.0.1:${port}`));
        }
      }),
    listen: (onConnection: (stream: Duplex) => void): Promise<LoopbackListener> =>
      new Promise((resolve, reject) => {
        const { client } = this.target;
        let bound = 0;
        const incoming = (
          details: { destIP: string; destPort: number },
          accept: () => ClientChannel,
          refuse: () => void,
        ): void => {
          // One client carries every forward of this connection: take only ours.
          if (bound === 0 || details.destPort !== bound) return;
          if (details.destIP !== '127.0.0.1') {
            refuse();
            return;
          }
          onConnection(accept());
        };
        client.on('tcp connection', incoming);
        try {
          client.forwardIn('127.0.0.1', 0, (error, port) => {
            if (error) {
              client.off('tcp connection', incoming);
              reject(this.forwardError(error, 'listening on 127.0.0.1'));
              return;
            }
            bound = port;
            resolve({
              port,
              close: () =>
                new Promise<void>((done) => {
                  client.off('tcp connection', incoming);
                  try {
                    client.unforwardIn('127.0.0.1', port, () => done());
                  } catch {
                    done();
                  }
                }),
            });
          });
        } catch (error) {
          client.off('tcp connection', incoming);
          reject(this.forwardError(error, 'listening on 127.0.0.1'));
        }
      }),
  };

  private forwardError(error: unknown, what: string): MigrationError {
    return new MigrationError(
      'SSH_DISCONNECTED',
      `${this.label}: SSH forwarding refused ${what}: ${errorMessage(error)}`,
      {
        step: 'transfer',
        host: `${this.role} ${this.address}`,
        cause: error,
        remedy:
          "allow TCP forwarding for the action's login in the host's sshd (AllowTcpForwarding yes or local/remote), or use memory: eager",
      },
    );
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    for (const channel of this.channels) channel.close();
    await endClient(this.target);
    if (this.jump) await endClient(this.jump);
  }

  private exec(command: string): Promise<ClientChannel> {
    if (this.lost) return Promise.reject(this.lost);
    if (this.closing) {
      return Promise.reject(
        new MigrationError('SSH_DISCONNECTED', 'the SSH connection was already closed', { host: this.label }),
      );
    }
    return new Promise((resolve, reject) => {
      const opened = (error: Error | undefined, channel: ClientChannel): void => {
        if (error) {
          reject(this.lost ?? this.channelError(error));
          return;
        }
        this.channels.add(channel);
        channel.once('close', () => this.channels.delete(channel));
        resolve(channel);
      };
      try {
        this.target.client.exec(command, opened);
      } catch (error) {
        reject(this.lost ?? this.channelError(error));
      }
    });
  }

  private channelError(error: unknown): MigrationError {
    // ssh2's words for a connection that is going away before 'close' arrives.
    if (/^(Not connected|No response from server)$/.test(errorMessage(error))) {
      return new MigrationError('SSH_DISCONNECTED', `the SSH connection is gone: ${errorMessage(error)}`, {
        host: this.label,
        cause: error,
        remedy: 'check the network between the runner and the host, and the host sshd logs',
      });
    }
    return new MigrationError(
      'COMMAND_FAILED',
      `could not start a command over SSH: ${errorMessage(error)}`,
      {
        host: this.label,
        cause: error,
        remedy:
          'if many commands run at once, raise MaxSessions in the host sshd_config (the default allows 10 per connection)',
      },
    );
  }

  private onConnectionClosed(side: OpenClient): void {
    if (this.closing || this.lost) return;
    const through = side === this.jump ? ` (the connection to jump host ${side.address} closed)` : '';
    const cause = side.lastError ?? this.target.lastError;
    const why = cause ? `: ${errorMessage(cause)}` : '';
    this.lost = new MigrationError(
      'SSH_DISCONNECTED',
      `the SSH connection closed unexpectedly${through}${why}`,
      {
        host: this.label,
        cause,
        remedy: 'check the network between the runner and the host, and the host sshd logs',
      },
    );
    // Without the bastion the target's tunnel is gone too.
    if (side === this.jump) this.target.client.end();
  }

  private get label(): string {
    return `${this.role} ${this.address}`;
  }
}

interface OpenClient {
  client: Client;
  role: string;
  address: string;
  hostKeyFingerprint: string;
  closed: boolean;
  lastError?: Error;
}

interface ClientParams {
  role: string;
  spec: HostSpec;
  privateKey: Buffer | string;
  passphrase: string | undefined;
  entries: KnownHostEntry[];
  insecure: boolean;
  readyTimeoutMs: number;
  logger: SshLogger | undefined;
  sock?: Readable;
  via?: string;
}

function checkPrivateKey(options: SshConnectOptions): Buffer | string {
  const host = `${options.role} ${formatHostSpec(options.spec)}`;
  if (options.privateKey === undefined || options.privateKey.length === 0) {
    throw new MigrationError('SSH_KEY_MISSING', 'no SSH private key was given', {
      step: 'connect',
      host,
      remedy: 'set the ssh-key input (or ssh-key-path) to the private key authorized on the hosts',
    });
  }
  const parsed = ssh2.utils.parseKey(options.privateKey, options.passphrase);
  if (parsed instanceof Error) {
    throw new MigrationError('INPUT_INVALID', `the SSH private key cannot be read: ${parsed.message}`, {
      step: 'connect',
      host,
      remedy:
        'give the private key in OpenSSH or PEM format; if it is encrypted, set the passphrase input to its passphrase',
    });
  }
  return options.privateKey;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Opens a client, trying again (bounded, jittered) while sshd drops the connection before the handshake. */
async function openClientRetrying(
  params: ClientParams,
  onRetry: ((message: string) => void) | undefined,
  sleep: (ms: number) => Promise<void>,
): Promise<OpenClient> {
  const started = Date.now();
  for (let attempt = 1; ; attempt++) {
    try {
      return await openClient(params);
    } catch (error) {
      const wait = startupRetryDelay(attempt, Math.random());
      const more = attempt < STARTUP_RETRY.attempts && Date.now() - started + wait <= STARTUP_RETRY.withinMs;
      if (!(error instanceof StartupDropped) || !more) throw error;
      onRetry?.(
        `${params.role} ${formatHostSpec(params.spec)}: sshd closed the connection before the SSH handshake (its MaxStartups limit, with many runs at once?); trying again in ${wait} ms (attempt ${attempt + 1} of ${STARTUP_RETRY.attempts}). docs/hosts.md says how to raise the limit.`,
      );
      await sleep(wait);
    }
  }
}

function openClient(params: ClientParams): Promise<OpenClient> {
  const { role, spec, logger } = params;
  const address = formatHostSpec(spec);
  const host = `${role} ${params.via ? `${address} via ${params.via}` : address}`;
  const known = matchHostKeys(params.entries, spec.host, spec.port);
  let verdict: HostKeyVerdict | undefined;
  let presented: Buffer | undefined;

  const verifyHostKey = (key: Buffer): boolean => {
    presented = key;
    if (params.insecure) {
      verdict = { ok: true };
      return true;
    }
    verdict = checkHostKey(params.entries, spec.host, spec.port, key);
    logger?.debug(
      `${host}: host key ${fingerprint(key)} ${verdict.ok ? 'matches known_hosts' : verdict.reason}`,
    );
    return verdict.ok;
  };

  // Offer only the key types known_hosts has for this host, as OpenSSH does, so
  // a host with several keys is not refused for showing one we do not list.
  const knownAlgorithms = [...new Set(known.allowed.flatMap((k) => HOST_KEY_ALGORITHMS[k.keyType] ?? []))];
  const restricted = !params.insecure && knownAlgorithms.length > 0;

  const config: ConnectConfig = {
    host: spec.host,
    port: spec.port,
    username: spec.user,
    privateKey: params.privateKey,
    passphrase: params.passphrase,
    hostVerifier: verifyHostKey,
    keepaliveInterval: KEEPALIVE_INTERVAL_MS,
    keepaliveCountMax: KEEPALIVE_COUNT_MAX,
    readyTimeout: params.readyTimeoutMs,
    ...(restricted ? { algorithms: { serverHostKey: knownAlgorithms } } : {}),
    ...(params.sock ? { sock: params.sock } : {}),
    ...(logger ? { debug: (message: string) => logger.debug(`${host}: ${message}`) } : {}),
  };

  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    let settled = false;
    const fail = (error: unknown): void => {
      if (settled) return;
      settled = true;
      client.removeListener('ready', onReady);
      // Keep a listener: ssh2 may still emit 'error' while the socket winds down.
      client.on('error', () => {});
      client.end();
      const context = { host, spec, verdict, presented, restricted, known: known.allowed.length };
      const described = connectError(error, context);
      reject(
        described.code === 'SSH_DISCONNECTED' && isStartupDrop(error, presented !== undefined)
          ? new StartupDropped(described.code, described.message, {
              step: described.step,
              host: described.host,
              remedy: `${described.remedy ?? ''}; with many runs at once, raise sshd's MaxStartups (docs/hosts.md)`,
              cause: error,
            })
          : described,
      );
    };
    const onReady = (): void => {
      if (settled) return;
      settled = true;
      client.removeListener('error', fail);
      client.removeListener('close', onEarlyClose);
      logger?.debug(`${host}: connected`);
      // Nagle's delay costs the relay about a fifth of its throughput (bench/results).
      client.setNoDelay(true);
      const open: OpenClient = {
        client,
        role,
        address,
        hostKeyFingerprint: presented ? fingerprint(presented) : 'unknown',
        closed: false,
      };
      client.once('close', () => {
        open.closed = true;
      });
      // From now on a dropped connection shows as 'error' then 'close'; 'close'
      // decides, and an 'error' without a listener would crash the process.
      client.on('error', (error) => {
        open.lastError = error;
      });
      resolve(open);
    };
    const onEarlyClose = (): void => fail(new Error('the connection closed before SSH was ready'));
    client.once('ready', onReady);
    client.on('error', fail);
    client.once('close', onEarlyClose);
    try {
      client.connect(config);
    } catch (error) {
      fail(error);
    }
  });
}

interface ConnectErrorContext {
  host: string;
  spec: HostSpec;
  verdict: HostKeyVerdict | undefined;
  presented: Buffer | undefined;
  restricted: boolean;
  known: number;
}

function connectError(error: unknown, context: ConnectErrorContext): MigrationError {
  const { host, spec, verdict, presented } = context;
  const base = { step: 'connect', host, cause: error };
  const keyscan = `ssh-keyscan -p ${spec.port} ${spec.host}`;
  if (verdict && !verdict.ok && presented) {
    const shown = `${keyTypeOf(presented) ?? 'unknown type'} ${fingerprint(presented)}`;
    if (verdict.reason === 'unknown') {
      return new MigrationError(
        'HOST_KEY_UNKNOWN',
        `no known_hosts line matches this host (it presented ${shown})`,
        {
          ...base,
          remedy: `run \`${keyscan}\` from a trusted network, check the fingerprint, and add the line to the known-hosts input`,
        },
      );
    }
    if (verdict.reason === 'revoked') {
      return new MigrationError(
        'HOST_KEY_MISMATCH',
        `the host presented a key marked @revoked in known_hosts (${shown})`,
        {
          ...base,
          remedy: 'this key must not be trusted: find out why the host still uses it before trying again',
        },
      );
    }
    return new MigrationError(
      'HOST_KEY_MISMATCH',
      `the host presented ${shown}, which differs from its known_hosts key`,
      {
        ...base,
        remedy: `this may be an attack, or the host was reinstalled; once you have verified the new key (\`${keyscan}\`), replace its line in the known-hosts input`,
      },
    );
  }
  const message = errorMessage(error);
  const code =
    typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : undefined;
  const level =
    typeof error === 'object' && error !== null && 'level' in error ? String(error.level) : undefined;
  if (context.restricted && /host key/i.test(message) && level === 'handshake') {
    return new MigrationError(
      'HOST_KEY_MISMATCH',
      'the host offers none of the key types known_hosts lists for it',
      {
        ...base,
        remedy: `this may be an attack, or the host was reinstalled; once you have verified its keys (\`${keyscan}\`), update the known-hosts input`,
      },
    );
  }
  if (level === 'client-authentication') {
    return new MigrationError('SSH_AUTH_FAILED', `the host refused the SSH key for user ${spec.user}`, {
      ...base,
      remedy: `check that the public key is in ~${spec.user}/.ssh/authorized_keys on the host, that user ${spec.user} may log in (PermitRootLogin for root), and the key passphrase`,
    });
  }
  if (code !== undefined && UNREACHABLE_CODES.has(code)) {
    return new MigrationError('SSH_UNREACHABLE', `cannot reach ${spec.host} port ${spec.port}: ${message}`, {
      ...base,
      remedy: 'check the address and port, that sshd runs there, and that no firewall blocks the runner',
    });
  }
  if (level === 'client-timeout' || code === 'ETIMEDOUT') {
    return new MigrationError('SSH_TIMEOUT', `SSH did not become ready in time: ${message}`, {
      ...base,
      remedy: 'check that the host is up and that nothing between the runner and it drops packets',
    });
  }
  return new MigrationError('SSH_DISCONNECTED', `the SSH connection failed: ${message}`, {
    ...base,
    remedy: 'check the host sshd logs and the network between the runner and the host',
  });
}

/** Opens a TCP tunnel from the bastion to the target's sshd. */
function forwardTo(
  jump: OpenClient,
  role: string,
  spec: HostSpec,
  jumpSpec: HostSpec,
): Promise<ClientChannel> {
  return new Promise((resolve, reject) => {
    const failed = (error: unknown): void => {
      reject(
        new MigrationError(
          'SSH_UNREACHABLE',
          `jump host ${formatHostSpec(jumpSpec)} could not open a connection to ${spec.host} port ${spec.port}: ${errorMessage(error)}`,
          {
            step: 'connect',
            host: `${role} ${formatHostSpec(spec)}`,
            cause: error,
            remedy:
              'check that the jump host can reach the host and port, and that its sshd allows TCP forwarding (AllowTcpForwarding)',
          },
        ),
      );
    };
    try {
      jump.client.forwardOut('127.0.0.1', 0, spec.host, spec.port, (error, stream) => {
        if (error) failed(error);
        else resolve(stream);
      });
    } catch (error) {
      failed(error);
    }
  });
}

export interface ChannelEnd {
  exitCode: number | null;
  signal: string | null;
}

/** The part of an ssh2 channel channelEnd listens to. */
export interface ChannelEvents {
  on(event: 'exit', listener: (...args: unknown[]) => void): unknown;
  once(event: 'close', listener: (...args: unknown[]) => void): unknown;
}

/**
 * Settles on the channel's 'close' with the status from 'exit'. ssh2 normally
 * emits 'exit' first and repeats the status in 'close', but either may carry
 * it, and a late 'exit' is still waited for briefly.
 */
export function channelEnd(channel: ChannelEvents): Promise<ChannelEnd> {
  return new Promise((resolve) => {
    let status: ChannelEnd | undefined;
    let closed = false;
    const record = (code: unknown, signal: unknown): void => {
      if (status) return;
      if (typeof code === 'number') status = { exitCode: code, signal: null };
      else if (typeof signal === 'string')
        status = { exitCode: null, signal: signal.replace(/^(SIG)?/, 'SIG') };
      if (status && closed) resolve(status);
    };
    channel.on('exit', (code, signal) => record(code, signal));
    channel.once('close', (code, signal) => {
      closed = true;
      record(code, signal);
      if (status) {
        resolve(status);
        return;
      }
      setTimeout(() => resolve(status ?? { exitCode: null, signal: null }), LATE_EXIT_WAIT_MS).unref();
    });
  });
}

/**
 * SIGTERM (which sudo relays), then SIGKILL and closing the channel. ssh2
 * cannot signal once our side of stdin has ended, so then close at once:
 * the command loses its pipes and dies on its next read or write.
 */
function stopChannel(channel: ClientChannel): void {
  if (!channel.writable) {
    channel.close();
    return;
  }
  trySignal(channel, 'TERM');
  const escalate = setTimeout(() => {
    trySignal(channel, 'KILL');
    channel.close();
  }, KILL_GRACE_MS);
  escalate.unref();
  channel.once('close', () => clearTimeout(escalate));
}

function trySignal(channel: ClientChannel, signal: string): void {
  try {
    channel.signal(signal);
  } catch {
    // The channel is already closing.
  }
}

function drain(stream: Readable): void {
  stream.on('error', () => {});
  stream.resume();
}

function endClient(open: OpenClient): Promise<void> {
  const { client } = open;
  if (open.closed) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      client.destroy();
      resolve();
    }, CLOSE_TIMEOUT_MS);
    timer.unref();
    client.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    client.on('error', () => {});
    client.end();
  });
}
