import type { Host } from './host.js';

/** The same host, telling `onCommand` of every command it starts (run or spawn). */
export function countCommands(host: Host, onCommand: () => void): Host {
  return {
    role: host.role,
    address: host.address,
    ...(host.hostKeyFingerprint !== undefined ? { hostKeyFingerprint: host.hostKeyFingerprint } : {}),
    ...(host.tunnels ? { tunnels: host.tunnels } : {}),
    run: (command, options) => {
      onCommand();
      return host.run(command, options);
    },
    spawn: (command, options) => {
      onCommand();
      return host.spawn(command, options);
    },
    close: () => host.close(),
  };
}
