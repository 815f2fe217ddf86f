import { describe, expect, it } from 'vitest';
import { MigrationError } from '../../src/errors.js';
import { LocalHost } from '../../src/host/local-host.js';
import { streamBetween } from '../../src/host/relay.js';
import { chooseCodec, parseCodecs, withCodec } from '../../src/policy/compression.js';

const both = { zstd: true, gzip: true };
const gzipOnly = { zstd: false, gzip: true };

describe('chooseCodec', () => {
  it.each([
    ['auto', both, both, 'zstd'],
    ['auto', both, gzipOnly, 'none'],
    ['none', both, both, 'none'],
    ['gzip', gzipOnly, gzipOnly, 'gzip'],
    ['zstd', both, both, 'zstd'],
  ] as const)('%s with source %j and target %j -> %s', (setting, source, target, codec) => {
    expect(chooseCodec(setting, source, target)).toBe(codec);
  });

  it('refuses an explicit codec a host lacks, naming the host', () => {
    expect(() => chooseCodec('zstd', both, gzipOnly)).toThrow(MigrationError);
    expect(() => chooseCodec('zstd', both, gzipOnly)).toThrow(/not installed on the target/);
  });
});

describe('parseCodecs', () => {
  it('reads the probe output', () => {
    expect(parseCodecs('zstd\ngzip\n')).toEqual(both);
    expect(parseCodecs('gzip\n')).toEqual(gzipOnly);
    expect(parseCodecs('')).toEqual({ zstd: false, gzip: false });
  });
});

describe('compressed streams', () => {
  const log = { info() {} };
  it.each(['gzip', 'zstd'] as const)(
    'round-trips through %s and sends fewer bytes for repetitive data',
    async (codec) => {
      const host = new LocalHost('local');
      const probe = parseCodecs(
        (await host.run('for c in zstd gzip; do command -v $c >/dev/null && echo $c; done')).stdout,
      );
      expect(probe[codec], `${codec} must be installed on the machine running the unit tests`).toBe(true);
      const { produce, consume } = withCodec(codec, 'head -c 10000000 /dev/zero', 'sha256sum');
      const result = await streamBetween(host, produce, host, consume, {
        label: codec,
        step: 'transfer',
        log,
      });
      expect(result.bytes).toBeGreaterThan(0);
      expect(result.bytes).toBeLessThan(1_000_000);
    },
  );
});
