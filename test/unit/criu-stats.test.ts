import { describe, expect, it } from 'vitest';
import { parseDumpStats } from '../../src/criu/stats.js';

// stats-dump written by CRIU 4.2.1 (runc checkpoint --leave-running) on the test bed,
// for the counter workload holding 8 MiB.
const TESTBED_STATS_DUMP = 'QFkQVQYzCVcmAAAACiQIiZsBEOj+HBiXKSDEGii5EDAAOLIQQABIAFAIWAhgAGgAcAA=';

describe('parseDumpStats', () => {
  it('reads the times and page counts of a real dump', () => {
    expect(parseDumpStats(Buffer.from(TESTBED_STATS_DUMP, 'base64'))).toEqual({
      freezingTimeUs: 19849,
      frozenTimeUs: 474984,
      memdumpTimeUs: 5271,
      memwriteTimeUs: 3396,
      pagesScanned: 2105,
      pagesWritten: 2098,
    });
  });

  it.each([
    ['empty', Buffer.alloc(0)],
    ['only magic', Buffer.from('QFkQVQYzCVc=', 'base64')],
    ['garbage', Buffer.from('not a criu image at all')],
  ])('returns undefined for %s input', (_case, image) => {
    expect(parseDumpStats(image)).toBeUndefined();
  });
});
