import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { ContainerInspect } from '../../src/engine/docker/inspect.js';
import { planRecovery } from '../../src/policy/recovery.js';
import {
  asideDir,
  evaluateVolumes,
  movedVolumeNames,
  parseVolumeInfo,
  parseVolumeProbes,
  planVolumes,
  type VolumeFacts,
  type VolumeInfo,
  volumeCreateArgs,
  volumeReceiveCommand,
  volumeSendCommand,
} from '../../src/policy/volumes.js';
import type { JournalAction, JournalEntry } from '../../src/state/journal.js';

const probe = readFileSync(new URL('../fixtures/volumes/probe-docker26.txt', import.meta.url), 'utf8');
const ID = `402be1712a5f${'0'.repeat(52)}`;

function container(mounts: { name: string; driver?: string }[], binds: string[] = []): ContainerInspect {
  return {
    Id: ID,
    Name: '/fx-user',
    Mounts: mounts.map((mount) => ({
      Type: 'volume',
      Name: mount.name,
      Source: `/var/lib/docker/volumes/${mount.name}/_data`,
      Destination: `/${mount.name}`,
      Driver: mount.driver ?? 'local',
      Mode: 'z',
      RW: true,
      Propagation: '',
    })),
    HostConfig: { Binds: binds },
  } as unknown as ContainerInspect;
}

const info = (name: string, extra: Partial<VolumeInfo> = {}): VolumeInfo => ({
  name,
  driver: 'local',
  mountpoint: `/var/lib/docker/volumes/${name}/_data`,
  options: {},
  labels: {},
  ...extra,
});

function facts(target: VolumeFacts['target'], source?: VolumeFacts['source']): VolumeFacts {
  return {
    source: source ?? [
      {
        name: 'data',
        info: info('data'),
        users: [{ id: ID.slice(0, 12), name: 'fx-user' }],
        sizeBytes: 10,
        hasContent: true,
      },
    ],
    target,
    unreadable: {},
  };
}

describe('which volumes move', () => {
  it('takes named local volumes once each, not anonymous ones or other drivers', () => {
    const anonymous = 'a'.repeat(64);
    const ctr = container([
      { name: 'data' },
      { name: 'data' },
      { name: anonymous },
      { name: 'nfs', driver: 'nfsplugin' },
    ]);
    expect(movedVolumeNames(ctr)).toEqual(['data']);
    // An anonymous-looking name given by the user in -v is named.
    const named = container([{ name: anonymous }], [`${anonymous}:/x`]);
    expect(movedVolumeNames(named)).toEqual([anonymous]);
  });
});

describe('parseVolumeProbes on what Docker 26 printed', () => {
  it('reads inspect, users, size and whether it holds anything', () => {
    const probes = parseVolumeProbes(probe);
    expect(probes.map((p) => p.name)).toEqual(['fx-data', 'fx-opts', 'fx-missing']);
    expect(probes[0]).toEqual({
      name: 'fx-data',
      info: info('fx-data'),
      users: [{ id: '402be1712a5f', name: 'fx-user' }],
      sizeBytes: 2,
      hasContent: true,
    });
    expect(probes[1]?.info).toEqual(
      info('fx-opts', { labels: { a: 'b' }, options: { device: 'tmpfs', type: 'tmpfs' } }),
    );
    expect(probes[1]?.hasContent).toBe(false);
    expect(probes[2]).toEqual({ name: 'fx-missing', users: [], hasContent: false });
  });

  it('ignores what is not a volume', () => {
    expect(parseVolumeInfo('not json')).toBeUndefined();
    expect(parseVolumeInfo('{"Name":1}')).toBeUndefined();
    expect(parseVolumeProbes('')).toEqual([]);
  });
});

