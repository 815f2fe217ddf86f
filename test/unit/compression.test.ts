import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MigrationError } from '../../src/errors.js';
import { LocalHost } from '../../src/host/local-host.js';
import { streamBetween } from '../../src/host/relay.js';
import {
  chooseCodec,
  parseCodecs,
  parseSample,
  sampleCommandScript,
  sampleFilesScript,
  streamCodec,
  withCodec,
} from '../../src/policy/compression.js';

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

describe('streamCodec', () => {
  it.each([
    ['auto', 'zstd', { bytes: 2_097_152, compressed: 2_097_215 }, 'none', /only to 100%: sent raw/],
    ['auto', 'zstd', { bytes: 2_097_152, compressed: 1_900_000 }, 'none', /only to 91%/],
    ['auto', 'zstd', { bytes: 2_097_152, compressed: 1_800_000 }, 'none', /only to 86%: sent raw/],
    ['auto', 'zstd', { bytes: 2_097_152, compressed: 1_500_000 }, 'zstd', /compressed to 72%/],
    ['auto', 'zstd', { bytes: 2_097_152, compressed: 1_024 }, 'zstd', /compressed to 0%/],
    ['auto', 'zstd', { bytes: 0, compressed: 13 }, 'zstd', /no sample/],
    ['auto', 'zstd', undefined, 'zstd', /no sample/],
    ['auto', 'none', { bytes: 100, compressed: 1 }, 'none', /no compression/],
    ['zstd', 'zstd', { bytes: 100, compressed: 100 }, 'zstd', /compression: zstd is set/],
    ['gzip', 'gzip', { bytes: 100, compressed: 120 }, 'gzip', /compression: gzip is set/],
  ] as const)('%s, negotiated %s, sample %j: %s', (setting, negotiated, sample, codec, reason) => {
    const chosen = streamCodec(setting, negotiated, sample);
    expect(chosen.codec).toBe(codec);
    expect(chosen.reason).toMatch(reason);
  });
});

describe('compression samples', () => {
  const host = new LocalHost('local');
  const dir = mkdtempSync(join(tmpdir(), 'sample-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each([
    ['random pages', 'head -c 8000000 /dev/urandom >pages-1.img', 'none'],
    ['zero pages', 'head -c 8000000 /dev/zero >pages-1.img', 'zstd'],
    [
      'text pages',
      'yes "the quick brown fox jumps over the lazy dog" | head -c 8000000 >pages-1.img',
      'zstd',
    ],
    ['a small file', 'head -c 1000 /dev/urandom >pages-1.img', 'none'],
  ] as const)('%s: sampled from the files and decided %s', async (_name, make, codec) => {
    await host.run(`cd ${dir} && rm -f ./* && ${make} && head -c 100000 /dev/zero >core-1.img`);
    const result = await host.run(`cd ${dir} && { ${sampleFilesScript('zstd', "'pages-'*.img")}; }`);
    expect(result.exitCode).toBe(0);
    const sample = parseSample(result.stdout);
    expect(sample?.bytes).toBeGreaterThan(0);
    // At most eight 256 KiB chunks of each of at most four files.
    expect(sample?.bytes).toBeLessThanOrEqual(4 * 8 * 262_144);
    expect(streamCodec('auto', 'zstd', sample).codec).toBe(codec);
  });

  it('samples the first 4 MiB a command writes', async () => {
    const result = await host.run(sampleCommandScript('zstd', 'head -c 9000000 /dev/zero'));
    expect(parseSample(result.stdout)).toEqual({ bytes: 4_194_304, compressed: expect.any(Number) });
    expect(parseSample(result.stdout)?.compressed).toBeLessThan(10_000);
  });

  it('prints nothing to decide when there is no codec', async () => {
    expect(sampleFilesScript('none', '*')).toBe('true');
    expect(parseSample('')).toBeUndefined();
  });
});
