import type { Duplex } from 'node:stream';
import { errorMessage, MigrationError } from '../errors.js';
import { describeHost, type Host, type LoopbackListener } from './host.js';

/**
 * Carries one TCP service from the source's loopback to the target's through
 * the runner: the target gets a listener on its own 127.0.0.1 (SSH remote
 * forward), and each connection to it is joined to a new connection to
 * 127.0.0.1:sourcePort on the source (SSH direct-tcpip). Nothing listens on
 * an address another machine can reach: CRIU's page server has no
 * authentication, so its bytes only ever travel inside the two SSH connections.
 * The two ends are roles, not directions: memory: overlap opens it the other way
 * round (the dump on the source connects to the target's page server).
 */
export interface PageRelay {
  /** The target's loopback port that leads to the source's page server. */
  readonly port: number;
  /** Bytes carried from the source to the target so far. */
  bytes(): number;
  /** Bytes carried the other way, from the target's listener to the source's service. */
  bytesBack(): number;
  /** Clock reading of the last byte carried (either way), or of the relay's opening. */
  lastMovedAt(): number;
  /** What went wrong on the runner's side, if anything (a refused or dropped connection). */
  problem(): string | undefined;
  /** Ends every carried connection and the target's listener. */
  close(): Promise<void>;
  /** Ends the carried connections only (the stream is cut); the listener stays until close(). */
  cut(): void;
}

export async function openPageRelay(
  source: Host,
  target: Host,
  sourcePort: number,
  clock: () => number = () => performance.now(),
): Promise<PageRelay> {
  const from = source.tunnels;
  const to = target.tunnels;
  if (!from || !to) {
    throw new MigrationError(
      'LAZY_PAGES_UNSUPPORTED',
      'the hosts cannot carry the page stream through the runner',
      {
        step: 'transfer',
        host: `${describeHost(source)} -> ${describeHost(target)}`,
        remedy: 'use memory: eager',
      },
    );
  }
  let carried = 0;
  let carriedBack = 0;
  let movedAt = clock();
  let trouble: string | undefined;
  const open = new Set<Duplex>();
  const track = (stream: Duplex): void => {
    open.add(stream);
    stream.once('close', () => open.delete(stream));
    stream.on('error', (error: unknown) => {
      trouble ??= errorMessage(error);
    });
  };
  const join = async (incoming: Duplex): Promise<void> => {
    track(incoming);
    let outgoing: Duplex;
    try {
      outgoing = await from.connect(sourcePort);
    } catch (error) {
      trouble ??= `the source's page server could not be reached: ${errorMessage(error)}`;
      incoming.destroy();
      return;
    }
    track(outgoing);
    outgoing.on('data', (chunk: Buffer) => {
      carried += chunk.length;
      movedAt = clock();
    });
    incoming.on('data', (chunk: Buffer) => {
      carriedBack += chunk.length;
      movedAt = clock();
    });
    // Either side ending ends the other: a half-open page stream would only hang CRIU.
    outgoing.pipe(incoming);
    incoming.pipe(outgoing);
    const endBoth = (): void => {
      incoming.destroy();
      outgoing.destroy();
    };
    outgoing.once('close', endBoth);
    incoming.once('close', endBoth);
  };
  const listener: LoopbackListener = await to.listen((incoming) => {
    void join(incoming);
  });
  const cut = (): void => {
    for (const stream of open) stream.destroy();
    open.clear();
  };
  return {
    port: listener.port,
    bytes: () => carried,
    bytesBack: () => carriedBack,
    lastMovedAt: () => movedAt,
    problem: () => trouble,
    cut,
    close: async () => {
      cut();
      await listener.close().catch(() => {});
    },
  };
}
