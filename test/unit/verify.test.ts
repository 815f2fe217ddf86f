import { describe, expect, it } from 'vitest';
import { logTail } from '../../src/phases/verify.js';

describe('logTail', () => {
  const logs = Array.from({ length: 15 }, (_, i) => `line ${i} TOKEN=secret${i}`).join('\n');

  it('shows no log line unless allowed, and names the input that allows it', () => {
    const said = logTail(logs, false);
    expect(said).not.toContain('TOKEN=');
    expect(said).toContain('verify-show-logs: true');
  });

  it('shows the last 10 lines when allowed', () => {
    const said = logTail(logs, true).split('\n');
    expect(said).toHaveLength(10);
    expect(said[0]).toBe('line 5 TOKEN=secret5');
    expect(said.at(-1)).toBe('line 14 TOKEN=secret14');
  });
});
