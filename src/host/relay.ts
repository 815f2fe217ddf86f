import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type ErrorCode, errorMessage, MigrationError } from '../errors.js';
import { describeHost, type Host, type HostProcess } from './host.js';
import { tailLines } from './shell.js';

/** What one stream moved, with the checksum seen at each end. */
export interface StreamResult {
  label: string;
  bytes: number;
  sha256: string;
  ms: number;
  /** Lines either end printed on stderr behind NOTE_MARK, in order (sender first). */
  notes: string[];
}

export interface TransferLog {
  info(message: string): void;
}

export interface StreamOptions {
  label: string;
  step: string;
  log: TransferLog;
  /** Seconds between progress lines. */
  progressSeconds?: number;
  /** Give up when no byte has moved for this long (a dead peer often looks like silence). */
  stallSeconds?: number;
  code?: ErrorCode;
  clock?: () => number;
}

export const SUM_MARK = 'criu-migrate-sha256';
/** A stage that prints `${NOTE_MARK} <text>` on stderr hands <text> back to the caller. */
export const NOTE_MARK = 'criu-migrate-note';

/**
 * A pipeline whose every stage's exit status is kept: POSIX sh reports only
 * the last one, and a failing `tar` in front of `zstd` must not pass for a
 * good stream. Each stage writes `s <status>` on fd 5 (see hashedScript) and
 * leaves fds 3 to 5 to the script, so nothing it starts holds them open.
 */
function recordedPipeline(stages: readonly string[]): string {
  return stages.map((stage) => `{ (${stage}) 3>&- 4>&- 5>&-; echo "s $?" >&5; }`).join(' | ');
}

/**
 * From what fd 5 collected ($r: `s <status>` per stage, then hashsum's line), sets sum, and
 * rc to the first failing stage's status, or 1 when a stage never reported (killed).
 */
function pipelineStatus(count: number): string {
  return [
    'rc=0; n=0; sum=; k=',
    'for w in $r; do',
    '  if [ "$k" = s ]; then n=$((n + 1)); [ "$rc" -ne 0 ] || rc=$w; k=; continue; fi',
    // The other words: hashsum's `<sum> -`.
    '  case $w in s) k=s ;; -) ;; *) sum=$w ;; esac',
    'done',
    `[ "$n" -eq ${count} ] || [ "$rc" -ne 0 ] || rc=1`,
  ].join('\n');
}

/**
 * Copies stdin to stdout and to fd 3 in 1 MiB chunks, after asking for 1 MiB
 * pipes (F_SETPIPE_SZ is 1031). GNU tee moves 8 KiB per call: on a 2-core
 * host, tee plus the extra pipe cost 5.8 CPU-seconds per GiB, this 1.8.
 * perl-base is essential on Debian and Ubuntu; elsewhere tee.
 */
const PERL_TEE = [
  'open(my $f, ">&=", 3) or die "fd 3: $!";',
  'fcntl($_, 1031, 1048576) for \\*STDIN, \\*STDOUT, $f;',
  'my $buf; my $t = 0; my $s = 0;',
  // At most one progress line a second, and only after bytes moved: silence means stalled.
  'print STDERR "criu-migrate-moved 0\\n";',
  'while (1) {',
  ' my $n = sysread(STDIN, $buf, 1048576); defined $n or die "read: $!"; last unless $n;',
  ' for my $h (\\*STDOUT, $f) { my $o = 0; while ($o < $n) {',
  '  my $w = syswrite($h, $buf, $n - $o, $o); defined $w or die "write: $!"; $o += $w } }',
  ' $t += $n;',
  ' if (time != $s) { $s = time; print STDERR "criu-migrate-moved $t\\n" }',
  '}',
  'close($f) or die "fd 3: $!";',
  'print STDERR "criu-migrate-bytes $t\\n";',
].join(' ');

/**
 * The sha256 of stdin as `<sum> -`. GNU sha256sum from 9.2 on (Debian 13): it uses the CPU's SHA
 * instructions and reads 128 KiB at a time, 1.09-1.16 s per GiB from a pipe on a bed host against
 * 1.43-1.57 s for `openssl dgst`, which reads 8 KiB at a time. Else OpenSSL's when it runs:
 * coreutils before 9.2 (Debian 12, Ubuntu 22.04) hash without the SHA instructions, 5.4 s per GiB
 * on the test machine against 1.2 s, which capped every stream at about 200 MB/s.
 */