describe('evaluateVolumes', () => {
  const ctr = container([{ name: 'data' }]);
  const check = (target: VolumeFacts['target'], replace = false, source?: VolumeFacts['source']) =>
    evaluateVolumes(ctr, facts(target, source), { replace, useTargetOptions: false });

  it('passes a volume the target lacks: it is created and filled', () => {
    const [result] = check([{ name: 'data', users: [], hasContent: false }]);
    expect(result).toMatchObject({ status: 'pass', host: 'target', name: 'volume data' });
    expect(result?.observed).toContain('created there, its contents (10 bytes) copied');
  });

  it('passes an empty one of the same name', () => {
    const [result] = check([{ name: 'data', info: info('data'), users: [], hasContent: false }]);
    expect(result).toMatchObject({ status: 'pass' });
    expect(result?.observed).toContain('exists empty on the target');
  });

  it('refuses one with other contents, naming it, unless volume-replace', () => {
    const target = [{ name: 'data', info: info('data'), users: [], hasContent: true }];
    const [refused] = check(target);
    expect(refused).toMatchObject({ status: 'fail', code: 'VOLUME_TARGET_NOT_EMPTY' });
    expect(refused?.observed).toBe('"data" exists on the target with other contents');
    expect(refused?.remedy).toContain('volume-replace: true');
    const [replaced] = check(target, true);
    expect(replaced).toMatchObject({ status: 'warn', code: 'VOLUME_TARGET_NOT_EMPTY' });
  });

  it('refuses one a target container uses, and one of another driver', () => {
    const [used] = check([
      { name: 'data', info: info('data'), users: [{ id: 'b', name: 'squatter' }], hasContent: false },
    ]);
    expect(used).toMatchObject({ status: 'fail', code: 'VOLUME_TARGET_NOT_EMPTY' });
    expect(used?.observed).toContain('squatter');
    const [other] = check([
      { name: 'data', info: info('data', { driver: 'nfsplugin' }), users: [], hasContent: false },
    ]);
    expect(other).toMatchObject({ status: 'fail', code: 'VOLUME_TARGET_NOT_EMPTY' });
  });

  it('refuses a volume another container on the source mounts, naming every one', () => {
    const source = [
      {
        name: 'data',
        info: info('data'),
        users: [
          { id: ID.slice(0, 12), name: 'fx-user' },
          { id: 'c0ffee', name: 'peer-a' },
          { id: 'beef', name: 'peer-b' },
        ],
        hasContent: true,
      },
    ];
    const [shared] = check([{ name: 'data', users: [], hasContent: false }], false, source);
    expect(shared).toMatchObject({ status: 'fail', host: 'source', code: 'VOLUME_SHARED' });
    expect(shared?.observed).toBe('also mounted by containers peer-a, peer-b on the source');
  });

  it('warns for a volume with driver options: created alike, its data stays where they point', () => {
    const source = [
      {
        name: 'data',
        info: info('data', { options: { type: 'nfs', device: ':/export' } }),
        users: [],
        hasContent: true,
      },
    ];
    const [result] = check([{ name: 'data', users: [], hasContent: false }], false, source);
    expect(result).toMatchObject({ status: 'warn', code: 'VOLUME_MISSING' });
    expect(result?.remedy).toContain('type=nfs');
  });

  it('refuses a target volume with driver options where plain contents would be copied, unless allowed', () => {
    const bound = [
      {
        name: 'data',
        info: info('data', { options: { type: 'none', o: 'bind', device: '/srv/data' } }),
        users: [],
        hasContent: false,
      },
    ];
    const [refused] = check(bound);
    expect(refused).toMatchObject({ status: 'fail', host: 'target', code: 'VOLUME_TARGET_HAS_OPTIONS' });
    expect(refused?.observed).toContain('o=bind');
    expect(refused?.remedy).toContain('docker volume rm data');
    expect(refused?.remedy).toContain('volume-use-target-options: true');
    const [allowed] = evaluateVolumes(ctr, facts(bound), { replace: false, useTargetOptions: true });
    expect(allowed).toMatchObject({ status: 'warn', code: 'VOLUME_TARGET_HAS_OPTIONS' });
    expect(allowed?.observed).toContain('used as it is, nothing copied');
  });

  it('says when a host could not be read', () => {
    const checks = evaluateVolumes(
      ctr,
      { source: [], target: [], unreadable: { source: 'permission denied' } },
      { replace: false, useTargetOptions: false },
    );
    expect(checks).toEqual([
      expect.objectContaining({ status: 'warn', code: 'FACT_UNREADABLE', host: 'source' }),
    ]);
    expect(checks[0]?.observed).toContain('permission denied');
  });
});

describe('planVolumes', () => {
  it('creates what the target lacks and replaces what it has; options mean no copy', () => {
    const ctr = container([{ name: 'data' }, { name: 'opts' }]);
    const plans = planVolumes(ctr, {
      source: [
        { name: 'data', info: info('data'), users: [], sizeBytes: 5, hasContent: true },
        { name: 'opts', info: info('opts', { options: { type: 'tmpfs' } }), users: [], hasContent: false },
      ],
      target: [
        { name: 'data', info: info('data', { mountpoint: '/t/data/_data' }), users: [], hasContent: true },
        { name: 'opts', users: [], hasContent: false },
      ],
      unreadable: {},
    });
    expect(plans).toEqual([
      {
        name: 'data',
        source: info('data'),
        sizeBytes: 5,
        target: { action: 'replace', mountpoint: '/t/data/_data', hadContent: true },
        copyContents: true,
      },
      {
        name: 'opts',
        source: info('opts', { options: { type: 'tmpfs' } }),
        target: { action: 'create' },
        copyContents: false,
      },
    ]);
  });
});

