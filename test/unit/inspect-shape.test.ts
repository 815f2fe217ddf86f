import { describe, expect, it } from 'vitest';
import type { ContainerInspect } from '../../src/engine/docker/inspect.js';
import {
  absolutePathProblem,
  inspectShapeProblems,
  type ManifestShape,
  manifestShapeProblems,
  shapeCheck,
  volumeShapeProblems,
} from '../../src/policy/inspect-shape.js';
import { imagePath } from '../../src/state/store.js';

const ID = 'a'.repeat(64);
const IMAGE = `sha256:${'b'.repeat(64)}`;

function container(
  mounts: ContainerInspect['Mounts'],
  upper = '/var/lib/docker/overlay2/x/diff',
): ContainerInspect {
  return {
    Id: ID,
    Name: '/web',
    Image: IMAGE,
    Config: { Image: 'web:1' },
    HostConfig: {},
    Mounts: mounts,
    GraphDriver: { Name: 'overlay2', Data: { UpperDir: upper } },
  } as unknown as ContainerInspect;
}

const mount = (extra: Partial<ContainerInspect['Mounts'][number]>): ContainerInspect['Mounts'][number] => ({
  Type: 'volume',
  Name: 'data',
  Source: '/var/lib/docker/volumes/data/_data',
  Destination: '/data',
  Mode: '',
  RW: true,
  Propagation: '',
  ...extra,
});

const info = {
  name: 'data',
  driver: 'local',
  mountpoint: '/var/lib/docker/volumes/data/_data',
  options: {},
  labels: {},
};

function manifest(extra: Partial<ManifestShape> = {}): ManifestShape {
  return {
    name: 'web-20261206',
    series: 'aaaaaaaaaaaa',
    container: { id: ID, imageId: IMAGE, imageRef: 'web:1' },
    files: [{ path: 'criu/pages-1.img' }, { path: 'volumes/data/bulk.tar' }, { path: 'config.json' }],
    image: { path: imagePath(IMAGE) },
    layer: { archives: ['layer/bulk.tar', 'layer/frozen.tar'] },
    volumes: [{ name: 'data', info, archives: ['volumes/data/bulk.tar', 'volumes/data/frozen.tar'] }],
    ...extra,
  };
}

describe('inspectShapeProblems', () => {
  it('accepts what Docker gives', () => {
    expect(
      inspectShapeProblems(container([mount({}), mount({ Type: 'bind', Name: undefined, Source: '/srv' })])),
    ).toEqual([]);
  });

  it('names volume names, mount paths and a layer path of other shapes', () => {
    const problems = inspectShapeProblems(
      container(
        [
          mount({ Name: '../../etc' }),
          mount({ Name: 'x$(id)' }),
          mount({ Destination: '/data/../../etc' }),
          mount({ Type: 'bind', Name: undefined, Source: 'relative' }),
        ],
        '/var/lib/docker/overlay2/x/diff\n/etc',
      ),
    );
    expect(problems).toEqual([
      'writable layer "/var/lib/docker/overlay2/x/diff\\n/etc" is not a plain absolute path',
      'volume "../../etc" is not a Docker volume name',
      'volume "x$(id)" is not a Docker volume name',
      'mount destination "/data/../../etc" is not a plain absolute path',
      'bind mount source "relative" is not a plain absolute path',
    ]);
  });
});

describe('volumeShapeProblems and absolutePathProblem', () => {
  it('wants the name asked for, a driver name and a plain mount point', () => {
    expect(volumeShapeProblems('data', info)).toEqual([]);
    expect(
      volumeShapeProblems('data', { ...info, name: 'other', driver: '-x', mountpoint: '/a/./b' }),
    ).toEqual([
      'volume "data" is described as "other"',
      'volume driver "-x" is not a driver name',
      'mount point of volume data "/a/./b" is not a plain absolute path',
    ]);
    expect(absolutePathProblem('p', '/ok/path')).toBeUndefined();
  });
});

describe('manifestShapeProblems', () => {
  it('accepts what a checkpoint run writes', () => {
    expect(manifestShapeProblems(manifest(), imagePath)).toEqual([]);
  });

  it('refuses hostile volume names, archives, files, the image file and names', () => {
    const problems = manifestShapeProblems(
      manifest({
        name: '../x',
        series: 'a/b',
        files: [{ path: '../../etc/shadow' }, { path: '/etc/passwd' }],
        image: { path: 'images/../../../etc/shadow' },
        layer: { archives: ['../layer.tar'] },
        volumes: [
          { name: '../../etc', info, archives: ['volumes/../../etc/bulk.tar'] },
          { name: 'data', info, archives: ['volumes/data/$(touch /tmp/x).tar'] },
        ],
      }),
      imagePath,
    );
    expect(problems).toEqual([
      'checkpoint name "../x" is not a checkpoint name',
      'series "a/b" is not a series ID',
      `image file "images/../../../etc/shadow" is not ${imagePath(IMAGE)}`,
      'file "../../etc/shadow" is not a plain relative path',
      'file "/etc/passwd" is not a plain relative path',
      'layer archive "../layer.tar" is not layer/bulk.tar or layer/frozen.tar',
      'volume "../../etc" is not a Docker volume name',
      'archive "volumes/data/$(touch /tmp/x).tar" of volume data is not volumes/data/(bulk|frozen).tar',
    ]);
  });

  it('gives the gate one failing check with a code, or none', () => {
    expect(shapeCheck([], 'x')).toBeUndefined();
    expect(shapeCheck(['a', 'b'], 'x')).toMatchObject({
      status: 'fail',
      code: 'UNSAFE_VALUE',
      observed: 'a; b',
    });
  });
});
