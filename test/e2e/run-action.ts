import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runProcess } from './process.js';

export const DIST_ENTRY = resolve(import.meta.dirname, '../../dist/index.js');

/**
 * The Node that runs the bundle: ACTION_NODE when set (.ci/run points it at a Node 24, the
 * runtime action.yml declares), else the Node running the tests.
 */
export const ACTION_NODE = process.env.ACTION_NODE || process.execPath;

export interface ActionRun {
  exitCode: number;
  stdout: string;
  stderr: string;
  outputs: Record<string, string>;
  summary: string;
  runnerTemp: string;
  /** What the main step saved for its post step (GITHUB_STATE). */
  state: Record<string, string>;
  /** Wall-clock milliseconds of the step, node start to exit. */
  ms: number;
}

/** Parses GITHUB_OUTPUT as the runner writes it: `name<<DELIM`, value lines, `DELIM`. */
export function parseOutputFile(text: string): Record<string, string> {
  const outputs: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line);
    if (heredoc) {
      const value: string[] = [];
      for (i++; i < lines.length && lines[i] !== heredoc[2]; i++) value.push(lines[i]!);
      outputs[heredoc[1]!] = value.join('\n');
    } else if (line.includes('=')) {
      outputs[line.slice(0, line.indexOf('='))] = line.slice(line.indexOf('=') + 1);
    }
  }
  return outputs;
}

/**
 * Runs the bundled action as a runner does: inputs as INPUT_* variables, and
 * GITHUB_OUTPUT / GITHUB_STEP_SUMMARY files that exist before the step starts.
 * `command` lets a test run it elsewhere (for example inside a test bed host).
 */
export interface RunOptions {
  command?: string[];
  entry?: string;
  runnerTemp?: string;
  /** Saved state handed to the step as STATE_* variables, as the runner does for a post step. */
  state?: Record<string, string>;
  runId?: string;
  /** More environment, as the runner would set it (ACTIONS_RUNTIME_TOKEN, ...). */
  env?: Record<string, string>;
  /** Kills the step after this long (the benchmark's bound). */
  timeoutMs?: number;
}

interface StepFiles {
  runnerTemp: string;
  env: Record<string, string>;
  command: string[];
  outputFile: string;
  summaryFile: string;
  stateFile: string;
}

function prepareStep(inputs: Record<string, string>, options: RunOptions): StepFiles {
  const runnerTemp = options.runnerTemp ?? mkdtempSync(join(tmpdir(), 'criu-migrate-runner-'));
  const outputFile = join(runnerTemp, 'github_output');
  const summaryFile = join(runnerTemp, 'step_summary.md');
  const stateFile = join(runnerTemp, 'github_state');
  writeFileSync(outputFile, '');
  writeFileSync(summaryFile, '');
  writeFileSync(stateFile, '');
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/root',
    GITHUB_OUTPUT: outputFile,
    GITHUB_STEP_SUMMARY: summaryFile,
    GITHUB_STATE: stateFile,
    RUNNER_TEMP: runnerTemp,
    GITHUB_ACTIONS: 'true',
    GITHUB_RUN_ID: options.runId ?? '1',
    GITHUB_RUN_ATTEMPT: '1',
    GITHUB_WORKSPACE: runnerTemp,
  };
  for (const [name, value] of Object.entries(inputs)) env[`INPUT_${name.toUpperCase()}`] = value;
  for (const [name, value] of Object.entries(options.state ?? {})) env[`STATE_${name}`] = value;
  Object.assign(env, options.env);
  const command = options.command ?? [ACTION_NODE, options.entry ?? DIST_ENTRY];
  return { runnerTemp, env, command, outputFile, summaryFile, stateFile };
}

function collectStep(
  files: StepFiles,
  result: { code: number; stdout: string; stderr: string; ms: number },
): ActionRun {
  return {
    ms: result.ms,
    exitCode: result.code,
    stdout: result.stdout,
    stderr: result.stderr,
    outputs: parseOutputFile(readFileSync(files.outputFile, 'utf8')),
    summary: readFileSync(files.summaryFile, 'utf8'),
    runnerTemp: files.runnerTemp,
    state: parseOutputFile(readFileSync(files.stateFile, 'utf8')),
  };
}

/**
 * Runs the bundled action as a runner does: inputs as INPUT_* variables, and
 * GITHUB_OUTPUT / GITHUB_STEP_SUMMARY / GITHUB_STATE files that exist before
 * the step starts. `command` lets a test run it elsewhere (for example inside a test bed host).
 */
export async function runAction(
  inputs: Record<string, string>,
  options: RunOptions = {},
): Promise<ActionRun> {
  const files = prepareStep(inputs, options);
  return collectStep(
    files,
    await runProcess(files.command, { env: files.env, timeoutMs: options.timeoutMs }),
  );
}

/** A main step in flight, which a test can cancel the way the runner does. */
export interface RunningAction {
  /** Resolves when the step has exited. */
  done: Promise<ActionRun>;
  /** The runner's cancellation: SIGINT, SIGTERM after 7.5 s, SIGKILL 2.5 s later. */
  cancel(): Promise<ActionRun>;
  kill(): Promise<ActionRun>;
  output(): string;
}

export function startAction(inputs: Record<string, string>, options: RunOptions = {}): RunningAction {
  const files = prepareStep(inputs, options);
  const started = performance.now();
  const child = spawn(files.command[0]!, files.command.slice(1), {
    env: files.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<number>((resolve) =>
    child.on('close', (code, signal) => resolve(code ?? (signal ? 128 : -1))),
  );
  const done = exited.then((code) =>
    collectStep(files, { code, stdout, stderr, ms: performance.now() - started }),
  );
  const within = (ms: number) =>
    Promise.race([
      exited.then(() => true),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), ms)),
    ]);
  return {
    done,
    output: () => stdout,
    async cancel() {
      child.kill('SIGINT');
      if (!(await within(7_500))) {
        child.kill('SIGTERM');
        if (!(await within(2_500))) child.kill('SIGKILL');
      }
      return done;
    },
    async kill() {
      child.kill('SIGKILL');
      return done;
    },
  };
}

/** The post step, as the runner starts it after the main step (cancelled or not): its saved state, the same RUNNER_TEMP. */
export function runPostStep(inputs: Record<string, string>, main: ActionRun): Promise<ActionRun> {
  return runAction(inputs, { state: main.state, runnerTemp: main.runnerTemp });
}
