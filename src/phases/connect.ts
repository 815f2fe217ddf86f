import { describeHost, type Host } from '../host/host.js';
import { openHost } from '../host/host-factory.js';
import { formatHostSpec } from '../host/host-spec.js';
import type { ConnectionSettings, HostLocation } from '../settings.js';

export interface ConnectedHosts {
  source: Host;
  target: Host;
}

/** Opens both hosts in parallel (openHost checks sudo); a host that fails closes the other. */
export async function connectHosts(
  settings: ConnectionSettings & { source: HostLocation; target: HostLocation },
  log: { info(message: string): void; warning(message: string): void },
): Promise<ConnectedHosts> {
  const warn = (message: string): void => log.warning(message);
  const opening = [
    openHost('source', settings.source, settings.ssh, settings.sudo, { warn }),
    openHost('target', settings.target, settings.ssh, settings.sudo, { warn }),
  ] as const;
  const [source, target] = await Promise.allSettled(opening);
  if (source.status === 'rejected' || target.status === 'rejected') {
    await Promise.allSettled(
      [source, target].flatMap((result) => (result.status === 'fulfilled' ? [result.value.close()] : [])),
    );
    throw source.status === 'rejected' ? source.reason : (target as PromiseRejectedResult).reason;
  }
  for (const [host, location] of [
    [source.value, settings.source],
    [target.value, settings.target],
  ] as const) {
    const route =
      location.kind === 'ssh' && settings.ssh.jumpHost ? ` via ${formatHostSpec(settings.ssh.jumpHost)}` : '';
    const key = host.hostKeyFingerprint ? `, host key ${host.hostKeyFingerprint}` : '';
    log.info(
      `${describeHost(host)}: connected${route}${key}${settings.sudo ? ', commands run through sudo -n' : ''}`,
    );
  }
  return { source: source.value, target: target.value };
}
