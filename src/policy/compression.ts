import { MigrationError } from '../errors.js';
import type { Compression } from '../settings.js';

export type Codec = 'zstd' | 'gzip' | 'none';

export interface HostCodecs {
  zstd: boolean;
  gzip: boolean;
}

// zstd -1 shrinks zero and repeated pages fast; whether a stream is worth it
// at all is decided per stream from a sample (streamCodec).
const COMMANDS: Record<Exclude<Codec, 'none'>, { compress: string; decompress: string }> = {
  zstd: { compress: 'zstd -1 -T0 -q -c', decompress: 'zstd -d -q -c' },
  gzip: { compress: 'gzip -1 -c', decompress: 'gzip -d -c' },
};

/** The codec both hosts can run for the requested setting; refuses an explicit one a host lacks. */
export function chooseCodec(setting: Compression, source: HostCodecs, target: HostCodecs): Codec {
  if (setting === 'none') return 'none';
  if (setting === 'auto') return source.zstd && target.zstd ? 'zstd' : 'none';
  const missing = [!source[setting] && 'source', !target[setting] && 'target'].filter(Boolean);
  if (missing.length > 0) {
    throw new MigrationError(
      'COMPRESSION_UNAVAILABLE',
      `compression: ${setting} is not installed on the ${missing.join(' and ')}`,
      {
        step: 'stage',
        remedy: `install ${setting} on both hosts, or set compression to auto or none`,
      },
    );
  }
  return setting;
}

/** Pipeline stages for a producer and a consumer whose bytes travel compressed. */
export function withCodec(
  codec: Codec,
  produce: string,
  consume: string,
): { produce: string[]; consume: string[] } {
  if (codec === 'none') return { produce: [produce], consume: [consume] };
  const { compress, decompress } = COMMANDS[codec];
  return { produce: [produce, compress], consume: [decompress, consume] };
}

/** The shell probe whose output parseCodecs reads. */
export const CODEC_PROBE = 'for c in zstd gzip; do command -v "$c" >/dev/null 2>&1 && echo "$c"; done; true';

export function parseCodecs(stdout: string): HostCodecs {
  const found = new Set(stdout.split('\n').map((line) => line.trim()));
  return { zstd: found.has('zstd'), gzip: found.has('gzip') };
}

/**
 * A stream travels compressed only when a sample of it shrinks below this
 * share of its size. Measured on the bench (256 MiB of random memory, samples
 * at 84-86%): zstd -1 on both hosts moved the checkpoint at 103 MB/s, raw at
 * 108-145 MB/s, so a saving of 15% does not pay for the CPU it takes.
 */
export const WORTH_COMPRESSING = 0.75;

/** What a sample of a stream's data came to, raw and compressed with the negotiated codec. */
export interface CompressionSample {
  bytes: number;
  compressed: number;
}

export interface StreamCodec {
  codec: Codec;
  /** Why, for the log and the metadata. */
  reason: string;
}

/**
 * The codec one stream travels with: the negotiated one, unless (with
 * compression: auto) a sample of its data shows compressing would save too little to pay for the CPU it
 * takes on both hosts (random memory, encrypted or already compressed files).
 */
export function streamCodec(
  setting: Compression,
  negotiated: Codec,
  sample: CompressionSample | undefined,
): StreamCodec {
  if (negotiated === 'none') return { codec: 'none', reason: 'no compression' };
  if (setting !== 'auto') return { codec: negotiated, reason: `compression: ${setting} is set` };
  if (!sample || sample.bytes === 0) return { codec: negotiated, reason: 'no sample' };
  const ratio = sample.compressed / sample.bytes;
  const percent = `${Math.round(ratio * 100)}%`;
  return ratio < WORTH_COMPRESSING
    ? { codec: negotiated, reason: `a sample compressed to ${percent}` }
    : { codec: 'none', reason: `a sample compressed only to ${percent}: sent raw` };
}

const SAMPLE_MARK = 'criu-migrate-sample';
const CHUNK = 262_144;

/**
 * Shell that prints `criu-migrate-sample <bytes> <compressed>` for up to 2 MiB
 * read from each of the four largest files matching `glob` in the current
 * directory (eight 256 KiB chunks spread over a large file), compressed with
 * the codec's own command. Prints nothing for `none`.
 */
export function sampleFilesScript(codec: Codec, glob: string): string {
  if (codec === 'none') return 'true';
  const read = [
    `for f in $(ls -S ${glob} 2>/dev/null | head -n 4); do`,
    '  s=$(stat -c %s -- "$f") || continue',
    `  n=$((s / ${CHUNK}))`,
    `  if [ "$n" -le 8 ]; then head -c ${CHUNK * 8} -- "$f"; continue; fi`,
    `  k=0; while [ "$k" -lt 8 ]; do dd if="$f" bs=${CHUNK} skip=$((k * n / 8)) count=1 2>/dev/null; k=$((k + 1)); done`,
    'done',
  ].join('\n');
  return sampleScript(codec, `{\n${read}\n}`);
}

/** The same for the first 4 MiB a command writes. */
export function sampleCommandScript(codec: Codec, command: string): string {
  if (codec === 'none') return 'true';
  return sampleScript(codec, `{ { ${command}; } 2>/dev/null | head -c ${CHUNK * 16}; }`);
}

function sampleScript(codec: Exclude<Codec, 'none'>, producer: string): string {
  const { compress } = COMMANDS[codec];
  return [
    `criu_migrate_sample() ${producer}`,
    `printf '${SAMPLE_MARK} %s %s\\n' "$(criu_migrate_sample | wc -c)" "$(criu_migrate_sample | ${compress} | wc -c)"`,
  ].join('\n');
}

export function parseSample(stdout: string): CompressionSample | undefined {
  const match = new RegExp(`^${SAMPLE_MARK} (\\d+) (\\d+)$`, 'm').exec(stdout);
  if (!match) return undefined;
  return { bytes: Number(match[1]), compressed: Number(match[2]) };
}
