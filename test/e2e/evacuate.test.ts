import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containerState, expectCounterContinued, expectResumedAfter } from './invariants.js';
import {
  checkCounterMemory,
  containerLogs,
  loadTestbed,
  onHost,
  onHostResult,
  parseCounter,
  sshInputs,
  startCounter,
  type Testbed,
} from './testbed.js';
import {
  type Contexts,
  type JobRun,
  jobShouldRun,
  loadWorkflow,
  type MatrixRun,
  runJob,
  runMatrixJob,
} from './workflow.js';

// examples/workflows/evacuate.yml run for real: its three jobs driven from the YAML as a runner
// would (the gate's matrix output expanded by the driver, max-parallel respected, the final job's
// shell step run by bash on this machine, which is the runner here), against the bed's hosts.
let bed: Testbed;
const WORKFLOW = new URL('../../examples/workflows/evacuate.yml', import.meta.url).pathname;
const PROJECT = 'e2e-evac';
const PORT = 18095;
const COUNTERS = ['e2e-evac-a', 'e2e-evac-b'];
const MB = 8;
const MEMBERS = [`${PROJECT}-web-1`, `${PROJECT}-worker-1`];

function composeFile(): string {
  // web answers with a token written once at start: the same answer after the move is the same files.
  return `services:
  web:
    image: ${bed.image}
    command: ["sh", "-c", "mkdir -p /www && cat /proc/sys/kernel/random/uuid >/www/index.html && exec httpd -f -p 8080 -h /www"]
    ports:
      - "${PORT}:8080"
  worker:
    image: ${bed.image}
    command: testbed-counter
    environment:
      MB: "${MB}"
    depends_on:
      - web
`;
}

async function clean(): Promise<void> {
  for (const host of [bed.host1, bed.host2]) {
    await onHostResult(
      bed,
      host,
      `docker ps -aq --filter name=e2e-evac | xargs -r docker rm -f; docker network rm ${PROJECT}_default; rm -rf /var/lib/criu-migrate/containers/e2e-evac*`,
    );
  }
}

async function webAnswer(host: string): Promise<string> {
  let last = '';
  for (let attempt = 0; attempt < 30; attempt += 1) {
    const result = await onHostResult(
      bed,
      host,
      `nsenter -t "$(cat /run/testbed-dockerd.pid)" -n busybox wget -q -T 5 -O - http://127.0.0.1:${PORT}/`,
    );
    last = result.stdout + result.stderr;
    if (result.code === 0 && /^[\da-f-]{36}\n$/.test(result.stdout)) return result.stdout.trim();
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`the web service on ${host} did not answer: ${last}`);
}

interface WorkflowRun {
  gate: JobRun;
  move?: MatrixRun;
  left?: JobRun;
}

/** The whole workflow_dispatch run: gate, the matrix of moves, the final check, each job's `if` honoured. */
async function runEvacuate(maxParallel: string): Promise<WorkflowRun> {
  const workflow = loadWorkflow(WORKFLOW);
  const jobs = workflow.jobs as Record<string, Record<string, unknown>>;
  const ssh = sshInputs(bed);
  const base: Contexts = {
    inputs: { source: bed.host1, target: bed.host2, selection: 'all', 'max-parallel': maxParallel },
    secrets: { MIGRATE_SSH_KEY: ssh['ssh-key'] },
    vars: { MIGRATE_KNOWN_HOSTS: ssh['known-hosts'] },
    github: { server_url: 'https://github.example', repository: 'owner/repo', run_id: '4242' },
  };
  const options = (needs: Contexts) => ({
    contexts: { ...base, needs },
    isThisAction: (uses: string) => /criu-container-migrate@/.test(uses),
  });
  const run: WorkflowRun = { gate: await runJob(jobs.gate!, options({})) };
  const gateNeeds = { gate: { result: run.gate.result, outputs: run.gate.outputs } };
  if (run.gate.result !== 'success' || !jobShouldRun(jobs.move!, options(gateNeeds).contexts)) return run;
  run.move = await runMatrixJob(jobs.move!, options(gateNeeds));
  const moveNeeds = { move: { result: run.move.result, outputs: {} } };
  if (jobShouldRun(jobs.left!, options(moveNeeds).contexts))
    run.left = await runJob(jobs.left!, options(moveNeeds));
  return run;
}

function step(job: JobRun, id: string) {
  const found = job.steps.find((s) => s.id === id || s.name === id);
  if (!found) throw new Error(`no step ${id}`);
  return found;
}

beforeAll(async () => {
  bed = loadTestbed();
  await clean();
  // Nothing else may run on host 1: the workflow selects everything there. A container an
  // earlier file left running would be moved too: named in the log, then removed.
  const earlier = (await onHost(bed, bed.host1, "docker ps --format '{{.Names}} ({{.Status}})'")).trim();
  if (earlier !== '') {
    console.warn(`evacuate: host 1 still runs containers of earlier test files, removed first: ${earlier}`);
    await onHost(bed, bed.host1, 'docker ps -q | xargs -r docker rm -f >/dev/null');
  }
  expect(await onHost(bed, bed.host1, 'docker ps -q | wc -l')).toBe('0\n');
  await onHost(
    bed,
    bed.host1,
    `mkdir -p /tmp/${PROJECT} && cat >/tmp/${PROJECT}/compose.yml <<'EOF'\n${composeFile()}EOF\ndocker-compose -p ${PROJECT} -f /tmp/${PROJECT}/compose.yml up -d --quiet-pull 2>&1`,
  );
  for (const name of COUNTERS) await startCounter(bed, bed.host1, name, { mb: MB });
});

afterAll(async () => {
  await clean();
});

