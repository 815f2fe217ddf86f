import { shellQuote } from '../../host/shell.js';
import { DOCKER_LAYOUT } from './docker-cli.js';

/**
 * `docker start --checkpoint` copies the checkpoint directory into containerd's
 * content store and unpacks it again into <containerd TMPDIR>/ctrd-checkpoint*
 * before CRIU runs: two copies of the memory pages inside the frozen window.
 * When the checkpoint directory holds the small images and relative symlinks
 * for pages-*.img, only the links are copied and CRIU reads the pages where
 * they were staged. Absolute links fail: CRIU opens the pages after entering
 * the container's root; a relative link resolves from the unpack directory.
 */

/** The file in Docker's checkpoint directory that names the run; containerd's copies carry it too. */
export const RESTORE_MARKER_FILE = 'criu-migrate.id';

/** How the target restores: which path, and why when it is the slow one. */
export type RestorePath = { path: 'staged-pages' } | { path: 'full-copy'; reason: string };

/** What was found about the target's containerd before the freeze. */
export type ContainerdTmp =
  | { found: true; dir: string; pid: number; kind: 'docker' | 'system' }
  | { found: false; reason: string };

function components(path: string): string[] {
  return path.split('/').filter((part) => part !== '' && part !== '.');
}

/**
 * The link target, for a link in <containerdTmp>/ctrd-checkpointXXXX/, that
 * reaches stagedFile: one '..' per component of containerdTmp plus one for the
 * unpack directory, then stagedFile from the root. containerdTmp must be a
 * physical path (no symlinks): '..' walks the real parent.
 */
export function relativeLink(containerdTmp: string, stagedFile: string): string {
  if (!containerdTmp.startsWith('/') || !stagedFile.startsWith('/'))
    throw new Error(`relativeLink needs absolute paths: ${containerdTmp}, ${stagedFile}`);
  const tmp = components(containerdTmp);
  const file = components(stagedFile);
  if (tmp.includes('..') || file.includes('..') || file.length === 0)
    throw new Error(`relativeLink needs normalised paths: ${containerdTmp}, ${stagedFile}`);
  return [...Array<string>(tmp.length + 1).fill('..'), ...file].join('/');
}

/**
 * Prints "ok <docker|system> <pid> <physical TMPDIR>" for the containerd that
 * serves this host's dockerd, or "none <reason>". Hosts may share a PID
 * namespace (several daemons on one machine): only a containerd in this
 * shell's mount namespace counts, Docker's own (child of dockerd or started
 * with Docker's config) before a system one.
 */
export function containerdTmpScript(): string {
  const config = DOCKER_LAYOUT.managedContainerdConfig;
  return [
    'me=$(readlink /proc/self/ns/mnt) || { echo "none cannot read this shell\'s mount namespace"; exit 0; }',
    'docker=; system=',
    'for d in /proc/[0-9]*; do',
    '  [ "$(cat "$d/comm" 2>/dev/null)" = containerd ] || continue',
    '  [ "$(readlink "$d/ns/mnt" 2>/dev/null)" = "$me" ] || continue',
    '  pp=$(cut -d" " -f4 "$d/stat" 2>/dev/null)',
    `  if [ "$(cat "/proc/$pp/comm" 2>/dev/null)" = dockerd ] || tr '\\0' ' ' <"$d/cmdline" 2>/dev/null | grep -qF -- ${shellQuote([config])}; then docker=$d; break; fi`,
    '  [ -n "$system" ] || system=$d',
    'done',
    'if [ -n "$docker" ]; then d=$docker; k=docker; elif [ -n "$system" ]; then d=$system; k=system; else echo "none no containerd process in this host\'s mount namespace"; exit 0; fi',
    'pid=$(basename "$d")',
    `e=$(tr '\\0' '\\n' <"$d/environ") || { echo "none cannot read the environment of containerd $pid"; exit 0; }`,
    't=$(printf "%s\\n" "$e" | sed -n "s/^TMPDIR=//p" | tail -n 1)',
    '[ -n "$t" ] || t=/tmp',
    'r=$(cd -P "$t" 2>/dev/null && pwd -P) || { echo "none containerd\'s TMPDIR $t is not a directory"; exit 0; }',
    'echo "ok $k $pid $r"',
  ].join('\n');
}

