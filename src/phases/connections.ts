import { parseTop } from '../engine/docker/docker-cli.js';
import type { ContainerInspect } from '../engine/docker/inspect.js';
import { MigrationError } from '../errors.js';
import { describeHost } from '../host/host.js';
import { shellQuote } from '../host/shell.js';
import {
  type ConnectionVerdict,
  connectionRefusal,
  judgeConnections,
  movesEstablished,
  ownNetworkNamespace,
} from '../policy/connections.js';
import { parseProcNet, parseSections, parseSocketOwners, sectionScript } from '../probe/parsers.js';
import { socketOwnersCommand } from '../probe/preflight-facts.js';
import type { Named, RunContext } from './context.js';

const READ_TIMEOUT_MS = 30_000;

/**
 * The container's connections, processes and socket owners in one round trip
 * (the three reads run at once on the source), judged by policy/connections.
 * Throws when the socket table itself cannot be read.
 */
export async function readConnections(
  ctx: RunContext<Named>,
  container: ContainerInspect,
  step: string,
): Promise<ConnectionVerdict> {
  const pid = container.State.Pid ?? 0;
  const read = await ctx.source.run(
    sectionScript([
      { name: 'tcp', command: `cat /proc/${pid}/net/tcp /proc/${pid}/net/tcp6` },
      { name: 'procs', command: shellQuote(['docker', 'top', container.Id, '-o', 'pid,ppid,args']) },
      { name: 'sockets', command: socketOwnersCommand(container.Id) },
    ]),
    { timeoutMs: READ_TIMEOUT_MS },
  );
  const sections = parseSections(read.stdout);
  const tcp = sections.get('tcp');
  if (pid <= 0 || !tcp || !/\blocal_address\b/.test(tcp.text)) {
    throw new MigrationError('FACT_UNREADABLE', "could not read the container's TCP connections", {
      step,
      host: describeHost(ctx.source),
      detail: (tcp?.text ?? `${read.stdout}\n${read.stderr}`).trim().split('\n').slice(0, 3).join('\n'),
      remedy: `make sure /proc/${pid}/net/tcp is readable on the source and the container runs, then run again`,
    });
  }
  const procs = sections.get('procs');
  const sockets = sections.get('sockets');
  return judgeConnections({
    tcp: parseProcNet(tcp.text),
    ...(procs?.exitCode === 0 ? { processes: parseTop(procs.text) } : {}),
    ...(sockets?.exitCode === 0 ? { owners: parseSocketOwners(sockets.text) } : {}),
    initPid: pid,
  });
}

/** A refusal of the connections as a typed error for the given step. */
function refuse(ctx: RunContext<Named>, verdict: ConnectionVerdict, step: string, when: string): void {
  const refusal = connectionRefusal(verdict);
  if (!refusal) return;
  throw new MigrationError(refusal.code, `${when}: [source] tcp connections: ${refusal.observed}`, {
    step,
    host: describeHost(ctx.source),
    remedy: refusal.remedy,
  });
}

/**
 * Where no gate ran (checkpoint mode), before anything is touched: refuses
 * what cannot move, and says whether the dump keeps connections established.
 */
export async function connectionsBeforeDump(
  ctx: RunContext<Named>,
  container: ContainerInspect,
): Promise<boolean> {
  // Host network: the socket table is the host's; the dump goes without the option, as before.
  if (!ownNetworkNamespace(container.HostConfig.NetworkMode)) return false;
  const verdict = await readConnections(ctx, container, 'preflight');
  refuse(ctx, verdict, 'preflight', 'checkpoint refused before touching the container');
  const established = movesEstablished(verdict);
  if (established)
    ctx.log.info(
      `tcp connections: ${verdict.inside.length} over loopback inside the container, dumped and restored established`,
    );
  return established;
}

/**
 * Inside the frozen window, before a dump with --tcp-established: the gate's
 * reading is seconds old, and a `docker exec` session or a new peer may have
 * connected since. Nothing in the container runs now, so this reading is the
 * one CRIU will dump; anything that would not move whole stops the run here
 * (the caller's rollback resumes the container).
 */
export async function recheckFrozen(ctx: RunContext<Named>, container: ContainerInspect): Promise<void> {
  const verdict = await readConnections(ctx, container, 'checkpoint');
  refuse(ctx, verdict, 'checkpoint', 'connections changed between the gate and the freeze');
}
