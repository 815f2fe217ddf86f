import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildCreateArgs } from '../../src/engine/docker/create-args.js';
import { type ContainerInspect, parseContainerInspect } from '../../src/engine/docker/inspect.js';
import { shellQuote } from '../../src/host/shell.js';
import {
  anonymousVolumeMounts,
  DRILL_LABEL,
  drillId,
  drillInspect,
  drillJournalKey,
  drillLeftoversScript,
  drillName,
  drillObstacles,
  drillVolumes,
  judgeDrillFailure,
  parseDrillLeftovers,
  parseDrillRecord,
} from '../../src/policy/drill.js';
import type { StoredVolume } from '../../src/state/store.js';

function inspect(name: string): ContainerInspect {
  return parseContainerInspect(
    readFileSync(new URL(`../fixtures/docker26/inspect-${name}.json`, import.meta.url), 'utf8'),
  );
}

/** The web fixture without its bind mounts: what a drill accepts (published ports, a user network, a named and an anonymous volume, restart on-failure). */
function webWithoutBinds(): ContainerInspect {
  const web = inspect('web');
  return {
    ...web,
    HostConfig: {
      ...web.HostConfig,
      Binds: (web.HostConfig.Binds ?? []).filter((bind) => !bind.startsWith('/')),
      Mounts: [],
    },
    Mounts: web.Mounts.filter((mount) => mount.Type !== 'bind'),
  };
}

function stored(name: string, contentsMoved = true): StoredVolume {
  return {
    name,
    info: {
      name,
      driver: 'local',
      mountpoint: `/var/lib/docker/volumes/${name}/_data`,
      options: {},
      labels: {},
    },
    contentsMoved,
    archives: contentsMoved ? [`volumes/${name}/bulk.tar`, `volumes/${name}/frozen.tar`] : [],
    passes: [],
  };
}

const ID = 'ab12cd34';
const DRILL = { id: ID, checkpoint: 'web-20261206T000000000Z' };

/** Values of a flag in an argument list. */
function values(args: readonly string[], flag: string): string[] {
  return args.flatMap((arg, i) => (arg === flag ? [args[i + 1] ?? ''] : []));
}

describe('drill names', () => {
  it('takes eight hex characters of the run token, and names the copy, its volumes and its journal key', () => {
    expect(drillId('AB12cd34ef56')).toBe('ab12cd34');
    expect(drillId('xyz')).toBe('00000000');
    expect(drillName('web', ID)).toBe('web-drill-ab12cd34');
    expect(drillName('w'.repeat(300), ID)).toHaveLength(200);
    expect(drillJournalKey('web')).toBe('web-drill');
  });
});

describe('drillInspect: the copy the drill creates', () => {
  const copy = drillInspect(webWithoutBinds(), DRILL);
  const args = buildCreateArgs(copy, { name: drillName('web', ID), image: 'probe/web:1' });

  it('has its own name, network none, and neither published nor exposed ports', () => {
    expect(values(args, '--name')).toEqual(['web-drill-ab12cd34']);
    expect(values(args, '--network')).toEqual(['none']);
    for (const flag of [
      '-p',
      '-P',
      '--publish',
      '--expose',
      '--ip',
      '--network-alias',
      '--dns',
      '--add-host',
      '--link',
    ]) {
      expect(args, flag).not.toContain(flag);
    }
  });

  it('has no restart policy', () => {
    expect(args).not.toContain('--restart');
    expect(copy.HostConfig.RestartPolicy).toEqual({ Name: 'no', MaximumRetryCount: 0 });
  });

  it("mounts copies of the named volumes, never the original's, and a named volume for an anonymous one", () => {
    const mounts = [...values(args, '-v'), ...values(args, '--mount')].join('\n');
    expect(mounts).toContain('webdata-drill-ab12cd34:/var/lib/web');
    expect(mounts).not.toMatch(/(^|\n)webdata:/);
    expect(mounts).toContain('type=volume,source=web-anon1-drill-ab12cd34,target=/var/cache/web');
    expect(anonymousVolumeMounts(webWithoutBinds(), ID)).toEqual([
      { name: 'web-anon1-drill-ab12cd34', destination: '/var/cache/web', label: `${DRILL_LABEL}=${ID}` },
    ]);
  });

  it('carries the drill labels beside the original ones', () => {
    const labels = values(args, '--label');
    expect(labels).toEqual(
      expect.arrayContaining([
        'com.example.team=payments',
        `${DRILL_LABEL}=${ID}`,
        'org.criu-migrate.drill-of=web',
        `org.criu-migrate.drill-checkpoint=${DRILL.checkpoint}`,
      ]),
    );
  });

  it('leaves the original inspect as it was', () => {
    const web = webWithoutBinds();
    drillInspect(web, DRILL);
    expect(web).toEqual(webWithoutBinds());
  });

  it('renames the stored volumes and labels them, keeping the stored archives', () => {
    expect(drillVolumes([stored('webdata')], DRILL)).toEqual([
      {
        ...stored('webdata'),
        name: 'webdata-drill-ab12cd34',
        info: { ...stored('webdata').info, name: 'webdata-drill-ab12cd34', labels: { [DRILL_LABEL]: ID } },
      },
    ]);
  });
});

