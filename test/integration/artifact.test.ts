import { createHash, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { uploadRunArtifact } from '../../src/report/artifact.js';
import { type Azurite, readZip, runtimeToken, startAzurite, stopProcess } from './artifact-harness.js';
import { type ResultsService, startResultsService } from './results-service.js';

// The real @actions/artifact upload against a real Azure blob store (Azurite)
// on loopback, with a fake of the results service that signs its upload URLs.
// It does not use the two-host test bed.

const CONTAINER = 'artifacts';
const FIRST_ARTIFACT_ID = 4711;
const RUN_ID = randomUUID();
const JOB_ID = randomUUID();

const FILES = {
  'migration-metadata.json': `${JSON.stringify({ schemaVersion: 1, run: { status: 'succeeded' } }, null, 2)}\n`,
  'logs/criu-dump.log': 'Dumping finished successfully\n'.repeat(200),
};

describe('uploadRunArtifact against Azurite and a fake results service', () => {
  let work: string;
  let azurite: Azurite | undefined;
  let service: ResultsService | undefined;
  let root: string;
  let paths: string[];

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'artifact-it-'));
    await mkdir(join(work, 'azurite'));
    root = join(work, 'files');
    paths = [];
    for (const [name, content] of Object.entries(FILES)) {
      const path = join(root, name);
      await mkdir(resolve(path, '..'), { recursive: true });
      await writeFile(path, content);
      paths.push(path);
    }
    const started = performance.now();
    azurite = await startAzurite(join(work, 'azurite'));
    console.log(
      `azurite listening at ${azurite.endpoint} after ${Math.round(performance.now() - started)} ms`,
    );
    service = await startResultsService({
      blobEndpoint: azurite.endpoint,
      container: CONTAINER,
      firstArtifactId: FIRST_ARTIFACT_ID,
    });

    // @actions/artifact reads these from process.env itself.
    vi.stubEnv('ACTIONS_RUNTIME_TOKEN', runtimeToken(RUN_ID, JOB_ID));
    vi.stubEnv('ACTIONS_RESULTS_URL', `${service.url}/`);
    vi.stubEnv('GITHUB_SERVER_URL', 'https://github.com');
    vi.stubEnv('GITHUB_RETENTION_DAYS', undefined);
    vi.stubEnv('ACTIONS_ARTIFACT_UPLOAD_CONCURRENCY', undefined);
    vi.stubEnv('ACTIONS_ARTIFACT_UPLOAD_TIMEOUT_MS', '20000');
  }, 60_000);

  afterAll(async () => {
    vi.unstubAllEnvs();
    await service?.close();
    if (azurite) await stopProcess(azurite.child);
    if (work) await rm(work, { recursive: true, force: true });
  }, 30_000);

  it('uploads the files as one zip blob and finalizes it with its size and sha256', async () => {
    if (!service || !azurite) throw new Error('setup failed');
    const name = 'migration-web-1';
    const started = performance.now();
    const outcome = await uploadRunArtifact(
      { name, files: paths, rootDirectory: root, retentionDays: 3 },
      { env: process.env },
    );
    const elapsed = performance.now() - started;
    console.log(`upload of ${name} took ${Math.round(elapsed)} ms`);

    const blobName = service.blobNames.get(`${RUN_ID}/${name}`);
    expect(blobName).toBe(`${RUN_ID}/${JOB_ID}/${name}.zip`);
    const blob = service.containerClient.getBlobClient(blobName!);
    const properties = await blob.getProperties();
    const zip = await blob.downloadToBuffer();
    const sha256 = createHash('sha256').update(zip).digest('hex');

    expect(outcome).toEqual({ uploaded: true, id: FIRST_ARTIFACT_ID, size: zip.length, digest: sha256 });
    expect(properties.contentType).toBe('application/zip');

    const entries = readZip(zip)
      .map((entry) => ({ name: entry.name, text: entry.data.toString('utf8') }))
      .sort((a, b) => a.name.localeCompare(b.name));
    expect(entries).toEqual(
      Object.entries(FILES)
        .map(([entryName, text]) => ({ name: entryName, text }))
        .sort((a, b) => a.name.localeCompare(b.name)),
    );

    expect(service.requests.map((request) => request.method)).toEqual(['CreateArtifact', 'FinalizeArtifact']);
    const [create, finalize] = service.requests;
    for (const request of [create!, finalize!]) {
      expect(request.authorization).toBe(`Bearer ${process.env.ACTIONS_RUNTIME_TOKEN}`);
      expect(request.contentType).toBe('application/json');
      expect(request.body).toMatchObject({
        workflow_run_backend_id: RUN_ID,
        workflow_job_run_backend_id: JOB_ID,
        name,
      });
    }
    expect(create!.body).toMatchObject({ version: 7, mime_type: 'application/zip' });
    const expiresAt = Date.parse(String(create!.body.expires_at));
    const threeDays = 3 * 24 * 3600_000;
    expect(expiresAt).toBeGreaterThan(started + threeDays - 3600_000);
    expect(expiresAt).toBeLessThan(Date.now() + threeDays + 3600_000);
    expect(finalize!.body).toMatchObject({ size: String(zip.length), hash: `sha256:${sha256}` });
  });

  it('turns a refusal from the service into a reason, at once and without throwing', async () => {
    if (!service) throw new Error('setup failed');
    const before = service.requests.length;
    const started = performance.now();
    // The first test finalized this name: the service refuses a second artifact of it (409).
    const outcome = await uploadRunArtifact(
      { name: 'migration-web-1', files: paths, rootDirectory: root },
      { env: process.env },
    );
    const elapsed = performance.now() - started;
    console.log(`refused upload took ${Math.round(elapsed)} ms: ${JSON.stringify(outcome)}`);
    expect(outcome.uploaded).toBe(false);
    expect(outcome.uploaded === false && outcome.reason).toMatch(/^upload failed: .*409.*already exists/);
    expect(service.requests.slice(before).map((request) => request.method)).toEqual(['CreateArtifact']);
    expect(elapsed).toBeLessThan(5_000);
  });
});
