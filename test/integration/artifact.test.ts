import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { crc32, inflateRawSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { uploadRunArtifact } from '../../src/report/artifact.js';
import { DEV_ACCOUNT, type ResultsService, startResultsService } from './results-service.js';

// The real @actions/artifact upload against a real Azure blob store (Azurite)
// on loopback, with a fake of the results service that signs its upload URLs.
// It does not use the two-host test bed.

const ROOT = resolve(import.meta.dirname, '../..');
const AZURITE = join(ROOT, 'node_modules/.bin/azurite-blob');
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;
const CONTAINER = 'artifacts';
const FIRST_ARTIFACT_ID = 4711;
const RUN_ID = randomUUID();
const JOB_ID = randomUUID();

interface Azurite {
  child: ChildProcess;
  /** Account URL, e.g. http://127.0.0.1:PORT/devstoreaccount1. */
  endpoint: string;
  output: () => string;
}

/** Azurite's blob service on 127.0.0.1; port 0 lets the kernel pick a free port, which Azurite prints. */
async function startAzurite(location: string): Promise<Azurite> {
  const child = spawn(
    AZURITE,
    ['--blobHost', '127.0.0.1', '--blobPort', '0', '--location', location, '--disableTelemetry', '--silent'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const listening = new Promise<string>((resolvePort, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`azurite did not listen within ${START_TIMEOUT_MS} ms; output:\n${output}`));
    }, START_TIMEOUT_MS);
    const onData = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      const match = /successfully listens on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (match?.[1]) {
        clearTimeout(timer);
        resolvePort(match[1]);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`azurite exited (${signal ?? code}) before listening; output:\n${output}`));
    });
  });
  try {
    const origin = await listening;
    return { child, endpoint: `${origin}/${DEV_ACCOUNT}`, output: () => output };
  } catch (error) {
    await stopProcess(child);
    throw error;
  }
}

/** SIGTERM, then SIGKILL if it has not exited within the bound. */
async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolveExit) => child.once('exit', () => resolveExit()));
  child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolveTimeout) => {
    timer = setTimeout(() => resolveTimeout('timeout'), STOP_TIMEOUT_MS);
  });
  if ((await Promise.race([exited, timedOut])) === 'timeout') {
    child.kill('SIGKILL');
    await exited;
  }
  clearTimeout(timer);
}

/** An unsigned JWT: @actions/artifact decodes the token for its scp claim and never verifies it. */
function runtimeToken(): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'none', typ: 'JWT' })}.${part({
    scp: `Actions.GenericRead:${RUN_ID} Actions.Results:${RUN_ID}:${JOB_ID}`,
    exp: Math.floor(Date.now() / 1000) + 3600,
  })}.`;
}

interface ZipEntry {
  name: string;
  data: Buffer;
}

/** Reads a zip through its central directory (no zip64, no encryption): stored and deflated entries. */
function readZip(zip: Buffer): ZipEntry[] {
  const eocdSignature = 0x06054b50;
  let eocd = -1;
  for (let at = zip.length - 22; at >= Math.max(0, zip.length - 22 - 0xffff); at -= 1) {
    if (zip.readUInt32LE(at) === eocdSignature) {
      eocd = at;
      break;
    }
  }
  if (eocd < 0) throw new Error('not a zip: no end of central directory record');
  const count = zip.readUInt16LE(eocd + 10);
  let at = zip.readUInt32LE(eocd + 16);
  const entries: ZipEntry[] = [];
  for (let index = 0; index < count; index += 1) {
    if (zip.readUInt32LE(at) !== 0x02014b50) throw new Error(`bad central directory entry ${index}`);
    const method = zip.readUInt16LE(at + 10);
    const crc = zip.readUInt32LE(at + 16);
    const compressedSize = zip.readUInt32LE(at + 20);
    const size = zip.readUInt32LE(at + 24);
    const nameLength = zip.readUInt16LE(at + 28);
    const extraLength = zip.readUInt16LE(at + 30);
    const commentLength = zip.readUInt16LE(at + 32);
    const localOffset = zip.readUInt32LE(at + 42);
    const name = zip.toString('utf8', at + 46, at + 46 + nameLength);
    if ([compressedSize, size, localOffset].includes(0xffffffff))
      throw new Error(`${name}: zip64 is not handled`);
    if (zip.readUInt32LE(localOffset) !== 0x04034b50) throw new Error(`${name}: bad local header`);
    const dataStart =
      localOffset + 30 + zip.readUInt16LE(localOffset + 26) + zip.readUInt16LE(localOffset + 28);
    const raw = zip.subarray(dataStart, dataStart + compressedSize);
    let data: Buffer;
    if (method === 0) data = Buffer.from(raw);
    else if (method === 8) data = inflateRawSync(raw);
    else throw new Error(`${name}: compression method ${method} is not handled`);
    if (data.length !== size) throw new Error(`${name}: ${data.length} bytes, the directory says ${size}`);
    if (crc32(data) !== crc) throw new Error(`${name}: CRC mismatch`);
    entries.push({ name, data });
    at += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}

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
    vi.stubEnv('ACTIONS_RUNTIME_TOKEN', runtimeToken());
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
    expect(outcome.uploaded).toBe(false);
    expect(outcome.uploaded === false && outcome.reason).toMatch(/^upload failed: .*409.*already exists/);
    expect(service.requests.slice(before).map((request) => request.method)).toEqual(['CreateArtifact']);
    expect(elapsed).toBeLessThan(5_000);
  });
});
