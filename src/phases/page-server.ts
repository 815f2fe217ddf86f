import { randomInt } from 'node:crypto';
import { portUnusedScript } from '../engine/docker/lazy-pages.js';
import {
  PAGE_SERVER_LISTENING,
  PAGE_SERVER_LOG,
  pageForwardScript,
  pageServerCommand,
} from '../engine/docker/page-server.js';
import { type ErrorCode, MigrationError } from '../errors.js';
import { type ForwardTally, type HashedForward, startHashedForward } from '../host/hashed-forward.js';
import { describeHost, type Host, type HostProcess } from '../host/host.js';
import { openPageRelay, type PageRelay } from '../host/page-relay.js';
import { ending, firstLine, keepTail } from '../host/process-lines.js';
import { formatBytes } from '../host/relay.js';
import { tailLines } from '../host/shell.js';
import { type WorkKey, workDir } from '../state/host-records.js';
import { criuLogErrors } from './checkpoint.js';
import type { MigrationContext } from './context.js';

/**
 * memory: overlap. The pages go to the target while CRIU dumps them: the
 * target's CRIU page server writes them into the staging directory. The dump
 * reaches it from the source's loopback, host to host through the run's own
 * ssh forward when the route is direct, else through the runner's two SSH
 * connections; the server's port is never open to another machine (it has no
 * authentication). Only the small images are left to stream after the dump.
 */

/** Tries at a free port on a host's loopback. */
const PORT_TRIES = 8;
/** The server exits once the dump closed its connection; longer than this, it is hung. */
const SERVER_END_MS = 30_000;

const REMEDY_EAGER = 'or use memory: eager';

/** The page server's directory on the target (its log). */
export function pageServerWorkDir(key: WorkKey): string {
  return `${workDir(key)}/page-server`;
}

/**
 * A port no socket on a host uses, for a listener on its 127.0.0.1 (post-copy's page server too).
 * Tried first below Linux's default ephemeral range (32768-60999): a port in that range can be
 * taken by an outgoing connection between the look and the bind. Only when every try there is in
 * the host's own range is an unused port inside it taken.
 */
export async function freeLoopbackPort(
  host: Host,
  what: string,
  code: ErrorCode = 'TRANSFER_FAILED',
): Promise<number> {
  let inEphemeralRange: number | undefined;
  for (let i = 0; i < PORT_TRIES; i++) {
    const candidate = randomInt(20_000, 32_768);
    const unused = await host.run(portUnusedScript(candidate), { timeoutMs: 30_000 });
    if (unused.exitCode === 0) return candidate;
    if (unused.exitCode === 3) inEphemeralRange ??= candidate;
  }
  if (inEphemeralRange !== undefined) return inEphemeralRange;
  throw new MigrationError(code, `no free port on 127.0.0.1 of ${describeHost(host)} for ${what}`, {
    step: 'checkpoint',
    host: describeHost(host),
    remedy: `free some ports between 20000 and 32767 on 127.0.0.1 there, ${REMEDY_EAGER}`,
  });
}

/** A free port other than one already chosen (and not yet bound) on the same host. */
async function freePortBesides(host: Host, what: string, chosen: number): Promise<number> {
  for (let i = 0; ; i++) {
    const port = await freeLoopbackPort(host, what);
    if (port !== chosen || i >= 3) return port;
  }
}

/** The ports of a move with memory: overlap, chosen before the route opens (its key names the target's). */
export interface PagePorts {
  /** The target's end of the page stream (its hashed forward, in front of the page server). */
  target: number;
  /** The source's end of the direct route's forward. */
  source: number;
}

export interface PageServerSession {
  /** Where the dump sends its pages: a port on the source's 127.0.0.1 that leads to the target's page server. */
  readonly address: string;
  readonly route: 'direct' | 'relay';
  /** The memory that crossed the runner (none host to host). */
  runnerBytes(): number;
  /**
   * After the dump: waits for the page server and both hashed forwards to exit. Throws
   * TRANSFER_FAILED when one failed or the two hosts' sums differ, so no restore runs on pages
   * that never all arrived, or arrived other than they left.
   */
  finished(): Promise<PageStreamTally>;
  /** Ends the server and the forward or relay (whatever still runs). */
  close(): Promise<void>;
  /** A failed dump's error with what the page server, its log and the forward or relay said. */
  explain(error: unknown): Promise<unknown>;
}

/** What crossed between the hosts on the page stream, summed the same on both. */
export interface PageStreamTally {
  bytes: number;
  sha256: string;
}

/** The two ends' tallies as one, or why they are not one. */
export function comparePageTallies(
  source: ForwardTally,
  target: ForwardTally,
): PageStreamTally | { problem: string } {
  if ('problem' in source) return { problem: `the source's end: ${source.problem}` };
  if ('problem' in target) return { problem: `the target's end: ${target.problem}` };
  if (source.bytes !== target.bytes || source.sha256 !== target.sha256) {
    return {
      problem: `the source sent ${source.bytes} bytes with sha256 ${source.sha256}, the target's page server got ${target.bytes} bytes with sha256 ${target.sha256}`,
    };
  }
  return source;
}

/**
 * Before the freeze: `criu page-server` on the target's loopback writing into `imagesDir`, and
 * the way to it from the source's loopback: the direct route's forward when it has one, else
 * the runner's relay.
 */
