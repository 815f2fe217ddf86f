import type { Duplex, Readable, Writable } from 'node:stream';

export interface CommandResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Bytes written to the command's standard input, then closed. */
  input?: string | Buffer;
  /** Kill the command after this long; the result then has exitCode -1. */
  timeoutMs?: number;
  /**
   * Stops the command exactly as a timeout would: run() then resolves with
   * exitCode -1 and an "[aborted]" note in stderr (it does not throw). When
   * the signal has already aborted, nothing is started.
   */
  signal?: AbortSignal;
}

export interface SpawnOptions {
  /**
   * Stops the command as kill() would; `exit` settles once it has ended.
   * When the signal has already aborted, spawn() rejects without starting it.
   */
  signal?: AbortSignal;
}

export interface ProcessExit {
  exitCode: number | null;
  signal: string | null;
}

/** A command running on a host with its streams open, for transfers. */
export interface HostProcess {
  readonly stdin: Writable;
  readonly stdout: Readable;
  readonly stderr: Readable;
  /** Settles when the command has exited and its streams are closed. */
  readonly exit: Promise<ProcessExit>;
  kill(): void;
}

/**
 * One machine the action works on. Local and SSH hosts are interchangeable:
 * commands are POSIX shell text, run as `sh -c` on the host (through
 * `sudo -n` when the settings ask for it).
 */
export interface Host {
  /** Role in this run: "source" or "target" (or "jump"). */
  readonly role: string;
  /** Where it is, for messages: "local" or "user@host:port". */
  readonly address: string;
  /** SHA256 fingerprint of the SSH host key the host presented; undefined for the runner itself. */
  readonly hostKeyFingerprint?: string;
  /**
   * Runs a command to completion. Never throws for a non-zero exit, a timeout
   * or an abort (exitCode -1); a lost SSH connection does throw.
   */
  run(command: string, options?: RunOptions): Promise<CommandResult>;
  /** Starts a command and hands back its streams. */
  spawn(command: string, options?: SpawnOptions): Promise<HostProcess>;
  /** TCP on the host's own loopback, carried to and from the runner (absent: the host cannot). */
  readonly tunnels?: LoopbackTunnels;
  close(): Promise<void>;
}

/** A listener the host opened on its loopback for the runner; closing it refuses new connections. */
export interface LoopbackListener {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Connections that never leave a host's loopback on the host's side: SSH's
 * direct-tcpip and tcpip-forward, or plain sockets on the runner itself.
 */
export interface LoopbackTunnels {
  /** A connection from the host to 127.0.0.1:port on the host. */
  connect(port: number): Promise<Duplex>;
  /** Listens on 127.0.0.1 of the host (a port the host picks); each connection comes to the runner. */
  listen(onConnection: (stream: Duplex) => void): Promise<LoopbackListener>;
}

export function describeHost(host: Host): string {
  return `${host.role} ${host.address}`;
}
