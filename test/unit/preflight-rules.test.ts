import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { type ContainerInspect, parseContainerInspect } from '../../src/engine/docker/inspect.js';
import { ERROR_CODES } from '../../src/errors.js';
import type { CommandResult } from '../../src/host/host.js';
import { type ConnectionFacts, connectionChecks, privilegeCheck } from '../../src/policy/access-rules.js';
import { blocking, type Check } from '../../src/policy/compatibility.js';
import { CAPACITY_SLACK_BYTES, withMargin } from '../../src/policy/container-rules.js';
import { evaluateGate, type GateFacts } from '../../src/policy/gate.js';
import {
  type HostFacts,
  parseCriuCheck,
  parseCriuVersion,
  parseDockerFacts,
  parseKernel,
} from '../../src/probe/facts.js';
import { parseDf } from '../../src/probe/parsers.js';
import {
  type CpuComparison,
  readCpuComparison,
  readSourceProbe,
  readTargetProbe,
  type SourceProbe,
  type TargetProbe,
} from '../../src/probe/preflight-facts.js';
import type { MemoryMode } from '../../src/settings.js';

const read = (path: string) => readFileSync(new URL(`../fixtures/${path}`, import.meta.url), 'utf8');
const ok = (stdout: string): CommandResult => ({ exitCode: 0, stdout, stderr: '' });
const json = (path: string): CommandResult => JSON.parse(read(path));

// --- facts as the test bed gives them ----------------------------------------------------------

function testbedHost(role: 'source' | 'target'): HostFacts {
  const version = parseCriuVersion('Version: 4.2.1\n');
  return {
    host: `${role} root@127.0.0.${role === 'source' ? 4 : 5}:22`,
    kernel: parseKernel(ok('6.18.44-fc-v782\n'), ok('x86_64\n')),
    criu: {
      present: true,
      path: '/usr/sbin/criu',
      ...(version ? { version } : {}),
      check: parseCriuCheck(ok('Looks good.\n')),
      features: { mem_dirty_track: false, 'uffd-noncoop': true, breakpoints: false },
    },
    runc: { present: true, path: '/usr/sbin/runc' },
    docker: parseDockerFacts(
      ok(read('facts/docker-26.1.5-version.json')),
      ok(read('facts/docker-26.1.5-info.json')),
    ),
  };
}

const pfWeb = parseContainerInspect(read('preflight/inspect-pf-web.json'));
const capturedSource = readSourceProbe(ok(read('preflight/source-probe-pf-web.txt')), pfWeb);
const dockerRoot = {
  path: '/var/lib/docker',
  measured: '/var/lib/docker',
  disk: {
    filesystem: '/dev/vda',
    sizeBytes: 264212084 * 1024,
    availableBytes: 81107044 * 1024,
    mountedOn: '/var/lib/docker',
  },
};
const capturedTarget = readTargetProbe(ok(read('preflight/target-probe-pf-web.txt')), pfWeb, dockerRoot);
const samecpu = readCpuComparison(
  ok(read('preflight/cpuinfo-dump.b64')),
  json('preflight/cpuinfo-check-pass.json'),
);

/** The captured pair with what the target lacked put in place: a migration that can work. */
function healthy(): GateFacts {
  const source: SourceProbe = structuredClone(capturedSource);
  // No established connection at all (the captured container had one outside and one inside).
  source.tcp = (source.tcp ?? []).filter((entry) => entry.state !== 0x01);
  const target: TargetProbe = structuredClone(capturedTarget);
  target.bindKinds = { '/srv/data': 'directory' };
  target.volumes = ['pfvol'];
  target.published = [];
  target.listeners = { tcp: [], udp: [] };
  return {
    ref: 'pf-web',
    source: testbedHost('source'),
    target: testbedHost('target'),
    container: structuredClone(pfWeb),
    targetNameTaken: false,
    sourceProbe: source,
    targetProbe: target,
    cpu: samecpu,
    volumes: {
      source: [
        {
          name: 'pfvol',
          info: {
            name: 'pfvol',
            driver: 'local',
            mountpoint: '/var/lib/docker/volumes/pfvol/_data',
            options: {},
            labels: {},
          },
          users: [{ id: pfWeb.Id.slice(0, 12), name: 'pf-web' }],
          sizeBytes: 4096,
          hasContent: true,
        },
      ],
      target: [{ name: 'pfvol', users: [], hasContent: false }],
      unreadable: {},
    },
  };
}