describe('examples/workflows/evacuate.yml driven for real', () => {
  it('gates host 1, moves every unit through the matrix, and the final job finds the host empty', async () => {
    const answerBefore = await webAnswer(bed.host1);
    const run = await runEvacuate('2');

    // The gate: every unit movable, one matrix entry each.
    const gate = step(run.gate, 'gate');
    expect(run.gate.result, gate.stdout).toBe('success');
    expect(JSON.parse(run.gate.outputs.matrix ?? '')).toEqual({
      include: [
        { unit: `compose:${PROJECT}` },
        { unit: COUNTERS[0], container: COUNTERS[0] },
        { unit: COUNTERS[1], container: COUNTERS[1] },
      ],
    });
    expect(run.gate.outputs.movable).toBe('3');
    expect(run.gate.summary).toContain('Cutover gate: every running container');

    // The moves: three jobs, never more than two at once, each one succeeded.
    expect(run.move).toBeDefined();
    const move = run.move!;
    expect(move.maxParallel).toBe(2);
    expect(move.runs).toHaveLength(3);
    expect(move.peak).toBe(2);
    for (const job of move.runs) {
      const moved = step(job, 'move');
      expect(job.result, moved.stdout).toBe('success');
      expect(moved.outputs.status).toBe('succeeded');
      // The failure report step stays silent when the move worked.
      expect(step(job, 'Report a failure').skipped).toBe(true);
    }

    // Host 1 runs none of the selected containers; host 2 runs each one, unpaused.
    for (const name of [...COUNTERS, ...MEMBERS]) {
      expect((await containerState(bed, bed.host1, name))?.Running ?? false, `${name} on host 1`).toBe(false);
      expect(await containerState(bed, bed.host2, name), `${name} on host 2`).toMatchObject({
        Running: true,
        Paused: false,
      });
    }
    expect(await onHost(bed, bed.host1, 'docker ps -q | wc -l')).toBe('0\n');

    // The counters (and the project's worker) went on from where they stopped, memory intact.
    for (const name of [...COUNTERS, `${PROJECT}-worker-1`]) {
      const last = parseCounter(await containerLogs(bed, bed.host1, name)).at(-1);
      expect(last, `${name} printed nothing on host 1`).toBeDefined();
      const restored = parseCounter(await containerLogs(bed, bed.host2, name));
      try {
        expectResumedAfter(last!, restored);
      } catch (error) {
        // Name the container and show both sides of the boundary, so a failure can be read.
        const shown = JSON.stringify({ last, restored: restored.slice(0, 3) });
        throw new Error(`${name}: ${(error as Error).message} ${shown}`);
      }
      await expectCounterContinued(bed, bed.host2, name);
      await checkCounterMemory(bed, bed.host2, name, MB * 1024 * 1024);
    }
    // The compose service answers on host 2's published port, with the same token, and compose knows it there.
    expect(await webAnswer(bed.host2)).toBe(answerBefore);
    const ps = await onHost(
      bed,
      bed.host2,
      `docker-compose -p ${PROJECT} ps --format '{{.Service}} {{.State}}'`,
    );
    expect(ps.trim().split('\n').sort()).toEqual(['web running', 'worker running']);

    // The final job: its gate finds nothing (and fails, as the workflow expects), the check passes.
    expect(run.left).toBeDefined();
    const left = run.left!;
    const second = step(left, 'left');
    expect(second.outcome).toBe('failure');
    expect(second.conclusion).toBe('success');
    expect(JSON.parse(second.outputs.report ?? '').totals).toMatchObject({ units: 0, movable: 0 });
    const check = step(left, 'What stayed on the old host');
    expect(check.outcome, check.stdout + check.stderr).toBe('success');
    expect(check.stdout).toContain('units still on the source: 0');
    expect(left.summary).toContain('units still on the source: 0');
    expect(left.result).toBe('success');
  });

  it('a unit the gate refuses stays, and the final job lists it with why', async () => {
    // A fresh host 1 holds one movable counter and one the gate refuses (a device).
    await clean();
    await startCounter(bed, bed.host1, 'e2e-evac-c', { mb: MB });
    await startCounter(bed, bed.host1, 'e2e-evac-dev', { mb: MB, extraArgs: '--device /dev/zero' });
    const run = await runEvacuate('4');
    expect(run.gate.result, step(run.gate, 'gate').stdout).toBe('success');
    expect(JSON.parse(run.gate.outputs.matrix ?? '')).toEqual({
      include: [{ unit: 'e2e-evac-c', container: 'e2e-evac-c' }],
    });
    expect(run.move?.runs).toHaveLength(1);
    const moved = step(run.move!.runs[0]!, 'move');
    expect(run.move!.runs[0]!.result, moved.stdout).toBe('success');
    expect(await containerState(bed, bed.host2, 'e2e-evac-c')).toMatchObject({
      Running: true,
      Paused: false,
    });
    expect((await containerState(bed, bed.host1, 'e2e-evac-c'))?.Running).toBe(false);
    expect(await containerState(bed, bed.host1, 'e2e-evac-dev')).toMatchObject({
      Running: true,
      Paused: false,
    });

    const left = run.left!;
    const check = step(left, 'What stayed on the old host');
    expect(check.stdout).toContain('units still on the source: 1');
    expect(check.stdout).toContain('- e2e-evac-dev: blocked CONTAINER_HAS_DEVICES');
    expect(left.summary).toContain('- e2e-evac-dev: blocked CONTAINER_HAS_DEVICES');
    // Not empty: the final job fails, so the run does not read as a finished evacuation.
    expect(check.outcome).toBe('failure');
    expect(check.stdout).toMatch(/^::error title=Source not empty::/m);
    expect(left.result).toBe('failure');
  });
});
