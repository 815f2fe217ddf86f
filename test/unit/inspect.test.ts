import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { containerName, parseContainerInspect, parseImageInspect } from '../../src/engine/docker/inspect.js';
import { MigrationError } from '../../src/errors.js';

function fixture(name: string): string {
  return readFileSync(new URL(`../fixtures/docker26/${name}`, import.meta.url), 'utf8');
}

function thrown(fn: () => unknown): MigrationError {
  try {
    fn();
  } catch (error) {
    if (error instanceof MigrationError) return error;
    throw error;
  }
  throw new Error('did not throw');
}

describe('parseContainerInspect', () => {
  it('reads the test bed container (captured)', () => {
    const inspect = parseContainerInspect(fixture('inspect-testbed-counter.json'));
    expect(inspect.Id).toBe('a59fd1db4de3d2e40b433b763bff36eb91ad7bced58df9d4d0ad1655a17c2d7e');
    expect(containerName(inspect)).toBe('ctr');
    expect(inspect.State).toEqual({
      Status: 'running',
      Running: true,
      Paused: false,
      Restarting: false,
      Pid: 15906,
      StartedAt: '2026-11-25T12:04:00.44530836Z',
    });
    expect(inspect.Image).toBe('sha256:ba88fefd8ab845ec2abeb85474b16c6a6d0a22a840e09157c088b603e03f9bba');
    expect(inspect.Config).toMatchObject({
      Cmd: ['testbed-counter'],
      Env: ['MB=64', 'PATH=/usr/local/bin:/bin'],
      Image: 'testbed/busybox:1',
    });
    // Docker's nulls read as absent.
    expect(inspect.Config.Entrypoint).toBeUndefined();
    expect(inspect.HostConfig.Binds).toBeUndefined();
    expect(inspect.HostConfig.PidsLimit).toBeUndefined();
    expect(inspect.HostConfig.RestartPolicy).toEqual({ Name: 'no', MaximumRetryCount: 0 });
    expect(inspect.GraphDriver?.Name).toBe('overlay2');
    expect(inspect.GraphDriver?.Data.UpperDir).toBe(
      '/var/lib/docker/overlay2/c7dc211da7cd900aefeb451efaf078180b90264b516bfbcc07aa5d915779771d/diff',
    );
    expect(inspect.Mounts).toEqual([]);
    expect(Object.keys(inspect.NetworkSettings.Networks)).toEqual(['bridge']);
  });

  it('reads ports, mounts and networks', () => {
    const web = parseContainerInspect(fixture('inspect-web.json'));
    expect(web.HostConfig.PortBindings?.['9090/tcp']).toEqual([{ HostIp: '::1', HostPort: '9090' }]);
    expect(web.HostConfig.Binds).toEqual(['/srv/www:/usr/share/www:ro', 'webdata:/var/lib/web']);
    expect(web.HostConfig.Ulimits).toEqual([
      { Name: 'nofile', Soft: 1024, Hard: 4096 },
      { Name: 'nproc', Soft: 512, Hard: 512 },
    ]);
    expect(web.Mounts.find((m) => m.Name === 'webdata')).toMatchObject({
      Type: 'volume',
      Destination: '/var/lib/web',
      RW: true,
    });
    expect(web.Mounts.find((m) => m.Destination === '/usr/share/www')).toMatchObject({
      Type: 'bind',
      RW: false,
      Mode: 'ro',
    });
    expect(web.NetworkSettings.Networks.probenet).toMatchObject({
      Aliases: ['api', 'web-internal'],
      IPAMConfig: { IPv4Address: '10.231.0.10' },
    });
    expect(web.Config.Healthcheck).toEqual({
      Test: ['CMD-SHELL', 'wget -qO- http://localhost/ || exit 1'],
      Interval: 30e9,
      StartPeriod: 5e9,
      Retries: 3,
    });
    expect(web.Config.ExposedPorts).toHaveProperty('9100/tcp');
  });

  it('reads --mount specs as given', () => {
    const composed = parseContainerInspect(fixture('inspect-composed.json'));
    expect(composed.HostConfig.Mounts).toEqual([
      {
        Type: 'volume',
        Source: 'cache',
        Target: '/cache',
        VolumeOptions: { NoCopy: true, Labels: { 'com.docker.compose.project': 'shop' } },
      },
      { Type: 'tmpfs', Target: '/scratch', TmpfsOptions: { SizeBytes: 67108864, Mode: 1023 } },
      {
        Type: 'bind',
        Source: '/srv/conf',
        Target: '/conf',
        ReadOnly: true,
        BindOptions: { NonRecursive: true },
      },
    ]);
    expect(composed.HostConfig.Init).toBe(false);
  });

  it('takes the object alone, as the API prints it', () => {
    const array: unknown = JSON.parse(fixture('inspect-testbed-counter.json'));
    const one = Array.isArray(array) ? array[0] : undefined;
    expect(parseContainerInspect(JSON.stringify(one)).Name).toBe('/ctr');
  });

  it('takes a single-string command and an empty port binding list', () => {
    const inspect = parseContainerInspect(
      JSON.stringify({
        Id: 'x',
        Name: '/x',
        Image: 'sha256:1',
        State: { Status: 'running', Running: true, Paused: false, Restarting: false },
        Config: { Cmd: 'sleep 1', Entrypoint: null },
        HostConfig: { PortBindings: { '80/tcp': null } },
      }),
    );
    expect(inspect.Config.Cmd).toEqual(['sleep 1']);
    expect(inspect.HostConfig.PortBindings).toEqual({ '80/tcp': [] });
    expect(inspect.Mounts).toEqual([]);
    expect(inspect.NetworkSettings.Networks).toEqual({});
    expect(inspect.RestartCount).toBe(0);
  });

  it('reports an empty answer as not found', () => {
    expect(thrown(() => parseContainerInspect('[]\n')).code).toBe('CONTAINER_NOT_FOUND');
  });

  it.each([
    ['not JSON', 'Error: No such object: x', /did not print JSON/],
    ['a number', '[42]', /printed no object/],
    ['no Id', '[{"Name":"/x"}]', /Id is not a string/],
    ['no State', '[{"Id":"x","Name":"/x","Image":"i"}]', /State is not an object/],
    [
      'a string for Running',
      '[{"Id":"x","Name":"/x","Image":"i","State":{"Status":"running","Running":"yes"}}]',
      /State\.Running is not true or false/,
    ],
    [
      'a string for Env',
      '[{"Id":"x","Name":"/x","Image":"i","State":{"Status":"running","Running":true,"Paused":false,"Restarting":false},"Config":{"Env":"A=1"},"HostConfig":{}}]',
      /Config\.Env is not a list of strings/,
    ],
    [
      'a number among the labels',
      '[{"Id":"x","Name":"/x","Image":"i","State":{"Status":"running","Running":true,"Paused":false,"Restarting":false},"Config":{"Labels":{"a":1}},"HostConfig":{}}]',
      /Config\.Labels is not a map of strings/,
    ],
    [
      'a broken mount',
      '[{"Id":"x","Name":"/x","Image":"i","State":{"Status":"running","Running":true,"Paused":false,"Restarting":false},"Config":{},"HostConfig":{"Mounts":[{"Type":"bind"}]}}]',
      /HostConfig\.Mounts\[0\]\.Target is not a string/,
    ],
  ])('refuses %s with a message naming the field', (_title, json, message) => {
    const error = thrown(() => parseContainerInspect(json));
    expect(error.code).toBe('COMMAND_FAILED');
    expect(error.message).toMatch(message);
  });
});

describe('parseImageInspect', () => {
  it('reads the defaults an image gives its containers', () => {
    const image = parseImageInspect(fixture('image-probe-derived.json'));
    expect(image.RepoTags).toEqual(['probe/derived:1']);
    expect(image.Config).toEqual({
      User: '',
      Env: ['PATH=/usr/local/bin:/bin', 'MODE=image'],
      Cmd: ['echo hi'],
      Entrypoint: ['/bin/sh', '-c'],
      WorkingDir: '/work',
      Labels: { 'org.opencontainers.image.title': 'derived' },
      ExposedPorts: { '9000/tcp': {} },
      Volumes: { '/data': {} },
      StopSignal: 'SIGINT',
      Healthcheck: { Test: ['CMD', 'true'], Interval: 15e9 },
    });
  });
});
