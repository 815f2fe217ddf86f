import { createHash, randomBytes } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startHashedForward, tallyOf } from '../../src/host/hashed-forward.js';
import { LocalHost } from '../../src/host/local-host.js';
import { comparePageTallies } from '../../src/phases/page-server.js';

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/** Listens on 127.0.0.1; each connection's bytes are kept, and `reply` is sent once it ended its side. */
async function upstream(reply: Buffer): Promise<{ server: Server; port: number; got: Promise<Buffer> }> {
  let resolveGot: (data: Buffer) => void = () => {};
  const got = new Promise<Buffer>((resolve) => {
    resolveGot = resolve;
  });
  const server = createServer({ allowHalfOpen: true }, (socket: Socket) => {
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => {
      resolveGot(Buffer.concat(chunks));
      socket.end(reply);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('no port');
  return { server, port: address.port, got };
}

/** Sends `data`, half-closes, and returns what came back. */
function exchange(port: number, data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    const back: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => back.push(chunk));
    socket.on('end', () => resolve(Buffer.concat(back)));
    socket.on('error', reject);
    socket.end(data);
  });
}

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const address = probe.address();
  await new Promise((resolve) => probe.close(resolve));
  if (!address || typeof address === 'string') throw new Error('no port');
  return address.port;
}

describe('a hashed forward, run for real with sh and perl', () => {
  const servers: Server[] = [];
  afterEach(async () => {
    for (const server of servers.splice(0)) await new Promise((resolve) => server.close(resolve));
  });

  /** An upstream answering `reply`, and a forward to it on this machine. */
  async function forwardTo(reply: Buffer) {
    const up = await upstream(reply);
    servers.push(up.server);
    const forward = await startHashedForward(
      new LocalHost('target'),
      await freePort(),
      up.port,
      'test forward',
    );
    return { up, forward };
  }

  it('passes both ways and sums what the accepting side sent', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const reply = Buffer.from('ok after the last command');
    const { up, forward } = await forwardTo(reply);
    const back = await exchange(forward.port, data);
    const tally = await forward.tally(10_000);
    expect(back.equals(reply)).toBe(true);
    expect((await up.got).equals(data)).toBe(true);
    expect(tally).toEqual({ bytes: data.length, sha256: sha256(data) });
  });

  it('two in a row, as on the source and the target, say the same', async () => {
    const data = randomBytes(1024 * 1024);
    const up = await upstream(Buffer.from('x'));
    servers.push(up.server);
    const host = new LocalHost('source');
    const near = await startHashedForward(host, await freePort(), up.port, 'target end');
    const far = await startHashedForward(host, await freePort(), near.port, 'source end');
    await exchange(far.port, data);
    const [a, b] = await Promise.all([far.tally(10_000), near.tally(10_000)]);
    expect(a).toEqual(b);
    expect(a).toEqual({ bytes: data.length, sha256: sha256(data) });
  });

  it('stopped before a connection came, it ends without a sum', async () => {
    const { forward } = await forwardTo(Buffer.alloc(0));
    forward.stop();
    const tally = await forward.tally(10_000);
    expect(tally).toEqual({ problem: 'it ended without saying what it passed on' });
  });

  it('an upstream nobody listens on ends it without a sum', async () => {
    const forward = await startHashedForward(
      new LocalHost('target'),
      await freePort(),
      await freePort(),
      'test forward',
    );
    await exchange(forward.port, Buffer.from('pages')).catch(() => Buffer.alloc(0));
    const tally = await forward.tally(10_000);
    expect(tally).toEqual({ problem: expect.stringContaining('connect to 127.0.0.1:') });
  });
});

describe('tallyOf', () => {
  const sum = 'a'.repeat(64);
  it('needs both the bytes and the sum', () => {
    expect(tallyOf(`criu-migrate-bytes 12\ncriu-migrate-sha256 ${sum}\n`)).toEqual({
      bytes: 12,
      sha256: sum,
    });
    expect(tallyOf(`criu-migrate-sha256 ${sum}\n`)).toEqual({
      problem: 'it ended without saying what it passed on',
    });
    expect(tallyOf('read: Connection reset by peer at -e line 14.\ncriu-migrate-bytes 3\n')).toEqual({
      problem: 'read: Connection reset by peer at -e line 14.',
    });
  });
});

describe('comparePageTallies', () => {
  const a = 'a'.repeat(64);
  const b = 'b'.repeat(64);
  it('one tally when both hosts passed on the same bytes', () => {
    expect(comparePageTallies({ bytes: 5, sha256: a }, { bytes: 5, sha256: a })).toEqual({
      bytes: 5,
      sha256: a,
    });
  });
  it('names both sums when they differ, and both sizes', () => {
    const result = comparePageTallies({ bytes: 5, sha256: a }, { bytes: 5, sha256: b });
    expect(result).toEqual({ problem: expect.stringContaining(`5 bytes with sha256 ${a}`) });
    expect(result).toEqual({ problem: expect.stringContaining(`5 bytes with sha256 ${b}`) });
    expect(comparePageTallies({ bytes: 5, sha256: a }, { bytes: 4, sha256: a })).toHaveProperty('problem');
  });
  it('says which end could not tell', () => {
    expect(comparePageTallies({ problem: 'gone' }, { bytes: 5, sha256: a })).toEqual({
      problem: "the source's end: gone",
    });
    expect(comparePageTallies({ bytes: 5, sha256: a }, { problem: 'gone' })).toEqual({
      problem: "the target's end: gone",
    });
  });
});
