import type { Host, HostProcess } from './host.js';
import {
  ARMED_MARK,
  hashedConsumer,
  hashedProducer,
  pumpRelay,
  SSH_EXIT_MARK,
  type StreamOptions,
  type StreamResult,
} from './relay.js';
import { shellQuote } from './shell.js';

/**
 * Armed streams: both ends of a stream started before the frozen window and held until
 * a go line arrives on their standard input (the same idea as the lazy CRIU ends,
 * engine/docker/lazy-pages.ts). Inside the window only the go lines and the bytes remain.
 * A stream never fired is disarmed: its ends see their standard input close without a go
 * and exit without sending.
 */

/** One way a stream can be sent, chosen by the go line (for example the codec a dump sample picks). */
export interface ArmedVariant {
  produce: string | readonly string[];
  consume: string | readonly string[];
}

/** The ways one armed stream may be fired, by name ([a-z0-9]+). */
export type ArmedVariants = Readonly<Record<string, ArmedVariant>>;

export interface ArmedStream<R extends StreamResult = StreamResult> {
  route: 'direct' | 'relay';
  /** Sends the go line naming `choice` to both ends and runs the stream to its end. */
  fire(choice: string): Promise<R>;
  /** Ends a stream that was never fired, leaving nothing on either host; a no-op once fired. */
  disarm(): Promise<void>;
}

/** Exit status of an armed command whose standard input closed without a go line. */
export const NO_GO_EXIT = 125;

/** How long disarmed ends may take to exit by themselves before they are killed. */
const DISARM_GRACE_MS = 10_000;

export function goLine(variants: ArmedVariants, choice: string): string {
  if (!Object.hasOwn(variants, choice)) throw new Error(`no armed variant ${choice}`);
  return `go ${choice}\n`;
}

function checkNames(variants: ArmedVariants): string[] {
  const names = Object.keys(variants);
  if (names.length === 0) throw new Error('an armed stream needs a variant');
  for (const name of names) if (!/^[a-z0-9]+$/.test(name)) throw new Error(`unsafe variant name ${name}`);
  return names;
}

/**
 * `case` over the go line already read into $go: each variant's script, anything else
 * (or no line: $go empty) exits NO_GO_EXIT.
 */
export function goCase(variants: ArmedVariants, script: (variant: ArmedVariant) => string): string {
  checkNames(variants);
  const branches = Object.entries(variants).map(([name, variant]) => `'go ${name}')\n${script(variant)}\n;;`);
  return ['case "$go" in', ...branches, `*) exit ${NO_GO_EXIT} ;;`, 'esac'].join('\n');
}

/** Relay, sending side: waits for the go line on stdin, then the variant's hashed producer. */
export function armedRelayProducer(variants: ArmedVariants): string {
  return [
    `IFS= read -r go || exit ${NO_GO_EXIT}`,
    goCase(variants, (variant) => hashedProducer(variant.produce)),
  ].join('\n');
}

/** Relay, receiving side: the runner writes the go line in front of the bytes on its stdin. */
export function armedRelayConsumer(variants: ArmedVariants): string {
  return [
    `IFS= read -r go || exit ${NO_GO_EXIT}`,
    goCase(variants, (variant) => hashedConsumer(variant.consume)),
  ].join('\n');
}

/**
 * Direct route, receiving side on the target: keeps the runner's channel as fd 6, opens the
 * fifo (it returns once the source's ssh client has authenticated and the forced command
 * opened it to write) and reads the forced command's pid from it, holds `<fifo>.done` open
 * (the forced command waits for its end), unlinks both at once (nothing to clean up inside
 * the window), then reads sshd's pipe directly through /proc (see receiveScript), or asks
 * for "cat" through the fifo where that cannot be opened. Says it is armed, then waits for
 * its go line on fd 6.
 */
