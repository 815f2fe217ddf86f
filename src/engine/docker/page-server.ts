import { shellQuote } from '../../host/shell.js';
import { portFreeScript } from './lazy-pages.js';

/**
 * The target's end of memory: overlap. CRIU's page server takes the pages
 * while the source dumps them, so the dump and the transfer run together
 * instead of one after the other. Verified on CRIU 4.2: the server writes
 * pagemap-*.img and pages-*.img into its images directory, serves one
 * connection and exits 0 once the dump closed it.
 */
export interface PageServerCommand {
  /** Where the pages land: the staging directory the images stream also fills. */
  imagesDir: string;
  /** The server's own directory (its log). */
  workDir: string;
  /** On the target's 127.0.0.1 only: the page server has no authentication. */
  port: number;
}

/** What the command prints once the server listens, and when it never did. */
export const PAGE_SERVER_LISTENING = 'listening';
export const PAGE_SERVER_NOT_LISTENING = 'not-listening';

/** Its log, in its work directory. */
export const PAGE_SERVER_LOG = 'page-server.log';

/** Polls of 20 ms for the port (10 s). */
const LISTEN_POLLS = 500;

/** Waits (at most 10 s) while the port is free and the background process $p still runs. */
function awaitListening(free: string): string {
  return `i=0; while [ "$i" -lt ${LISTEN_POLLS} ] && ${free} && kill -0 "$p" 2>/dev/null; do sleep 0.02; i=$((i + 1)); done`;
}

/**
 * Starts `criu page-server` and prints `listening` once its port is open (or
 * `not-listening` and stops it); the command's exit is the server's. Closing
 * its standard input stops the server.
 */
export function pageServerCommand(server: PageServerCommand): string {
  const dir = shellQuote([server.workDir]);
  const criu = shellQuote([
    'criu',
    'page-server',
    '--images-dir',
    server.imagesDir,
    '--work-dir',
    server.workDir,
    '--address',
    '127.0.0.1',
    '--port',
    String(server.port),
    '-o',
    PAGE_SERVER_LOG,
    '-v2',
  ]);
  const free = `(${portFreeScript(server.port)})`;
  return [
    `umask 077; mkdir -p ${dir} && cd ${dir} || exit 1`,
    `${criu} </dev/null >/dev/null &`,
    'p=$!',
    awaitListening(free),
    `if ${free}; then echo ${PAGE_SERVER_NOT_LISTENING}; kill "$p" 2>/dev/null; else echo ${PAGE_SERVER_LISTENING}; fi`,
    // The runner gone (its standard input closed) before a dump connected: the server goes too.
    // Through fd 3: a background list's own standard input is /dev/null.
    'exec 3<&0',
    '(cat <&3 >/dev/null; kill "$p" 2>/dev/null) >/dev/null 2>&1 &',
    'exec 3<&-',
    'wait "$p"',
  ].join('\n');
}

/**
 * The source's end when the route is direct: the run's ssh client forwarding
 * 127.0.0.1:localPort to the target's page server. Prints `listening` once
 * the port is bound (or `not-listening`); ends the client when the runner
 * closes its standard input, so a runner that died leaves no forward behind.
 */
export function pageForwardScript(forwardCommand: string, localPort: number): string {
  const free = `(${portFreeScript(localPort)})`;
  return [
    `${forwardCommand} </dev/null >/dev/null &`,
    'p=$!',
    awaitListening(free),
    `if ${free}; then echo ${PAGE_SERVER_NOT_LISTENING}; kill "$p" 2>/dev/null; wait "$p"; exit 1; fi`,
    `echo ${PAGE_SERVER_LISTENING}`,
    'cat >/dev/null',
    'kill "$p" 2>/dev/null; wait "$p"; exit 0',
  ].join('\n');
}
