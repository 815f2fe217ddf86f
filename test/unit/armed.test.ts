import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MigrationError } from '../../src/errors.js';
import { type ArmedVariants, armRelay } from '../../src/host/armed.js';
import { armDirect, type DirectRoute } from '../../src/host/direct.js';
import { LocalHost } from '../../src/host/local-host.js';
import { shellQuote } from '../../src/host/shell.js';
import { receiveScript } from '../../src/policy/direct-route.js';

const log = { info: () => {} };
const from = new LocalHost('source');
const to = new LocalHost('target');
let dir = '';

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'armed-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Two ways to send a file: as it is, or upper-cased on the way (stands in for a codec). */
function variants(source: string, target: string): ArmedVariants {
  return {
    plain: { produce: shellQuote(['cat', source]), consume: `cat >${shellQuote([target])}` },
    upper: {
      produce: [shellQuote(['cat', source]), 'tr a-z A-Z'],
      consume: `cat >${shellQuote([target])}`,
    },
  };
}

/**
 * The direct route on one machine: the "ssh client" runs the route's real forced command
 * with the stream name as SSH_ORIGINAL_COMMAND, as sshd would.
 */
function localRoute(ssh?: string): DirectRoute {
  const streamsDir = join(dir, 'streams');
  mkdirSync(streamsDir);
  const receiver = join(dir, 'receive');
  writeFileSync(receiver, `${receiveScript(streamsDir)}\n`);
  return {
    from,
    to,
    streamsDir,
    sshCommand: ssh ?? `sh -c ${shellQuote([`SSH_ORIGINAL_COMMAND=$1 exec sh ${receiver}`])} ssh`,
  };
}

describe('armed streams through the runner', () => {
  it('send nothing until fired; the go line picks the variant; both ends agree on the sum', async () => {
    writeFileSync(join(dir, 'in'), 'hello armed\n');
    const armed = await armRelay(from, to, variants(join(dir, 'in'), join(dir, 'out')), {
      label: 'x',
      step: 'transfer',
      log,
    });
    expect(existsSync(join(dir, 'out'))).toBe(false);
    const result = await armed.fire('upper');
    expect(readFileSync(join(dir, 'out'), 'utf8')).toBe('HELLO ARMED\n');
    expect(result.bytes).toBe(12);
    expect(result.sha256).toMatch(/^[0-9a-f]{64}$/);
    await armed.disarm();
  });

  it('disarmed, both ends exit without running a stage', async () => {
    writeFileSync(join(dir, 'in'), 'never sent\n');
    const armed = await armRelay(from, to, variants(join(dir, 'in'), join(dir, 'out')), {
      label: 'x',
      step: 'transfer',
      log,
    });
    await armed.disarm();
    expect(existsSync(join(dir, 'out'))).toBe(false);
    expect(() => armed.fire('plain')).toThrow(/after disarm/);
  });
});

describe('armed streams host to host', () => {
  it('connect before the go (the fifo is open and already unlinked), then move the bytes', async () => {
    writeFileSync(join(dir, 'in'), 'x'.repeat(3 * 1024 * 1024));
    const route = localRoute();
    const armed = await armDirect(route, variants(join(dir, 'in'), join(dir, 'out')), {
      label: 'x',
      step: 'transfer',
      log,
    });
    // Armed: the receiving side has opened and removed its fifo; nothing was written yet.
    expect(readdirSync(route.streamsDir)).toEqual([]);
    expect(existsSync(join(dir, 'out'))).toBe(false);
    const result = await armed.fire('plain');
    expect(result.bytes).toBe(3 * 1024 * 1024);
    expect(readFileSync(join(dir, 'out')).length).toBe(3 * 1024 * 1024);
    expect(readdirSync(route.streamsDir)).toEqual([]);
  });

  it('disarmed, both ends exit by themselves and leave no fifo and no output', async () => {
    writeFileSync(join(dir, 'in'), 'never sent\n');
    const route = localRoute();
    const armed = await armDirect(route, variants(join(dir, 'in'), join(dir, 'out')), {
      label: 'x',
      step: 'transfer',
      log,
    });
    await armed.disarm();
    expect(existsSync(join(dir, 'out'))).toBe(false);
    expect(readdirSync(route.streamsDir)).toEqual([]);
  });

  it('fails to arm when the ssh client cannot connect, removing the fifo its receiver waited on', async () => {
    const route = localRoute('sh -c "echo ssh: connect to host: Connection refused >&2; exit 255" ssh');
    const error = await armDirect(route, variants(join(dir, 'in'), join(dir, 'out')), {
      label: 'x',
      step: 'transfer',
      log,
    }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(MigrationError);
    expect((error as MigrationError).message).toMatch(/did not open the stream/);
    expect((error as MigrationError).detail).toContain('Connection refused');
    expect(readdirSync(route.streamsDir)).toEqual([]);
  });

  it('gives up on a connected stream whose receiver stopped reading, with the relay stall message', async () => {
    writeFileSync(join(dir, 'in'), Buffer.alloc(16 * 1024 * 1024, 1));
    const route = localRoute();
    const armed = await armDirect(
      route,
      // The receiving stage reads nothing for longer than the stall setting.
      { only: { produce: shellQuote(['cat', join(dir, 'in')]), consume: 'sleep 20; cat >/dev/null' } },
      { label: 'x', step: 'transfer', log, stallSeconds: 1 },
    );
    const error = await armed.fire('only').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(MigrationError);
    expect((error as MigrationError).code).toBe('TRANSFER_FAILED');
    expect((error as MigrationError).message).toMatch(/^x: no data moved for 1 s after .* \(host to host\)$/);
  });
});