export const HASH_SUM = [
  'hashsum() {',
  ' case "$(sha256sum --version 2>/dev/null)" in',
  '  *"(GNU coreutils) 9."[2-9]*|*"(GNU coreutils) 9.1"[0-9]*|*"(GNU coreutils) "[1-9][0-9]*) sha256sum; return ;;',
  ' esac',
  ' if openssl version >/dev/null 2>&1; then openssl dgst -sha256 -r | { read -r s _ && echo "$s -"; }; else sha256sum; fi',
  '}',
].join('\n');

const HASH_TEE = `hashtee() { if command -v perl >/dev/null 2>&1; then perl -e '${PERL_TEE}'; else tee /dev/fd/3; fi; }`;

/**
 * Runs `body` (which sends a copy of the stream to fd 3 through hashtee) with
 * hashsum reading fd 3 through an anonymous pipe, then prints the sum on
 * stderr and exits with the pipeline's status. No named fifo and no temporary
 * directory: a fifo's reader waits for ever for a writer that was killed
 * before it opened it, and a script killed before its cleanup left the
 * directory behind (seen on the test bed). A pipe made before the fork ends
 * for its reader as soon as every writer is gone, whatever killed them.
 * fd 4 is the script's stdout (the stream), fd 5 collects the stages'
 * statuses and the sum.
 */
function hashedScript(body: string, stageCount: number): string {
  return [
    HASH_SUM,
    HASH_TEE,
    'exec 4>&1',
    `r=$( { { ${body}; } 3>&1 1>&4 | hashsum 4>&- 5>&-; } 5>&1 )`,
    'exec 4>&-',
    pipelineStatus(stageCount),
    `[ -n "$sum" ] && printf '${SUM_MARK} %s\\n' "$sum" >&2`,
    'exit "$rc"',
  ].join('\n');
}

/**
 * The sending side: the host prints the sha256 of what it wrote. With a sink (the direct
 * route's ssh client), what was hashed goes into it instead of the host's stdout, and the
 * sink's status counts like a stage's.
 */
export function hashedProducer(stages: string | readonly string[], sink?: string): string {
  const list = typeof stages === 'string' ? [stages] : stages;
  if (sink === undefined) return hashedScript(`${recordedPipeline(list)} | hashtee`, list.length);
  return hashedScript(
    `${recordedPipeline([...list])} | hashtee | ${recordedPipeline([sink])}`,
    list.length + 1,
  );
}

/** The receiving side: hashes what arrived before handing it to the stages. */
export function hashedConsumer(stages: string | readonly string[]): string {
  const list = typeof stages === 'string' ? [stages] : stages;
  return hashedScript(`hashtee | ${recordedPipeline(list)}`, list.length);
}

export function parseNotes(stderr: string): string[] {
  return [...stderr.matchAll(new RegExp(`^${NOTE_MARK} (.*)$`, 'gm'))].map((match) => match[1] ?? '');
}

export const BYTES_MARK = 'criu-migrate-bytes';
/** The hashing copy's progress line (perl's copy prints one a second while bytes move). */
export const MOVED_MARK = 'criu-migrate-moved';
/** An armed direct stream's receiving side prints this once the source's ssh client has opened its fifo. */
export const ARMED_MARK = 'criu-migrate-armed';
/** An armed direct stream's sending side prints this with the exit status of its ssh client. */
export const SSH_EXIT_MARK = 'criu-migrate-ssh-exit';

/** The bytes the host's hashing copy moved (perl's copy says; GNU tee does not). */
export function parseHostBytes(stderr: string): number | undefined {
  const match = new RegExp(`^${BYTES_MARK} (\\d+)$`, 'm').exec(stderr);
  return match ? Number(match[1]) : undefined;
}

export function parseHostSum(stderr: string): string | undefined {
  const match = new RegExp(`^${SUM_MARK} ([0-9a-f]{64})$`, 'm').exec(stderr);
  return match?.[1];
}

