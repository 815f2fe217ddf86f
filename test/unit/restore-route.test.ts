import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { holderNeeds } from '../../src/engine/docker/create-args.js';
import { type ContainerInspect, parseContainerInspect } from '../../src/engine/docker/inspect.js';
import { HOLDER_LABEL, type HolderNeeds } from '../../src/engine/docker/net-holder.js';
import type { ErrorCode } from '../../src/errors.js';
import {
  checkpointRoute,
  decideRestoreRoute,
  type NetworkRoute,
  type RestoreRouteFacts,
  sameHolderNetwork,
} from '../../src/policy/network-route.js';
import { parseVersion } from '../../src/policy/versions.js';

const v = (text: string) => parseVersion(text)!;
const D26 = v('26.1.5+dfsg1');
const D27 = v('27.5.1');
const D28 = v('28.5.2+dfsg4');
const D29 = v('29.0.1');

describe('checkpointRoute: what a checkpoint is dumped for', () => {
  it.each([
    { mode: 'bridge', joinsHolder: false, holderAllowed: false, route: 'direct' },
    { mode: 'bridge', joinsHolder: false, holderAllowed: true, route: 'holder' },
    { mode: 'appnet', joinsHolder: false, holderAllowed: true, route: 'holder' },
    { mode: 'none', joinsHolder: false, holderAllowed: true, route: 'holder' },
    // The host's namespace is never in a dump: any target, opt-in or not.
    { mode: 'host', joinsHolder: false, holderAllowed: true, route: 'direct' },
    { mode: 'host', joinsHolder: false, holderAllowed: false, route: 'direct' },
    // Joined to a holder, the namespace is already external: a holder is needed whatever the input.
    { mode: 'container:web-netholder', joinsHolder: true, holderAllowed: false, route: 'holder' },
    // Another container's namespace (not a holder of ours): nothing to leave out for a holder.
    { mode: 'container:sidecar', joinsHolder: false, holderAllowed: true, route: 'direct' },
  ] as const)('$mode, joins a holder: $joinsHolder, opt-in: $holderAllowed -> $route', (c) => {
    expect(
      checkpointRoute({ networkMode: c.mode, joinsHolder: c.joinsHolder, holderAllowed: c.holderAllowed }),
    ).toBe(c.route);
  });
});

interface Case {
  title: string;
  facts: Omit<RestoreRouteFacts, 'app'>;
  route?: NetworkRoute;
  code?: ErrorCode;
  /** What the observation or the remedy must say: the targets the checkpoint can go to. */
  says?: RegExp;
}

const CASES: Case[] = [
  // A manifest from before routes were recorded is a direct checkpoint.
  {
    title: 'old manifest, bridge onto 26: direct',
    facts: { networkMode: 'bridge', targetDocker: D26, holderAllowed: false },
    route: 'direct',
    says: /before routes were recorded/,
  },
  {
    title: 'old manifest, bridge onto 28: refused, names Docker 26/27 and the opt-in for later checkpoints',
    facts: { networkMode: 'bridge', targetDocker: D28, holderAllowed: false },
    code: 'CHECKPOINT_DIRECT_ONLY',
    says: /Docker 26\/27[\s\S]*docker28-network-holder: true/,
  },
  {
    title:
      'old manifest, bridge onto 28 with the opt-in: still refused (a holder cannot take the dumped namespace)',
    facts: { networkMode: 'bridge', targetDocker: D28, holderAllowed: true },
    code: 'CHECKPOINT_DIRECT_ONLY',
    says: /empty namespace/,
  },
  {
    title: 'direct, user network onto 27: direct',
    facts: { networkMode: 'appnet', recorded: 'direct', targetDocker: D27, holderAllowed: true },
    route: 'direct',
  },
  {
    title: 'direct, bridge onto 29: refused',
    facts: { networkMode: 'bridge', recorded: 'direct', targetDocker: D29, holderAllowed: true },
    code: 'CHECKPOINT_DIRECT_ONLY',
  },
  {
    title: 'direct, unknown Docker version: treated as before 28',
    facts: { networkMode: 'bridge', recorded: 'direct', holderAllowed: false },
    route: 'direct',
  },
  {
    title: 'host network onto 28, old manifest: direct',
    facts: { networkMode: 'host', targetDocker: D28, holderAllowed: false },
    route: 'direct',
  },
  {
    title: 'holder onto 28 with the opt-in: through a holder',
    facts: { networkMode: 'bridge', recorded: 'holder', targetDocker: D28, holderAllowed: true },
    route: 'holder',
    says: /web-netholder/,
  },
  {
    title: 'holder onto 26 with the opt-in: through a holder too (the dump has no namespace)',
    facts: {
      networkMode: 'bridge',
      recorded: 'holder',
      targetDocker: D26,
      targetArch: 'x86_64',
      holderAllowed: true,
    },
    route: 'holder',
  },
  {
    title: 'holder onto 28 without the opt-in: refused, names the input',
    facts: { networkMode: 'bridge', recorded: 'holder', targetDocker: D28, holderAllowed: false },
    code: 'CHECKPOINT_NEEDS_HOLDER',
    says: /docker28-network-holder: true/,
  },
  {
    title: 'holder onto 26 without the opt-in: refused as well',
    facts: { networkMode: 'bridge', recorded: 'holder', targetDocker: D26, holderAllowed: false },
    code: 'CHECKPOINT_NEEDS_HOLDER',
    says: /any Docker version/,
  },
  {
    title: 'holder of a container that joined one, onto 28: through a holder',
    facts: {
      networkMode: 'container:web-netholder',
      recorded: 'holder',
      targetDocker: D28,
      holderAllowed: true,
    },
    route: 'holder',
  },
  {
    title: 'holder onto an aarch64 target: no holder program there',
    facts: {
      networkMode: 'bridge',
      recorded: 'holder',
      targetDocker: D28,
      targetArch: 'aarch64',
      holderAllowed: true,
    },
    code: 'NETWORK_HOLDER_UNSUPPORTED',
    says: /x86_64/,
  },
];