function evaluate(facts: GateFacts, sudo = false, memory?: MemoryMode): Check[] {
  return evaluateGate(facts, {
    kernelPolicy: 'same-minor',
    sudo,
    volumeReplace: false,
    volumeUseTargetOptions: false,
    holderAllowed: false,
    ...(memory ? { memory } : {}),
  });
}

function docker26(name: string): ContainerInspect {
  return parseContainerInspect(read(`docker26/${name}`));
}

function tweak(
  change: (
    facts: GateFacts & { container: ContainerInspect; sourceProbe: SourceProbe; targetProbe: TargetProbe },
  ) => void,
): GateFacts {
  const facts = healthy();
  const { container, sourceProbe, targetProbe } = facts;
  if (!container || !sourceProbe || !targetProbe) throw new Error('healthy() lost a part');
  const view = { ...facts, container, sourceProbe, targetProbe };
  change(view);
  return view;
}

const tinyTmpfs = parseDf(read('preflight/df-tmpfs-1m.txt'));

// --- the healthy pair ----------------------------------------------------------------------------

describe('evaluateGate on the test bed pair', () => {
  it('passes every check and covers every area of the issue', () => {
    const checks = evaluate(healthy());
    expect(
      checks.filter((check) => check.status !== 'pass').map((c) => `${c.host} ${c.name}: ${c.observed}`),
    ).toEqual([]);
    const names = new Set(checks.map((check) => check.name));
    for (const name of [
      'runs as root',
      'criu installed',
      'criu check',
      'criu features',
      'criu versions',
      'kernel versions',
      'cpu compatibility',
      'docker experimental',
      'docker default runtime',
      'container runtime',
      'cgroup versions',
      'docker storage',
      'container running',
      'network mode',
      'published ports',
      'bind mount /data',
      'volume pfvol',
      'devices attached',
      'tcp connections',
      'container name free',
      'disk space for checkpoint',
      'disk space on docker root',
      'disk space for staged checkpoint',
      'memory on target',
    ]) {
      expect(names, name).toContain(name);
    }
  });
});

// --- one change at a time -------------------------------------------------------------------------

interface Case {
  title: string;
  facts: () => GateFacts;
  name: string;
  host: Check['host'];
  status: Check['status'] | 'absent';
  code?: string;
  mentions?: RegExp;
}

