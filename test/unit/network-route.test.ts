import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildCreateArgs, buildHolderArgs } from '../../src/engine/docker/create-args.js';
import { type ContainerInspect, parseContainerInspect } from '../../src/engine/docker/inspect.js';
import {
  HOLDER_IMAGE,
  HOLDER_LABEL,
  holderImageScript,
  pauseProgram,
} from '../../src/engine/docker/net-holder.js';
import type { ErrorCode } from '../../src/errors.js';
import { withHolderPorts } from '../../src/policy/gate.js';
import {
  decideNetworkRoute,
  type NetworkRoute,
  type NetworkRouteFacts,
} from '../../src/policy/network-route.js';
import { planRecovery } from '../../src/policy/recovery.js';
import { parseVersion } from '../../src/policy/versions.js';
import type { JournalEntry } from '../../src/state/journal.js';

const web = parseContainerInspect(
  readFileSync(new URL('../fixtures/docker26/inspect-web.json', import.meta.url), 'utf8'),
);

function holderOf(app: string, labels: Record<string, string> = { [HOLDER_LABEL]: app }): ContainerInspect {
  return {
    ...web,
    Id: 'b'.repeat(64),
    Name: `/${app}-netholder`,
    Config: { ...web.Config, Labels: labels },
  };
}

const v = (text: string) => parseVersion(text)!;

interface RouteCase {
  title: string;
  facts: NetworkRouteFacts;
  route: NetworkRoute | undefined;
  status: 'pass' | 'fail';
  code?: ErrorCode;
  mentions?: RegExp;
}

const ROUTES: RouteCase[] = [
  {
    title: 'bridge onto Docker 26: direct',
    facts: { networkMode: 'bridge', targetDocker: v('26.1.5+dfsg1'), holderAllowed: false },
    route: 'direct',
    status: 'pass',
  },
  {
    title: 'user network onto Docker 27: direct even with the opt-in',
    facts: { networkMode: 'appnet', targetDocker: v('27.5.1'), holderAllowed: true },
    route: 'direct',
    status: 'pass',
  },
  {
    title: 'host network onto Docker 28: direct',
    facts: { networkMode: 'host', targetDocker: v('28.5.2+dfsg4'), holderAllowed: false },
    route: 'direct',
    status: 'pass',
  },
  {
    title: 'host network onto Docker 29: direct',
    facts: { networkMode: 'host', targetDocker: v('29.0.1'), holderAllowed: false },
    route: 'direct',
    status: 'pass',
  },
  {
    title: 'bridge onto Docker 28 without the opt-in: refused with the ways out',
    facts: { networkMode: 'default', targetDocker: v('28.5.2+dfsg4'), holderAllowed: false },
    route: undefined,
    status: 'fail',
    code: 'DOCKER_RESTORE_BROKEN',
    mentions:
      /default network.*moby#50750, containerd#12141.*docker28-network-holder: true.*--network host.*Docker 26\/27/s,
  },
  {
    title: 'user network onto Docker 29 without the opt-in: refused',
    facts: { networkMode: 'appnet', targetDocker: v('29.1.0'), holderAllowed: false },
    route: undefined,
    status: 'fail',
    code: 'DOCKER_RESTORE_BROKEN',
    mentions: /appnet network/,
  },
  {
    title: 'none onto Docker 28 without the opt-in: refused (its own namespace too)',
    facts: { networkMode: 'none', targetDocker: v('28.0.0'), holderAllowed: false },
    route: undefined,
    status: 'fail',
    code: 'DOCKER_RESTORE_BROKEN',
  },
  {
    title: 'bridge onto Docker 28 with the opt-in: through a holder',
    facts: { networkMode: 'bridge', targetDocker: v('28.5.2'), targetArch: 'x86_64', holderAllowed: true },
    route: 'holder',
    status: 'pass',
    mentions: /container:<holder>/,
  },
  {
    title: 'bridge onto Docker 28 with the opt-in on arm64: no holder program',
    facts: { networkMode: 'bridge', targetDocker: v('28.5.2'), targetArch: 'aarch64', holderAllowed: true },
    route: undefined,
    status: 'fail',
    code: 'NETWORK_HOLDER_UNSUPPORTED',
    mentions: /aarch64/,
  },
  {
    title: 'joined to its holder, onto Docker 26: the holder goes along, opt-in or not',
    facts: {
      networkMode: `container:${'b'.repeat(64)}`,
      sourceHolder: holderOf('web'),
      targetDocker: v('26.1.5'),
      holderAllowed: false,
    },
    route: 'holder',
    status: 'pass',
    mentions: /web-netholder/,
  },
  {
    title: 'restore mode onto Docker 28: refused without offering the opt-in',
    facts: {
      networkMode: 'bridge',
      targetDocker: v('28.5.2'),
      holderAllowed: false,
      holderUnavailable: 'restore mode makes no network holder',
    },
    route: undefined,
    status: 'fail',
    code: 'DOCKER_RESTORE_BROKEN',
    mentions: /restore mode makes no network holder/,
  },
];

describe('decideNetworkRoute', () => {
  it.each(ROUTES)('$title', ({ facts, route, status, code, mentions }) => {
    const decision = decideNetworkRoute(facts);
    expect(decision.route).toBe(route);
    expect(decision.check.status).toBe(status);
    expect(decision.check.code).toBe(code);
    if (status === 'fail') expect(decision.check.remedy).toBeTruthy();
    if (mentions) expect(`${decision.check.observed}\n${decision.check.remedy ?? ''}`).toMatch(mentions);
  });
});

