import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  buildCreateArgs,
  envFileCreate,
  formatCpus,
  formatDuration,
  formatMount,
  formatPublish,
  splitEnvArgs,
  unsupportedSettings,
} from '../../src/engine/docker/create-args.js';
import {
  type ContainerConfig,
  type ContainerInspect,
  type HostConfig,
  type ImageConfig,
  parseContainerInspect,
  parseImageInspect,
} from '../../src/engine/docker/inspect.js';
import { MigrationError } from '../../src/errors.js';

function fixture(name: string): string {
  return readFileSync(new URL(`../fixtures/docker26/${name}`, import.meta.url), 'utf8');
}

const container = (name: string) => parseContainerInspect(fixture(`inspect-${name}.json`));
const BUSYBOX = parseImageInspect(fixture('image-testbed-busybox.json')).Config;
const DERIVED = parseImageInspect(fixture('image-probe-derived.json')).Config;

interface FixtureCase {
  name: string;
  image: ImageConfig;
  /** Expected with the image's config known. */
  withImage: string[];
  /** Expected without it: everything spelled out. */
  withoutImage: string[];
}

const WEB_OPTIONS = [
  '--hostname',
  'web01',
  '--domainname',
  'example.test',
  '--user',
  '1000:1000',
  '--workdir',
  '/srv',
  '--env',
  'APP_MODE=production',
  '--env',
  'GREETING=hello, world',
];
const WEB_REST = [
  '--label',
  'com.example.team=payments',
  '--label',
  'version=1.4.2',
  '--entrypoint',
  '/bin/sh',
  '-t',
  '-i',
  '--expose',
  '9100/tcp',
  '-p',
  '127.0.0.1:8443:443',
  '-p',
  '5353:53/udp',
  '-p',
  '127.0.0.1::7000',
  '-p',
  '8080:80',
  '-p',
  '[::1]:9090:9090',
  '--restart',
  'on-failure:5',
  '-v',
  '/srv/www:/usr/share/www:ro',
  '-v',
  'webdata:/var/lib/web',
  '--mount',
  'type=bind,source=/srv/conf,target=/etc/web,readonly,bind-propagation=rslave',
  '-v',
  '/var/cache/web',
  '--tmpfs',
  '/run/web:rw,noexec,size=65536k',
  '--network',
  'probenet',
  '--network-alias',
  'api',
  '--network-alias',
  'web-internal',
  '--ip',
  '10.231.0.10',
  '--dns',
  '192.0.2.53',
  '--dns-search',
  'example.test',
  '--dns-option',
  'ndots:2',
  '--add-host',
  'db.internal:192.0.2.20',
  '--cap-add',
  'NET_ADMIN',
  '--cap-drop',
  'MKNOD',
  '--security-opt',
  'no-new-privileges',
  '--security-opt',
  'apparmor=unconfined',
  '--memory',
  '536870912',
  '--memory-reservation',
  '268435456',
  '--cpus',
  '1.5',
  '--cpu-shares',
  '512',
  '--cpuset-cpus',
  '0-1',
  '--pids-limit',
  '200',
  '--ulimit',
  'nofile=1024:4096',
  '--ulimit',
  'nproc=512',
  '--shm-size',
  '134217728',
  '--oom-score-adj',
  '100',
  '--init',
  '--read-only',
  '--sysctl',
  'net.ipv4.ip_unprivileged_port_start=0',
  '--log-driver',
  'local',
  '--log-opt',
  'max-size=10m',
  '--ipc',
  'shareable',
  '--cgroupns',
  'host',
  '--stop-signal',
  'SIGQUIT',
  '--stop-timeout',
  '30',
  '--health-cmd',
  'wget -qO- http://localhost/ || exit 1',
  '--health-interval',
  '30s',
  '--health-start-period',
  '5s',
  '--health-retries',
  '3',
  '--group-add',
  '2000',
  'testbed/busybox:1',
  '-c',
  'exec httpd -f -p 80',
];
// What the derived image gives every container that does not override it.
const DERIVED_SPELLED_OUT = ['--workdir', '/work'];
const DERIVED_TAIL = ['--label', 'org.opencontainers.image.title=derived'];
const COMPOSED_MOUNTS = [
  '--mount',
  'type=volume,source=cache,target=/cache,volume-nocopy,volume-label=com.docker.compose.project=shop',
  '--mount',
  'type=tmpfs,target=/scratch,tmpfs-size=67108864,tmpfs-mode=1777',
  '--mount',
  'type=bind,source=/srv/conf,target=/conf,readonly,bind-recursive=disabled',
];