const CASES: Case[] = [
  // as captured: the target lacks the bind source and the volume, and 8080 is taken there
  {
    title: 'port 8080 published by another container on the target',
    facts: () =>
      tweak((f) =>
        Object.assign(f.targetProbe, {
          published: capturedTarget.published,
          listeners: capturedTarget.listeners,
        }),
      ),
    name: 'published ports',
    host: 'target',
    status: 'fail',
    code: 'PORT_IN_USE',
    mentions:
      /8080\/tcp \(taken by container pf-squat, a socket on 0\.0\.0\.0:8080, a socket on \[::\]:8080\)/,
  },
  {
    title: 'only a listening socket (no container) holds the port',
    facts: () => tweak((f) => Object.assign(f.targetProbe, { listeners: capturedTarget.listeners })),
    name: 'published ports',
    host: 'target',
    status: 'fail',
    code: 'PORT_IN_USE',
    mentions: /a socket on 0\.0\.0\.0:8080/,
  },
  {
    title: 'a udp port bound on the same address',
    facts: () =>
      tweak((f) => {
        f.targetProbe.listeners = {
          tcp: [],
          udp: [{ local: { ip: '127.0.0.1', port: 5353 }, remote: { ip: '0.0.0.0', port: 0 }, state: 7 }],
        };
      }),
    name: 'published ports',
    host: 'target',
    status: 'fail',
    code: 'PORT_IN_USE',
    mentions: /127\.0\.0\.1:5353\/udp/,
  },
  {
    title: 'a tcp socket on another address does not clash with 127.0.0.1-only udp',
    facts: () =>
      tweak((f) => {
        f.targetProbe.listeners = {
          tcp: [{ local: { ip: '10.0.0.5', port: 5353 }, remote: { ip: '0.0.0.0', port: 0 }, state: 0x0a }],
          udp: [{ local: { ip: '10.0.0.5', port: 5353 }, remote: { ip: '0.0.0.0', port: 0 }, state: 7 }],
        };
      }),
    name: 'published ports',
    host: 'target',
    status: 'pass',
  },
  {
    title: 'listeners unreadable, docker ps readable',
    facts: () => tweak((f) => Object.assign(f.targetProbe, { listeners: undefined })),
    name: 'published ports',
    host: 'target',
    status: 'pass',
    mentions: /checked other containers only/,
  },
  {
    title: 'nothing about ports readable',
    facts: () => tweak((f) => Object.assign(f.targetProbe, { listeners: undefined, published: undefined })),
    name: 'published ports',
    host: 'target',
    status: 'warn',
    code: 'FACT_UNREADABLE',
  },
  {
    title: 'bind-mount source missing on the target',
    facts: () => tweak((f) => Object.assign(f.targetProbe, { bindKinds: capturedTarget.bindKinds })),
    name: 'bind mount /data',
    host: 'target',
    status: 'fail',
    code: 'MOUNT_SOURCE_MISSING',
    mentions: /\/srv\/data does not exist on the target/,
  },
  {
    title: 'bind-mount source a file where the source has a directory',
    facts: () => tweak((f) => Object.assign(f.targetProbe, { bindKinds: { '/srv/data': 'file' } })),
    name: 'bind mount /data',
    host: 'target',
    status: 'fail',
    code: 'MOUNT_SOURCE_MISSING',
    mentions: /a file on the target but a directory on the source/,
  },
  {
    title: 'named volume with other contents on the target',
    facts: () =>
      tweak((f) => {
        const target = f.volumes?.target[0];
        if (!target) throw new Error('no target volume');
        target.info = {
          name: 'pfvol',
          driver: 'local',
          mountpoint: '/var/lib/docker/volumes/pfvol/_data',
          options: {},
          labels: {},
        };
        target.hasContent = true;
      }),
    name: 'volume pfvol',
    host: 'target',
    status: 'fail',
    code: 'VOLUME_TARGET_NOT_EMPTY',
    mentions: /"pfvol" exists on the target with other contents/,
  },
  {
    title: 'named volume also mounted by another running container on the source',
    facts: () =>
      tweak((f) => {
        f.volumes?.source[0]?.users.push({ id: 'abcdef012345', name: 'pf-peer' });
      }),
    name: 'volume pfvol',
    host: 'source',
    status: 'fail',
    code: 'VOLUME_SHARED',
    mentions: /also mounted by container pf-peer on the source/,
  },
  {
    title: 'anonymous volume (image VOLUME) missing on the target only warns',
    facts: () =>
      tweak((f) => {
        const web = docker26('inspect-web.json');
        f.container.Mounts = web.Mounts;
        f.container.HostConfig.Binds = web.HostConfig.Binds;
        f.container.HostConfig.Mounts = web.HostConfig.Mounts;
        f.targetProbe.volumes = ['webdata'];
        f.targetProbe.bindKinds = { '/srv/www': 'directory', '/srv/conf': 'directory' };
        f.sourceProbe.bindKinds = { '/srv/www': 'directory', '/srv/conf': 'directory' };
      }),
    name: 'anonymous volume /var/cache/web',
    host: 'target',
    status: 'warn',
    code: 'VOLUME_MISSING',
    mentions: /created empty on the target/,
  },
  {
    title: 'established connection to another container',
    facts: () => tweak((f) => Object.assign(f.sourceProbe, { tcp: capturedSource.tcp })),
    name: 'tcp connections',
    host: 'source',
    status: 'fail',
    code: 'TCP_CONNECTIONS_OPEN',
    mentions:
      /1 to outside peers: 172\.17\.0\.2:57528 ↔ 172\.17\.0\.3:9000; 2 over loopback inside the container/,
  },
  {
    title:
      "a connection over loopback inside the container, both ends the init's descendants: moves established",
    facts: () =>
      tweak((f) =>
        Object.assign(f.sourceProbe, {
          tcp: capturedSource.tcp?.filter((entry) => entry.remote.ip.startsWith('127.')),
        }),
      ),
    name: 'tcp connections',
    host: 'source',
    status: 'pass',
    mentions:
      /^none to outside peers; 2 over loopback inside the container: 127\.0\.0\.1:52882 ↔ 127\.0\.0\.1:7000, .*moved established/,
  },
  {
    title: "host network: loopback connections are the host's, not moved established",
    facts: () =>
      tweak((f) => {
        Object.assign(f.container, { HostConfig: docker26('inspect-hostnet.json').HostConfig });
        Object.assign(f.sourceProbe, {
          tcp: capturedSource.tcp?.filter((entry) => entry.remote.ip.startsWith('127.')),
        });
      }),
    name: 'tcp connections',
    host: 'source',
    status: 'fail',
    code: 'TCP_CONNECTIONS_OPEN',
    mentions: /^2 over loopback inside the container: .*network mode host/,
  },
  {
    title: 'a loopback end no process of the container holds (not accepted yet): refused',
    facts: () =>
      tweak((f) =>
        Object.assign(f.sourceProbe, {
          tcp: capturedSource.tcp?.filter((entry) => entry.remote.ip.startsWith('127.')),
          socketOwners: [{ pid: 15606, inode: 173758 }],
        }),
      ),
    name: 'tcp connections',
    host: 'source',
    status: 'fail',
    code: 'TCP_CONNECTIONS_OPEN',
    mentions: /^1 over loopback inside the container with an end no process of the container's tree holds/,
  },
  {
    title: 'loopback connections whose owners could not be read: refused, nobody can tell they move whole',
    facts: () =>
      tweak((f) =>
        Object.assign(f.sourceProbe, {
          tcp: capturedSource.tcp?.filter((entry) => entry.remote.ip.startsWith('127.')),
          socketOwners: undefined,
        }),
      ),
    name: 'tcp connections',
    host: 'source',
    status: 'fail',
    code: 'TCP_CONNECTIONS_OPEN',
    mentions: /could not be read/,
  },
  {
    title: 'a docker exec session without connections: named, it will not move',
    facts: () =>
      tweak((f) =>
        Object.assign(f.sourceProbe, {
          processes: [...(f.sourceProbe?.processes ?? []), { pid: 17000, ppid: 15500, args: 'sleep 600' }],
        }),
      ),
    name: 'docker exec processes',
    host: 'source',
    status: 'warn',
    code: 'EXEC_PROCESSES_LEFT',
    mentions: /1 started by docker exec, which will not move[^\n]*pid 17000 "sleep 600"/,
  },
  {
    title: 'a docker exec session holding a connection to the container',
    facts: () =>
      tweak((f) =>
        Object.assign(f.sourceProbe, {
          tcp: capturedSource.tcp,
          processes: [
            ...(capturedSource.processes ?? []),
            { pid: 17000, ppid: 15500, args: 'nc 127.0.0.1 7000' },
          ],
          socketOwners: [{ pid: 17000, inode: 173758 }],
        }),
      ),
    name: 'docker exec processes',
    host: 'source',
    status: 'fail',
    code: 'EXEC_SESSION_CONNECTED',
    mentions: /pid 17000 "nc 127\.0\.0\.1 7000" holds 127\.0\.0\.1:52882 ↔ 127\.0\.0\.1:7000/,
  },
  {
    title: 'container not running: no connection check, memory counted as none',
    facts: () => tweak((f) => Object.assign(f.container.State, { Running: false, Status: 'exited' })),
    name: 'tcp connections',
    host: 'source',
    status: 'absent',
  },
  {
    title: 'host network',
    facts: () =>
      tweak((f) => Object.assign(f.container, { HostConfig: docker26('inspect-hostnet.json').HostConfig })),
    name: 'network mode',
    host: 'source',
    status: 'warn',
    code: 'NETWORK_MODE_HOST',
  },
  {
    title: 'pid host',
    facts: () =>
      tweak((f) => Object.assign(f.container, { HostConfig: docker26('inspect-hostnet.json').HostConfig })),
    name: 'ipc and pid namespaces',
    host: 'source',
    status: 'fail',
    code: 'CONTAINER_SHARES_NAMESPACE',
    mentions: /pid host/,
  },
  {
    title: "another container's network and ipc",
    facts: () =>
      tweak((f) => Object.assign(f.container, { HostConfig: docker26('inspect-sidecar.json').HostConfig })),
    name: 'network mode',
    host: 'source',
    status: 'fail',
    code: 'CONTAINER_SHARES_NAMESPACE',
  },
  {
    title: 'user-defined network missing on the target',
    facts: () =>
      tweak((f) => {
        f.container.HostConfig.NetworkMode = 'probenet';
        f.targetProbe.networks = ['bridge', 'host', 'none'];
      }),
    name: 'network on target',
    host: 'target',
    status: 'fail',
    code: 'NETWORK_MISSING',
    mentions: /no network "probenet"/,
  },
  {
    title: 'user-defined network present on the target',
    facts: () =>
      tweak((f) => {
        f.container.HostConfig.NetworkMode = 'probenet';
        f.targetProbe.networks = ['bridge', 'probenet'];
      }),
    name: 'network on target',
    host: 'target',
    status: 'pass',
  },
  {
    title: 'settings docker create cannot carry (inline seccomp, second network)',
    facts: () =>
      tweak((f) =>
        Object.assign(f.container, docker26('inspect-edge.json'), { State: f.container.State, Mounts: [] }),
      ),
    name: 'container settings',
    host: 'source',
    status: 'warn',
    code: 'SETTINGS_NOT_CARRIED',
    mentions: /seccomp/,
  },
  {
    title: 'a device attached',
    facts: () =>
      tweak((f) => Object.assign(f.container, { HostConfig: docker26('inspect-hostnet.json').HostConfig })),
    name: 'devices attached',
    host: 'source',
    status: 'fail',
    code: 'CONTAINER_HAS_DEVICES',
  },
  // capacity
  {
    title: 'a 1 MiB tmpfs on /var/lib/criu-migrate',
    facts: () =>
      tweak((f) => {
        f.sourceProbe.stateDir = {
          path: '/var/lib/criu-migrate',
          measured: '/var/lib/criu-migrate',
          ...(tinyTmpfs ? { disk: tinyTmpfs } : {}),
        };
      }),
    name: 'disk space for checkpoint',
    host: 'source',
    status: 'fail',
    code: 'DISK_SPACE_LOW',
    mentions: /728\.0 KiB free on \/var\/lib\/criu-migrate \(tmpfs\)[\s\S]*checkpoint images/,
  },
  {
    title: 'a full Docker root on the target',
    facts: () =>
      tweak((f) => {
        f.targetProbe.dockerRoot = {
          ...dockerRoot,
          ...(tinyTmpfs ? { disk: { ...tinyTmpfs, mountedOn: '/var/lib/docker' } } : {}),
        };
      }),
    name: 'disk space on docker root',
    host: 'target',
    status: 'fail',
    code: 'DISK_SPACE_LOW',
    mentions: /docker system prune/,
  },
  {
    title: 'the image must travel: its size is counted',
    facts: () => tweak((f) => Object.assign(f.targetProbe, { imagePresent: false })),
    name: 'disk space on docker root',
    host: 'target',
    status: 'pass',
    mentions: /image \(not on the target yet\) 1\.9 MiB/,
  },
  {
    title: 'pages staged on the Docker root file system: one check for both',
    facts: () =>
      tweak((f) =>
        Object.assign(f.targetProbe, {
          stateDir: { ...dockerRoot, path: '/var/lib/criu-migrate', measured: '/var/lib' },
        }),
      ),
    name: 'disk space for staged checkpoint',
    host: 'target',
    status: 'absent',
  },
  {
    title: 'memory unreadable',
    facts: () =>
      tweak((f) => Object.assign(f.sourceProbe, { memory: undefined, unreadable: { memory: 'cat: x' } })),
    name: 'container memory',
    host: 'source',
    status: 'warn',
    code: 'FACT_UNREADABLE',
  },
  {
    title: 'target memory short',
    facts: () => tweak((f) => Object.assign(f.targetProbe, { memAvailableBytes: 4 * 1024 * 1024 })),
    name: 'memory on target',
    host: 'target',
    status: 'warn',
    code: 'MEMORY_LOW',
  },
  // CPU
  {
    title: 'criu cpuinfo check refuses the source CPU; flags named',
    facts: () =>
      tweak((f) => {
        f.cpu = readCpuComparison(
          ok(read('preflight/cpuinfo-dump.b64')),
          json('preflight/cpuinfo-check-fail.json'),
        );
        if (f.targetProbe.cpu)
          f.targetProbe.cpu.flags = f.targetProbe.cpu.flags.filter((flag) => !flag.startsWith('avx512'));
      }),
    name: 'cpu compatibility',
    host: 'both',
    status: 'fail',
    code: 'CPU_INCOMPATIBLE',
    mentions: /CPU instruction capabilities do not match run time; the target lacks avx512f, avx512dq/,
  },
  {
    title: 'cpuinfo check fails with identical flags: says so',
    facts: () =>
      tweak((f) => {
        f.cpu = readCpuComparison(
          ok(read('preflight/cpuinfo-dump.b64')),
          json('preflight/cpuinfo-check-fail.json'),
        );
      }),
    name: 'cpu compatibility',
    host: 'both',
    status: 'fail',
    code: 'CPU_INCOMPATIBLE',
    mentions: /no flag the target lacks/,
  },
  {
    title: 'check passes but the target lacks flags',
    facts: () =>
      tweak((f) => {
        if (f.targetProbe.cpu)
          f.targetProbe.cpu.flags = f.targetProbe.cpu.flags.filter((flag) => flag !== 'sha_ni');
      }),
    name: 'cpu compatibility',
    host: 'both',
    status: 'warn',
    code: 'CPU_FEATURES_DIFFER',
    mentions: /lacks sha_ni/,
  },
  {
    title: 'a criu on the target that fails without a CPU verdict (the old-CRIU stub of the e2e test)',
    facts: () =>
      tweak((f) => {
        f.cpu = readCpuComparison(ok(read('preflight/cpuinfo-dump.b64')), {
          exitCode: 1,
          stdout: '',
          stderr: 'Error (criu/vdso.c:330): vdso: Unexpected rt vDSO area bounds\n',
        });
      }),
    name: 'cpu compatibility',
    host: 'target',
    status: 'warn',
    code: 'FACT_UNREADABLE',
    mentions: /without a CPU verdict: Error \(criu\/vdso\.c:330\)/,
  },
  {
    title: 'cpuinfo dump failed on the source',
    facts: () =>
      tweak((f) =>
        Object.assign(f, {
          cpu: {
            dumped: false,
            dumpError: 'Error (criu/x.c:1): nope',
            checkErrors: [],
          } satisfies CpuComparison,
        }),
      ),
    name: 'cpu compatibility',
    host: 'source',
    status: 'warn',
    code: 'FACT_UNREADABLE',
  },
  {
    title: 'criu missing on the target: no cpu check, criu installed fails',
    facts: () =>
      tweak((f) => {
        f.target.criu = { present: false, features: {}, error: 'criu not found in PATH' };
      }),
    name: 'cpu compatibility',
    host: 'both',
    status: 'absent',
  },
  {
    title: 'criu missing on the target',
    facts: () =>
      tweak((f) => {
        f.target.criu = { present: false, features: {}, error: 'criu not found in PATH' };
      }),
    name: 'criu installed',
    host: 'target',
    status: 'fail',
    code: 'CRIU_MISSING',
  },
  // breakpoints: what CRIU 4.2 tells beats guessing by version
  {
    title: 'CRIU 4.1 where breakpoints work',
    facts: () =>
      tweak((f) => {
        const version = parseCriuVersion('Version: 4.1.1\n');
        Object.assign(f.target.criu, { version, features: { breakpoints: true } });
      }),
    name: 'criu hardware breakpoints',
    host: 'target',
    status: 'pass',
  },
  {
    title: 'CRIU 4.1 where breakpoints do not work',
    facts: () =>
      tweak((f) => {
        const version = parseCriuVersion('Version: 4.1.1\n');
        Object.assign(f.target.criu, { version, features: { breakpoints: false } });
      }),
    name: 'criu hardware breakpoints',
    host: 'target',
    status: 'fail',
    code: 'CRIU_TOO_OLD',
    mentions: /hangs inside the parasite/,
  },
  // who runs the commands
  {
    title: 'not root',
    facts: () => tweak((f) => Object.assign(f.targetProbe, { identity: { uid: 1000, user: 'deploy' } })),
    name: 'runs as root',
    host: 'target',
    status: 'fail',
    code: 'NOT_ROOT',
  },
  {
    title: 'root through sudo',
    facts: () =>
      tweak((f) => Object.assign(f.targetProbe, { identity: { uid: 0, user: 'root', sudoUser: 'deploy' } })),
    name: 'runs as root',
    host: 'target',
    status: 'pass',
    mentions: /through sudo from deploy/,
  },
  // the container itself
  {
    title: 'name taken on the target',
    facts: () => tweak((f) => Object.assign(f, { targetNameTaken: true })),
    name: 'container name free',
    host: 'target',
    status: 'fail',
    code: 'TARGET_NAME_TAKEN',
  },
  {
    title: 'target could not be asked about the name',
    facts: () => tweak((f) => Object.assign(f, { targetNameTaken: undefined })),
    name: 'container name free',
    host: 'target',
    status: 'warn',
    code: 'FACT_UNREADABLE',
  },
  {
    title: 'source daemon did not answer the inspect',
    facts: () =>
      Object.assign(healthy(), {
        container: undefined,
        inspectError: 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock',
      }),
    name: 'container exists',
    host: 'source',
    status: 'fail',
    code: 'COMMAND_FAILED',
    mentions: /Cannot connect/,
  },
  {
    title: 'stopped container',
    facts: () => tweak((f) => Object.assign(f.container.State, { Running: false, Status: 'exited' })),
    name: 'container running',
    host: 'source',
    status: 'fail',
    code: 'CONTAINER_NOT_RUNNING',
  },
];

