import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { onHost, onHostResult, type Testbed } from './testbed.js';

const execFileAsync = promisify(execFile);
const DAEMON_SCRIPT = resolve(import.meta.dirname, '../testbed/daemon.sh');

/** Where each wrapped program really lives on the test bed hosts. */
const REAL: Record<string, string> = {
  docker: '/usr/bin/docker',
  tar: '/usr/bin/tar',
  runc: '/usr/sbin/runc',
  tee: '/usr/bin/tee',
  perl: '/usr/bin/perl',
  cat: '/usr/bin/cat',
};

/** Hold glob for the target's receiving tar: it extracts the images into the run's staging directory. */
export const RECEIVING_TAR = '*"/staged "*" --no-same-permissions -xf "*';

/**
 * A hold point: the program, when called with arguments matching `glob` (a sh
 * case pattern over " $* "), waits until the test releases it (at most 60 s),
 * then runs for real. Lets a test act at an exact moment of a run.
 */
export async function installHold(
  bed: Testbed,
  host: string,
  program: keyof typeof REAL,
  glob: string,
  tag: string,
): Promise<void> {
  const script = `#!/bin/sh
case " $* " in
  ${glob})
    touch /tmp/e2e-held-${tag}
    i=0
    while [ ! -e /tmp/e2e-release-${tag} ] && [ "$i" -lt 600 ]; do sleep 0.1; i=$((i + 1)); done ;;
esac
exec ${REAL[program]} "$@"
`;
  await onHost(
    bed,
    host,
    `rm -f /tmp/e2e-held-${tag} /tmp/e2e-release-${tag}; cat >/usr/local/bin/${program} <<'EOF'\n${script}EOF\nchmod +x /usr/local/bin/${program}`,
  );
}

/** Installs a wrapper with its own text in front of a program. */
export async function installWrapper(
  bed: Testbed,
  host: string,
  path: string,
  script: string,
): Promise<void> {
  await onHost(bed, host, `cat >${path} <<'EOF'\n${script}EOF\nchmod +x ${path}`);
}

export async function waitHeld(
  bed: Testbed,
  host: string,
  tag: string,
  timeoutMs = 60_000,
  running?: { done: Promise<{ stdout: string }> },
): Promise<void> {
  const until = Date.now() + timeoutMs;
  let ended: string | undefined;
  running?.done.then((run) => {
    ended = run.stdout;
  });
  for (;;) {
    if (ended !== undefined) throw new Error(`the run ended before reaching hold ${tag}:\n${ended}`);
    const result = await onHostResult(bed, host, `test -e /tmp/e2e-held-${tag}`);
    if (result.code === 0) return;
    if (Date.now() > until) throw new Error(`hold ${tag} on ${host} was not reached within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function release(bed: Testbed, host: string, tag: string): Promise<void> {
  await onHost(bed, host, `touch /tmp/e2e-release-${tag}`);
}

/** Removes every wrapper and hold marker a fault test may have left on any host (they outlive the bed's /tmp). */
export async function removeFaults(bed: Testbed): Promise<void> {
  for (const host of [bed.host1, bed.host2, bed.host3]) {
    await onHostResult(
      bed,
      host,
      `rm -f ${Object.keys(REAL)
        .map((p) => `/usr/local/bin/${p}`)
        .join(' ')} /usr/local/sbin/criu /tmp/e2e-held-* /tmp/e2e-release-* /tmp/e2e-corrupt`,
    );
  }
}

export async function daemon(
  action: 'stop' | 'start' | 'kill-sessions' | 'cut',
  name: 'dockerd' | 'sshd',
  hostPid: number,
  ...rest: string[]
): Promise<void> {
  await execFileAsync('bash', [DAEMON_SCRIPT, action, name, String(hostPid), ...rest]);
}

/** "root@127.0.0.3:22" -> ["127.0.0.3", "22"] */
export function listenAddress(destination: string): [string, string] {
  const match = /@(.+):(\d+)$/.exec(destination);
  if (!match) throw new Error(`bad destination ${destination}`);
  return [match[1]!, match[2]!];
}
