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
    const direct = this.directBetween(from, to, via);
    const armed = direct
      ? await armDirect({ ...direct, from, to }, variants, options)
      : await armRelay(from, to, variants, options);
    return {
      ...armed,
      fire: async (choice) => this.record(options.label, direct !== undefined, await armed.fire(choice)),
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
    const direct = this.directBetween(from, to, via);
    return direct
      ? this.record(
          options.label,
          true,
          await streamDirect({ ...direct, from, to }, produce, consume, options),
        )
      : this.record(options.label, false, await streamBetween(from, produce, to, consume, options));
  }

  /** The run's direct route when it joins exactly these two hosts and the stream may take it. */
  private directBetween(from: Host, to: Host, via: 'any' | 'relay'): DirectRoute | undefined {
    const direct = via === 'any' ? this.direct : undefined;
    return direct && sameHost(direct.from, from) && sameHost(direct.to, to) ? direct : undefined;
  }

  /** A relayed stream's every byte crossed the runner; a direct one's only what it sent back. */
  private record<R extends StreamResult & { runnerBytes?: number }>(
    label: string,
    direct: boolean,
    result: R,
  ): R {
    this.records.push({
      label,
      route: direct ? 'direct' : 'relay',
      bytes: result.bytes,
      runnerBytes: direct ? (result.runnerBytes ?? 0) : result.bytes,
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
