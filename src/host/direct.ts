import { type ErrorCode, MigrationError } from '../errors.js';
import {
  type ArmedStream,
  type ArmedVariants,
  armedConsumer,
  armedProducer,
  goLine,
  settleArmed,
} from './armed.js';
import { describeHost, type Host, type HostProcess } from './host.js';
import {
  ARMED_MARK,
  formatBytes,
  hostDetail,
  MOVED_MARK,
  parseHostBytes,
  parseHostSum,
  parseNotes,
  SSH_EXIT_MARK,
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

/** How long arming may take: the source's ssh client connects and authenticates in this time. */
const ARM_TIMEOUT_MS = 30_000;

/** Keeps a process's stderr (the first MB) and counts its bytes as the runner's. */
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
 * OpenSSH client: armed, then fired at once (see armDirect).
 */
export async function streamDirect(
  route: DirectRoute,
  produce: string | readonly string[],
  consume: string | readonly string[],
  options: StreamOptions,
): Promise<DirectStreamResult> {
  const armed = await armDirect(route, { only: { produce, consume } }, options);
  return armed.fire('only');
}

/**
 * Sets up one host-to-host stream without sending anything: a fifo on the target, the
 * target's receiving command (it opens the fifo, unlinks it and waits for its go line), and
 * the source's sending command, whose ssh client connects, authenticates and opens the fifo
 * through the forced command, then waits for the go line. Returns once the fifo is open
 * (the ssh connection stands). Fired, only the go lines and the bytes remain; disarmed (no
 * go), both ends exit without sending and nothing is left. The source hashes and sends, the
 * target hashes and consumes; the runner sees both sums on its own channels and compares
 * them: the container's bytes never pass it.
 */
export async function armDirect(
  route: DirectRoute,
  variants: ArmedVariants,
  options: StreamOptions,
): Promise<ArmedStream<DirectStreamResult>> {
  const clock = options.clock ?? (() => performance.now());
  const code: ErrorCode = options.code ?? 'TRANSFER_FAILED';
  const name = `s${++streamCount}`;
  const fifo = `${route.streamsDir}/${name}`;
  const q = shellQuote([fifo, `${fifo}.done`]);
  const made = await route.to.run(`rm -f ${q}; mkfifo -m 600 ${q}`, { timeoutMs: 30_000 });
  if (made.exitCode !== 0) {
    throw new MigrationError(code, `${options.label}: could not make the stream's fifo on the target`, {
      step: options.step,
      host: describeHost(route.to),
      detail: made.stderr.trim() || undefined,
    });
  }
  // Either end still blocked in opening a fifo (the receiver, or a forced command whose
  // receiver is gone) is let through by an opener of our own; then the fifos go.
  const unblock = () =>
    route.to
      .run(`for f in ${q}; do if [ -p "$f" ]; then exec 3<>"$f"; exec 3>&-; rm -f "$f"; fi; done`, {
        timeoutMs: 30_000,
      })
      .then(
        () => undefined,
        () => undefined,
      );
  const runner = { bytes: 0 };
  let consumer: HostProcess;
  try {
    consumer = await route.to.spawn(armedConsumer(fifo, variants));
  } catch (error) {
    await unblock();
    throw error;
  }
  let producer: HostProcess;
  try {
    producer = await route.from.spawn(armedProducer(variants, `${route.sshCommand} ${name}`));
  } catch (error) {
    consumer.stdin.end();
    await unblock();
    consumer.kill();
    throw error;
  }
  for (const process of [consumer, producer]) {
    process.stdout.on('data', (chunk: Buffer) => {
      runner.bytes += chunk.length;
    });
  }
  const consumerErr = collect(consumer, runner);
  const producerErr = collect(producer, runner);
  let lastMoved = 0;
  let seenMoved = false;
  consumer.stderr.on('data', (chunk: Buffer) => {
    if (chunk.toString().includes(MOVED_MARK)) {
      seenMoved = true;
      lastMoved = clock();
    }
  });
  let fired = false;
  let disarmed: Promise<void> | undefined;
  const disarm = (): Promise<void> => {
    if (fired) return Promise.resolve();
    disarmed ??= (async () => {
      // No go line: both ends exit without sending a byte.
      producer.stdin.end();
      consumer.stdin.end();
      await unblock();
      await settleArmed([producer, consumer]);
    })();
    return disarmed;
  };

  const ready = await new Promise<'ready' | 'exit' | 'timeout'>((resolve) => {
    const timer = setTimeout(() => resolve('timeout'), ARM_TIMEOUT_MS);
    const onData = (): void => {
      if (consumerErr().includes(ARMED_MARK)) {
        clearTimeout(timer);
        resolve('ready');
      } else if (producerErr().includes(SSH_EXIT_MARK)) {
        clearTimeout(timer);
        resolve('exit');
      }
    };
    consumer.stderr.on('data', onData);
    producer.stderr.on('data', onData);
    onData();
    for (const process of [producer, consumer])
      void process.exit.then(() => {
        clearTimeout(timer);
        resolve('exit');
      });
  });
  if (ready !== 'ready') {
    await disarm();
    throw new MigrationError(
      code,
      `${options.label} (host to host): the source's ssh client did not open the stream${ready === 'timeout' ? ` in ${ARM_TIMEOUT_MS / 1000} s` : ''}`,
      {
        step: options.step,
        host: describeHost(route.from),
        detail: hostDetail(`${producerErr()}\n${consumerErr()}`),
      },
    );
  }

  const fire = async (choice: string): Promise<DirectStreamResult> => {
    if (fired || disarmed) throw new Error(`${options.label}: fired twice, or after disarm`);
    fired = true;
    const started = clock();
    lastMoved = started;
    const go = goLine(variants, choice);
    consumer.stdin.end(go);
    producer.stdin.end(go);
    const progress = setInterval(
      () => options.log.info(`${options.label}: host to host, ${((clock() - started) / 1000).toFixed(0)} s`),
      (options.progressSeconds ?? 10) * 1000,
    );
    // A stalled but connected stream (a receiver that stopped reading): the receiving side's
    // progress lines stop. Without perl on the target there are none, and no watchdog.
    const stallMs = (options.stallSeconds ?? 120) * 1000;
    let stalled = false;
    const watchdog = setInterval(
      () => {
        if (!seenMoved || clock() - lastMoved <= stallMs) return;
        stalled = true;
        producer.kill();
        consumer.kill();
      },
      Math.min(1000, stallMs),
    );
    // Either end failing dooms the other: a sender whose receiver died writes into nothing.
    const watch = (process: HostProcess, other: HostProcess) =>
      process.exit.then((exit) => {
        if (exit.exitCode !== 0) other.kill();
        return exit;
      });
    let producerExit: Awaited<HostProcess['exit']>;
    let consumerExit: Awaited<HostProcess['exit']>;
    try {
      [producerExit, consumerExit] = await Promise.all([
        watch(producer, consumer),
        watch(consumer, producer),
      ]);
    } finally {
      clearInterval(progress);
      clearInterval(watchdog);
    }
    const ms = clock() - started;
    const bytesSoFar = parseHostBytes(producerErr()) ?? lastMovedBytes(consumerErr());
    if (stalled) {
      throw new MigrationError(
        code,
        `${options.label}: no data moved for ${stallMs / 1000} s after ${formatBytes(bytesSoFar)} (host to host)`,
        {
          step: options.step,
          host: `${describeHost(route.from)} -> ${describeHost(route.to)}`,
          remedy: 'check both hosts are up and reachable from the runner, then run the migration again',
        },
      );
    }
    const fail = (host: Host, message: string, stderr: string): never => {
      throw new MigrationError(code, `${options.label} (host to host): ${message}`, {
        step: options.step,
        host: describeHost(host),
        detail: hostDetail(stderr),
      });
    };
    if (
      producerExit.exitCode !== 0 &&
      consumerExit.exitCode !== 0 &&
      hostDetail(consumerErr()) === undefined
    ) {
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
  };
  return { route: 'direct', fire, disarm };
}

/** The last byte count the receiving side's progress lines gave. */
function lastMovedBytes(stderr: string): number {
  const all = [...stderr.matchAll(new RegExp(`^${MOVED_MARK} (\\d+)$`, 'gm'))];
  return Number(all.at(-1)?.[1] ?? 0);
}
