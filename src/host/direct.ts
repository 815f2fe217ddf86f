import { type ErrorCode, MigrationError } from '../errors.js';
import { describeHost, type Host, type HostProcess } from './host.js';
import {
  formatBytes,
  hashedConsumer,
  hashedProducer,
  hostDetail,
  parseHostBytes,
  parseHostSum,
  parseNotes,
  type StreamOptions,
  type StreamResult,
} from './relay.js';
import { shellQuote } from './shell.js';

/** One run's host-to-host route, opened by src/phases/direct-route.ts. */
export interface DirectRoute {
  from: Host;
  to: Host;
  /** On the target: where the runner makes one fifo per stream for the forced command to fill. */
  streamsDir: string;
  /** The source's ssh client with the run's key and pinned host key, without the stream name. */
  sshCommand: string;
}

/** What crossed the runner: only the scripts' stderr and exit statuses, counted here. */
export interface DirectStreamResult extends StreamResult {
  runnerBytes: number;
}

let streamCount = 0;

function collect(process: HostProcess, counter: { bytes: number }): () => string {
  let text = '';
  process.stderr.on('data', (chunk: Buffer) => {
    counter.bytes += chunk.length;
    if (text.length < 1_000_000) text += chunk.toString();
  });
  return () => text;
}

/**
 * Streams `produce` on the source into `consume` on the target through the source's own
 * OpenSSH client: the source hashes and sends, the runner-started receiving command on
 * the target reads a fifo the forced command fills, hashes and consumes. The runner sees
 * both hosts' sha256 on its own channels and compares them; the container's bytes never
 * pass it.
 */
export async function streamDirect(
  route: DirectRoute,
  produce: string | readonly string[],
  consume: string | readonly string[],
  options: StreamOptions,
): Promise<DirectStreamResult> {
  const clock = options.clock ?? (() => performance.now());
  const code: ErrorCode = options.code ?? 'TRANSFER_FAILED';
  const started = clock();
  const name = `s${++streamCount}`;
  const fifo = `${route.streamsDir}/${name}`;
  const q = shellQuote([fifo]);
  const made = await route.to.run(`rm -f ${q}; mkfifo -m 600 ${q}`, { timeoutMs: 30_000 });
  if (made.exitCode !== 0) {
    throw new MigrationError(code, `${options.label}: could not make the stream's fifo on the target`, {
      step: options.step,
      host: describeHost(route.to),
      detail: made.stderr.trim() || undefined,
    });
  }
  const runner = { bytes: 0 };
  // Blocks in the open until the forced command opens the fifo to write.
  const consumer = await route.to.spawn(`exec <${q} || exit 1\n${hashedConsumer(consume)}`);
  let producer: HostProcess;
  try {
    producer = await route.from.spawn(hashedProducer(produce, `${route.sshCommand} ${name}`));
  } catch (error) {
    consumer.kill();
    throw error;
  }
  consumer.stdin.end();
  for (const process of [consumer, producer]) {
    process.stdout.on('data', (chunk: Buffer) => {
      runner.bytes += chunk.length;
    });
  }
  const consumerErr = collect(consumer, runner);
  const producerErr = collect(producer, runner);
  const progress = setInterval(
    () => options.log.info(`${options.label}: host to host, ${((clock() - started) / 1000).toFixed(0)} s`),
    (options.progressSeconds ?? 10) * 1000,
  );
  // Either end failing dooms the other: a receiver never opened blocks for ever, a sender
  // whose receiver died writes into nothing.
  const watch = (process: HostProcess, other: HostProcess) =>
    process.exit.then((exit) => {
      if (exit.exitCode !== 0) other.kill();
      return exit;
    });
  let producerExit: Awaited<HostProcess['exit']>;
  let consumerExit: Awaited<HostProcess['exit']>;
  try {
    [producerExit, consumerExit] = await Promise.all([watch(producer, consumer), watch(consumer, producer)]);
  } finally {
    clearInterval(progress);
    await route.to.run(`rm -f ${q}`, { timeoutMs: 30_000 }).catch(() => undefined);
  }
  const ms = clock() - started;
  const fail = (host: Host, message: string, stderr: string): never => {
    throw new MigrationError(code, `${options.label} (host to host): ${message}`, {
      step: options.step,
      host: describeHost(host),
      detail: hostDetail(stderr),
    });
  };
  if (producerExit.exitCode !== 0 && consumerExit.exitCode !== 0 && consumerErr().trim() === '') {
    // The receiver was only stopped by us: the sender's (or ssh's) words say why.
    fail(
      route.from,
      `the sending side failed (exit ${producerExit.exitCode ?? producerExit.signal})`,
      producerErr(),
    );
  }
  if (consumerExit.exitCode !== 0)
    fail(
      route.to,
      `the receiving command failed (exit ${consumerExit.exitCode ?? consumerExit.signal})`,
      consumerErr(),
    );
  if (producerExit.exitCode !== 0)
    fail(
      route.from,
      `the sending side failed (exit ${producerExit.exitCode ?? producerExit.signal})`,
      producerErr(),
    );
  const sourceSum = parseHostSum(producerErr());
  const targetSum = parseHostSum(consumerErr());
  const bytes = parseHostBytes(producerErr()) ?? parseHostBytes(consumerErr()) ?? 0;
  if (sourceSum === undefined || sourceSum !== targetSum) {
    throw new MigrationError(
      'CHECKSUM_MISMATCH',
      `${options.label}: checksums differ after ${formatBytes(bytes)}`,
      {
        step: options.step,
        host: describeHost(route.to),
        detail: `sent by ${describeHost(route.from)}: ${sourceSum ?? 'none'}\nreceived by ${describeHost(route.to)}: ${targetSum ?? 'none'}\nhost to host`,
        remedy: "run the migration again; if it repeats, check the hosts' disks and memory",
      },
    );
  }
  const seconds = Math.max(ms, 1) / 1000;
  options.log.info(
    `${options.label}: ${formatBytes(bytes)} host to host in ${seconds.toFixed(2)} s (${formatBytes(bytes / seconds)}/s), sha256 ${sourceSum.slice(0, 16)}… the same on both hosts`,
  );
  return {
    label: options.label,
    bytes,
    sha256: sourceSum,
    ms: Math.round(ms),
    notes: [...parseNotes(producerErr()), ...parseNotes(consumerErr())],
    runnerBytes: runner.bytes,
  };
}
