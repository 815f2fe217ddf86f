import { MigrationError } from '../errors.js';
import type { Compression } from '../settings.js';

export type Codec = 'zstd' | 'gzip' | 'none';

export interface HostCodecs {
  zstd: boolean;
  gzip: boolean;
}

// zstd -1 keeps up with the SSH relay even on incompressible memory, and
// shrinks zero and repeated pages, which most dumps are full of.
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