/** A host's stderr without the lines the stream scripts print for the runner. */
export function hostDetail(stderr: string): string | undefined {
  return (
    tailLines(
      stderr.replace(
        new RegExp(
          `^(${SUM_MARK}|${NOTE_MARK}|${BYTES_MARK}|${MOVED_MARK}|${SSH_EXIT_MARK}) .*$|^${ARMED_MARK}$`,
          'gm',
        ),
        '',
      ),
    ) || undefined
  );
}

/** How long a stream may still be finishing after its receiving command has exited. */
const RECEIVER_GONE_GRACE_MS = 2_000;

/** Counts the bytes passing through the runner; the hosts hash them (see streamBetween). */
class Meter extends Transform {
  bytes = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    callback(null, chunk);
  }
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

function collect(process: HostProcess): () => string {
  let text = '';
  process.stderr.on('data', (chunk: Buffer) => {
    if (text.length < 1_000_000) text += chunk.toString();
  });
  return () => text;
}

/**
 * Streams the output of `produce` on one host into `consume` on another,
 * through the runner: no archive is written on either host, pipeline()
 * carries backpressure end to end, and the sha256 the source computed of
 * what it sent must equal the one the target computed of what it received.
 * One hash per host, none on the runner: a third pass there cost more
 * throughput than it adds (SSH already authenticates every packet), and the
 * two ends agreeing covers the runner's relay too.
 */
export async function streamBetween(
  from: Host,
  produce: string | readonly string[],
  to: Host,
  consume: string | readonly string[],
  options: StreamOptions,
): Promise<StreamResult> {
  const clock = options.clock ?? (() => performance.now());
  const started = clock();
  // Both at once: inside a frozen window each channel's opening is a round trip to its host.
  const [consumer, producer] = await Promise.allSettled([
    to.spawn(hashedConsumer(consume)),
    from.spawn(hashedProducer(produce)),
  ]);
  if (consumer.status === 'rejected') {
    if (producer.status === 'fulfilled') producer.value.kill();
    throw consumer.reason;
  }
  if (producer.status === 'rejected') {
    consumer.value.kill();
    throw producer.reason;
  }
  return pumpRelay(from, producer.value, to, consumer.value, options, started);
}

/**
 * The runner's part of a relayed stream whose two ends run already: copies the sender's
 * stdout into the receiver's stdin (after `header`, an armed stream's go line for the
 * receiver), watches for a stall, and compares the two hosts' checksums.
 */