describe.each(CASES)('$title', ({ facts, name, host, status, code, mentions }) => {
  it(`gives ${name} [${host}] ${status}`, () => {
    const checks = evaluate(facts());
    const check = checks.find((c) => c.name === name && c.host === host);
    if (status === 'absent') {
      expect(check).toBeUndefined();
      return;
    }
    expect(check, checks.map((c) => `${c.host} ${c.name}`).join('\n')).toBeDefined();
    expect(check?.status).toBe(status);
    if (status !== 'pass') {
      expect(check?.code).toBe(code);
      expect(check?.remedy).toBeTruthy();
    }
    if (mentions) expect(`${check?.observed}\n${check?.expected}\n${check?.remedy}`).toMatch(mentions);
  });
});

describe('every check that does not pass', () => {
  it('carries a known code and a remedy, in every case above', () => {
    for (const { facts } of CASES) {
      for (const check of evaluate(facts())) {
        if (check.status === 'pass') continue;
        expect(ERROR_CODES, `${check.name}`).toContain(check.code);
        expect(check.remedy, `${check.name}`).toBeTruthy();
      }
    }
  });
});

describe('capacity arithmetic', () => {
  it('asks for the estimate plus 25 % and 64 MiB', () => {
    expect(withMargin(0)).toBe(CAPACITY_SLACK_BYTES);
    expect(withMargin(100 * 1024 * 1024)).toBe(125 * 1024 * 1024 + CAPACITY_SLACK_BYTES);
  });

  it('counts the staged checkpoint with the writable layer when both share the Docker root', () => {
    const facts = tweak((f) =>
      Object.assign(f.targetProbe, {
        stateDir: { ...dockerRoot, path: '/var/lib/criu-migrate', measured: '/var/lib' },
      }),
    );
    const check = evaluate(facts).find((c) => c.name === 'disk space on docker root');
    expect(check?.expected).toMatch(/memory 8\.7 MiB \+ writable layer 16\.0 KiB/);
    expect(check?.expected).not.toMatch(/restore copy/);
  });

  it("asks room for the staged pages where they are staged, not in containerd's TMPDIR", () => {
    const checks = evaluate(tweak(() => {}));
    const staged = checks.find((c) => c.name === 'disk space for staged checkpoint');
    expect(staged?.expected).toMatch(/memory 8\.7 MiB/);
    expect(staged?.observed).toMatch(/\/var\/lib\/criu-migrate/);
    expect(checks.find((c) => c.name === 'disk space on docker root')?.expected).not.toMatch(/memory/);
    expect(checks.map((c) => c.name)).not.toContain('disk space for restore copy');
  });

  it('asks the source no room for the pages when they leave during the dump (overlap)', () => {
    const onSource = (memory: MemoryMode) =>
      evaluate(
        tweak(() => {}),
        false,
        memory,
      ).find((c) => c.name === 'disk space for checkpoint');
    expect(onSource('eager')?.expected).toMatch(/memory 8\.7 MiB/);
    expect(onSource('overlap')?.expected).toMatch(
      /no process pages \(memory: overlap sends them while it dumps\)/,
    );
    expect(onSource('overlap')?.expected).toMatch(/at least 64\.0 MiB free/);
    // Lazy writes shared memory's pages on the source: asked for all of it.
    expect(onSource('lazy')?.expected).toMatch(/memory 8\.7 MiB/);
    expect(onSource('overlap')?.status).toBe('pass');
  });

  it("still asks room on the source for a tmpfs's files under overlap, and for all memory when shmem is unknown", () => {
    const withMemory = (memory: { bytes: number; how: string; shmemBytes?: number }) =>
      evaluate(
        tweak((f) => Object.assign(f.sourceProbe, { memory })),
        false,
        'overlap',
      ).find((c) => c.name === 'disk space for checkpoint')?.expected;
    const MiB = 1024 * 1024;
    const shm = withMemory({
      bytes: 100 * MiB,
      how: 'cgroup v2 memory.stat anon + shmem',
      shmemBytes: 32 * MiB,
    });
    expect(shm).toMatch(/shared memory and tmpfs 32\.0 MiB/);
    expect(shm).not.toMatch(/memory 100/);
    expect(withMemory({ bytes: 100 * MiB, how: 'docker stats memory usage' })).toMatch(/memory 100\.0 MiB/);
  });

  it('still asks the target room for the staged pages under overlap', () => {
    const staged = evaluate(
      tweak(() => {}),
      false,
      'overlap',
    ).find((c) => c.name === 'disk space for staged checkpoint');
    expect(staged?.expected).toMatch(/memory 8\.7 MiB/);
  });
});

