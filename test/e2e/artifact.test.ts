import { createHash, randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Azurite,
  readZip,
  runtimeToken,
  startAzurite,
  stopProcess,
  type ZipEntry,
} from '../integration/artifact-harness.js';
import { type ResultsService, startResultsService } from '../integration/results-service.js';
import { containerState } from './invariants.js';
import { type ActionRun, type RunOptions, startAction } from './run-action.js';
import { loadTestbed, onHost, onHostResult, sshInputs, startCounter, type Testbed } from './testbed.js';

// The bundled action uploads its records for real: the runner's artifact
// environment points at a fake results service and an Azurite blob store on
// loopback, and the test reads back the zip the upload stored.

let bed: Testbed;
const CHECKPOINTED = 'e2e-artifact';
const MIGRATED = 'e2e-artifact-mig';
const STORE = '/var/lib/criu-migrate-e2e-artifact-store';
const BLOB_CONTAINER = 'artifacts';
const FIRST_ARTIFACT_ID = 8_201;
const RUN_ID = randomUUID();
const JOB_ID = randomUUID();
const ONE_MIB = 1024 * 1024;
/** A backstop beyond the action's own timeout input (3 min), below vitest's 300 s test timeout. */
const RUN_BOUND_MS = 240_000;

let work: string | undefined;
let azurite: Azurite | undefined;
let service: ResultsService | undefined;
/** The environment a runner gives a job that may upload artifacts. */
let artifactEnv: Record<string, string>;
/** RUNNER_TEMP of each run, removed at the end. */
const runnerTemps: string[] = [];

function hostInputs(): Record<string, string> {
  return {
    ...sshInputs(bed),
    timeout: '3',
  };
}

function checkpointInputs(checkpointName = ''): Record<string, string> {
  return {
    mode: 'checkpoint',
    container: CHECKPOINTED,
    source: bed.host1,
    'store-host': bed.host2,
    'store-path': STORE,
    'checkpoint-name': checkpointName,
    ...hostInputs(),
  };
}

/** The bundled action, as runAction runs it, but killed (SIGINT, SIGTERM, SIGKILL) if it outlives the bound. */
async function runBounded(inputs: Record<string, string>, options: RunOptions = {}): Promise<ActionRun> {
  const running = startAction(inputs, options);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), RUN_BOUND_MS);
  });
  const started = performance.now();
  const first = await Promise.race([running.done, late]);
  clearTimeout(timer);
  if (first === 'late') {
    const cancelled = await running.cancel();
    runnerTemps.push(cancelled.runnerTemp);
    throw new Error(`the action ran longer than ${RUN_BOUND_MS} ms; its output:\n${cancelled.stdout}`);
  }
  runnerTemps.push(first.runnerTemp);
  console.log(`${inputs.mode} run of ${inputs.container}: ${Math.round(performance.now() - started)} ms`);
  return first;
}

function requestsOf(method: string) {
  return service!.requests.filter((request) => request.method === method);
}

interface Uploaded {
  zip: Buffer;
  entries: ZipEntry[];
}

/** The artifact as the service and the blob store have it: exactly one create and one finalize for `name`. */
async function uploadedArtifact(name: string, requestsBefore: number): Promise<Uploaded> {
  const requests = service!.requests.slice(requestsBefore);
  expect(requests.map((request) => [request.method, request.body.name])).toEqual([
    ['CreateArtifact', name],
    ['FinalizeArtifact', name],
  ]);
  for (const request of requests) {
    expect(request.authorization).toBe(`Bearer ${artifactEnv.ACTIONS_RUNTIME_TOKEN}`);
    expect(request.body).toMatchObject({
      workflow_run_backend_id: RUN_ID,
      workflow_job_run_backend_id: JOB_ID,
    });
  }
  const blobName = service!.blobNames.get(`${RUN_ID}/${name}`);
  expect(blobName).toBe(`${RUN_ID}/${JOB_ID}/${name}.zip`);
  const zip = await service!.containerClient.getBlobClient(blobName!).downloadToBuffer();
  const sha256 = createHash('sha256').update(zip).digest('hex');
  expect(requests[1]!.body).toMatchObject({ size: String(zip.length), hash: `sha256:${sha256}` });
  const entries = readZip(zip).sort((a, b) => a.name.localeCompare(b.name));
  console.log(
    `artifact ${name}: ${zip.length} bytes zipped; ${entries.map((e) => `${e.name} ${e.data.length} B`).join(', ')}`,
  );
  return { zip, entries };
}

