import { describeHost, type Host, type RunOptions } from '../../host/host.js';
import { shellQuote } from '../../host/shell.js';
import { STATE_ROOT } from '../../state/host-records.js';
import { type ContainerEngine, EngineError, initFirstRows, type ProcessRow } from '../engine.js';
import { envFileCreate } from './create-args.js';
import {
  type ContainerInspect,
  type ImageConfig,
  parseContainerInspect,
  parseContainerInspectList,
  parseImageInspect,
} from './inspect.js';

/** Docker's and containerd's places on a host that the action relies on. */
export const DOCKER_LAYOUT = {
  /** containerd's runc shim keeps a task's bundle (and CRIU's restore.log) here, for Docker-managed and system containerd. */
  taskBundles: (root: string) => [
    `${root}/containerd/daemon/io.containerd.runtime.v2.task/moby`,
    '/run/containerd/io.containerd.runtime.v2.task/moby',
  ],
  /** Where Docker's runc keeps container state, newest layouts first. */
  runcRoots: ['/run/docker/runtime-runc/moby', '/var/run/docker/runtime-runc/moby'],
  /** The config dockerd starts its own containerd with (when it manages one). */
  managedContainerdConfig: '/var/run/docker/containerd/containerd.toml',
  /** containerd 1.7 unpacks a checkpoint for a restore into <its TMPDIR>/ctrd-checkpoint*, never removed. */
  restoreUnpackGlob: 'ctrd-checkpoint*',
} as const;

const DOCKER_TIMEOUT_MS = 120_000;

/** Thin typed wrapper over the `docker` CLI of one host; every failure is an EngineError. */
export class DockerCli implements ContainerEngine {
  constructor(readonly host: Host) {}

  private async exec(command: string, step: string, what: string, options: RunOptions = {}): Promise<string> {
    const result = await this.host.run(command, { timeoutMs: DOCKER_TIMEOUT_MS, ...options });
    if (result.exitCode === 0) return result.stdout;
    const status = result.exitCode === -1 ? 'did not exit normally' : `exited with ${result.exitCode}`;
    throw new EngineError(
      command,
      result.exitCode,
      result.stderr || result.stdout,
      `${what} failed: ${status}`,
      {
        step,
        host: describeHost(this.host),
      },
    );
  }

  private docker(args: string[], step: string, what = `docker ${args[0]}`): Promise<string> {
    return this.exec(shellQuote(['docker', ...args]), step, what);
  }

  /** The container, or undefined when the host has none by that name or ID. */
  async inspectContainer(ref: string, step: string): Promise<ContainerInspect | undefined> {
    const command = shellQuote(['docker', 'container', 'inspect', '--', ref]);
    const result = await this.host.run(command, { timeoutMs: DOCKER_TIMEOUT_MS });
    if (result.exitCode !== 0) {
      if (/no such (container|object)/i.test(result.stderr)) return undefined;
      // Once more, failing with the step and host named if it fails again.
      return parseContainerInspect(await this.exec(command, step, `docker inspect of ${ref}`));
    }
    return parseContainerInspect(result.stdout);
  }

  /** Every container of the host, in any state (one inspect for all). */
  async listContainers(step: string): Promise<ContainerInspect[]> {
    const ids = (await this.docker(['ps', '-aq', '--no-trunc'], step)).split('\n').filter(Boolean);
    if (ids.length === 0) return [];
    const out = await this.docker(['container', 'inspect', '--', ...ids], step, 'docker container inspect');
    return parseContainerInspectList(out);
  }

  /** The image's ID, or undefined when the host does not have it. */
  async imageId(ref: string): Promise<string | undefined> {
    const result = await this.host.run(
      shellQuote(['docker', 'image', 'inspect', '--format', '{{.Id}}', ref]),
    );
    return result.exitCode === 0 ? result.stdout.trim() : undefined;
  }

  /** Containers (any state) created from the image. */
  async containersUsingImage(imageId: string): Promise<string[]> {
    const out = await this.docker(['ps', '-aq', '--no-trunc', '--filter', `ancestor=${imageId}`], 'rollback');
    return out.split('\n').filter(Boolean);
  }

  async inspectContainerRaw(ref: string, step: string): Promise<unknown> {
    const out = await this.docker(['container', 'inspect', '--', ref], step, 'docker container inspect');
    return (JSON.parse(out) as unknown[])[0];
  }

  async imageConfig(
    imageId: string,
    step: string,
  ): Promise<{ config: ImageConfig | undefined; raw: unknown }> {
    const out = await this.docker(['image', 'inspect', '--', imageId], step, 'docker image inspect');
    return { config: parseImageInspect(out).Config, raw: (JSON.parse(out) as unknown[])[0] };
  }