describe('blocking', () => {
  // Warnings only: an anonymous volume the target lacks (Docker creates it empty there), and a
  // named volume whose facts could not be read.
  const checks = evaluate(
    tweak((f) => {
      const web = docker26('inspect-web.json');
      f.container.Mounts = web.Mounts;
      f.container.HostConfig.Binds = web.HostConfig.Binds;
      f.container.HostConfig.Mounts = web.HostConfig.Mounts;
      f.targetProbe.volumes = ['webdata'];
      f.targetProbe.bindKinds = { '/srv/www': 'directory', '/srv/conf': 'directory' };
      f.sourceProbe.bindKinds = { '/srv/www': 'directory', '/srv/conf': 'directory' };
    }),
  );
  it('lets warnings through unless strict', () => {
    expect(blocking(checks, false)).toEqual([]);
    expect(blocking(checks, true).map((c) => c.code)).toEqual(['VOLUME_MISSING', 'FACT_UNREADABLE']);
  });
});

// --- connecting ------------------------------------------------------------------------------------

const SSH_OK: ConnectionFacts = {
  role: 'target',
  kind: 'ssh',
  address: 'root@127.0.0.5:22',
  connected: true,
  hostKeyFingerprint: 'SHA256:p2BlsuG4cERm6fpQk+uu7KWghjK6VCeMkqqPtHbll34',
  hostKeyVerified: true,
  sudo: false,
};

