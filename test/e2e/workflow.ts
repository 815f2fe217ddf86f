import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { runProcess } from './process.js';
import { type ActionRun, parseOutputFile, runAction } from './run-action.js';

// Drives a workflow file's jobs the way a runner would: expressions evaluated from the YAML,
// this action's steps run as the bundle, `run:` steps run by bash on this machine (the runner),
// a job's matrix expanded from its expression and run with at most max-parallel at once.
// Only the expression language the example workflows use is understood; anything else throws,
// so a workflow that outgrows this driver fails the test instead of being half-run.

type Mapping = Record<string, unknown>;
export type Contexts = Record<string, unknown>;

function isMapping(value: unknown): value is Mapping {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function loadWorkflow(path: string): Mapping {
  const doc = parseDocument(readFileSync(path, 'utf8'), { uniqueKeys: true });
  if (doc.errors.length > 0) throw new Error(doc.errors.map((e) => e.message).join('\n'));
  const value: unknown = doc.toJS();
  if (!isMapping(value)) throw new Error(`${path} is not a mapping`);
  return value;
}

type Token =
  | { kind: 'name'; text: string }
  | { kind: 'string'; value: string }
  | { kind: 'number'; value: number }
  | { kind: 'op'; text: string };

function tokenize(expr: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < expr.length) {
    const rest = expr.slice(i);
    const space = /^\s+/.exec(rest);
    const name = /^[A-Za-z_][\w-]*(\.[A-Za-z_][\w-]*)*/.exec(rest);
    const str = /^'((?:[^']|'')*)'/.exec(rest);
    const num = /^\d+/.exec(rest);
    const op = /^(==|!=|&&|\|\||[!(),.])/.exec(rest);
    if (space) i += space[0].length;
    else if (name) {
      tokens.push({ kind: 'name', text: name[0] });
      i += name[0].length;
    } else if (str) {
      tokens.push({ kind: 'string', value: str[1]!.replaceAll("''", "'") });
      i += str[0].length;
    } else if (num) {
      tokens.push({ kind: 'number', value: Number(num[0]) });
      i += num[0].length;
    } else if (op) {
      tokens.push({ kind: 'op', text: op[0] });
      i += op[0].length;
    } else throw new Error(`expression not understood at "${rest}" in "${expr}"`);
  }
  return tokens;
}

export interface StatusFunctions {
  success(): boolean;
  failure(): boolean;
}

function lookup(base: unknown, path: string[]): unknown {
  let value = base;
  for (const key of path) value = isMapping(value) ? value[key] : undefined;
  return value ?? '';
}

/** GitHub's loose equality for what the examples compare: strings and numbers, compared as strings. */
function same(a: unknown, b: unknown): boolean {
  return String(a) === String(b);
}

function truthy(value: unknown): boolean {
  return !(value === '' || value === false || value === 0 || value === null || value === undefined);
}

export function evaluate(expr: string, contexts: Contexts, status?: StatusFunctions): unknown {
  const tokens = tokenize(expr);
  let at = 0;
  const peek = (): Token | undefined => tokens[at];
  const isOp = (text: string): boolean => {
    const token = peek();
    return token?.kind === 'op' && token.text === text;
  };
  const expectOp = (text: string): void => {
    if (!isOp(text)) throw new Error(`expected "${text}" in "${expr}"`);
    at += 1;
  };
  const call = (name: string, args: unknown[]): unknown => {
    if (name === 'fromJSON') return JSON.parse(String(args[0]));
    if (name === 'always') return true;
    if (!status) throw new Error(`${name}() outside a step or job condition in "${expr}"`);
    if (name === 'success') return status.success();
    if (name === 'failure') return status.failure();
    throw new Error(`function ${name} not supported by this driver ("${expr}")`);
  };
  const primary = (): unknown => {
    const token = peek();
    at += 1;
    if (!token) throw new Error(`unexpected end of "${expr}"`);
    if (token.kind === 'string' || token.kind === 'number') return token.value;
    if (token.kind === 'op' && token.text === '!') return !truthy(primary());
    if (token.kind === 'op' && token.text === '(') {
      const value = or();
      expectOp(')');
      return value;
    }
    if (token.kind !== 'name') throw new Error(`unexpected "${token.text}" in "${expr}"`);
    let value: unknown;
    if (isOp('(')) {
      at += 1;
      const args: unknown[] = [];
      while (!isOp(')')) {
        args.push(or());
        if (isOp(',')) at += 1;
      }
      expectOp(')');
      value = call(token.text, args);
    } else {
      const [head, ...path] = token.text.split('.');
      if (!(head! in contexts)) throw new Error(`context ${head} not provided for "${expr}"`);
      value = lookup(contexts[head!], path);
    }
    // Property access after a call: fromJSON(...).totals.movable
    while (isOp('.')) {
      at += 1;
      const next = peek();
      if (next?.kind !== 'name') throw new Error(`expected a property in "${expr}"`);
      at += 1;
      value = lookup(value, next.text.split('.'));
    }
    return value;
  };
  const comparison = (): unknown => {
    const left = primary();
    if (isOp('==') || isOp('!=')) {
      const op = (peek() as { text: string }).text;
      at += 1;
      const right = primary();
      return op === '==' ? same(left, right) : !same(left, right);
    }
    return left;
  };
  const and = (): unknown => {
    let value = comparison();
    while (isOp('&&')) {
      at += 1;
      const right = comparison();
      value = truthy(value) ? right : value;
    }
    return value;
  };
  const or = (): unknown => {
    let value = and();
    while (isOp('||')) {
      at += 1;
      const right = and();
      value = truthy(value) ? value : right;
    }
    return value;
  };
  const value = or();
  if (at !== tokens.length) throw new Error(`trailing tokens in "${expr}"`);
  return value;
}

