import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  BlobSASPermissions,
  ContainerClient,
  generateBlobSASQueryParameters,
  StorageSharedKeyCredential,
} from '@azure/storage-blob';

/**
 * A fake of the GitHub Actions results service, the two twirp endpoints of
 * ArtifactService that @actions/artifact's upload calls: CreateArtifact hands
 * out a SAS-signed upload URL for a blob in an Azurite blob service,
 * FinalizeArtifact returns an artifact id. Every request is recorded.
 */

/** Azurite's well-known development account (public, documented by Microsoft; not a secret). */
export const DEV_ACCOUNT = 'devstoreaccount1';
export const DEV_ACCOUNT_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

const SERVICE_PATH = '/twirp/github.actions.results.api.v1.ArtifactService/';
const MAX_BODY_BYTES = 1024 * 1024;

export interface RecordedRequest {
  method: string;
  authorization: string | undefined;
  contentType: string | undefined;
  body: Record<string, unknown>;
}

export interface ResultsServiceOptions {
  /** The blob service's account URL, e.g. http://127.0.0.1:10000/devstoreaccount1. */
  blobEndpoint: string;
  container: string;
  /** The id FinalizeArtifact returns for the first artifact; later ones count up. */
  firstArtifactId: number;
}

export interface ResultsService {
  url: string;
  credential: StorageSharedKeyCredential;
  containerClient: ContainerClient;
  requests: RecordedRequest[];
  /** Blob name of each created artifact, by `<run>/<name>`. */
  blobNames: Map<string, string>;
  close(): Promise<void>;
}

class TwirpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function stringField(body: Record<string, unknown>, field: string): string {
  const value = body[field];
  if (typeof value !== 'string' || value === '') {
    throw new TwirpError(400, 'invalid_argument', `${field} is required`);
  }
  return value;
}

async function readJson(request: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of request) {
    bytes += (chunk as Buffer).length;
    if (bytes > MAX_BODY_BYTES) throw new TwirpError(400, 'invalid_argument', 'request body too large');
    chunks.push(chunk as Buffer);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new TwirpError(400, 'malformed', 'request body is not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new TwirpError(400, 'malformed', 'request body is not a JSON object');
  }
  return parsed as Record<string, unknown>;
}

function send(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  response.end(text);
}

export async function startResultsService(options: ResultsServiceOptions): Promise<ResultsService> {
  const credential = new StorageSharedKeyCredential(DEV_ACCOUNT, DEV_ACCOUNT_KEY);
  const containerClient = new ContainerClient(`${options.blobEndpoint}/${options.container}`, credential);
  await containerClient.createIfNotExists();

  const requests: RecordedRequest[] = [];
  const blobNames = new Map<string, string>();
  const finalized = new Set<string>();
  let nextId = options.firstArtifactId;

  const createArtifact = (body: Record<string, unknown>): unknown => {
    const run = stringField(body, 'workflow_run_backend_id');
    const job = stringField(body, 'workflow_job_run_backend_id');
    const name = stringField(body, 'name');
    // Like the real service: one artifact of a name per workflow run.
    if (finalized.has(`${run}/${name}`)) {
      throw new TwirpError(409, 'already_exists', `an artifact named ${name} already exists in this run`);
    }
    const blobName = `${run}/${job}/${name}.zip`;
    blobNames.set(`${run}/${name}`, blobName);
    const now = Date.now();
    const sas = generateBlobSASQueryParameters(
      {
        containerName: options.container,
        blobName,
        permissions: BlobSASPermissions.parse('cw'),
        startsOn: new Date(now - 5 * 60_000),
        expiresOn: new Date(now + 60 * 60_000),
      },
      credential,
    ).toString();
    return { ok: true, signed_upload_url: `${containerClient.getBlobClient(blobName).url}?${sas}` };
  };

  const finalizeArtifact = (body: Record<string, unknown>): unknown => {
    const run = stringField(body, 'workflow_run_backend_id');
    stringField(body, 'workflow_job_run_backend_id');
    const name = stringField(body, 'name');
    stringField(body, 'size');
    if (!blobNames.has(`${run}/${name}`)) {
      throw new TwirpError(404, 'not_found', `no artifact named ${name} was created in this run`);
    }
    finalized.add(`${run}/${name}`);
    const id = nextId;
    nextId += 1;
    return { ok: true, artifact_id: String(id) };
  };

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    try {
      const path = new URL(request.url ?? '/', 'http://fake').pathname;
      if (request.method !== 'POST' || !path.startsWith(SERVICE_PATH)) {
        throw new TwirpError(404, 'bad_route', `no handler for ${request.method} ${path}`);
      }
      const method = path.slice(SERVICE_PATH.length);
      const body = await readJson(request);
      requests.push({
        method,
        authorization: request.headers.authorization,
        contentType: request.headers['content-type'],
        body,
      });
      if (method === 'CreateArtifact') send(response, 200, createArtifact(body));
      else if (method === 'FinalizeArtifact') send(response, 200, finalizeArtifact(body));
      else throw new TwirpError(404, 'bad_route', `no method ${method}`);
    } catch (error) {
      // Twirp errors are 4xx JSON: @actions/artifact does not retry those, so a
      // failing test fails at once instead of after ~30 s of backoff.
      if (error instanceof TwirpError) send(response, error.status, { code: error.code, msg: error.message });
      else send(response, 400, { code: 'internal', msg: String(error) });
    }
  };

  const server = createServer((request, response) => {
    void handle(request, response);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    credential,
    containerClient,
    requests,
    blobNames,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