describe('network holder', () => {
  it('is an x86_64 ELF executable whose code loops on pause(2)', () => {
    const elf = pauseProgram('x86_64')!;
    expect(elf.subarray(0, 4).toString('latin1')).toBe('\x7fELF');
    expect(elf.readUInt16LE(18)).toBe(0x3e);
    const entry = Number(elf.readBigUInt64LE(24) - 0x400000n);
    // mov eax, 34; syscall; jmp back to the mov.
    expect([...elf.subarray(entry)]).toEqual([0xb8, 0x22, 0, 0, 0, 0x0f, 0x05, 0xeb, 0xf7]);
    expect(Number(elf.readBigUInt64LE(64 + 32))).toBe(elf.length);
    expect(pauseProgram('aarch64')).toBeUndefined();
    expect(holderImageScript('aarch64')).toBeUndefined();
    expect(holderImageScript('x86_64')).toContain(elf.toString('base64'));
  });

  it('carries the network, ports, hostname and restart policy of the container, and nothing else', () => {
    const args = buildHolderArgs(web, web, {
      name: 'web-netholder',
      app: 'web',
      image: HOLDER_IMAGE,
      label: HOLDER_LABEL,
    });
    expect(args.slice(0, 4)).toEqual(['--name', 'web-netholder', '--label', `${HOLDER_LABEL}=web`]);
    expect(args.at(-1)).toBe(HOLDER_IMAGE);
    expect(args).toContain('--stop-signal');
    expect(args).not.toContain('--env');
    expect(args).not.toContain('-v');
    for (const flag of ['-p', '--hostname']) {
      const app = buildCreateArgs(web, { name: 'web', image: 'x' });
      const values = (list: string[]) => list.flatMap((a, i) => (a === flag ? [list[i + 1]] : []));
      expect(values(args)).toEqual(values(app));
    }
    const restart = web.HostConfig.RestartPolicy;
    if (restart?.Name && restart.Name !== 'no') expect(args).toContain('--restart');
  });

  it('names the app as an alias on a user network', () => {
    const onNet: ContainerInspect = {
      ...web,
      HostConfig: { ...web.HostConfig, NetworkMode: 'appnet' },
      NetworkSettings: {
        Networks: { appnet: { Aliases: ['api'], IPAMConfig: { IPv4Address: '10.5.0.9' } } },
      },
    };
    const args = buildHolderArgs(onNet, onNet, { name: 'web-netholder', app: 'web', image: 'i', label: 'l' });
    const joined = args.join(' ');
    expect(joined).toContain('--network appnet --network-alias api --network-alias web --ip 10.5.0.9');
  });

  it('leaves the network to the holder in the container it holds it for', () => {
    const args = buildCreateArgs(web, { name: 'web', image: 'x', networkContainer: 'web-netholder' });
    expect(args).toContain('container:web-netholder');
    for (const flag of ['-p', '-P', '--expose', '--hostname', '--dns', '--add-host', '--network-alias'])
      expect(args).not.toContain(flag);
  });

  it('lets a container joined to its holder be created again with a new holder', () => {
    const joined: ContainerInspect = {
      ...web,
      HostConfig: { ...web.HostConfig, NetworkMode: `container:${'b'.repeat(64)}` },
    };
    expect(() => buildCreateArgs(joined, { name: 'web', image: 'x' })).toThrow(/shares another/);
    expect(buildCreateArgs(joined, { name: 'web', image: 'x', networkContainer: 'web-netholder' })).toContain(
      'container:web-netholder',
    );
  });
});

describe('withHolderPorts', () => {
  it('gives a container joined to its holder the ports the holder publishes', () => {
    const joined: ContainerInspect = {
      ...web,
      HostConfig: { ...web.HostConfig, NetworkMode: 'container:x', PortBindings: {}, PublishAllPorts: false },
    };
    const holder = holderOf('web');
    expect(withHolderPorts(joined, holder).HostConfig.PortBindings).toEqual(web.HostConfig.PortBindings);
    expect(withHolderPorts(joined, holder).HostConfig.NetworkMode).toBe('container:x');
    expect(withHolderPorts(joined, undefined)).toBe(joined);
  });
});

describe('recovery with a network holder', () => {
  const entry = (seq: number, action: JournalEntry['action']): JournalEntry => ({
    seq,
    state: 'done',
    at: '2026-01-01T00:00:00Z',
    action,
  });

  it('rolls back the holder after the container that joins it, and resumes the source last', () => {
    const plan = planRecovery({
      sourceAfter: 'stop',
      entries: [
        entry(1, { kind: 'holder-created', name: 'web-netholder', containerId: 'h'.repeat(64) }),
        entry(2, { kind: 'target-created', name: 'web', containerId: 't'.repeat(64) }),
        entry(3, { kind: 'source-paused', containerId: 's'.repeat(64) }),
      ],
    });
    expect(plan.direction).toBe('rollback');
    expect(plan.steps.map((step) => ('ref' in step ? step.ref[0] : step.kind))).toEqual([
      't',
      'h',
      'resume-source',
    ]);
  });

  it('retires the source holder with the source past the commit point', () => {
    const plan = planRecovery({
      sourceAfter: 'remove',
      entries: [
        entry(1, { kind: 'source-paused', containerId: 's'.repeat(64) }),
        entry(2, { kind: 'committed', targetContainerId: 't'.repeat(64) }),
        entry(3, { kind: 'source-holder', containerId: 'h'.repeat(64) }),
      ],
    });
    expect(plan.steps[0]).toMatchObject({ kind: 'retire-source', remove: true, holderId: 'h'.repeat(64) });
  });
});