/** Records only: nothing big, never CRIU images or memory pages. */
function expectRecordsOnly(uploaded: Uploaded): void {
  expect(uploaded.zip.length).toBeLessThanOrEqual(ONE_MIB);
  for (const entry of uploaded.entries) {
    expect(entry.data.length, entry.name).toBeLessThanOrEqual(ONE_MIB);
    expect(entry.name).not.toContain('pages');
    expect(entry.name).not.toMatch(/\.img$/);
  }
}

function jsonEntry(uploaded: Uploaded, name: string): Record<string, unknown> {
  const entry = uploaded.entries.find((candidate) => candidate.name === name);
  if (!entry) throw new Error(`${name} is not in the artifact`);
  return JSON.parse(entry.data.toString('utf8'));
}

/** The id the fake FinalizeArtifact hands out next: it counts up from FIRST_ARTIFACT_ID. */
function nextArtifactId(): number {
  return FIRST_ARTIFACT_ID + requestsOf('FinalizeArtifact').length;
}

async function removeLeftovers(name: string): Promise<void> {
  for (const host of [bed.host1, bed.host2]) {
    await onHostResult(bed, host, `docker rm -f ${name}; rm -rf /var/lib/criu-migrate/containers/${name}`);
  }
}

beforeAll(async () => {
  bed = loadTestbed();
  work = await mkdtemp(join(tmpdir(), 'artifact-e2e-'));
  await mkdir(join(work, 'azurite'));
  const started = performance.now();
  azurite = await startAzurite(join(work, 'azurite'));
  service = await startResultsService({
    blobEndpoint: azurite.endpoint,
    container: BLOB_CONTAINER,
    firstArtifactId: FIRST_ARTIFACT_ID,
  });
  console.log(
    `azurite at ${azurite.endpoint}, results service at ${service.url}, after ${Math.round(performance.now() - started)} ms`,
  );
  artifactEnv = {
    ACTIONS_RUNTIME_TOKEN: runtimeToken(RUN_ID, JOB_ID),
    ACTIONS_RESULTS_URL: `${service.url}/`,
    GITHUB_SERVER_URL: 'https://github.com',
    ACTIONS_ARTIFACT_UPLOAD_TIMEOUT_MS: '20000',
  };
  await removeLeftovers(CHECKPOINTED);
  await removeLeftovers(MIGRATED);
  await onHostResult(bed, bed.host2, `rm -rf ${STORE}`);
}, 120_000);

afterAll(async () => {
  if (bed) {
    await removeLeftovers(CHECKPOINTED);
    await removeLeftovers(MIGRATED);
    await onHostResult(bed, bed.host2, `rm -rf ${STORE}`);
  }
  await service?.close();
  if (azurite) await stopProcess(azurite.child);
  for (const dir of [work, ...runnerTemps]) if (dir) await rm(dir, { recursive: true, force: true });
}, 120_000);

