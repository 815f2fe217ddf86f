import { quote } from 'shell-quote';
import { type ErrorCode, MigrationError } from '../errors.js';
import { type CommandResult, describeHost, type Host } from './host.js';

/**
 * Joins arguments into POSIX sh words. shell-quote's output only uses single
 * quotes, double quotes with backslashes before " \ $ `, and backslashes
 * before single characters outside quotes: all plain POSIX sh (the unit test
 * round-trips odd strings through /bin/sh to keep it that way).
 */
export function shellQuote(args: readonly string[]): string {
  for (const arg of args) {
    // A NUL byte cannot travel in an argument vector; sh would cut the word.
    if (arg.includes('\0')) throw new TypeError('shell arguments cannot contain NUL bytes');
  }
  return quote([...args]);
}

export interface CheckedContext {
  /** Migration step, for the error. */
  step: string;
  /** Code to fail with; COMMAND_FAILED unless given. */
  code?: ErrorCode;
  /** What the command was for, e.g. "read the kernel version"; defaults to the command. */
  what?: string;
  remedy?: string;
  options?: { input?: string | Buffer; timeoutMs?: number };
}

const STDERR_TAIL_LINES = 20;

/** The last lines of command output, for an error message. */
export function tailLines(text: string, count = STDERR_TAIL_LINES): string {
  const lines = text.replace(/\s+$/, '').split('\n');
  return lines.slice(-count).join('\n');
}

/** Runs a command and throws a MigrationError naming the step and host unless it exits 0. */
export async function runChecked(
  host: Host,
  command: string,
  context: CheckedContext,
): Promise<CommandResult> {
  const result = await host.run(command, context.options);
  if (result.exitCode === 0) return result;
  const what = context.what ?? `command \`${oneLine(command)}\``;
  const status = result.exitCode === -1 ? 'did not exit normally' : `exited with ${result.exitCode}`;
  const stderr = tailLines(result.stderr);
  const stdout = stderr === '' ? tailLines(result.stdout) : '';
  const detail = stderr !== '' ? stderr : stdout !== '' ? stdout : undefined;
  throw new MigrationError(context.code ?? 'COMMAND_FAILED', `${what} failed: ${status}`, {
    step: context.step,
    host: describeHost(host),
    detail,
    remedy: context.remedy,
  });
}

/** Adds bracketed notes (timeouts, signals) after a command's stderr. */
export function appendNotes(stderr: string, notes: readonly string[]): string {
  if (notes.length === 0) return stderr;
  const separator = stderr === '' || stderr.endsWith('\n') ? '' : '\n';
  return `${stderr}${separator}${notes.map((note) => `[${note}]`).join('\n')}\n`;
}

function oneLine(command: string): string {
  const flat = command.replace(/\s+/g, ' ').trim();
  return flat.length > 200 ? `${flat.slice(0, 197)}...` : flat;
}