export async function startPageServer(
  ctx: MigrationContext,
  hosts: { source: Host; target: Host },
  imagesDir: string,
  ports: PagePorts,
  forwardCommand: string | undefined,
): Promise<PageServerSession> {
  const dir = pageServerWorkDir(ctx.settings);
  await ctx.journal.intend({ kind: 'files', side: 'target', paths: [dir] }, 'target');
  const serverPort = await freePortBesides(ctx.target, "the target's page server", ports.target);
  const dumpPort = await freePortBesides(ctx.source, "the dump's end of the page stream", ports.source);
  const server = await ctx.target.spawn(pageServerCommand({ imagesDir, workDir: dir, port: serverPort }));
  const serverEnd = ending(server);
  const serverErr = keepTail(server.stderr);
  let forward: { process: HostProcess; end: ReturnType<typeof ending> } | undefined;
  let relay: PageRelay | undefined;
  const ends: { source?: HashedForward; target?: HashedForward } = {};
  let forwardErr: () => string = () => '';
  const why = async (said: string): Promise<string> =>
    [
      said,
      relay?.problem() ? `relay: ${relay.problem()}` : '',
      tailLines(forwardErr(), 3),
      ends.source?.said() ? `the source's end: ${tailLines(ends.source.said(), 3)}` : '',
      ends.target?.said() ? `the target's end: ${tailLines(ends.target.said(), 3)}` : '',
      tailLines(serverErr(), 3),
      await criuLogErrors(ctx.target, `${dir}/${PAGE_SERVER_LOG}`).catch(() => ''),
    ]
      .filter(Boolean)
      .join('\n');
  const close = async (): Promise<void> => {
    ends.source?.stop();
    ends.target?.stop();
    for (const one of [{ process: server, end: serverEnd }, forward]) {
      if (!one) continue;
      one.process.stdin.end();
      if (!one.end.ended()) one.process.kill();
    }
    await relay?.close();
  };
  try {
    const said = await firstLine(server.stdout, server.exit, 30_000);
    if (said !== PAGE_SERVER_LISTENING) {
      throw new MigrationError('TRANSFER_FAILED', "the target's page server did not start", {
        step: 'checkpoint',
        host: describeHost(ctx.target),
        detail: await why(said === 'timeout' ? 'no answer in 30 s' : said === 'exit' ? 'it exited' : said),
        remedy: `\`criu page-server\` must run on the target (read the lines above), ${REMEDY_EAGER}`,
      });
    }
    ends.target = await startHashedForward(
      ctx.target,
      ports.target,
      serverPort,
      "target's end of the page stream",
    );
    let upstream: number;
    if (forwardCommand) {
      const process = await ctx.source.spawn(pageForwardScript(forwardCommand, ports.source));
      forward = { process, end: ending(process) };
      forwardErr = keepTail(process.stderr);
      const bound = await firstLine(process.stdout, process.exit, 30_000);
      if (bound !== PAGE_SERVER_LISTENING) {
        throw new MigrationError(
          'TRANSFER_FAILED',
          "the source's forward to the target's page server did not start",
          {
            step: 'checkpoint',
            host: describeHost(ctx.source),
            detail: [bound, tailLines(forwardErr(), 3)].filter(Boolean).join('\n'),
            remedy: `read the lines above, ${REMEDY_EAGER} or route: relay`,
          },
        );
      }
      upstream = ports.source;
    } else {
      relay = await openPageRelay(hosts.target, hosts.source, ports.target, ctx.clock);
      upstream = relay.port;
    }
    ends.source = await startHashedForward(ctx.source, dumpPort, upstream, "source's end of the page stream");
    const address = `127.0.0.1:${dumpPort}`;
    ctx.log.info(
      `overlap: the target's page server listens on its 127.0.0.1:${serverPort}; the source's dump reaches it at its ${address}, ${forwardCommand ? "host to host through the run's ssh forward" : 'through the runner'}, summed with sha256 on both hosts`,
    );
    const sourceEnd = ends.source;
    const targetEnd = ends.target;
    return {
      address,
      route: forwardCommand ? 'direct' : 'relay',
      runnerBytes: () => relay?.bytesBack() ?? 0,
      async finished() {
        const end = await serverEnd.within(SERVER_END_MS);
        const [sent, got] = await Promise.all([
          sourceEnd.tally(SERVER_END_MS),
          targetEnd.tally(SERVER_END_MS),
        ]);
        const tally = comparePageTallies(sent, got);
        if (end?.exitCode === 0 && !('problem' in tally)) {
          ctx.log.info(
            `overlap: ${formatBytes(tally.bytes)} of pages, sha256 ${tally.sha256.slice(0, 16)}… the same on both hosts`,
          );
          return tally;
        }
        await close();
        if (end?.exitCode === 0 && 'problem' in tally) {
          throw new MigrationError(
            'TRANSFER_FAILED',
            'the pages at the target could not be shown to be the ones the source sent',
            {
              step: 'transfer',
              host: describeHost(ctx.target),
              detail: await why(tally.problem),
              remedy: `nothing to undo by hand: the source resumes where it was frozen; run again, ${REMEDY_EAGER}`,
            },
          );
        }
        throw new MigrationError(
          'TRANSFER_FAILED',
          `the target's page server ${end ? `exited ${end.exitCode}` : `had not ended ${SERVER_END_MS / 1000} s after the dump`}`,
          {
            step: 'transfer',
            host: describeHost(ctx.target),
            detail: await why(''),
            remedy: `nothing to undo by hand: the source resumes where it was frozen; read the lines above and run again, ${REMEDY_EAGER}`,
          },
        );
      },
      close,
      async explain(error) {
        if (!(error instanceof MigrationError)) return error;
        const said = await why('');
        if (!said) return error;
        return new MigrationError(error.code, error.message, {
          ...(error.step ? { step: error.step } : {}),
          ...(error.host ? { host: error.host } : {}),
          detail: [error.detail, `page server: ${said}`].filter(Boolean).join('\n'),
          ...(error.remedy ? { remedy: error.remedy } : {}),
          cause: error,
        });
      },
    };
  } catch (error) {
    await close();
    throw error;
  }
}
