import { spawn } from 'node:child_process';

export interface ProcessResult {
  code: number;
  stdout: string;
  stderr: string;
  /** Wall-clock milliseconds from start to exit. */
  ms: number;
}

export interface ProcessOptions {
  env?: NodeJS.ProcessEnv;
  input?: Buffer | string;
  /** SIGTERM after this long, SIGKILL 5 s later; the result's code is then -1. */
  timeoutMs?: number;
  /** Copies the program's stderr to ours as it comes (long benchmark steps). */
  echoStderr?: boolean;
}

/** Runs a program to completion and collects its output; `input` is written to its stdin. */
export function runProcess(argv: readonly string[], options: ProcessOptions = {}): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(argv[0]!, argv.slice(1), {
      env: options.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (options.echoStderr) process.stderr.write(chunk);
    });
    let timedOut = false;
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            child.kill('SIGTERM');
            setTimeout(() => child.kill('SIGKILL'), 5000).unref();
          }, options.timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: timedOut ? -1 : (code ?? -1), stdout, stderr, ms: performance.now() - started });
    });
    child.stdin.on('error', () => {});
    // An empty stdin reads as end of file, like /dev/null.
    child.stdin.end(options.input);
  });
}
