import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';

// The copyable workflows in examples/workflows must keep matching action.yml while
// its inputs and outputs change: every step that uses this action is checked against it.

const ROOT = new URL('../../', import.meta.url);
const EXAMPLES_DIR = new URL('examples/workflows/', ROOT);
const THIS_ACTION = /criu-container-migrate@/;

const EXAMPLES: { file: string; modes: string[] }[] = [
  { file: 'migrate.yml', modes: ['migrate'] },
  { file: 'checkpoint.yml', modes: ['checkpoint'] },
  { file: 'restore.yml', modes: ['restore'] },
  { file: 'cutover-gate.yml', modes: ['preflight', 'migrate'] },
  { file: 'evacuate.yml', modes: ['preflight', 'migrate', 'preflight'] },
  { file: 'restore-drill.yml', modes: ['drill', 'list'] },
];

type Mapping = Record<string, unknown>;

function isMapping(value: unknown): value is Mapping {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Parses as YAML 1.2 (so `on` stays a key, not the boolean YAML 1.1 makes of it); any error or warning throws. */
function loadYaml(url: URL): unknown {
  const doc = parseDocument(readFileSync(url, 'utf8'), { prettyErrors: true, uniqueKeys: true });
  const problems = [...doc.errors, ...doc.warnings].map((problem) => problem.message);
  if (problems.length > 0) throw new Error(`${url.pathname}:\n${problems.join('\n')}`);
  return doc.toJS();
}

function mapping(value: unknown, what: string): Mapping {
  if (!isMapping(value)) throw new Error(`${what} is not a mapping`);
  return value;
}

const action = mapping(loadYaml(new URL('action.yml', ROOT)), 'action.yml');
const inputs = mapping(action.inputs, 'action.yml inputs');
const outputs = mapping(action.outputs, 'action.yml outputs');
const requiredInputs = Object.keys(inputs).filter((name) => {
  const required = mapping(inputs[name], `input ${name}`).required;
  return required === true || required === 'true';
});
const defaultMode = String(mapping(inputs.mode, 'input mode').default);
// Required by the action itself, not by action.yml: container, unless selection names several
// (preflight), unit names a matrix entry (migrate) or the whole store is listed (list mode; the
// examples name it there too).
const requiredUnless: Record<string, string[]> = { container: ['selection', 'unit'] };

interface ActionStep {
  where: string;
  id: string | undefined;
  with: Mapping;
}

function loadWorkflow(file: string): Mapping {
  return mapping(loadYaml(new URL(file, EXAMPLES_DIR)), file);
}

/** Every step, in every job, whose uses: is this action. */
function actionSteps(workflow: Mapping): ActionStep[] {
  return Object.entries(mapping(workflow.jobs, 'jobs')).flatMap(([jobId, job]) => {
    const steps = mapping(job, `job ${jobId}`).steps;
    if (!Array.isArray(steps)) return [];
    return steps.flatMap((step: unknown, index) => {
      if (!isMapping(step) || typeof step.uses !== 'string' || !THIS_ACTION.test(step.uses)) return [];
      const id = typeof step.id === 'string' ? step.id : undefined;
      return [{ where: `${jobId}.steps[${index}]`, id, with: isMapping(step.with) ? step.with : {} }];
    });
  });
}

describe('action.yml', () => {
  it('declares inputs, among them required ones, and outputs', () => {
    expect(Object.keys(inputs).length).toBeGreaterThan(0);
    expect(requiredInputs.length + Object.keys(requiredUnless).length).toBeGreaterThan(0);
    expect(Object.keys(outputs).length).toBeGreaterThan(0);
  });
});

describe('examples/workflows', () => {
  it('holds exactly the examples listed here, so a new one is checked too', () => {
    const found = readdirSync(EXAMPLES_DIR).filter((name) => /\.ya?ml$/.test(name));
    expect(found.sort()).toEqual(EXAMPLES.map(({ file }) => file).sort());
  });

  it.each(EXAMPLES)('$file exists', ({ file }) => {
    expect(existsSync(new URL(file, EXAMPLES_DIR))).toBe(true);
  });

  it.each(EXAMPLES)('$file parses as a workflow with on and jobs, each job with steps', ({ file }) => {
    const workflow = loadWorkflow(file);
    expect(workflow).toHaveProperty('on');
    expect(workflow.on).toBeTruthy();
    const jobs = mapping(workflow.jobs, `${file} jobs`);
    expect(Object.keys(jobs).length).toBeGreaterThan(0);
    for (const [jobId, job] of Object.entries(jobs)) {
      const { steps } = mapping(job, `${file} job ${jobId}`);
      expect(Array.isArray(steps) && steps.length > 0, `${file}: job ${jobId} has no steps`).toBe(true);
    }
  });

  it.each(EXAMPLES)('$file uses the action in modes $modes', ({ file, modes }) => {
    const used = actionSteps(loadWorkflow(file)).map((step) => String(step.with.mode ?? defaultMode));
    expect(used).toEqual(modes);
  });

  it.each(EXAMPLES)('$file passes the action only inputs action.yml declares', ({ file }) => {
    for (const step of actionSteps(loadWorkflow(file))) {
      const undeclared = Object.keys(step.with).filter((key) => !Object.hasOwn(inputs, key));
      expect(undeclared, `${file} ${step.where}: inputs not in action.yml`).toEqual([]);
    }
  });

  it.each(EXAMPLES)('$file gives the action every required input', ({ file }) => {
    for (const step of actionSteps(loadWorkflow(file))) {
      const given = (name: string) => step.with[name] != null && step.with[name] !== '';
      const missing = [
        ...requiredInputs.filter((name) => !given(name)),
        ...Object.entries(requiredUnless)
          .filter(([name, instead]) => !given(name) && !instead.some(given))
          .map(([name]) => name),
      ];
      expect(missing, `${file} ${step.where}: required inputs not given`).toEqual([]);
    }
  });

  it.each(EXAMPLES)('$file reads only outputs action.yml declares', ({ file }) => {
    const ids = new Set(actionSteps(loadWorkflow(file)).flatMap((step) => (step.id ? [step.id] : [])));
    const text = readFileSync(new URL(file, EXAMPLES_DIR), 'utf8');
    const read = [...text.matchAll(/steps\.([\w-]+)\.outputs\.([\w-]+)/g)].filter(([, id]) =>
      ids.has(id ?? ''),
    );
    const undeclared = read.map(([, , name]) => name ?? '').filter((name) => !Object.hasOwn(outputs, name));
    expect(undeclared, `${file}: outputs not in action.yml`).toEqual([]);
  });
});

// --- What the examples must do beyond matching action.yml --------------------------------------

interface Step {
  id?: string;
  if?: string;
  uses?: string;
  env?: Mapping;
  run?: string;
}

function allSteps(workflow: Mapping): { jobId: string; job: Mapping; steps: Step[] }[] {
  return Object.entries(mapping(workflow.jobs, 'jobs')).map(([jobId, job]) => {
    const spec = mapping(job, `job ${jobId}`);
    const steps = Array.isArray(spec.steps) ? spec.steps.filter(isMapping).map((step) => step as Step) : [];
    return { jobId, job: spec, steps };
  });
}

describe('examples/workflows in real use', () => {
  it.each(EXAMPLES)('$file names the action OWNER/criu-container-migrate@v0', ({ file }) => {
    for (const { steps } of allSteps(loadWorkflow(file))) {
      for (const step of steps.filter((s) => typeof s.uses === 'string' && THIS_ACTION.test(s.uses))) {
        expect(step.uses).toBe('OWNER/criu-container-migrate@v0');
      }
    }
  });

  it.each(EXAMPLES)(
    '$file reports status, error-code and the summary link when the action step fails',
    ({ file }) => {
      for (const { jobId, steps } of allSteps(loadWorkflow(file))) {
        for (const action of steps.filter((s) => typeof s.uses === 'string' && THIS_ACTION.test(s.uses))) {
          expect(action.id, `${file} ${jobId}: the action step needs an id`).toBeTruthy();
          const report = steps.find(
            (s) =>
              typeof s.if === 'string' && s.if.includes('failure()') && s.if.includes(`steps.${action.id}.`),
          );
          expect(report, `${file} ${jobId}: no failure step for ${action.id}`).toBeDefined();
          const text = JSON.stringify(report);
          expect(text).toContain(`steps.${action.id}.outputs.status`);
          expect(text).toContain(`steps.${action.id}.outputs.error-code`);
          expect(text).toContain('github.run_id');
        }
      }
    },
  );

  it('checkpoint.yml passes artifact-id on as a job output', () => {
    const [job] = allSteps(loadWorkflow('checkpoint.yml'));
    const outputs = mapping(job?.job.outputs, 'checkpoint job outputs');
    expect(String(outputs['artifact-id'])).toMatch(/^\$\{\{ steps\.dump\.outputs\.artifact-id \}\}$/);
  });

  it.each(EXAMPLES)('$file never cancels a run in progress, and says one pending run is kept', ({ file }) => {
    const concurrency = mapping(loadWorkflow(file).concurrency, `${file} concurrency`);
    expect(concurrency['cancel-in-progress']).toBe(false);
    expect(readFileSync(new URL(file, EXAMPLES_DIR), 'utf8')).toMatch(/one pending run per\s+(#\s*)?group/);
  });

  it('keeps the hourly checkpoint out of the group where migrations queue', () => {
    const group = (file: string) => String(mapping(loadWorkflow(file).concurrency, file).group);
    const prefix = (value: string) => value.slice(0, value.indexOf('${{'));
    const checkpoint = prefix(group('checkpoint.yml'));
    for (const file of ['migrate.yml', 'restore.yml', 'cutover-gate.yml']) {
      expect(prefix(group(file)), `${file} and migrate.yml queue in one group`).toBe(
        prefix(group('migrate.yml')),
      );
      expect(checkpoint, `checkpoint.yml shares ${file}'s group`).not.toBe(prefix(group(file)));
    }
  });
});

describe('examples/workflows and docs/security.md', () => {
  const security = readFileSync(new URL('docs/security.md', ROOT), 'utf8');
  const section = security.slice(security.indexOf('## Where the key is kept'));
  const paragraph = section.split('\n\n')[1] ?? '';
  const environment = /the environment `([A-Za-z0-9_.-]+)`/.exec(paragraph)?.[1];
  const secrets = [...paragraph.matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((m) => m[1] ?? '');

  it('names the environment that holds the secrets, and the secrets', () => {
    expect(environment, 'docs/security.md: "Where the key is kept" names no environment').toBeTruthy();
    expect(secrets).toContain('MIGRATE_SSH_KEY');
  });

  it.each(EXAMPLES)('$file reads those secrets only from jobs with that environment', ({ file }) => {
    let readers = 0;
    for (const { jobId, job, steps } of allSteps(loadWorkflow(file))) {
      const text = JSON.stringify(steps);
      const read = secrets.filter((name) => text.includes(`secrets.${name}`));
      if (read.length === 0) continue;
      readers += 1;
      const named = isMapping(job.environment) ? job.environment.name : job.environment;
      expect(
        named,
        `${file}: job ${jobId} reads ${read.join(', ')} without environment: ${environment}`,
      ).toBe(environment);
    }
    expect(readers, `${file}: no job reads the key`).toBeGreaterThan(0);
  });
});