  async tagImage(imageId: string, ref: string, step: string): Promise<void> {
    await this.docker(['image', 'tag', imageId, ref], step, 'docker image tag');
  }

  /**
   * cidFile: docker create writes the new container's ID there the moment the daemon made
   * it (and removes the file when it made nothing), so a rollback can tell its own container
   * from another of the same name.
   */
  async createWithEnvFile(
    args: string[],
    env: string[],
    envDir: string,
    step: string,
    cidFile?: string,
  ): Promise<string> {
    const { command, input } = envFileCreate(envDir, args, env, cidFile);
    const out = await this.exec(command, step, 'docker create', { input });
    const id = out.trim().split('\n').pop() ?? '';
    if (!/^[0-9a-f]{64}$/.test(id)) {
      throw new EngineError(command, 0, out, 'docker create printed no container ID', {
        step,
        host: describeHost(this.host),
      });
    }
    return id;
  }

  async createAndStart(args: string[], step: string, cidFile?: string): Promise<string> {
    const out = cidFile
      ? await this.exec(
          `umask 077; mkdir -p ${shellQuote([cidFile.replace(/\/[^/]*$/, '')])} && ${shellQuote(['docker', 'create', '--cidfile', cidFile, ...args])}`,
          step,
          'docker create',
        )
      : await this.docker(['create', ...args], step, 'docker create');
    const id = out.trim().split('\n').pop() ?? '';
    if (!/^[0-9a-f]{64}$/.test(id)) {
      throw new EngineError(
        shellQuote(['docker', 'create', ...args]),
        0,
        out,
        'docker create printed no container ID',
        {
          step,
          host: describeHost(this.host),
        },
      );
    }
    await this.docker(['start', id], step, 'docker start');
    return id;
  }

  /**
   * The container's pause and unpause events from `since` (the host's clock, seconds since
   * the epoch) until now, oldest first, as the daemon still remembers them.
   */
  async pauseEvents(id: string, since: string, step: string): Promise<string[]> {
    const out = await this.exec(
      `${shellQuote(['docker', 'events', '--since', since, '--filter', `container=${id}`, '--filter', 'event=pause', '--filter', 'event=unpause', '--format', '{{.Action}}'])} --until "$(date +%s.%N)"`,
      step,
      'docker events',
      { timeoutMs: 30_000 },
    );
    return out.split('\n').filter(Boolean);
  }

  async pause(id: string, step: string): Promise<void> {
    await this.docker(['pause', id], step);
  }

  async unpause(id: string, step: string): Promise<void> {
    await this.docker(['unpause', id], step);
  }

  async startFromCheckpoint(id: string, checkpoint: string, step: string): Promise<void> {
    await this.exec(
      oneRestoreAtATime(shellQuote(['docker', 'start', '--checkpoint', checkpoint, '--', id])),
      step,
      'docker start --checkpoint',
      {
        timeoutMs: 10 * 60_000,
      },
    );
  }

  async setRestartPolicy(id: string, policy: string, step: string): Promise<void> {
    await this.docker(['update', '--restart', policy, id], step, 'docker update --restart');
  }

  /**
   * SIGKILL to every process of the container; a paused one dies without running another
   * instruction. `docker kill` alone signals only the container's init and then thaws the cgroup
   * (runc does, so that the signal lands under cgroup v1): the other processes ran on until the
   * kernel tore the PID namespace down (measured: a moved counter printed one more line on the
   * source seconds after the target took over). So each process of a paused container gets its
   * SIGKILL while still frozen, and only then does Docker's kill thaw it.
   */
  async kill(id: string, step: string): Promise<void> {
    await this.exec(killScript(id), step, 'docker kill');
  }

  saveImageCommand(ref: string): string {
    return shellQuote(['docker', 'save', ref]);
  }

  loadImageCommand(): string {
    return shellQuote(['docker', 'load', '--quiet']);
  }

  checkpointDir(root: string, containerId: string, checkpoint: string): string {
    // moby#37344: docker start --checkpoint-dir is refused, so only this place works.
    return `${root}/containers/${containerId}/checkpoints/${checkpoint}`;
  }

  restoreLogPaths(root: string, containerId: string): string[] {
    return DOCKER_LAYOUT.taskBundles(root).map((dir) => `${dir}/${containerId}/restore.log`);
  }

  async remove(
    id: string,
    step: string,
    options: { force?: boolean; volumes?: boolean } = {},
  ): Promise<void> {
    const flags = [...(options.force ? ['--force'] : []), ...(options.volumes ? ['--volumes'] : [])];
    await this.docker(['rm', ...flags, id], step);
  }

  async rename(id: string, name: string, step: string): Promise<void> {
    await this.docker(['rename', id, name], step);
  }

