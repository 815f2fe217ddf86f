import { type ChildProcess, spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { crc32, inflateRawSync } from 'node:zlib';
import { DEV_ACCOUNT } from './results-service.js';

// Shared by the artifact tests (integration and end-to-end): a local Azurite
// blob service, an unsigned runtime token, and a reader for the zip the
// upload stores. None of it uses the two-host test bed.

const AZURITE = resolve(import.meta.dirname, '../../node_modules/.bin/azurite-blob');
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;

export interface Azurite {
  child: ChildProcess;
  /** Account URL, e.g. http://127.0.0.1:PORT/devstoreaccount1. */
  endpoint: string;
  output: () => string;
}

/** Azurite's blob service on 127.0.0.1; port 0 lets the kernel pick a free port, which Azurite prints. */
export async function startAzurite(location: string): Promise<Azurite> {
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
export async function stopProcess(child: ChildProcess): Promise<void> {
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
export function runtimeToken(runId: string, jobId: string): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'none', typ: 'JWT' })}.${part({
    scp: `Actions.GenericRead:${runId} Actions.Results:${runId}:${jobId}`,
    exp: Math.floor(Date.now() / 1000) + 3600,
  })}.`;
}

export interface ZipEntry {
  name: string;
  data: Buffer;
}

/** Reads a zip through its central directory (no zip64, no encryption): stored and deflated entries. */
export function readZip(zip: Buffer): ZipEntry[] {
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