describe('planVolumes with a target volume that has driver options', () => {
  it('copies nothing into it', () => {
    const ctr = container([{ name: 'data' }]);
    const [plan] = planVolumes(ctr, {
      source: [{ name: 'data', info: info('data'), users: [], sizeBytes: 5, hasContent: true }],
      target: [
        {
          name: 'data',
          info: info('data', { options: { type: 'nfs', o: 'addr=10.0.0.1', device: ':/export' } }),
          users: [],
          hasContent: false,
        },
      ],
      unreadable: {},
    });
    expect(plan).toMatchObject({ name: 'data', target: { action: 'replace' }, copyContents: false });
  });
});

describe('the tar commands of the passes', () => {
  it('sends with a snapshot file, every attribute kept; the live pass tolerates files changing under it', () => {
    const live = volumeSendCommand('/v/_data', '/w/run.volumes/data.snar', true);
    expect(live).toContain('--listed-incremental\\=/w/run.volumes/data.snar');
    for (const flag of [
      '--numeric-owner',
      '--xattrs',
      '--xattrs-include\\=\\*',
      '--acls',
      '--sparse',
      '--warning\\=no-file-changed',
    ])
      expect(live).toContain(flag);
    expect(live).toMatch(/\[ "\$s" -eq 1 \] && s=0; exit "\$s"$/);
    const frozen = volumeSendCommand('/v/_data', '/w/run.volumes/data.snar', false);
    expect(frozen).not.toContain('no-file-changed');
    expect(frozen).not.toContain('exit');
  });

  it('receives applying deletions, owners kept', () => {
    expect(volumeReceiveCommand('/t/_data')).toBe(
      'tar -C /t/_data --listed-incremental\\=/dev/null --numeric-owner --xattrs --xattrs-include\\=\\* --acls --same-owner -xpf -',
    );
  });

  it('creates the target volume with the same driver, options and labels', () => {
    expect(
      volumeCreateArgs(info('db', { options: { type: 'tmpfs', o: 'size=1m' }, labels: { team: 'a b' } })),
    ).toEqual([
      'volume',
      'create',
      '--driver',
      'local',
      '--opt',
      'o=size=1m',
      '--opt',
      'type=tmpfs',
      '--label',
      'team=a b',
      'db',
    ]);
    expect(asideDir('/var/lib/docker/volumes/db/_data/', 'run-1')).toBe(
      '/var/lib/docker/volumes/db/_data.criu-migrate-run-1',
    );
  });
});

describe('recovery of volume entries', () => {
  const entry = (
    seq: number,
    action: JournalAction,
    state: JournalEntry['state'] = 'done',
  ): JournalEntry => ({
    seq,
    state,
    at: '2026-11-28T00:00:00Z',
    action,
  });
  const replaced: JournalAction = {
    kind: 'volume-replaced',
    name: 'old',
    mountpoint: '/v/old/_data',
    aside: '/v/old/_data.criu-migrate-r',
  };

  it('rolls back: the created volume removed after the container, the replaced one given its contents back', () => {
    const plan = planRecovery({
      sourceAfter: 'stop',
      entries: [
        entry(1, { kind: 'volume-created', name: 'db' }),
        entry(2, replaced),
        entry(3, { kind: 'target-created', name: 'ctr', containerId: 'abc' }),
      ],
    });
    expect(plan.direction).toBe('rollback');
    expect(plan.steps).toEqual([
      { kind: 'remove-target-container', ref: 'abc', critical: false },
      {
        kind: 'restore-volume',
        name: 'old',
        mountpoint: '/v/old/_data',
        aside: '/v/old/_data.criu-migrate-r',
      },
      { kind: 'remove-volume', name: 'db' },
    ]);
  });

  it('rolls forward: the set-aside contents removed; with source-after: remove the source volumes go after the container', () => {
    const entries = [
      entry(1, replaced),
      entry(2, { kind: 'source-paused', containerId: 'src' }),
      entry(3, { kind: 'committed', targetContainerId: 'abc' }),
      entry(4, { kind: 'source-removed', containerId: 'src' }, 'intended'),
      entry(5, { kind: 'source-volumes-removed', names: ['db', 'old'] }, 'intended'),
    ];
    const plan = planRecovery({ sourceAfter: 'remove', entries });
    expect(plan.direction).toBe('roll-forward');
    expect(plan.steps).toEqual([
      { kind: 'retire-source', containerId: 'src', previousPolicy: undefined, remove: true },
      { kind: 'remove-source-volumes', names: ['db', 'old'] },
      { kind: 'remove-files', side: 'target', paths: ['/v/old/_data.criu-migrate-r'] },
    ]);
    const kept = planRecovery({ sourceAfter: 'stop', entries: entries.slice(0, 3) });
    expect(kept.steps.map((step) => step.kind)).toEqual(['retire-source', 'remove-files']);
  });
});