describe('the bundled action uploads its records as a workflow artifact', () => {
  it('checkpoint mode: metadata.json and manifest.json, never memory pages', async () => {
    await startCounter(bed, bed.host1, CHECKPOINTED, { mb: 16 });
    const before = service!.requests.length;
    const expectedId = nextArtifactId();

    const run = await runBounded(checkpointInputs(), { env: artifactEnv });
    expect(run.exitCode, run.stdout).toBe(0);
    expect(run.outputs.status, run.stdout).toBe('succeeded');
    const checkpointName = run.outputs['checkpoint-name']!;
    expect(checkpointName).toMatch(new RegExp(`^${CHECKPOINTED}-`));
    const artifactName = `criu-migration-${checkpointName}`;
    expect(run.outputs['artifact-id']).toBe(String(expectedId));
    expect(run.stdout).toContain(`uploaded artifact ${artifactName} (id ${expectedId}, `);
    expect(run.stdout).not.toContain('artifact upload skipped');

    const uploaded = await uploadedArtifact(artifactName, before);
    expect(uploaded.entries.map((entry) => entry.name)).toEqual(['manifest.json', 'metadata.json']);
    expectRecordsOnly(uploaded);

    const metadata = jsonEntry(uploaded, 'metadata.json');
    expect(metadata.run).toMatchObject({ mode: 'checkpoint', status: 'succeeded' });
    expect(metadata.checkpoint).toMatchObject({ name: checkpointName });
    // The same file the run left on the runner.
    expect(metadata).toEqual(JSON.parse(readFileSync(run.outputs['metadata-path']!, 'utf8')));

    const manifest = jsonEntry(uploaded, 'manifest.json');
    expect(manifest.name).toBe(checkpointName);
    const files = manifest.files as Array<{ path: string; bytes: number; sha256: string }>;
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) {
      expect(file.path).toEqual(expect.any(String));
      expect(file.bytes).toEqual(expect.any(Number));
      expect(file.sha256, file.path).toMatch(/^[0-9a-f]{64}$/);
    }
    // The store has the memory pages; the artifact only lists them.
    expect(files.some((file) => /pages.*\.img$/.test(file.path))).toBe(true);
    // And the manifest uploaded is the one the store's checkpoint holds.
    expect(run.outputs['checkpoint-path']).toBe(
      `${STORE}/${CHECKPOINTED}/${run.outputs.series}/${checkpointName}`,
    );
    expect(manifest.series).toBe(run.outputs.series);
    const stored = JSON.parse(
      await onHost(bed, bed.host2, `cat ${run.outputs['checkpoint-path']}/manifest.json`),
    );
    expect(manifest).toEqual(stored);

    // leave-running defaults to true: the container runs on.
    expect(await containerState(bed, bed.host1, CHECKPOINTED)).toMatchObject({
      Running: true,
      Paused: false,
    });
  });

  it('migrate mode: the artifact holds metadata.json of a succeeded run', async () => {
    await removeLeftovers(MIGRATED);
    await startCounter(bed, bed.host1, MIGRATED, { mb: 16 });
    const before = service!.requests.length;
    const expectedId = nextArtifactId();

    const run = await runBounded(
      {
        mode: 'migrate',
        container: MIGRATED,
        source: bed.host1,
        target: bed.host2,
        'verify-log-pattern': '^\\d+ \\d{13} ',
        'verify-timeout': '20',
        ...hostInputs(),
      },
      { env: artifactEnv },
    );
    expect(run.exitCode, run.stdout).toBe(0);
    expect(run.outputs.status, run.stdout).toBe('succeeded');
    expect(run.outputs['artifact-id']).toBe(String(expectedId));

    const artifactName = `criu-migration-${run.outputs['checkpoint-name']}`;
    const uploaded = await uploadedArtifact(artifactName, before);
    expect(uploaded.entries.map((entry) => entry.name)).toEqual(['metadata.json']);
    expectRecordsOnly(uploaded);
    expect(jsonEntry(uploaded, 'metadata.json').run).toMatchObject({ mode: 'migrate', status: 'succeeded' });
  });

  it('without ACTIONS_RUNTIME_TOKEN: no artifact, a notice saying why, and the run still succeeds', async () => {
    const state = await containerState(bed, bed.host1, CHECKPOINTED);
    if (!state?.Running || state.Paused) await startCounter(bed, bed.host1, CHECKPOINTED, { mb: 16 });
    const before = service!.requests.length;

    // No env option: the step gets only what runAction always sets, no artifact token.
    const run = await runBounded(checkpointInputs(`${CHECKPOINTED}-no-token`));
    expect(run.exitCode, run.stdout).toBe(0);
    expect(run.outputs.status, run.stdout).toBe('succeeded');
    expect(run.outputs).toHaveProperty('artifact-id', '');
    const skipped = run.stdout.split('\n').find((line) => line.includes('artifact upload skipped'));
    expect(skipped, run.stdout).toBeDefined();
    expect(skipped).toContain('no ACTIONS_RUNTIME_TOKEN');
    expect(skipped).toContain(
      `the records are in ${join(run.runnerTemp, 'criu-migrate', `${CHECKPOINTED}-no-token`)}`,
    );
    // A notice, not a warning: a runner without artifact permission is not a problem of the run.
    expect(skipped).not.toMatch(/^::warning/);
    expect(existsSync(run.outputs['metadata-path']!)).toBe(true);
    expect(service!.requests.length).toBe(before);
  });
});
