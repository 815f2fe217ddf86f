/**
 * Benchmark helper, not part of the action: streams N bytes from one host to
 * another through this process with the action's own SSH code
 * (src/host/ssh-host.ts and streamBetween from src/host/relay.ts), and prints
 * one JSON line with what it measured. scripts/bench/ways/transport.ts compiles it with ncc
 * into a temporary directory; it never goes into dist/.
 *
 * Usage: node probe.js '{"from":"root@127.0.0.6:22","to":"root@127.0.0.7:22",
 *   "key":"/path/id","knownHosts":"/path/known_hosts","bytes":1073741824,"mode":"relay"}'
 * mode "relay": streamBetween exactly as the action moves a checkpoint
 *   (sha256 on both hosts and on the runner);
 * mode "raw": the same two SSH channels piped into each other with no
 *   hashing anywhere, to separate the cost of the SSH code from the checks;
 * noDelay true or false: sets TCP_NODELAY on both ssh2 sockets to that value
 *   first (src/host/ssh-host.ts turns it on; false shows what that is worth).
 *   This reaches into SshHost's private connection, so it may break when that
 *   class changes.
 */
import '../../src/dirname-shim.js';
import { readFileSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { parseHostSpec } from '../../src/host/host-spec.js';
import { streamBetween } from '../../src/host/relay.js';
import { connectSsh, type SshHost } from '../../src/host/ssh-host.js';

interface ProbeArgs {
  from: string;
  to: string;
  key: string;
  knownHosts: string;
  bytes: number;
  mode: 'relay' | 'raw';
  noDelay?: boolean;
}

/** Diagnostic only: Nagle's algorithm on or off on the connection under an SshHost. */
function setNoDelay(host: SshHost, on: boolean): void {
  const inner = host as unknown as { target?: { client?: { setNoDelay?: (on: boolean) => void } } };
  const client = inner.target?.client;
  if (typeof client?.setNoDelay !== 'function') throw new Error('SshHost no longer exposes its ssh2 client');
  client.setNoDelay(on);
}

async function open(role: string, destination: string, args: ProbeArgs): Promise<SshHost> {
  return connectSsh({
    role,
    spec: parseHostSpec(destination, role),
    privateKey: readFileSync(args.key),
    knownHosts: readFileSync(args.knownHosts, 'utf8'),
    insecureSkipHostKeyCheck: false,
  });
}

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? '{}') as ProbeArgs;
  if (!Number.isSafeInteger(args.bytes) || args.bytes <= 0)
    throw new Error('bytes must be a positive integer');
  const [source, target] = await Promise.all([
    open('source', args.from, args),
    open('target', args.to, args),
  ]);
  try {
    if (args.noDelay !== undefined) for (const host of [source, target]) setNoDelay(host, args.noDelay);
    const produce = `head -c ${args.bytes} /dev/zero`;
    const consume = 'cat >/dev/null';
    const started = performance.now();
    let bytes = 0;
    if (args.mode === 'raw') {
      const consumer = await target.spawn(consume);
      const producer = await source.spawn(produce);
      consumer.stdout.resume();
      consumer.stderr.resume();
      producer.stderr.resume();
      producer.stdout.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
      });
      await pipeline(producer.stdout, consumer.stdin);
      const [p, c] = await Promise.all([producer.exit, consumer.exit]);
      if (p.exitCode !== 0 || c.exitCode !== 0) throw new Error(`exit ${p.exitCode}/${c.exitCode}`);
    } else {
      const result = await streamBetween(source, produce, target, consume, {
        label: 'probe',
        step: 'transfer',
        log: { info: () => {} },
        progressSeconds: 3600,
      });
      bytes = result.bytes;
    }
    const ms = performance.now() - started;
    process.stdout.write(
      `${JSON.stringify({ mode: args.mode, noDelay: args.noDelay ?? 'as in src', bytes, ms: Math.round(ms), maxRssKb: process.resourceUsage().maxRSS })}\n`,
    );
  } finally {
    await Promise.all([source.close(), target.close()]);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