  /** docker rm --force; false when there was no such container. */
  async removeIfPresent(ref: string, step: string): Promise<boolean> {
    // docker rm --force exits 0 for a container that does not exist (Docker 23+): ask first.
    if (!(await this.inspectContainer(ref, step))) return false;
    const result = await this.host.run(shellQuote(['docker', 'rm', '--force', '--', ref]), {
      timeoutMs: 120_000,
    });
    if (result.exitCode === 0) return true;
    if (/no such container/i.test(result.stderr)) return false;
    await this.exec(shellQuote(['docker', 'rm', '--force', '--', ref]), step, 'docker rm');
    return true;
  }

  async removeImage(id: string, step: string): Promise<void> {
    await this.docker(['image', 'rm', id], step);
  }

  async logs(id: string, step: string): Promise<string> {
    const command = `${shellQuote(['docker', 'logs', id])} 2>&1`;
    const result = await this.host.run(command);
    if (result.exitCode === 0) return result.stdout;
    return this.exec(command, step, 'docker logs');
  }

  /** The command lines of the container's processes, its init first. */
  async processes(id: string, step: string): Promise<string[]> {
    return initFirstRows(await this.processTable(id, step)).map((row) => row.args);
  }

  /** The container's processes as `docker top` lists them: those in its cgroup, by host PID. */
  async processTable(id: string, step: string): Promise<ProcessRow[]> {
    return parseTop(await this.docker(['top', id, '-o', 'pid,ppid,args'], step));
  }
}

/** `docker top -o pid,ppid,args` lines; the header and anything unparsable are dropped. */
export function parseTop(top: string): ProcessRow[] {
  return top
    .split('\n')
    .slice(1)
    .map((line) => /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(line))
    .filter((match): match is RegExpExecArray => match !== null)
    .map(([, pid, ppid, args]) => ({ pid: Number(pid), ppid: Number(ppid), args: (args ?? '').trim() }))
    .filter((row) => row.args !== '');
}

/** `docker top` lines (pid, ppid, args) as command lines, the container's init first. */
export function initFirst(top: string): string[] {
  return initFirstRows(parseTop(top)).map((row) => row.args);
}

/**
 * Shell text for DockerCli.kill. A paused container's processes (docker top: its cgroup, host
 * PIDs; none can fork or exit while frozen) each get SIGKILL first; one that cannot be signalled
 * and still exists, or a state that cannot be read, stops the script before anything thaws it. Then `docker kill`, which waits for
 * the exit; "is not running" after that means the container died of the signals already sent.
 */
export function killScript(id: string): string {
  const ref = shellQuote([id]);
  return [
    // An unknown state must not reach docker kill: on a paused container it thaws what it did not signal.
    `paused=$(docker container inspect --format '{{.State.Paused}}' -- ${ref}) || exit 1`,
    'if [ "$paused" = true ]; then',
    `  pids=$(docker top ${ref} -o pid) || exit 1`,
    '  for p in $(printf "%s\\n" "$pids" | tail -n +2); do',
    `    kill -KILL "$p" 2>/dev/null || [ ! -e "/proc/$p" ] || { echo "cannot SIGKILL process $p of the paused container" >&2; exit 1; }`,
    '  done',
    'fi',
    `out=$(docker kill --signal KILL ${ref} 2>&1) && exit 0`,
    `case $out in *"is not running"*) [ "$(docker container inspect --format '{{.State.Running}}' -- ${ref})" = false ] && exit 0 ;; esac`,
    'printf "%s\\n" "$out" >&2',
    'exit 1',
  ].join('\n');
}

/** How long a restore waits for another one on the same host before it gives up. */
const RESTORE_LOCK_WAIT_S = 300;
const RESTORE_LOCK_TIMEOUT_EXIT = 75;

/**
 * One CRIU restore at a time per host, whichever run asks (a drill, a restore, a move): two at
 * once failed now and then on the test bed, CRIU's restorer reading the pages with EBADF. The
 * lock is flock(1) on the hosts' state directory itself, so no lock file is left behind; without
 * flock the restore runs unserialized, as before.
 */
export function oneRestoreAtATime(start: string): string {
  const lock = shellQuote([STATE_ROOT]);
  return [
    `if command -v flock >/dev/null 2>&1 && [ -d ${lock} ]; then`,
    `flock -w ${RESTORE_LOCK_WAIT_S} -E ${RESTORE_LOCK_TIMEOUT_EXIT} ${lock} ${start}; s=$?`,
    `[ "$s" -ne ${RESTORE_LOCK_TIMEOUT_EXIT} ] || echo "criu-migrate: another restore on this host held the restore lock (flock on ${STATE_ROOT}) for ${RESTORE_LOCK_WAIT_S} s" >&2`,
    'exit "$s"',
    'fi',
    `exec ${start}`,
  ].join('\n');
}