/** A value from the YAML with every `${{ }}` replaced; a value that is one expression keeps its type. */
export function substitute(template: unknown, contexts: Contexts, status?: StatusFunctions): unknown {
  if (typeof template !== 'string') return template;
  const whole = /^\$\{\{(.*)\}\}$/s.exec(template.trim());
  if (whole && !whole[1]!.includes('}}')) return evaluate(whole[1]!, contexts, status);
  return template.replace(/\$\{\{(.*?)\}\}/gs, (_, expr: string) => {
    const value = evaluate(expr, contexts, status);
    return typeof value === 'object' ? JSON.stringify(value) : String(value);
  });
}

/** A step or job `if:`: an expression with or without `${{ }}`, success() when absent. */
function condition(value: unknown, contexts: Contexts, status: StatusFunctions): boolean {
  if (value === undefined) return status.success();
  const text = String(value).trim();
  const inner = /^\$\{\{(.*)\}\}$/s.exec(text)?.[1] ?? text;
  const usesStatus = /\b(always|success|failure|cancelled)\(/.test(inner);
  const result = truthy(evaluate(inner, contexts, status));
  return usesStatus ? result : status.success() && result;
}

export interface StepRecord {
  id: string;
  name: string;
  skipped: boolean;
  outcome: 'success' | 'failure' | 'skipped';
  conclusion: 'success' | 'failure' | 'skipped';
  outputs: Record<string, string>;
  /** The action's run, for this action's steps. */
  action?: ActionRun;
  stdout: string;
  stderr: string;
}

export interface JobRun {
  result: 'success' | 'failure' | 'skipped';
  steps: StepRecord[];
  outputs: Record<string, string>;
  /** The job's GITHUB_STEP_SUMMARY, every step's part in order. */
  summary: string;
}

export interface JobOptions {
  /** The contexts of the workflow run (inputs, secrets, vars, github, needs, ...). */
  contexts: Contexts;
  /** `uses:` values that name this action (run as the bundle). */
  isThisAction: (uses: string) => boolean;
}

/** Runs one job (one matrix entry of it, when contexts carry matrix and strategy). */
export async function runJob(job: Mapping, options: JobOptions): Promise<JobRun> {
  const steps: Record<string, { outputs: Record<string, string>; outcome: string; conclusion: string }> = {};
  const records: StepRecord[] = [];
  let failed = false;
  let summary = '';
  const stepList = Array.isArray(job.steps) ? job.steps : [];
  for (const [index, raw] of stepList.entries()) {
    if (!isMapping(raw)) throw new Error(`step ${index} is not a mapping`);
    const contexts: Contexts = { ...options.contexts, steps, env: {} };
    const status: StatusFunctions = { success: () => !failed, failure: () => failed };
    const id = typeof raw.id === 'string' ? raw.id : `__${index}`;
    const name = String(raw.name ?? raw.id ?? raw.uses ?? index);
    const record: StepRecord = {
      id,
      name,
      skipped: false,
      outcome: 'success',
      conclusion: 'success',
      outputs: {},
      stdout: '',
      stderr: '',
    };
    if (!condition(raw.if, contexts, status)) {
      Object.assign(record, { skipped: true, outcome: 'skipped', conclusion: 'skipped' });
    } else if (typeof raw.uses === 'string') {
      if (!options.isThisAction(raw.uses)) throw new Error(`step ${name} uses ${raw.uses}: not this action`);
      const inputs: Record<string, string> = {};
      for (const [key, value] of Object.entries(isMapping(raw.with) ? raw.with : {})) {
        inputs[key] = String(substitute(value, contexts));
      }
      const run = await runAction(inputs);
      summary += run.summary;
      Object.assign(record, {
        action: run,
        outputs: run.outputs,
        stdout: run.stdout,
        stderr: run.stderr,
        outcome: run.exitCode === 0 ? 'success' : 'failure',
      });
    } else if (typeof raw.run === 'string') {
      const dir = mkdtempSync(join(tmpdir(), 'criu-migrate-run-step-'));
      const outputFile = join(dir, 'github_output');
      const summaryFile = join(dir, 'step_summary.md');
      writeFileSync(outputFile, '');
      writeFileSync(summaryFile, '');
      const env: Record<string, string> = {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: process.env.HOME ?? '/root',
        GITHUB_OUTPUT: outputFile,
        GITHUB_STEP_SUMMARY: summaryFile,
        GITHUB_ACTIONS: 'true',
      };
      for (const [key, value] of Object.entries(isMapping(raw.env) ? raw.env : {})) {
        env[key] = String(substitute(value, contexts));
      }
      const script = join(dir, 'step.sh');
      writeFileSync(script, String(substitute(raw.run, contexts)));
      // The runner's shells: no shell given is `bash -e {0}`, `shell: bash` adds pipefail.
      const shell =
        raw.shell === undefined
          ? ['bash', '-e', script]
          : raw.shell === 'bash'
            ? ['bash', '--noprofile', '--norc', '-eo', 'pipefail', script]
            : undefined;
      if (!shell) throw new Error(`step ${name}: shell ${String(raw.shell)} not supported by this driver`);
      const result = await runProcess(shell, { env });
      summary += readFileSync(summaryFile, 'utf8');
      Object.assign(record, {
        outputs: parseOutputFile(readFileSync(outputFile, 'utf8')),
        stdout: result.stdout,
        stderr: result.stderr,
        outcome: result.code === 0 ? 'success' : 'failure',
      });
    } else throw new Error(`step ${name} has neither uses nor run`);
    if (!record.skipped) {
      const continueOnError = truthy(substitute(raw['continue-on-error'] ?? false, contexts));
      record.conclusion = record.outcome === 'failure' && continueOnError ? 'success' : record.outcome;
      if (record.conclusion === 'failure') failed = true;
    }
    steps[id] = { outputs: record.outputs, outcome: record.outcome, conclusion: record.conclusion };
    records.push(record);
  }
  const outputs: Record<string, string> = {};
  if (isMapping(job.outputs)) {
    for (const [key, value] of Object.entries(job.outputs)) {
      const result = substitute(value, { ...options.contexts, steps });
      outputs[key] = typeof result === 'object' ? JSON.stringify(result) : String(result);
    }
  }
  return { result: failed ? 'failure' : 'success', steps: records, outputs, summary };
}

/** A job's own `if:`, given the results of the jobs it needs. */
export function jobShouldRun(job: Mapping, contexts: Contexts): boolean {
  const needs = isMapping(contexts.needs) ? Object.values(contexts.needs) : [];
  const results = needs.map((need) => (isMapping(need) ? need.result : undefined));
  return condition(job.if, contexts, {
    success: () => results.every((r) => r === 'success'),
    failure: () => results.some((r) => r === 'failure'),
  });
}

export interface MatrixRun {
  entries: Mapping[];
  maxParallel: number;
  runs: JobRun[];
  /** The most entries that were running at one instant. */
  peak: number;
  /** The job's result as `needs.<job>.result` shows it. */
  result: 'success' | 'failure';
}

/** Expands `strategy.matrix` (an include list) and runs each entry, at most max-parallel at once. */
export async function runMatrixJob(job: Mapping, options: JobOptions): Promise<MatrixRun> {
  const strategy = isMapping(job.strategy) ? job.strategy : {};
  const matrix = substitute(strategy.matrix, options.contexts);
  if (!isMapping(matrix) || !Array.isArray(matrix.include) || Object.keys(matrix).length !== 1) {
    throw new Error(`only an include-list matrix is supported, got ${JSON.stringify(matrix)}`);
  }
  const entries = matrix.include.filter(isMapping);
  const maxParallel = Number(substitute(strategy['max-parallel'] ?? entries.length, options.contexts));
  if (!Number.isInteger(maxParallel) || maxParallel < 1) throw new Error(`max-parallel ${maxParallel}`);
  const runs: JobRun[] = new Array(entries.length);
  let next = 0;
  let running = 0;
  let peak = 0;
  const worker = async (): Promise<void> => {
    while (next < entries.length) {
      const index = next;
      next += 1;
      running += 1;
      peak = Math.max(peak, running);
      try {
        runs[index] = await runJob(job, {
          ...options,
          contexts: {
            ...options.contexts,
            matrix: entries[index],
            strategy: {
              'job-index': index,
              'job-total': entries.length,
              'max-parallel': maxParallel,
              'fail-fast': strategy['fail-fast'] ?? true,
            },
          },
        });
      } finally {
        running -= 1;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(maxParallel, entries.length) }, worker));
  const result = runs.some((run) => run.result === 'failure') ? 'failure' : 'success';
  return { entries, maxParallel, runs, peak, result };
}
