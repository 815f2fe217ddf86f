import { shellQuote } from '../../host/shell.js';

/**
 * The runc and CRIU commands of a post-copy move (memory: lazy). Verified on
 * Docker 26.1 / runc 1.1 / CRIU 4.2: see docs/internals.md, "Post-copy".
 */

export interface LazyDumpCommand {
  runcRoot: string;
  containerId: string;
  imagesDir: string;
  workDir: string;
  /** The page server's port on the source's 127.0.0.1: never another address, it has no authentication. */
  port: number;
  /** CRIU_CONFIG_FILE for the dump (an external network namespace). */
  criuConfig?: string;
}

/** The line the runner writes to a waiting lazy command's standard input to start it. */
export const GO_LINE = 'go';

/** A spawned command waits here, before anything, for the runner's go line on its standard input. */
const AWAIT_GO = `IFS= read -r go || exit 125; [ "$go" = ${GO_LINE} ] || exit 125`;

/**
 * The source's end of a lazy move, spawned before the freeze so the frozen
 * window pays for no SSH channel or shell start: it waits for the go line,
 * then runs `runc checkpoint --lazy-pages` on the paused container. When CRIU
 * writes its NUL (every image but the lazy memory is written) the same shell
 * freezes the cgroup again at once (CRIU has thawed it and holds the processes
 * by ptrace alone: a page server that dies would let them run beside the
 * target; tried on the bed, SIGKILL of the page server then left the source
 * paused and `docker unpause` resumed it intact) and prints `<mark> <sha256 of
 * the inventory>` (it names this dump in containerd's copies), or `<mark>-failed`
 * when the freeze did not take. It then waits for runc, which serves the pages
 * on 127.0.0.1:port until the last one was taken and exits 0 (its exit is the
 * command's). --leave-running: the processes stay, frozen, until the run
 * retires them or a rollback resumes them.
 */
export function lazyServerCommand(dump: LazyDumpCommand, mark: string): string {
  const env = dump.criuConfig ? `CRIU_CONFIG_FILE=${shellQuote([dump.criuConfig])} ` : '';
  const runc = shellQuote([
    'runc',
    '--root',
    dump.runcRoot,
    'checkpoint',
    '--leave-running',
    '--lazy-pages',
    '--page-server',
    `127.0.0.1:${dump.port}`,
    '--status-fd',
    '3',
    '--image-path',
    dump.imagesDir,
    '--work-path',
    dump.workDir,
    dump.containerId,
  ]);
  const pause = shellQuote(['runc', '--root', dump.runcRoot, 'pause', dump.containerId]);
  const inventory = shellQuote([`${dump.imagesDir}/inventory.img`]);
  return [
    'umask 077',
    AWAIT_GO,
    'd=$(mktemp -d) && mkfifo "$d/status" || exit 1',
    // runc's own stdout goes nowhere; its status fd is the fifo, read here for the NUL.
    `${env}${runc} 3>"$d/status" >/dev/null </dev/null &`,
    'p=$!',
    'n=$(head -c1 <"$d/status" | wc -c)',
    'rm -rf "$d"',
    // No NUL: the dump failed before its images; runc's exit says how.
    'if [ "$n" != 1 ]; then wait "$p"; r=$?; [ "$r" -ne 0 ] || r=1; exit "$r"; fi',
    `if ${pause}; then printf '${mark} %s\\n' "$(sha256sum <${inventory} | cut -d' ' -f1)"; else echo '${mark}-failed'; fi`,
    'wait "$p"',
  ].join('\n');
}

/** A port as /proc/net/tcp writes it: four hex digits. */
function hexPort(port: number): string {
  return port.toString(16).toUpperCase().padStart(4, '0');
}

/**
 * Whether a port may be taken for a listener: exit 0 when no socket of any state has it as its
 * local port and it is outside the kernel's ephemeral range; 3 when unused but inside that range
 * (an outgoing connection may take it before the listener binds: seen as EADDRINUSE); 1 when used.
 */
export function portUnusedScript(port: number): string {
  const hex = hexPort(port);
  return [
    `if cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk 'NR > 1 {print $2}' | grep -qi ':${hex}$'; then exit 1; fi`,
    // Not `read`: dash reads a byte at a time, and a sysctl file gives nothing past offset 0.
    'set -- $(cat /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null)',
    `if [ -n "$2" ] && [ ${port} -ge "$1" ] && [ ${port} -le "$2" ]; then exit 3; fi`,
    'exit 0',
  ].join('\n');
}

/** Whether a TCP port is listening on the host (hex port in /proc/net/tcp and tcp6, state 0A). */
export function portFreeScript(port: number): string {
  const hex = hexPort(port);
  return `! cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk '$4 == "0A" {print $2}' | grep -qi ':${hex}$'`;
}

export interface LazyDaemonCommand {
  /** Where the images without the lazy memory are on the target. */
  imagesDir: string;
  /** The restore's work-dir (its CRIU configuration says the same): lazy-pages.socket lives here. */
  workDir: string;
  /** The runner's forward on the target's 127.0.0.1, leading to the source's page server. */
  port: number;
}

/** Polls of 20 ms for the daemon's socket (10 s); the restore must not start before it exists. */
const SOCKET_POLLS = 500;

/** What the daemon's command prints once its socket exists, and when it did not appear. */
export const LISTENING_LINE = 'listening';
export const NO_SOCKET_LINE = 'no-socket';

/**
 * `criu lazy-pages` on the target, spawned before the freeze: it makes its
 * work dir and waits for the go line (sent once the images arrived), then
 * starts the daemon, which takes the pages from the source and hands them to
 * the restored processes, and prints `listening` once its socket exists (or
 * `no-socket` and stops it). The command's exit is the daemon's.
 */
export function lazyDaemonCommand(daemon: LazyDaemonCommand): string {
  const dir = shellQuote([daemon.workDir]);
  const socket = shellQuote([`${daemon.workDir}/lazy-pages.socket`]);
  const criu = shellQuote([
    'criu',
    'lazy-pages',
    '--page-server',
    '--address',
    '127.0.0.1',
    '--port',
    String(daemon.port),
    '--images-dir',
    daemon.imagesDir,
    '--work-dir',
    daemon.workDir,
    '-o',
    'lazy-pages.log',
    '-v4',
  ]);
  return [
    `umask 077; mkdir -p ${dir} && cd ${dir} || exit 1`,
    AWAIT_GO,
    `${criu} </dev/null >/dev/null &`,
    'p=$!',
    `i=0; while [ "$i" -lt ${SOCKET_POLLS} ] && [ ! -S ${socket} ] && kill -0 "$p" 2>/dev/null; do sleep 0.02; i=$((i + 1)); done`,
    `if [ -S ${socket} ]; then echo ${LISTENING_LINE}; else echo ${NO_SOCKET_LINE}; kill "$p" 2>/dev/null; fi`,
    'wait "$p"',
  ].join('\n');
}