describe('connectionChecks', () => {
  it.each([
    ['verified key', SSH_OK, [['ssh', 'pass', undefined]], /host key SHA256:p2Bl\S+ matches known-hosts/],
    [
      'through a jump host',
      { ...SSH_OK, jumpHost: 'root@127.0.0.4:22' },
      [['ssh', 'pass', undefined]],
      /via jump host root@127\.0\.0\.4:22/,
    ],
    [
      'key not checked',
      { ...SSH_OK, hostKeyVerified: false },
      [['ssh', 'warn', 'HOST_KEY_UNVERIFIED']],
      /NOT verified/,
    ],
    [
      'refused key',
      {
        ...SSH_OK,
        connected: false,
        error: {
          code: 'SSH_AUTH_FAILED',
          message: 'the server refused the key',
          remedy: 'authorize the key',
        },
      },
      [['ssh', 'fail', 'SSH_AUTH_FAILED']],
      /refused the key/,
    ],
    [
      'sudo works',
      { ...SSH_OK, sudo: true },
      [
        ['ssh', 'pass', undefined],
        ['sudo', 'pass', undefined],
      ],
      undefined,
    ],
    [
      'sudo refused',
      {
        ...SSH_OK,
        sudo: true,
        connected: false,
        error: { code: 'SUDO_REFUSED', message: 'sudo -n refused to run a command (exit 1)' },
      },
      [
        ['ssh', 'pass', undefined],
        ['sudo', 'fail', 'SUDO_REFUSED'],
      ],
      undefined,
    ],
    [
      'the runner itself',
      { ...SSH_OK, kind: 'local', address: 'local', hostKeyVerified: false },
      [['connection', 'pass', undefined]],
      /no SSH/,
    ],
  ] as const)('%s', (_title, facts, expected, mentions) => {
    const checks = connectionChecks(facts);
    expect(checks.map((c) => [c.name, c.status, c.code])).toEqual(expected);
    for (const check of checks) if (check.status !== 'pass') expect(check.remedy).toBeTruthy();
    if (mentions) expect(checks[0]?.observed).toMatch(mentions);
  });
});

describe('privilegeCheck', () => {
  it('warns when id could not be read', () => {
    expect(privilegeCheck('source', undefined, false)).toMatchObject({
      status: 'warn',
      code: 'FACT_UNREADABLE',
    });
  });
  it('tells a sudo user that sudo did not help', () => {
    expect(privilegeCheck('source', { uid: 1000, user: 'deploy' }, true).remedy).toMatch(/sudoers/);
  });
});