const FIXTURE_CASES: FixtureCase[] = [
  {
    name: 'testbed-counter',
    image: BUSYBOX,
    withImage: [
      '--hostname',
      'a59fd1db4de3',
      '--env',
      'MB=64',
      '--label',
      'app=counter',
      '--cgroupns',
      'host',
      'testbed/busybox:1',
      'testbed-counter',
    ],
    withoutImage: [
      '--hostname',
      'a59fd1db4de3',
      '--env',
      'MB=64',
      '--env',
      'PATH=/usr/local/bin:/bin',
      '--label',
      'app=counter',
      '--entrypoint',
      '',
      '--cgroupns',
      'host',
      'testbed/busybox:1',
      'testbed-counter',
    ],
  },
  {
    name: 'web',
    image: BUSYBOX,
    withImage: [...WEB_OPTIONS, ...WEB_REST],
    withoutImage: [...WEB_OPTIONS, '--env', 'PATH=/usr/local/bin:/bin', ...WEB_REST],
  },
  {
    name: 'worker-reset',
    image: DERIVED,
    withImage: [
      '--hostname',
      '6cc932761dd1',
      '--env',
      'EXTRA=1',
      '--entrypoint',
      '',
      '--cgroupns',
      'host',
      'probe/derived:1',
      'sleep',
      '1000',
    ],
    withoutImage: [
      '--hostname',
      '6cc932761dd1',
      ...DERIVED_SPELLED_OUT,
      '--env',
      'EXTRA=1',
      '--env',
      'PATH=/usr/local/bin:/bin',
      '--env',
      'MODE=image',
      ...DERIVED_TAIL,
      '--entrypoint',
      '',
      '--expose',
      '9000/tcp',
      '-v',
      '/data',
      '--cgroupns',
      'host',
      '--stop-signal',
      'SIGINT',
      'probe/derived:1',
      'sleep',
      '1000',
    ],
  },
  {
    name: 'worker-inherit',
    image: DERIVED,
    withImage: ['--hostname', 'f0c0637b56d2', '--cgroupns', 'host', 'probe/derived:1'],
    withoutImage: [
      '--hostname',
      'f0c0637b56d2',
      ...DERIVED_SPELLED_OUT,
      '--env',
      'PATH=/usr/local/bin:/bin',
      '--env',
      'MODE=image',
      ...DERIVED_TAIL,
      '--entrypoint',
      '/bin/sh',
      '--expose',
      '9000/tcp',
      '-v',
      '/data',
      '--cgroupns',
      'host',
      '--stop-signal',
      'SIGINT',
      'probe/derived:1',
      '-c',
      'echo hi',
    ],
  },
  {
    name: 'worker-cmd',
    image: DERIVED,
    withImage: [
      '--hostname',
      '5f97190159d5',
      '--env',
      'MODE=override',
      '--cgroupns',
      'host',
      'probe/derived:1',
      'echo bye',
    ],
    withoutImage: [
      '--hostname',
      '5f97190159d5',
      ...DERIVED_SPELLED_OUT,
      '--env',
      'MODE=override',
      '--env',
      'PATH=/usr/local/bin:/bin',
      ...DERIVED_TAIL,
      '--entrypoint',
      '/bin/sh',
      '--expose',
      '9000/tcp',
      '-v',
      '/data',
      '--cgroupns',
      'host',
      '--stop-signal',
      'SIGINT',
      'probe/derived:1',
      '-c',
      'echo bye',
    ],
  },
  {
    name: 'worker-ep',
    image: DERIVED,
    withImage: [
      '--hostname',
      '40a76063b075',
      '--entrypoint',
      '/bin/sh',
      '--cgroupns',
      'host',
      'probe/derived:1',
    ],
    withoutImage: [
      '--hostname',
      '40a76063b075',
      ...DERIVED_SPELLED_OUT,
      '--env',
      'PATH=/usr/local/bin:/bin',
      '--env',
      'MODE=image',
      ...DERIVED_TAIL,
      '--entrypoint',
      '/bin/sh',
      '--expose',
      '9000/tcp',
      '-v',
      '/data',
      '--cgroupns',
      'host',
      '--stop-signal',
      'SIGINT',
      'probe/derived:1',
    ],
  },
  {
    name: 'hostnet',
    image: BUSYBOX,
    withImage: [
      '--restart',
      'always',
      '--network',
      'host',
      '--security-opt',
      'label=disable',
      '--memory',
      '104857600',
      '--memory-swap',
      '-1',
      '--pid',
      'host',
      '--cgroupns',
      'host',
      '--no-healthcheck',
      '--device',
      '/dev/null:/dev/xnull:r',
      'testbed/busybox:1',
      'sleep',
      '1000',
    ],
    withoutImage: [
      '--env',
      'PATH=/usr/local/bin:/bin',
      '--entrypoint',
      '',
      '--restart',
      'always',
      '--network',
      'host',
      '--security-opt',
      'label=disable',
      '--memory',
      '104857600',
      '--memory-swap',
      '-1',
      '--pid',
      'host',
      '--cgroupns',
      'host',
      '--no-healthcheck',
      '--device',
      '/dev/null:/dev/xnull:r',
      'testbed/busybox:1',
      'sleep',
      '1000',
    ],
  },
  {
    name: 'composed',
    image: DERIVED,
    withImage: [
      '--hostname',
      'b9311ba8d945',
      '--env',
      'MODE=compose',
      '--label',
      'com.docker.compose.project=shop',
      '--label',
      'com.docker.compose.service=clock',
      '--restart',
      'unless-stopped',
      ...COMPOSED_MOUNTS,
      '--network',
      'probenet',
      '--network-alias',
      'clock',
      '--network-alias',
      'shop-clock-1',
      '--init=false',
      '--cgroupns',
      'host',
      '--health-cmd',
      'test -f /tmp/ok',
      '--health-interval',
      '10s',
      '--health-timeout',
      '2s',
      '--health-retries',
      '4',
      'probe/derived:1',
      'while true; do date; sleep 5; done',
    ],
    withoutImage: [
      '--hostname',
      'b9311ba8d945',
      ...DERIVED_SPELLED_OUT,
      '--env',
      'PATH=/usr/local/bin:/bin',
      '--env',
      'MODE=compose',
      '--label',
      'com.docker.compose.project=shop',
      '--label',
      'com.docker.compose.service=clock',
      ...DERIVED_TAIL,
      '--entrypoint',
      '/bin/sh',
      '--expose',
      '9000/tcp',
      '--restart',
      'unless-stopped',
      ...COMPOSED_MOUNTS,
      '-v',
      '/data',
      '--network',
      'probenet',
      '--network-alias',
      'clock',
      '--network-alias',
      'shop-clock-1',
      '--init=false',
      '--cgroupns',
      'host',
      '--stop-signal',
      'SIGINT',
      'probe/derived:1',
      '-c',
      'while true; do date; sleep 5; done',
    ],
  },
  {
    name: 'edge',
    image: BUSYBOX,
    withImage: [
      '--userns',
      'host',
      '--memory-swappiness',
      '0',
      '--cpu-period',
      '100000',
      '--cpu-quota',
      '50000',
      '--uts',
      'host',
      '--cgroupns',
      'private',
      'testbed/busybox:1',
      'sleep',
      '1',
    ],
    withoutImage: [
      '--env',
      'PATH=/usr/local/bin:/bin',
      '--entrypoint',
      '',
      '--userns',
      'host',
      '--memory-swappiness',
      '0',
      '--cpu-period',
      '100000',
      '--cpu-quota',
      '50000',
      '--uts',
      'host',
      '--cgroupns',
      'private',
      'testbed/busybox:1',
      'sleep',
      '1',
    ],
  },
];