describe('drillObstacles', () => {
  it('accepts named local volumes kept in the store, tmpfs and anonymous volumes', () => {
    expect(drillObstacles(webWithoutBinds(), [stored('webdata')])).toEqual([]);
  });

  it('refuses bind mounts, volumes not kept, volumes with driver options and --volumes-from', () => {
    const web = inspect('web');
    const found = drillObstacles({ ...web, HostConfig: { ...web.HostConfig, VolumesFrom: ['db'] } }, [
      stored('webdata', false),
    ]);
    expect(found.map((obstacle) => obstacle.errorCode)).toEqual([
      'DRILL_MOUNT_NOT_COPIED',
      'DRILL_MOUNT_NOT_COPIED',
      'DRILL_MOUNT_NOT_COPIED',
      'DRILL_MOUNT_NOT_COPIED',
    ]);
    expect(found.map((obstacle) => obstacle.problem).join('\n')).toMatch(
      /bind mount .* at \/usr\/share\/www/,
    );
    expect(found.map((obstacle) => obstacle.problem).join('\n')).toMatch(/volume webdata .* driver options/);
    expect(found.map((obstacle) => obstacle.problem).join('\n')).toMatch(/volumes of container db/);
    expect(drillObstacles(webWithoutBinds(), []).map((obstacle) => obstacle.problem)).toEqual([
      'volume webdata at /var/lib/web (driver local) is not kept in the store',
    ]);
  });

  it("refuses the host's network", () => {
    expect(drillObstacles(inspect('hostnet'), []).map((obstacle) => obstacle.errorCode)).toEqual([
      'DRILL_NEEDS_NETWORK',
    ]);
  });
});

describe('judgeDrillFailure', () => {
  it("calls the checkpoint's own failures not restorable", () => {
    for (const code of ['CHECKSUM_MISMATCH', 'RESTORE_FAILED', 'VERIFY_FAILED']) {
      expect(judgeDrillFailure({ code, message: 'x' })).toEqual({ verdict: 'false', needsNetwork: false });
    }
    expect(
      judgeDrillFailure({ code: 'CHECKPOINT_NOT_FOUND', message: 'checkpoint c has no CRIU inventory' }),
    ).toEqual({ verdict: 'false', needsNetwork: false });
  });

  it('says unknown for what is not the checkpoint: connections, the host, cancellation, a name not found', () => {
    for (const code of [
      'SSH_UNREACHABLE',
      'CPU_INCOMPATIBLE',
      'CANCELLED',
      'TIMEOUT',
      'DOCKER_RESTORE_BROKEN',
    ]) {
      expect(judgeDrillFailure({ code, message: 'x' }).verdict).toBe('unknown');
    }
    expect(
      judgeDrillFailure({ code: 'CHECKPOINT_NOT_FOUND', message: 'the store has no complete checkpoint' }),
    ).toEqual({ verdict: 'unknown', needsNetwork: false });
  });

  it("recognises CRIU's socket that needs its network's address", () => {
    const detail =
      "Error (criu/sk-inet.c:852): inet: Can't bind inet socket (id 12): Cannot assign requested address";
    expect(judgeDrillFailure({ code: 'RESTORE_FAILED', message: 'docker start failed', detail })).toEqual({
      verdict: 'unknown',
      needsNetwork: true,
    });
  });
});

describe('drill records and leftovers', () => {
  it('parses a drill record, and nothing else', () => {
    const record = { schema: 1, restorable: true, at: '2026-12-06T00:00:00.000Z', host: 'h', id: ID };
    expect(parseDrillRecord(JSON.stringify(record))).toEqual(record);
    expect(parseDrillRecord('{"schema":2,"restorable":true,"at":"x"}')).toBeUndefined();
    expect(parseDrillRecord('not json')).toBeUndefined();
  });

  it('lists leftovers by the drill label and paths, each with its command', () => {
    const script = drillLeftoversScript(ID, ['/var/lib/criu-migrate/work/c']);
    const filter = shellQuote([`label=${DRILL_LABEL}=${ID}`]);
    expect(script).toContain(`docker ps -aq --no-trunc --filter ${filter}`);
    expect(script).toContain(`docker volume ls -q --filter ${filter}`);
    expect(script).toMatch(
      /\[ ! -e \/var\/lib\/criu-migrate\/work\/c \] \|\| echo 'files \/var\/lib\/criu-migrate\/work\/c'/,
    );
    expect(
      parseDrillLeftovers(
        `container ${'a'.repeat(64)}\nvolume web-drill-x\nfiles /var/lib/criu-migrate/work/c\n\n`,
      ),
    ).toEqual([
      `drill container aaaaaaaaaaaa: docker rm -f ${'a'.repeat(64)}`,
      'drill volume web-drill-x: docker volume rm web-drill-x',
      'drill files /var/lib/criu-migrate/work/c: rm -rf -- /var/lib/criu-migrate/work/c',
    ]);
  });
});
