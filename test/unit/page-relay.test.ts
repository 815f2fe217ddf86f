import { once } from 'node:events';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalHost } from '../../src/host/local-host.js';
import { openPageRelay } from '../../src/host/page-relay.js';

// The relay over the runner's own loopback (LocalHost's tunnels): a stand-in page server that
// answers every request with twice as many bytes, as CRIU's page server answers a page request.
const servers: Server[] = [];

afterEach(async () => {
  for (const server of servers.splice(0)) await new Promise((resolve) => server.close(resolve));
});

async function pageServer(): Promise<{ port: number; clients: Socket[] }> {
  const clients: Socket[] = [];
  const server = createServer((socket) => {
    clients.push(socket);
    socket.on('data', (chunk: Buffer) => socket.write(Buffer.concat([chunk, chunk])));
    socket.on('error', () => {});
  });
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (typeof address !== 'object' || !address) throw new Error('no port');
  return { port: address.port, clients };
}

async function connect(port: number): Promise<Socket> {
  const socket = createConnection({ host: '127.0.0.1', port });
  await once(socket, 'connect');
  return socket;
}

describe('openPageRelay', () => {
  it("joins the target's listener to the source's port and counts what the source sent", async () => {
    const { port } = await pageServer();
    const relay = await openPageRelay(new LocalHost('source'), new LocalHost('target'), port);
    expect(relay.port).not.toBe(port);
    const client = await connect(relay.port);
    client.write('abcd');
    let answer = '';
    while (answer.length < 8) {
      const [chunk] = (await once(client, 'data')) as [Buffer];
      answer += chunk.toString();
    }
    expect(answer).toBe('abcdabcd');
    expect(relay.bytes()).toBe(8);
    client.destroy();
    await relay.close();
    expect(relay.problem()).toBeUndefined();
  });

  it('cut() ends the carried connections at both ends', async () => {
    const { port, clients } = await pageServer();
    const relay = await openPageRelay(new LocalHost('source'), new LocalHost('target'), port);
    const client = await connect(relay.port);
    client.write('x');
    await once(client, 'data');
    const closed = once(client, 'close');
    const serverSide = clients[0];
    if (!serverSide) throw new Error('the page server saw no connection');
    const serverClosed = once(serverSide, 'close');
    relay.cut();
    await Promise.all([closed, serverClosed]);
    await relay.close();
  });

  it('says why when the source has no page server listening', async () => {
    const { port } = await pageServer();
    await new Promise((resolve) => servers.pop()?.close(resolve));
    const relay = await openPageRelay(new LocalHost('source'), new LocalHost('target'), port);
    const client = await connect(relay.port);
    client.on('error', () => {});
    await once(client, 'close');
    expect(relay.problem()).toMatch(/could not be reached/);
    expect(relay.bytes()).toBe(0);
    await relay.close();
  });
});