describe('buildCreateArgs on Docker 26 inspects', () => {
  describe.each(FIXTURE_CASES)('$name', ({ name, image, withImage, withoutImage }) => {
    const inspect = container(name);
    const base = { name: `${name}-moved`, image: inspect.Config.Image ?? inspect.Image };

    it('with the image config, leaves inherited settings to the image', () => {
      expect(buildCreateArgs(inspect, { ...base, imageConfig: image })).toEqual([
        '--name',
        `${name}-moved`,
        ...endOfOptions(withImage, base.image),
      ]);
    });

    it('without it, spells everything out', () => {
      expect(buildCreateArgs(inspect, base)).toEqual([
        '--name',
        `${name}-moved`,
        ...endOfOptions(withoutImage, base.image),
      ]);
    });
  });

  it("refuses a container sharing another container's namespaces", () => {
    const sidecar = container('sidecar');
    let thrown: unknown;
    try {
      buildCreateArgs(sidecar, { name: 'sidecar', image: 'testbed/busybox:1' });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(MigrationError);
    expect(thrown).toMatchObject({
      code: 'CONTAINER_SHARES_NAMESPACE',
      message: /NetworkMode is "container:b583d91b43e5/,
    });
  });
});

/** The test bed container with some settings replaced. */
function edit(config: Partial<ContainerConfig> = {}, host: Partial<HostConfig> = {}): ContainerInspect {
  const base = container('testbed-counter');
  return { ...base, Config: { ...base.Config, ...config }, HostConfig: { ...base.HostConfig, ...host } };
}

/** The expected arguments with the "--" that ends the options in front of the image. */
function endOfOptions(args: readonly string[], image: string): string[] {
  const at = args.lastIndexOf(image);
  return [...args.slice(0, at), '--', ...args.slice(at)];
}

/** Everything between the name and the "--" before the image, with the image config of busybox. */
function options(inspect: ContainerInspect, image: ImageConfig = BUSYBOX): string[] {
  const args = buildCreateArgs(inspect, { name: 'x', image: 'IMAGE', imageConfig: image });
  expect(args[args.indexOf('IMAGE') - 1]).toBe('--');
  return args.slice(2, args.indexOf('IMAGE') - 1);
}

function positional(inspect: ContainerInspect, image?: ImageConfig): string[] {
  const args = buildCreateArgs(inspect, { name: 'x', image: 'IMAGE', imageConfig: image });
  return args.slice(args.indexOf('IMAGE') + 1);
}

/** The flag's values, in order. */
function values(args: string[], flag: string): string[] {
  return args.flatMap((arg, i) => (arg === flag ? [args[i + 1] ?? '<none>'] : []));
}

describe('entrypoint and command', () => {
  const image: ImageConfig = { Entrypoint: ['/entry.sh'], Cmd: ['serve'] };
  type Row = [
    string,
    string[] | undefined,
    string[] | undefined,
    ImageConfig | undefined,
    string[],
    string[],
  ];
  it.each<Row>([
    ['inherited from the image', ['/entry.sh'], ['serve'], image, [], []],
    ['command overridden', ['/entry.sh'], ['migrate', '--all'], image, [], ['migrate', '--all']],
    ['entrypoint reset, image has one', undefined, ['sh'], image, ['--entrypoint', ''], ['sh']],
    ['entrypoint reset, image unknown', undefined, ['sh'], undefined, ['--entrypoint', ''], ['sh']],
    ['no entrypoint anywhere', undefined, ['sh'], { Cmd: ['sh'] }, [], []],
    ['[""] is read as no entrypoint', [''], ['sh'], { Cmd: ['sh'] }, [], []],
    ['same entrypoint, command emptied', ['/entry.sh'], undefined, image, ['--entrypoint', '/entry.sh'], []],
    [
      'longer entrypoint goes before the command',
      ['/bin/sh', '-c'],
      ['echo "a b"'],
      image,
      ['--entrypoint', '/bin/sh'],
      ['-c', 'echo "a b"'],
    ],
    [
      'entrypoint with arguments only',
      ['tini', '--', 'app'],
      undefined,
      undefined,
      ['--entrypoint', 'tini'],
      ['--', 'app'],
    ],
  ])('%s', (_title, Entrypoint, Cmd, imageConfig, flags, rest) => {
    const inspect = edit({ Entrypoint, Cmd });
    const args = buildCreateArgs(inspect, { name: 'x', image: 'IMAGE', imageConfig });
    const at = args.indexOf('--entrypoint');
    expect(at >= 0 ? args.slice(at, at + 2) : []).toEqual(flags);
    expect(positional(inspect, imageConfig)).toEqual(rest);
  });
});

describe('formatting helpers', () => {
  it.each([
    ['80/tcp', {}, '80'],
    ['80/tcp', { HostPort: '8080' }, '8080:80'],
    ['80/tcp', { HostIp: '', HostPort: '8080' }, '8080:80'],
    ['53/udp', { HostPort: '5353' }, '5353:53/udp'],
    ['132/sctp', { HostPort: '132' }, '132:132/sctp'],
    ['443/tcp', { HostIp: '127.0.0.1', HostPort: '8443' }, '127.0.0.1:8443:443'],
    ['7000/tcp', { HostIp: '127.0.0.1', HostPort: '' }, '127.0.0.1::7000'],
    ['9090/tcp', { HostIp: '::1', HostPort: '9090' }, '[::1]:9090:9090'],
    ['9090/udp', { HostIp: '2001:db8::7', HostPort: '' }, '[2001:db8::7]::9090/udp'],
    ['8000-8001/tcp', { HostPort: '9000-9001' }, '9000-9001:8000-8001'],
  ])('-p for %s %j is %s', (port, binding, expected) => {
    expect(formatPublish(port, binding)).toBe(expected);
  });

  it.each([
    [30e9, '30s'],
    [1.5e9, '1500ms'],
    [90e9, '90s'],
    [250e3, '250us'],
    [7, '7ns'],
  ])('duration %d is %s', (ns, text) => {
    expect(formatDuration(ns)).toBe(text);
  });

  it.each([
    [1.5e9, '1.5'],
    [2e9, '2'],
    [0.25e9, '0.25'],
    [333333333, '0.333333333'],
  ])('NanoCpus %d is --cpus %s', (nano, text) => {
    expect(formatCpus(nano)).toBe(text);
  });

  it('quotes --mount fields holding commas', () => {
    expect(
      formatMount({
        Type: 'volume',
        Source: 'nfsdata',
        Target: '/data',
        VolumeOptions: {
          DriverConfig: { Name: 'local', Options: { type: 'nfs', o: 'addr=192.0.2.9,rw,nfsvers=4' } },
        },
      }),
    ).toBe(
      'type=volume,source=nfsdata,target=/data,volume-driver=local,"volume-opt=o=addr=192.0.2.9,rw,nfsvers=4",volume-opt=type=nfs',
    );
  });

  it('writes the other bind recursion modes and a volume subpath', () => {
    expect(
      formatMount({
        Type: 'bind',
        Source: '/a',
        Target: '/b',
        ReadOnly: true,
        BindOptions: { ReadOnlyNonRecursive: true },
      }),
    ).toBe('type=bind,source=/a,target=/b,readonly,bind-recursive=writable');
    expect(
      formatMount({ Type: 'volume', Source: 'v', Target: '/v', VolumeOptions: { Subpath: 'sub/dir' } }),
    ).toBe('type=volume,source=v,target=/v,volume-subpath=sub/dir');
  });

  it('has no --mount for types the CLI cannot create', () => {
    expect(
      formatMount({ Type: 'npipe', Source: '\\\\.\\pipe\\x', Target: '\\\\.\\pipe\\x' }),
    ).toBeUndefined();
  });
});

describe('defaults stay out', () => {
  it('adds nothing for a plain container beyond name, hostname and cgroupns', () => {
    expect(options(edit({}, { CgroupnsMode: undefined }))).toEqual([
      '--hostname',
      'a59fd1db4de3',
      '--env',
      'MB=64',
      '--label',
      'app=counter',
    ]);
  });

  it.each<[string, Partial<HostConfig>, string[]]>([
    ['restart no', { RestartPolicy: { Name: 'no', MaximumRetryCount: 0 } }, []],
    ['restart empty', { RestartPolicy: { Name: '', MaximumRetryCount: 0 } }, []],
    [
      'on-failure without a count',
      { RestartPolicy: { Name: 'on-failure', MaximumRetryCount: 0 } },
      ['--restart', 'on-failure'],
    ],
    ['swap twice the memory is the default', { Memory: 1024, MemorySwap: 2048 }, ['--memory', '1024']],
    [
      'other swap limits are kept',
      { Memory: 1024, MemorySwap: 4096 },
      ['--memory', '1024', '--memory-swap', '4096'],
    ],
    ['64 MiB shm is the default', { ShmSize: 67108864 }, []],
    ['private ipc is the default', { IpcMode: 'private' }, []],
    ['runc is the default runtime', { Runtime: 'runc' }, []],
    ['another runtime is kept', { Runtime: 'runsc' }, ['--runtime', 'runsc']],
    ['json-file without options is the default', { LogConfig: { Type: 'json-file', Config: {} } }, []],
    [
      'json-file options keep the driver',
      { LogConfig: { Type: 'json-file', Config: { 'max-size': '1m', 'max-file': '3' } } },
      ['--log-driver', 'json-file', '--log-opt', 'max-file=3', '--log-opt', 'max-size=1m'],
    ],
    ['unset init is the daemon default', { Init: undefined }, []],
    ['pids limit -1', { PidsLimit: -1 }, ['--pids-limit', '-1']],
    ['swappiness -1 means unset', { MemorySwappiness: -1 }, []],
    [
      'rwm is the default device permission',
      { Devices: [{ PathOnHost: '/dev/fuse', PathInContainer: '/dev/fuse', CgroupPermissions: 'rwm' }] },
      ['--device', '/dev/fuse:/dev/fuse'],
    ],
    ['publish-all', { PublishAllPorts: true }, ['-P']],
    ['oom kill disable', { OomKillDisable: true }, ['--oom-kill-disable']],
    ['auto remove', { AutoRemove: true }, ['--rm']],
    ['privileged', { Privileged: true }, ['--privileged']],
  ])('%s', (_title, host, expected) => {
    const args = options(edit({}, { CgroupnsMode: undefined, ...host }));
    expect(args.slice(6)).toEqual(expected);
  });

  it('skips ports that are published from --expose', () => {
    const args = options(
      edit(
        { ExposedPorts: { '80/tcp': {}, '81/tcp': {} } },
        { PortBindings: { '80/tcp': [{ HostIp: '', HostPort: '80' }], '81/tcp': [] } },
      ),
    );
    expect(values(args, '--expose')).toEqual(['81/tcp']);
    expect(values(args, '-p')).toEqual(['80:80']);
  });

  it('keeps an exposed port the image does not expose', () => {
    const args = options(edit({ ExposedPorts: { '9000/tcp': {}, '9100/tcp': {} } }), DERIVED);
    expect(values(args, '--expose')).toEqual(['9100/tcp']);
  });

  it('keeps a label whose value differs from the image', () => {
    const args = options(
      edit({ Labels: { 'org.opencontainers.image.title': 'renamed', app: 'x' } }),
      DERIVED,
    );
    expect(values(args, '--label')).toEqual(['app=x', 'org.opencontainers.image.title=renamed']);
  });

  it('leaves no anonymous -v where a bind or tmpfs already is', () => {
    const args = options(
      edit(
        { Volumes: { '/data': {}, '/cache': {}, '/tmp/x': {}, '/keep': {} } },
        {
          Binds: ['/srv/data:/data:rw'],
          Mounts: [{ Type: 'volume', Source: 'c', Target: '/cache' }],
          Tmpfs: { '/tmp/x': '' },
        },
      ),
    );
    expect(values(args, '-v')).toEqual(['/srv/data:/data:rw', '/keep']);
    expect(values(args, '--tmpfs')).toEqual(['/tmp/x']);
  });
});

describe('hostname', () => {
  it('keeps an ID-derived hostname: the restored process still has it', () => {
    expect(values(options(edit()), '--hostname')).toEqual(['a59fd1db4de3']);
  });

  it.each<[string, Partial<HostConfig>]>([
    ['host network', { NetworkMode: 'host' }],
    ['host UTS namespace', { UTSMode: 'host' }],
  ])('leaves it to Docker with the %s', (_title, host) => {
    expect(values(options(edit({}, host)), '--hostname')).toEqual([]);
  });
});

describe('networks', () => {
  function onNetwork(name: string, aliases: string[], ipam = {}): ContainerInspect {
    const base = edit({}, { NetworkMode: name });
    return { ...base, NetworkSettings: { Networks: { [name]: { Aliases: aliases, IPAMConfig: ipam } } } };
  }

  it('drops the short ID older Dockers list among the aliases', () => {
    const args = options(onNetwork('backend', ['a59fd1db4de3', 'db', 'x']));
    expect(values(args, '--network')).toEqual(['backend']);
    // "x" is the new container's own name, which Docker adds itself.
    expect(values(args, '--network-alias')).toEqual(['db']);
  });

  it('keeps static addresses', () => {
    const args = options(
      onNetwork('backend', [], {
        IPv4Address: '10.1.0.5',
        IPv6Address: 'fd00::5',
        LinkLocalIPs: ['169.254.1.5'],
      }),
    );
    expect(values(args, '--ip')).toEqual(['10.1.0.5']);
    expect(values(args, '--ip6')).toEqual(['fd00::5']);
    expect(values(args, '--link-local-ip')).toEqual(['169.254.1.5']);
  });

  it.each([['bridge'], ['default']])('adds nothing for %s', (mode) => {
    expect(values(options(edit({}, { NetworkMode: mode })), '--network')).toEqual([]);
  });

  it('writes none', () => {
    expect(values(options(edit({}, { NetworkMode: 'none' })), '--network')).toEqual(['none']);
  });
});

describe('namespaces shared with another container', () => {
  it.each<[string, Partial<HostConfig>]>([
    ['NetworkMode', { NetworkMode: 'container:abc' }],
    ['IpcMode', { IpcMode: 'container:abc' }],
    ['PidMode', { PidMode: 'container:abc' }],
  ])('refuses %s container:', (setting, host) => {
    const inspect = edit({}, host);
    expect(() => buildCreateArgs(inspect, { name: 'x', image: 'i' })).toThrow(
      new RegExp(`HostConfig.${setting} is "container:abc"`),
    );
    expect(unsupportedSettings(inspect)).toEqual([
      `HostConfig.${setting}: container:abc (shares another container's namespace)`,
    ]);
  });
});

describe('healthcheck', () => {
  it.each<[string, ContainerConfig['Healthcheck'], ImageConfig | undefined, string[]]>([
    [
      'shell form',
      { Test: ['CMD-SHELL', 'curl -f localhost'], Retries: 2 },
      undefined,
      ['--health-cmd', 'curl -f localhost', '--health-retries', '2'],
    ],
    ['disabled', { Test: ['NONE'] }, undefined, ['--no-healthcheck']],
    [
      'only timings',
      { Test: [], Interval: 5e9, StartInterval: 1e9 },
      undefined,
      ['--health-interval', '5s', '--health-start-interval', '1s'],
    ],
    ['exec form, image unknown: left to the image', { Test: ['CMD', 'true'], Interval: 15e9 }, undefined, []],
    ['exec form equal to the image', { Test: ['CMD', 'true'], Interval: 15e9 }, DERIVED, []],
    [
      'exec form differing from the image',
      { Test: ['CMD', 'check', 'a b'] },
      DERIVED,
      ['--health-cmd', "check 'a b'"],
    ],
  ])('%s', (_title, Healthcheck, image, expected) => {
    const args = buildCreateArgs(edit({ Healthcheck }), { name: 'x', image: 'IMAGE', imageConfig: image });
    const flags = args.filter(
      (_, i) =>
        args[i]?.startsWith('--health') ||
        args[i] === '--no-healthcheck' ||
        args[i - 1]?.startsWith('--health'),
    );
    expect(flags).toEqual(expected);
  });
});

describe('unsupportedSettings', () => {
  it('finds nothing in ordinary containers', () => {
    for (const name of [
      'testbed-counter',
      'web',
      'worker-reset',
      'worker-inherit',
      'worker-cmd',
      'worker-ep',
    ]) {
      expect(unsupportedSettings(container(name), name === 'web' ? BUSYBOX : DERIVED)).toEqual([]);
    }
  });

  it('names devices and host namespaces', () => {
    expect(unsupportedSettings(container('hostnet'))).toEqual([
      'HostConfig.Devices: /dev/null (device state cannot be checkpointed)',
      "HostConfig.PidMode: host (the host's PID namespace cannot be checkpointed)",
    ]);
  });

  it('names both shared namespaces of a sidecar', () => {
    const found = unsupportedSettings(container('sidecar'));
    expect(found).toHaveLength(2);
    expect(found[0]).toMatch(/^HostConfig.NetworkMode: container:b583d91b43e5/);
    expect(found[1]).toMatch(/^HostConfig.IpcMode: container:b583d91b43e5/);
  });

  it('names an inline seccomp profile and a network connected later, and leaves them out of the arguments', () => {
    const edge = container('edge');
    expect(unsupportedSettings(edge, BUSYBOX)).toEqual([
      'NetworkSettings.Networks: probenet (connected after creation; only bridge is recreated)',
      'HostConfig.SecurityOpt: an inline seccomp profile (the CLI only takes a file)',
    ]);
    const args = buildCreateArgs(edge, { name: 'e', image: 'i' });
    expect(values(args, '--security-opt')).toEqual([]);
    expect(values(args, '--network')).toEqual([]);
  });

  it('says what becomes of an exec-form healthcheck', () => {
    const composed = container('composed');
    expect(unsupportedSettings(composed, DERIVED)).toEqual([
      'Config.Healthcheck: exec form ["CMD","test","-f","/tmp/ok"] (no docker create flag; recreated in the shell form, which needs /bin/sh in the image)',
    ]);
    expect(unsupportedSettings(composed)).toEqual([
      'Config.Healthcheck: exec form ["CMD","test","-f","/tmp/ok"] (no docker create flag; left to the image\'s HEALTHCHECK)',
    ]);
  });

  it('names GPUs, legacy links, volumes-from and mount types without a flag', () => {
    const inspect = edit(
      {},
      {
        DeviceRequests: [
          { Driver: 'nvidia', Count: -1, Capabilities: [['gpu']] },
          { Count: 1, Capabilities: [['gpu', 'compute']] },
        ],
        Links: ['/db:/x/db'],
        VolumesFrom: ['data:ro'],
        IpcMode: 'host',
        Mounts: [{ Type: 'cluster', Source: 'csi', Target: '/csi' }],
      },
    );
    expect(unsupportedSettings(inspect)).toEqual([
      'HostConfig.DeviceRequests: nvidia, gpu+compute (GPU and other device requests cannot be checkpointed)',
      "HostConfig.IpcMode: host (the host's IPC namespace cannot be checkpointed)",
      'HostConfig.Links: /db:/x/db (legacy links name containers on the source)',
      'HostConfig.VolumesFrom: data:ro (names containers on the source)',
      'HostConfig.Mounts: cluster mount at /csi',
    ]);
  });
});

describe('splitEnvArgs', () => {
  it('moves every --env pair to the env file, line breaks included, and keeps the rest', () => {
    const args = [
      '--name',
      'x',
      '--env',
      'A=1',
      '--label',
      'l=v',
      '--env',
      'B=two\nlines',
      '--env',
      'C=',
      '--',
      'img',
      '--env',
      'D=4',
    ];
    expect(splitEnvArgs(args)).toEqual({
      args: ['--name', 'x', '--label', 'l=v', '--', 'img', '--env', 'D=4'],
      env: ['A=1', 'B=two\nlines', 'C='],
    });
  });
});

describe('envFileCreate', () => {
  // A fake docker on PATH records what it was given: its arguments, the env file and its environment.
  const pem = `-----BEGIN KEY-----\nab'"$(touch /tmp/nope) \\n\r\n-----END KEY-----\n`;
  const run = (env: string[]) => {
    const dir = mkdtempSync(join(tmpdir(), 'env-create-'));
    writeFileSync(
      join(dir, 'docker'),
      [
        '#!/bin/sh',
        `printf '%s\\n' "$*" >${dir}/argv`,
        `cp "$3" ${dir}/envfile`,
        `stat -c %a "$3" >${dir}/mode`,
        `printenv PEM_KEY >${dir}/pem`,
        'echo 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
      ].join('\n'),
      { mode: 0o755 },
    );
    const { command, input } = envFileCreate(`${dir}/work/create`, ['--name', 'x', '--', 'img'], env);
    const result = spawnSync('sh', ['-c', command], {
      input,
      env: { PATH: `${dir}:${process.env.PATH ?? ''}` },
    });
    return { dir, result, read: (name: string) => readFileSync(join(dir, name), 'utf8') };
  };

  it('carries single-line values in the 0600 file and multi-line ones in the CLI environment, never as arguments', () => {
    const { dir, result, read } = run(['A=1', `PEM_KEY=${pem}`, 'C=', 'odd name.x=v w']);
    expect(result.status, result.stderr.toString()).toBe(0);
    expect(read('argv')).toBe(`create --env-file ${dir}/work/create/env --name x -- img\n`);
    expect(read('envfile')).toBe('A=1\nPEM_KEY\nC=\nodd name.x=v w\n');
    expect(read('mode')).toBe('600\n');
    // printenv adds one line break of its own.
    expect(read('pem')).toBe(`${pem}\n`);
    // Removed once docker create returned.
    expect(existsSync(join(dir, 'work/create'))).toBe(false);
  });

  it('needs no perl when no value has a line break', () => {
    const { result, read, dir } = run(['A=1', 'B=two words']);
    expect(result.status, result.stderr.toString()).toBe(0);
    expect(envFileCreate('/d', ['--', 'img'], ['A=1']).command).not.toContain('perl');
    expect(read('envfile')).toBe('A=1\nB=two words\n');
    expect(existsSync(join(dir, 'work/create'))).toBe(false);
  });

  it('removes the file when docker create fails', () => {
    const { dir, result } = run(['A=1']);
    expect(result.status).toBe(0);
    writeFileSync(join(dir, 'docker'), '#!/bin/sh\necho no >&2\nexit 3\n', { mode: 0o755 });
    const { command, input } = envFileCreate(`${dir}/work/create`, ['--', 'img'], [`PEM_KEY=${pem}`]);
    const failed = spawnSync('sh', ['-c', command], {
      input,
      env: { PATH: `${dir}:${process.env.PATH ?? ''}` },
    });
    expect(failed.status).toBe(3);
    expect(existsSync(join(dir, 'work/create'))).toBe(false);
  });
});

describe('annotations', () => {
  const annotated = (annotations: Record<string, string>): ContainerInspect => {
    const base = container('testbed-counter');
    return { ...base, HostConfig: { ...base.HostConfig, Annotations: annotations } };
  };
  const flags = (args: string[]): string[] =>
    args.flatMap((arg, i) => (args[i - 1] === '--annotation' ? [arg] : []));

  it("carries the container's own and drops the source's CRIU configuration file", () => {
    const inspect = annotated({
      'team.owner': 'batch',
      'org.criu.config': '/var/lib/criu-migrate/criu/x.conf',
    });
    expect(flags(buildCreateArgs(inspect, { name: 'c', image: 'i' }))).toEqual(['team.owner=batch']);
  });

  it('gives the target its own CRIU configuration file when the restore needs one', () => {
    const inspect = annotated({ 'org.criu.config': '/var/lib/criu-migrate/criu/old.conf' });
    const args = buildCreateArgs(inspect, {
      name: 'c',
      image: 'i',
      annotations: { 'org.criu.config': '/var/lib/criu-migrate/criu/new.conf' },
    });
    expect(flags(args)).toEqual(['org.criu.config=/var/lib/criu-migrate/criu/new.conf']);
  });
});
