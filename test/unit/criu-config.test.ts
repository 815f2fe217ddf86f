import { describe, expect, it } from 'vitest';
import {
  containerCgroupPath,
  lastingConfigLines,
  needsRestoreConfig,
  planRestoreConfig,
  restoreConfigLines,
  restoreRouteProblem,
  safeCgroupPath,
} from '../../src/policy/criu-config.js';
import { parseVersion, type Version } from '../../src/policy/versions.js';

function v(text: string): Version {
  const parsed = parseVersion(text);
  if (!parsed) throw new Error(`bad test version ${text}`);
  return parsed;
}

const ID = 'a'.repeat(64);

describe('containerCgroupPath', () => {
  it.each([
    ['cgroupfs', undefined, `/docker/${ID}`],
    ['cgroupfs', '', `/docker/${ID}`],
    ['cgroupfs', '/batch', `/batch/${ID}`],
    ['cgroupfs', 'batch/', `/batch/${ID}`],
    ['systemd', undefined, `/system.slice/docker-${ID}.scope`],
    ['systemd', 'batch.slice', `/batch.slice/docker-${ID}.scope`],
    ['systemd', 'team-batch.slice', `/team.slice/team-batch.slice/docker-${ID}.scope`],
    ['systemd', '-.slice', `/docker-${ID}.scope`],
  ])('%s with parent %j -> %s', (driver, parent, path) => {
    expect(containerCgroupPath(driver, ID, parent)).toBe(path);
    expect(safeCgroupPath(path)).toBe(true);
  });
});

describe('planRestoreConfig', () => {
  it('asks for the cgroup root on cgroup v2 with runc 1.1 only', () => {
    expect(planRestoreConfig({ cgroupVersion: '2', runcVersion: v('1.1.15+ds1') }).cgroupRoot).toBe(true);
    expect(planRestoreConfig({ cgroupVersion: '2' }).cgroupRoot).toBe(true);
    expect(planRestoreConfig({ cgroupVersion: '2', runcVersion: v('1.2.0') }).cgroupRoot).toBe(false);
    expect(planRestoreConfig({ cgroupVersion: '2', runcVersion: v('1.3.6+ds1') }).cgroupRoot).toBe(false);
    expect(planRestoreConfig({ cgroupVersion: '1', runcVersion: v('1.1.15') }).cgroupRoot).toBe(false);
  });

  it('writes the line with an empty controller name, so only the cgroup2 hierarchy is rewritten', () => {
    const plan = planRestoreConfig({ cgroupVersion: '2', runcVersion: v('1.1.15') });
    expect(restoreConfigLines(plan, `/docker/${ID}`)).toEqual([`cgroup-root :/docker/${ID}`]);
    const none = planRestoreConfig({ cgroupVersion: '1' });
    expect(restoreConfigLines(none, `/docker/${ID}`)).toEqual([]);
  });

  it('adds tcp-established when the dump kept connections established, on every target', () => {
    const v1 = planRestoreConfig({ cgroupVersion: '1' }, { tcpEstablished: true });
    expect(needsRestoreConfig(v1)).toBe(true);
    expect(restoreConfigLines(v1, `/docker/${ID}`)).toEqual(['tcp-established']);
    const v2 = planRestoreConfig({ cgroupVersion: '2', runcVersion: v('1.1.15') }, { tcpEstablished: true });
    expect(restoreConfigLines(v2, `/docker/${ID}`)).toEqual([
      `cgroup-root :/docker/${ID}`,
      'tcp-established',
    ]);
    const sid = planRestoreConfig({ cgroupVersion: '2', runcVersion: v('1.3.6') }, { tcpEstablished: true });
    expect(restoreConfigLines(sid, undefined)).toEqual(['tcp-established']);
    expect(needsRestoreConfig(planRestoreConfig({ cgroupVersion: '1' }))).toBe(false);
  });

  it('keeps only what stays true of the container after the move', () => {
    expect(lastingConfigLines([`cgroup-root :/docker/${ID}`, 'tcp-established', 'lazy-pages'])).toEqual([
      `cgroup-root :/docker/${ID}`,
    ]);
  });
});

describe('restoreRouteProblem', () => {
  const plan = planRestoreConfig({ cgroupVersion: '2', runcVersion: v('1.1.15') });
  it('needs annotations (Docker API 1.43) and a known driver', () => {
    const ok = { cgroupVersion: '2', apiVersion: '1.45', cgroupDriver: 'cgroupfs' };
    expect(restoreRouteProblem(ok, plan)).toBeUndefined();
    expect(restoreRouteProblem({ ...ok, apiVersion: '1.43', cgroupDriver: 'systemd' }, plan)).toBeUndefined();
    expect(restoreRouteProblem({ ...ok, apiVersion: '1.41' }, plan)?.observed).toMatch(
      /Docker API 1\.41 has no container annotations/,
    );
    expect(restoreRouteProblem({ cgroupVersion: '2', cgroupDriver: 'cgroupfs' }, plan)?.observed).toMatch(
      /Docker API unknown/,
    );
    expect(restoreRouteProblem({ cgroupVersion: '2', apiVersion: '1.45' }, plan)?.observed).toMatch(
      /driver unknown/,
    );
  });
});

describe('safeCgroupPath', () => {
  it.each(['', 'docker/x', '/docker/a b', '/docker/a\nlazy-pages', '/docker//x'])('refuses %j', (path) => {
    expect(safeCgroupPath(path)).toBe(false);
  });
});

describe('lazy pages in the restore configuration', () => {
  const dir = '/var/lib/criu-migrate/work/cp/lazy';

  it('asks for the file on cgroup v1 too, with lazy-pages and the fixed work-dir', () => {
    const plan = planRestoreConfig({ cgroupVersion: '1' }, { lazyWorkDir: dir });
    expect(needsRestoreConfig(plan)).toBe(true);
    expect(plan.cgroupRoot).toBe(false);
    expect(restoreConfigLines(plan, `/docker/${ID}`)).toEqual(['lazy-pages', `work-dir ${dir}`]);
    expect(needsRestoreConfig(planRestoreConfig({ cgroupVersion: '1' }))).toBe(false);
  });

  it('adds them after the cgroup root on cgroup v2 with runc 1.1', () => {
    const plan = planRestoreConfig({ cgroupVersion: '2', runcVersion: v('1.1.15') }, { lazyWorkDir: dir });
    const lines = restoreConfigLines(plan, `/docker/${ID}`);
    expect(lines).toEqual([`cgroup-root :/docker/${ID}`, 'lazy-pages', `work-dir ${dir}`]);
    // After the move only the cgroup stays: a later dump must not wait for a lazy-pages daemon.
    expect(lastingConfigLines(lines)).toEqual([`cgroup-root :/docker/${ID}`]);
  });
});