export function parseContainerdTmp(stdout: string, exitCode: number): ContainerdTmp {
  const line = stdout.trim();
  const ok = /^ok (docker|system) (\d+) (\/[^\n]*)$/.exec(line);
  if (exitCode === 0 && ok) {
    return { found: true, kind: ok[1] as 'docker' | 'system', pid: Number(ok[2]), dir: ok[3]! };
  }
  const none = /^none (.+)$/.exec(line);
  if (exitCode === 0 && none) return { found: false, reason: none[1]! };
  return {
    found: false,
    reason: `the probe for containerd's TMPDIR answered ${JSON.stringify(line.slice(0, 200))} (exit ${exitCode})`,
  };
}

/** Opens a loop over every entry of the staging directory $s as $f, dot files too. */
const EACH_IMAGE = 'for f in "$s"/* "$s"/.[!.]*; do [ -e "$f" ] || [ -L "$f" ] || continue;';

/**
 * One command on the target: Docker's checkpoint directory from the staged
 * images, small files copied, each pages-*.img a relative link into the
 * staging directory. First checks that the link, followed from a directory
 * where containerd unpacks, reaches the staging directory; when it does not,
 * moves every image into the checkpoint directory (the full copy) instead.
 * Prints "staged-pages" or "full-copy <reason>".
 */
export function stagedCheckpointScript(
  stagingDir: string,
  checkpointDir: string,
  containerdTmp: string,
): string {
  const prefix = relativeLink(containerdTmp, stagingDir);
  // From <tmp> itself the unpack directory's own '..' is not needed.
  const fromTmp = prefix.slice('../'.length);
  return [
    `s=${shellQuote([stagingDir])}; c=${shellQuote([checkpointDir])}; t=${shellQuote([containerdTmp])}; p=${shellQuote([prefix])}`,
    'mkdir -p "$c" || exit 1',
    `got=$(cd -P "$t" 2>/dev/null && cd -P ${shellQuote([fromTmp])} 2>/dev/null && pwd -P); want=$(cd -P "$s" && pwd -P) || exit 1`,
    // Every image in one list ($@): one mv, cp or ln for all of them. A process per file cost
    // about 2 ms each inside the frozen window (67 files: 150 ms; this way 14 ms).
    'if [ "$got" != "$want" ]; then',
    `  set --; ${EACH_IMAGE} set -- "$@" "$f"; done`,
    '  [ "$#" -eq 0 ] || mv -f -- "$@" "$c/" || exit 1',
    '  echo "full-copy a link from $t/ctrd-checkpoint*/ would not reach $s (reached $got)"; exit 0',
    'fi',
    `set --; ${EACH_IMAGE} case \${f##*/} in (pages-*.img) set -- "$@" "$p/\${f##*/}" ;; esac; done`,
    '[ "$#" -eq 0 ] || ln -s -- "$@" "$c/" || exit 1',
    `set --; ${EACH_IMAGE} case \${f##*/} in (pages-*.img) ;; (*) set -- "$@" "$f" ;; esac; done`,
    '[ "$#" -eq 0 ] || cp -pR -- "$@" "$c/" || exit 1',
    'echo staged-pages',
  ].join('\n');
}

export function parseStagedCheckpoint(stdout: string): RestorePath | undefined {
  const line = stdout.trim().split('\n').pop() ?? '';
  if (line === 'staged-pages') return { path: 'staged-pages' };
  const full = /^full-copy (.+)$/.exec(line);
  return full ? { path: 'full-copy', reason: full[1]! } : undefined;
}

export function describeRestorePath(path: RestorePath): string {
  return path.path === 'staged-pages' ? 'staged pages' : `full copy (${path.reason})`;
}