export async function pumpRelay(
  from: Host,
  producer: HostProcess,
  to: Host,
  consumer: HostProcess,
  options: StreamOptions,
  started: number,
  header?: string,
): Promise<StreamResult> {
  const clock = options.clock ?? (() => performance.now());
  const code = options.code ?? 'TRANSFER_FAILED';
  if (header !== undefined) consumer.stdin.write(header);
  // Nothing reads the consumer's stdout; drain it so a chatty command (docker load) cannot stall.
  consumer.stdout.resume();
  const producerErr = collect(producer);
  const consumerErr = collect(consumer);
  const meter = new Meter();
  const everyMs = (options.progressSeconds ?? 2) * 1000;
  let lastBytes = 0;
  let lastAt = started;
  const stallMs = (options.stallSeconds ?? 120) * 1000;
  let stalled = false;
  let movedAt = started;
  let movedBytes = 0;
  const watchdog = setInterval(
    () => {
      if (meter.bytes !== movedBytes) {
        movedBytes = meter.bytes;
        movedAt = clock();
      } else if (clock() - movedAt > stallMs) {
        stalled = true;
        producer.kill();
        consumer.kill();
      }
    },
    Math.min(1000, stallMs),
  );
  const progress = setInterval(() => {
    const now = clock();
    const rate = ((meter.bytes - lastBytes) / Math.max(1, now - lastAt)) * 1000;
    options.log.info(`${options.label}: ${formatBytes(meter.bytes)} sent, ${formatBytes(rate)}/s`);
    lastBytes = meter.bytes;
    lastAt = now;
  }, everyMs);

  let streamError: unknown;
  let flowing = true;
  // The stream is over at its first error. Node 20's pipeline() settled then; Node 24's settles
  // only once every stream has ended or closed, and the sender's ssh2 channel ends only once its
  // output was read to the end, which pipeline() has just paused (the finally below resumes it):
  // waiting for pipeline() alone would wait for ever.
  let broke: (error: unknown) => void = () => {};
  const broken = new Promise<never>((_resolve, reject) => {
    broke = reject;
  });
  // An error after a good end must not surface as an unhandled rejection.
  broken.catch(() => {});
  for (const stream of [producer.stdout, meter, consumer.stdin]) stream.once('error', broke);
  // ssh2 never calls back a write that waits for window space once the channel has closed
  // (ssh2#1508): a receiver killed while the sender was ahead of it would leave the pipeline
  // pending for ever. When the receiver has ended and the pipeline has not, end it.
  let receiverGone: NodeJS.Timeout | undefined;
  void consumer.exit.then(() => {
    if (!flowing) return;
    receiverGone = setTimeout(() => {
      if (!flowing) return;
      const gone = new Error('the receiving command ended before the stream did');
      // The meter may have closed already, its data handed to the parked write: then it emits nothing.
      broke(gone);
      meter.destroy(gone);
    }, RECEIVER_GONE_GRACE_MS);
  });
  const piped = pipeline(producer.stdout, meter, consumer.stdin);
  // Settles late, or never, once `broken` has decided.
  piped.catch(() => {});
  try {
    await Promise.race([piped, broken]);
  } catch (error) {
    streamError = error;
    producer.kill();
    consumer.kill();
  } finally {
    flowing = false;
    clearTimeout(receiverGone);
    // pipeline() pauses the sender's stream when it unpipes it after an error, and an ssh2
    // channel reports its exit only once its output was read to the end: keep reading.
    producer.stdout.on('error', () => {});
    producer.stdout.resume();
    clearInterval(progress);
    clearInterval(watchdog);
  }
  const [producerExit, consumerExit] = await Promise.all([producer.exit, consumer.exit]);
  const ms = clock() - started;

  const fail = (host: Host, message: string, stderr: string): never => {
    throw new MigrationError(code, `${options.label}: ${message}`, {
      step: options.step,
      host: describeHost(host),
      detail: hostDetail(stderr),
    });
  };
  if (stalled) {
    throw new MigrationError(
      code,
      `${options.label}: no data moved for ${stallMs / 1000} s after ${formatBytes(meter.bytes)}`,
      {
        step: options.step,
        host: `${describeHost(from)} -> ${describeHost(to)}`,
        remedy: 'check both hosts are up and reachable from the runner, then run the migration again',
      },
    );
  }
  // The receiver first: when it fails, the sender is stopped by us and its exit says nothing.
  if (consumerExit.exitCode !== 0) {
    fail(
      to,
      `the receiving command failed (exit ${consumerExit.exitCode ?? consumerExit.signal})`,
      consumerErr(),
    );
  }
  if (producerExit.exitCode !== 0) {
    fail(
      from,
      `the sending command failed (exit ${producerExit.exitCode ?? producerExit.signal})`,
      producerErr(),
    );
  }
  if (streamError !== undefined) fail(from, `the stream broke: ${errorMessage(streamError)}`, producerErr());

  const sourceSum = parseHostSum(producerErr());
  const targetSum = parseHostSum(consumerErr());
  if (sourceSum === undefined || sourceSum !== targetSum) {
    throw new MigrationError(
      'CHECKSUM_MISMATCH',
      `${options.label}: checksums differ after ${formatBytes(meter.bytes)}`,
      {
        step: options.step,
        host: describeHost(to),
        detail: `sent by ${describeHost(from)}: ${sourceSum ?? 'none'}\nreceived by ${describeHost(to)}: ${targetSum ?? 'none'}\n${formatBytes(meter.bytes)} passed the runner`,
        remedy: "run the migration again; if it repeats, check the hosts' disks and memory",
      },
    );
  }
  const seconds = Math.max(ms, 1) / 1000;
  options.log.info(
    `${options.label}: ${formatBytes(meter.bytes)} in ${seconds.toFixed(2)} s (${formatBytes(meter.bytes / seconds)}/s), sha256 ${sourceSum.slice(0, 16)}… the same on both hosts`,
  );
  return {
    label: options.label,
    bytes: meter.bytes,
    sha256: sourceSum,
    ms: Math.round(ms),
    notes: [...parseNotes(producerErr()), ...parseNotes(consumerErr())],
  };
}