describe('decideRestoreRoute: manifest route x target Docker x opt-in', () => {
  it.each(CASES)('$title', ({ facts, route, code, says }) => {
    const decision = decideRestoreRoute({ ...facts, app: 'web' });
    expect(decision.route).toBe(route);
    expect(decision.check.status).toBe(code ? 'fail' : 'pass');
    expect(decision.check.code).toBe(code);
    if (code) expect(decision.check.remedy).toBeTruthy();
    if (says) expect(`${decision.check.observed}\n${decision.check.remedy ?? ''}`).toMatch(says);
  });
});

describe('holderNeeds: what the manifest says a holder must own', () => {
  const web = parseContainerInspect(
    readFileSync(new URL('../fixtures/docker26/inspect-web.json', import.meta.url), 'utf8'),
  );

  it('a bridge container: its network, published ports and hostname, no aliases', () => {
    const bridged: ContainerInspect = { ...web, HostConfig: { ...web.HostConfig, NetworkMode: 'bridge' } };
    const needs = holderNeeds(bridged, bridged);
    expect(needs.network).toBe('bridge');
    expect(needs.aliases).toEqual([]);
    const bindings = Object.values(web.HostConfig.PortBindings ?? {}).flat();
    expect(needs.ports).toHaveLength(bindings.length);
    expect(needs.hostname).toBe(web.Config.Hostname);
    expect(needs.sourceHolder).toBeUndefined();
  });

  it('a user network: aliases with the app name, a static address', () => {
    const onNet: ContainerInspect = {
      ...web,
      HostConfig: {
        ...web.HostConfig,
        NetworkMode: 'appnet',
        PortBindings: { '80/tcp': [{ HostIp: '', HostPort: '8081' }] },
      },
      NetworkSettings: {
        Networks: { appnet: { Aliases: ['api'], IPAMConfig: { IPv4Address: '10.5.0.9' } } },
      },
    };
    expect(holderNeeds(onNet, onNet)).toMatchObject({
      network: 'appnet',
      aliases: ['api', 'web'],
      ipv4Address: '10.5.0.9',
      ports: ['8081:80'],
    });
  });

  it("a container that joins a holder: the holder's network, named as the source holder", () => {
    const holder: ContainerInspect = {
      ...web,
      Name: '/web-netholder',
      Config: { ...web.Config, Labels: { [HOLDER_LABEL]: 'web' } },
    };
    const app: ContainerInspect = {
      ...web,
      HostConfig: { ...web.HostConfig, NetworkMode: 'container:web-netholder', PortBindings: {} },
    };
    const needs = holderNeeds(holder, app);
    expect(needs.sourceHolder).toBe('web-netholder');
    expect(needs.ports).toEqual(holderNeeds(web, web).ports);
  });
});

describe('sameHolderNetwork: can a replaced container hand its holder on', () => {
  const wanted: HolderNeeds = {
    network: 'appnet',
    aliases: ['api', 'web'],
    ipv4Address: '10.5.0.9',
    ports: ['8081:80', '127.0.0.1:8443:443'],
    hostname: 'abc',
  };
  const own = ['web', 'web-netholder'];

  it('the same network, addresses, ports and aliases: yes, whatever the order, hostname or source holder', () => {
    const present: HolderNeeds = {
      ...wanted,
      aliases: ['web-netholder', 'api'],
      ports: ['127.0.0.1:8443:443', '8081:80'],
      hostname: 'other',
      sourceHolder: 'web-netholder',
    };
    expect(sameHolderNetwork(present, wanted, own)).toBe(true);
  });

  it.each([
    ['another network', { network: 'bridge' }],
    ['another address', { ipv4Address: '10.5.0.10' }],
    ['an IPv6 address it lacks', { ipv6Address: 'fd00::9' }],
    ['another published port', { ports: ['8082:80', '127.0.0.1:8443:443'] }],
    ['a port fewer', { ports: ['8081:80'] }],
    ['another alias', { aliases: ['db', 'web'] }],
  ] as [string, Partial<HolderNeeds>][])('%s: no', (_title, change) => {
    expect(sameHolderNetwork({ ...wanted, ...change }, wanted, own)).toBe(false);
  });
});
