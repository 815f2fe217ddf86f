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

/**
 * `runc checkpoint --lazy-pages` on the paused container: CRIU writes every
 * image but the lazy memory, writes one NUL to fd 3 (here the command's
 * stdout), then serves the pages on 127.0.0.1:port until the last one was
 * taken, and exits 0. --leave-running: the processes stay, frozen, until the
 * run retires them (or a rollback resumes them).
 */
export function lazyDumpCommand(dump: LazyDumpCommand): string {
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
  // fd 3 is the channel's stdout (the NUL), runc's own stdout goes nowhere.
  return `umask 077; ${env}exec ${runc} 3>&1 >/dev/null`;
}

/**
 * While CRIU serves the pages it has thawed the cgroup and holds the processes
 * by ptrace alone: a page server that dies would let them run beside the
 * target. Freezing the cgroup again keeps them frozen whatever happens to CRIU
 * (tried on the bed: SIGKILL of the page server left the source paused, and
 * `docker unpause` resumed it intact). The inventory's sha256 names this dump
 * in containerd's copies.
 */
export function refreezeCommand(
  runcRoot: string,
  containerId: string,
  imagesDir: string,
  mark: string,
): string {
  return [
    `${shellQuote(['runc', '--root', runcRoot, 'pause', containerId])} || exit $?`,
    `printf '${mark} %s\\n' "$(sha256sum <${shellQuote([`${imagesDir}/inventory.img`])} | cut -d' ' -f1)"`,
  ].join('\n');
}

/** Whether a TCP port is listening on the host (hex port in /proc/net/tcp and tcp6, state 0A). */
export function portFreeScript(port: number): string {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
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

/** `criu lazy-pages` on the target: takes the pages from the source and hands them to the restored processes. */
export function lazyDaemonCommand(daemon: LazyDaemonCommand): string {
  return [
    `umask 077; cd ${shellQuote([daemon.workDir])} || exit 1`,
    `exec ${shellQuote([
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
    ])}`,
  ].join('\n');
}

/** Polls of 20 ms for the daemon's socket (10 s); the restore must not start before it exists. */
const SOCKET_POLLS = 500;

export function waitForSocketScript(workDir: string): string {
  const socket = shellQuote([`${workDir}/lazy-pages.socket`]);
  return `i=0; while [ "$i" -lt ${SOCKET_POLLS} ]; do [ -S ${socket} ] && exit 0; sleep 0.02; i=$((i + 1)); done; exit 1`;
}
