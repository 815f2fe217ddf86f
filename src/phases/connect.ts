import type { Host } from '../host/host.js';
import { openHost } from '../host/host-factory.js';
import type { Settings } from '../settings.js';

export interface ConnectedHosts {
  source: Host;
  target: Host;
}

/** Opens both hosts in parallel (openHost checks sudo); a host that fails closes the other. */
export async function connectHosts(
  settings: Settings,
  warn: (message: string) => void,
): Promise<ConnectedHosts> {
  if (!settings.target) throw new Error('connectHosts needs a target');
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
  return { source: source.value, target: target.value };
}
