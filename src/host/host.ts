import type { Readable, Writable } from 'node:stream';

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
  /** Runs a command to completion. Never throws for a non-zero exit. */
  run(command: string, options?: RunOptions): Promise<CommandResult>;
  /** Starts a command and hands back its streams. */
  spawn(command: string): Promise<HostProcess>;
  close(): Promise<void>;
}

export function describeHost(host: Host): string {
  return `${host.role} ${host.address}`;
}
