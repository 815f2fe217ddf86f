import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { portUnusedScript } from '../../src/engine/docker/lazy-pages.js';
import {
  PAGE_SERVER_LISTENING,
  pageForwardScript,
  pageServerCommand,
} from '../../src/engine/docker/page-server.js';

// The two scripts of memory: overlap, run here with a listener standing in for CRIU's page
// server and for ssh's forward: what they print, and that the runner closing their standard
// input ends what they started.
let dir: string;
const port = 40_000 + (process.pid % 19_000);
/** Listens on 127.0.0.1:PORT until killed, as `criu page-server` and `ssh -L` do. */
const LISTENER = `perl -MIO::Socket::INET -e 'my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1:${port}", Listen => 1, ReuseAddr => 1) or die "bind: $!"; sleep 120'`;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'page-server-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function run(script: string, env: NodeJS.ProcessEnv = process.env) {
  const child = spawn('sh', ['-c', script], { stdio: 'pipe', env });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  const exit = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const firstLine = async (): Promise<string> => {
    for (let i = 0; i < 200 && !out.includes('\n'); i++) await new Promise((r) => setTimeout(r, 50));
    return out.split('\n')[0] ?? '';
  };
  return { child, exit, firstLine };
}

/** Whether something accepts connections on the port. */
function listening(): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('memory: overlap scripts', () => {
  it("the target's page server: listening once its port is open; gone when the runner closes stdin", async () => {
    // A stand-in `criu` first in PATH.
    writeFileSync(join(dir, 'criu'), `#!/bin/sh\nexec ${LISTENER}\n`);
    chmodSync(join(dir, 'criu'), 0o755);
    const server = run(pageServerCommand({ imagesDir: dir, workDir: join(dir, 'work'), port }), {
      ...process.env,
      PATH: `${dir}:${process.env.PATH}`,
    });
    expect(await server.firstLine()).toBe(PAGE_SERVER_LISTENING);
    expect(await listening()).toBe(true);
    server.child.stdin.end();
    // The server was killed: the command's exit is its.
    expect(await server.exit).not.toBe(0);
    expect(await listening()).toBe(false);
  });

  it("the source's forward: listening once bound; ended, exit 0, when the runner closes stdin", async () => {
    const forward = run(pageForwardScript(LISTENER, port));
    expect(await forward.firstLine()).toBe(PAGE_SERVER_LISTENING);
    expect(await listening()).toBe(true);
    forward.child.stdin.end();
    expect(await forward.exit).toBe(0);
    expect(await listening()).toBe(false);
  });

  it('the forward that never binds says so and fails', async () => {
    const forward = run(pageForwardScript('false', port));
    expect(await forward.firstLine()).toBe('not-listening');
    expect(await forward.exit).toBe(1);
  });
});

describe('choosing a port for a listener', () => {
  const status = (script: string) =>
    new Promise<number | null>((resolve) => spawn('sh', ['-c', script]).on('close', resolve));

  it('refuses a port any socket uses (a connected one too), and says when one is in the ephemeral range', async () => {
    const server = createServer().listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const listening = (server.address() as AddressInfo).port;
    const client = connect(listening, '127.0.0.1');
    await new Promise((resolve) => client.once('connect', resolve));
    try {
      expect(await status(portUnusedScript(listening))).toBe(1);
      // The client's own end: connected, not listening, still taken for a bind.
      expect(await status(portUnusedScript(client.localPort!))).toBe(1);
      const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
        .trim()
        .split(/\s+/)
        .map(Number);
      const unusedIn = await firstUnused(lo!, hi!);
      expect(await status(portUnusedScript(unusedIn))).toBe(3);
      if (lo! > 20_001) expect(await status(portUnusedScript(await firstUnused(20_000, lo! - 1)))).toBe(0);
    } finally {
      client.destroy();
      server.close();
    }
  });

  async function firstUnused(from: number, to: number): Promise<number> {
    const used = readFileSync('/proc/net/tcp', 'utf8') + readFileSync('/proc/net/tcp6', 'utf8');
    for (let p = from; p <= to; p++) {
      const hex = p.toString(16).toUpperCase().padStart(4, '0');
      if (!new RegExp(`:${hex} `).test(used)) return p;
    }
    throw new Error(`no unused port in ${from}-${to}`);
  }
});
