import { describe, expect, it } from 'vitest';
import type { ContainerInspect } from '../../src/engine/docker/inspect.js';
import { HOLDER_LABEL } from '../../src/engine/docker/net-holder.js';
import type { Check } from '../../src/policy/compatibility.js';
import { parseSelection, resolveUnits } from '../../src/policy/selection.js';
import { buildSelectionReport, selectionMatrix } from '../../src/report/selection-report.js';

let next = 0;
/** Just the fields a selection reads. */
function container(
  name: string,
  options: { labels?: Record<string, string>; status?: string; paused?: boolean } = {},
): ContainerInspect {
  next++;
  const status = options.status ?? 'running';
  return {
    Id: `${next.toString(16).padStart(12, 'a')}${'0'.repeat(52)}`,
    Name: `/${name}`,
    State: {
      Status: status,
      Running: status === 'running',
      Paused: options.paused ?? false,
      Restarting: false,
    },
    Config: { Labels: options.labels ?? {} },
  } as unknown as ContainerInspect;
}

const compose = (project: string) => ({ 'com.docker.compose.project': project });

describe('selection input', () => {
  it('reads all, compose, label and names', () => {
    expect(parseSelection('all')).toEqual({ kind: 'all' });
    expect(parseSelection('compose=shop')).toEqual({ kind: 'compose', project: 'shop' });
    expect(parseSelection('label=tier')).toEqual({ kind: 'label', key: 'tier' });
    expect(parseSelection('label=tier=batch')).toEqual({ kind: 'label', key: 'tier', value: 'batch' });
    expect(parseSelection('web, worker\ncache,web')).toEqual({
      kind: 'names',
      names: ['web', 'worker', 'cache'],
    });
  });
  it('refuses what names nothing', () => {
    expect(() => parseSelection('compose=')).toThrow(/names no valid compose project/);
    expect(() => parseSelection('label==x')).toThrow(/names no valid label key/);
    expect(() => parseSelection('web,$(reboot)')).toThrow(/is not a container name/);
  });
});

describe('units of a selection', () => {
  const web = container('shop-web-1', { labels: compose('shop') });
  const redis = container('shop-redis-1', { labels: compose('shop') });
  const batch = container('batch', { labels: { tier: 'batch' } });
  const api = container('api');
  const stopped = container('old', { status: 'exited' });
  const paused = container('frozen', { paused: true });
  const holder = container('api-netholder', { labels: { [HOLDER_LABEL]: 'api' } });
  const all = [web, redis, batch, api, stopped, paused, holder];

  it('makes a compose project one unit and every other container one of its own', () => {
    const resolved = resolveUnits(all, { kind: 'all' });
    expect(resolved.units.map((unit) => [unit.name, unit.members.map((m) => m.Name)])).toEqual([
      ['api', ['/api']],
      ['batch', ['/batch']],
      ['compose:shop', ['/shop-redis-1', '/shop-web-1']],
    ]);
    expect(resolved.leftOut).toEqual([
      {
        container: 'api-netholder',
        reason: 'a network holder of this action: it moves with the container that joins it',
      },
      { container: 'frozen', reason: 'paused: unpause it first, or it stays' },
      { container: 'old', reason: 'not running (exited)' },
    ]);
  });

  it('pulls in the whole project when a name picks one member, and names what is missing', () => {
    const resolved = resolveUnits(all, { kind: 'names', names: ['shop-web-1', 'nope'] });
    expect(resolved.units.map((unit) => unit.name)).toEqual(['compose:shop']);
    expect(resolved.units[0]!.members).toHaveLength(2);
    expect(resolved.missing).toEqual(['nope']);
  });

  it('selects by label and by project, and leaves out the runner itself', () => {
    expect(
      resolveUnits(all, { kind: 'label', key: 'tier', value: 'batch' }).units.map((u) => u.name),
    ).toEqual(['batch']);
    expect(resolveUnits(all, { kind: 'compose', project: 'shop' }).units.map((u) => u.name)).toEqual([
      'compose:shop',
    ]);
    const own = resolveUnits(all, { kind: 'all' }, { ownContainerId: api.Id.slice(0, 12) });
    expect(own.units.map((u) => u.name)).not.toContain('api');
    expect(own.leftOut[0]).toEqual({
      container: 'api',
      reason: "the runner's own container: a run cannot move the runner it runs on",
    });
  });
});

describe('the cutover report', () => {
  const pass: Check = { host: 'both', name: 'kernel', status: 'pass', observed: '6.1', expected: 'same' };
  const warn: Check = {
    ...pass,
    name: 'cpu',
    status: 'warn',
    code: 'CPU_FEATURES_DIFFER',
    observed: 'flags',
  };
  const fail: Check = {
    ...pass,
    name: 'devices',
    status: 'fail',
    code: 'CONTAINER_HAS_DEVICES',
    observed: '1',
  };
  const input = (strict: boolean) => ({
    selection: 'every running container',
    strict,
    source: 'root@a:22',
    target: 'root@b:22',
    startedAt: '2026-12-06T00:00:00.000Z',
    durationMs: 1234.4,
    // 100 MiB/s.
    speed: { bytes: 100 * 1024 * 1024, ms: 1000 },
    units: [
      {
        name: 'api',
        kind: 'container' as const,
        containers: ['api'],
        checks: [pass, warn],
        memoryBytes: 50 * 1024 * 1024,
        layerBytes: 50 * 1024 * 1024,
      },
      {
        name: 'gpu',
        kind: 'container' as const,
        containers: ['gpu'],
        checks: [pass, fail],
        memoryBytes: 0,
        layerBytes: 0,
      },
    ],
    leftOut: [],
    missing: [],
  });

  it('estimates from the measured speed, and lists only movable units in the matrix', () => {
    const report = buildSelectionReport(input(false));
    expect(report.result).toBe('passed');
    expect(report.units.map((unit) => [unit.unit, unit.result, unit.blockingCodes])).toEqual([
      ['api', 'movable', []],
      ['gpu', 'blocked', ['CONTAINER_HAS_DEVICES']],
    ]);
    expect(report.units[0]!.estimatedFrozenMs).toBe(500);
    expect(report.units[0]!.estimatedTotalMs).toBe(1000);
    expect(report.totals).toMatchObject({ units: 2, movable: 1, blocked: 1, estimatedTotalMs: 1000 });
    expect(report.streamSpeed?.bytesPerSecond).toBe(100 * 1024 * 1024);
    expect(selectionMatrix(report)).toEqual({ include: [{ unit: 'api', container: 'api' }] });
  });

  it('fails with strict when any unit is blocked (warnings count), and when a name is missing', () => {
    const strict = buildSelectionReport(input(true));
    expect(strict.result).toBe('failed');
    expect(strict.blockingCodes).toEqual(['CPU_FEATURES_DIFFER', 'CONTAINER_HAS_DEVICES']);
    expect(selectionMatrix(strict)).toEqual({ include: [] });
    expect(buildSelectionReport({ ...input(false), missing: ['nope'] }).result).toBe('failed');
  });

  it('lists a movable compose project once, as the unit migrate mode takes', () => {
    const report = buildSelectionReport({
      ...input(false),
      units: [
        ...input(false).units,
        { name: 'compose:shop', kind: 'compose', containers: ['shop-cache-1', 'shop-web-1'], checks: [] },
      ],
    });
    expect(selectionMatrix(report)).toEqual({
      include: [{ unit: 'api', container: 'api' }, { unit: 'compose:shop' }],
    });
  });
});
