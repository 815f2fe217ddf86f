import { type ArmedStream, type ArmedVariants, armRelay } from './armed.js';
import { armDirect, type DirectRoute, streamDirect } from './direct.js';
import type { Host } from './host.js';
import { type StreamOptions, type StreamResult, streamBetween } from './relay.js';

/** Which way one stream went, and how many of its bytes crossed the runner. */
export interface StreamRecord {
  label: string;
  route: 'direct' | 'relay';
  bytes: number;
  runnerBytes: number;
}

/**
 * Every stream of a run between two hosts goes through here: host to host when the run
 * opened a direct route between exactly these two hosts, else through the runner. Each
 * stream is recorded with the bytes the runner carried, for the report.
 */
export class StreamRoutes {
  direct: DirectRoute | undefined;
  readonly records: StreamRecord[] = [];
  /** Seconds without a byte moving before a stream is given up (the streams' own default otherwise). */
  stallSeconds: number | undefined;

  private withStall(options: StreamOptions): StreamOptions {
    return this.stallSeconds !== undefined && options.stallSeconds === undefined
      ? { ...options, stallSeconds: this.stallSeconds }
      : options;
  }

  /**
   * A stream set up now and fired later (armed.ts): the frozen window then holds only its
   * go line and its bytes. Recorded when fired.
   */
  async arm(
    from: Host,
    to: Host,
    variants: ArmedVariants,
    given: StreamOptions,
    via: 'any' | 'relay' = 'any',
  ): Promise<ArmedStream> {
    const options = this.withStall(given);
    const direct = via === 'any' ? this.direct : undefined;
    if (direct && sameHost(direct.from, from) && sameHost(direct.to, to)) {
      const armed = await armDirect({ ...direct, from, to }, variants, options);
      return {
        ...armed,
        fire: async (choice) => {
          const result = await armed.fire(choice);
          this.records.push({
            label: options.label,
            route: 'direct',
            bytes: result.bytes,
            runnerBytes: result.runnerBytes,
          });
          return result;
        },
      };
    }
    const armed = await armRelay(from, to, variants, options);
    return {
      ...armed,
      fire: async (choice) => {
        const result = await armed.fire(choice);
        this.records.push({
          label: options.label,
          route: 'relay',
          bytes: result.bytes,
          runnerBytes: result.bytes,
        });
        return result;
      },
    };
  }

  async stream(
    from: Host,
    produce: string | readonly string[],
    to: Host,
    consume: string | readonly string[],
    given: StreamOptions,
    /** relay: through the runner even with a direct route open (a small stream inside the frozen window). */
    via: 'any' | 'relay' = 'any',
  ): Promise<StreamResult> {
    const options = this.withStall(given);
    const direct = via === 'any' ? this.direct : undefined;
    if (direct && sameHost(direct.from, from) && sameHost(direct.to, to)) {
      const result = await streamDirect({ ...direct, from, to }, produce, consume, options);
      this.records.push({
        label: options.label,
        route: 'direct',
        bytes: result.bytes,
        runnerBytes: result.runnerBytes,
      });
      return result;
    }
    const result = await streamBetween(from, produce, to, consume, options);
    this.records.push({
      label: options.label,
      route: 'relay',
      bytes: result.bytes,
      runnerBytes: result.bytes,
    });
    return result;
  }

  /** Container bytes that passed the runner: every relayed stream, and whatever a direct one sent back. */
  runnerBytes(): number {
    return this.records.reduce((sum, record) => sum + record.runnerBytes, 0);
  }
}

/** Hosts are wrapped per run (signal, sudo, reconnect): the same role and address are the same host. */
function sameHost(a: Host, b: Host): boolean {
  return a === b || (a.role === b.role && a.address === b.address);
}

/** A run without a router (older callers, tests) streams through the runner as before. */
export function streamVia(
  routes: StreamRoutes | undefined,
  from: Host,
  produce: string | readonly string[],
  to: Host,
  consume: string | readonly string[],
  options: StreamOptions,
  via: 'any' | 'relay' = 'any',
): Promise<StreamResult> {
  return routes
    ? routes.stream(from, produce, to, consume, options, via)
    : streamBetween(from, produce, to, consume, options);
}