export function armedConsumer(fifo: string, variants: ArmedVariants): string {
  const f = shellQuote([fifo]);
  const done = shellQuote([`${fifo}.done`]);
  return [
    `exec 6<&0 <${f} || exit 1`,
    'IFS= read -r pid || exit 1',
    'case "$pid" in ""|*[!0-9]*) exit 1 ;; esac',
    `exec 7>${done} || exit 1`,
    `rm -f ${f} ${done}`,
    'if (exec <"/proc/$pid/fd/5") 2>/dev/null; then exec <"/proc/$pid/fd/5"; else echo cat >&7; fi',
    `echo ${ARMED_MARK} >&2`,
    `IFS= read -r go <&6 || exit ${NO_GO_EXIT}`,
    'exec 6<&-',
    goCase(variants, (variant) => hashedConsumer(variant.consume)),
  ].join('\n');
}

/**
 * Direct route, sending side on the source: the ssh client starts at once, reading a pipe
 * (a fifo opened both ways and unlinked at once, so only this shell's fd 8 writes into it),
 * and connects while the shell waits for the go line. With a go the variant's hashed
 * producer writes into fd 8; without one fd 8 closes, ssh sends an empty stream and exits,
 * and so does this command (NO_GO_EXIT). ssh's own exit counts like a stage's.
 */
export function armedProducer(variants: ArmedVariants, ssh: string): string {
  return [
    'umask 077',
    'd=$(mktemp -d) && mkfifo "$d/p" || exit 1',
    // Opened read-write first: neither of the two one-way opens below then blocks.
    'exec 7<>"$d/p"',
    'exec 9<"$d/p" 8>"$d/p" 7<&-',
    'rm -rf "$d"',
    // Its end is said at once: an ssh that could not connect fails the arming without a wait.
    `( ${ssh} <&9 >/dev/null 8>&- 9<&-; s=$?; echo "${SSH_EXIT_MARK} $s" >&2; exit "$s" ) 8>&- &`,
    'sp=$!',
    'exec 9<&-',
    `rc=${NO_GO_EXIT}`,
    'if IFS= read -r go; then',
    `( ${goCase(variants, (variant) => hashedProducer(variant.produce))} ) >&8`,
    'rc=$?',
    'fi',
    'exec 8>&-',
    'wait "$sp"; s=$?',
    '[ "$rc" -eq 0 ] || exit "$rc"',
    `[ "$s" -eq 0 ] || echo "criu-migrate: the source's ssh client to the target exited $s" >&2`,
    'exit "$s"',
  ].join('\n');
}

/** Waits for disarmed ends to exit by themselves; kills what still runs after a grace period. */
export async function settleArmed(processes: readonly HostProcess[]): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const grace = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), DISARM_GRACE_MS);
  });
  const all = Promise.all(processes.map((process) => process.exit.catch(() => undefined)));
  const result = await Promise.race([all, grace]);
  clearTimeout(timer);
  if (result === 'late') {
    for (const process of processes) process.kill();
    await Promise.race([all, new Promise((resolve) => setTimeout(resolve, DISARM_GRACE_MS))]);
  }
}

/**
 * Through the runner: both ends spawned and held (the SSH channels are open before the
 * window). Fired, the producer gets its go line on stdin, the consumer its go line in front
 * of the bytes the runner copies.
 */
export async function armRelay(
  from: Host,
  to: Host,
  variants: ArmedVariants,
  options: StreamOptions,
): Promise<ArmedStream> {
  const clock = options.clock ?? (() => performance.now());
  const consumer = await to.spawn(armedRelayConsumer(variants));
  let producer: HostProcess;
  try {
    producer = await from.spawn(armedRelayProducer(variants));
  } catch (error) {
    consumer.stdin.end();
    await settleArmed([consumer]);
    throw error;
  }
  let fired = false;
  let disarmed: Promise<void> | undefined;
  return {
    route: 'relay',
    fire(choice: string): Promise<StreamResult> {
      if (fired || disarmed) throw new Error(`${options.label}: fired twice, or after disarm`);
      fired = true;
      const go = goLine(variants, choice);
      const started = clock();
      producer.stdin.end(go);
      return pumpRelay(from, producer, to, consumer, options, started, go);
    },
    disarm(): Promise<void> {
      if (fired) return Promise.resolve();
      disarmed ??= (async () => {
        for (const process of [producer, consumer]) {
          process.stdout.resume();
          process.stderr.resume();
          process.stdin.end();
        }
        await settleArmed([producer, consumer]);
      })();
      return disarmed;
    },
  };
}
