import { describe, expect, it } from 'vitest';
import { isStartupDrop, STARTUP_RETRY, startupRetryDelay } from '../../src/host/ssh-host.js';

describe('connections sshd drops before the handshake', () => {
  it('are told apart from every other connection failure', () => {
    expect(isStartupDrop(new Error('Connection lost before handshake'), false)).toBe(true);
    expect(isStartupDrop(new Error('the connection closed before SSH was ready'), false)).toBe(true);
    expect(isStartupDrop(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }), false)).toBe(
      true,
    );
    // Once the host showed its key, the handshake ran: a drop then is not MaxStartups.
    expect(isStartupDrop(new Error('Connection lost before handshake'), true)).toBe(false);
    expect(
      isStartupDrop(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), false),
    ).toBe(false);
    expect(isStartupDrop(new Error('All configured authentication methods failed'), false)).toBe(false);
  });

  it('wait longer each time, with jitter, never beyond the cap', () => {
    expect(startupRetryDelay(1, 0)).toBe(250);
    expect(startupRetryDelay(1, 1)).toBe(750);
    expect(startupRetryDelay(2, 0.5)).toBe(1000);
    expect(startupRetryDelay(3, 0.5)).toBe(2000);
    expect(startupRetryDelay(10, 0.5)).toBe(STARTUP_RETRY.maxMs);
    expect(startupRetryDelay(10, 1)).toBe(STARTUP_RETRY.maxMs * 1.5);
  });
});
