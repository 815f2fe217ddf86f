import type { ErrorCode } from '../../errors.js';
import type { Host } from '../../host/host.js';
import { runChecked, shellQuote } from '../../host/shell.js';
import { type ContainerInspect, parseContainerInspect } from './inspect.js';

/** Thin typed wrapper over the `docker` CLI of one host. */
export class DockerCli {
  constructor(readonly host: Host) {}

  private async docker(args: string[], step: string, code?: ErrorCode, what?: string): Promise<string> {
    const result = await runChecked(this.host, shellQuote(['docker', ...args]), { step, code, what });
    return result.stdout;
  }

  /** The container, or undefined when the host has none by that name or ID. */
  async inspectContainer(ref: string, step: string): Promise<ContainerInspect | undefined> {
    const command = shellQuote(['docker', 'container', 'inspect', '--', ref]);
    let result = await this.host.run(command);
    if (result.exitCode !== 0) {
      if (/no such (container|object)/i.test(result.stderr)) return undefined;
      // Once more, failing with the step and host named if it fails again.
      result = await runChecked(this.host, command, { step, what: `docker inspect of ${ref}` });
    }
    return parseContainerInspect(result.stdout);
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

  async create(args: string[], step: string): Promise<string> {
    const out = await this.docker(['create', ...args], step, 'TARGET_CREATE_FAILED', 'docker create');
    const id = out.trim().split('\n').pop() ?? '';
    if (!/^[0-9a-f]{64}$/.test(id)) throw new Error(`docker create printed no container ID: ${out}`);
    return id;
  }

  async pause(id: string, step: string): Promise<void> {
    await this.docker(['pause', id], step, 'CHECKPOINT_FAILED', 'docker pause');
  }

  async unpause(id: string, step: string, code: ErrorCode = 'COMMAND_FAILED'): Promise<void> {
    await this.docker(['unpause', id], step, code, 'docker unpause');
  }

  async startFromCheckpoint(id: string, checkpoint: string, step: string): Promise<void> {
    await this.docker(
      ['start', '--checkpoint', checkpoint, id],
      step,
      'RESTORE_FAILED',
      'docker start --checkpoint',
    );
  }

  async setRestartPolicy(id: string, policy: string, step: string): Promise<void> {
    await this.docker(
      ['update', '--restart', policy, id],
      step,
      'SOURCE_STOP_FAILED',
      'docker update --restart',
    );
  }

  /** SIGKILL: a frozen container dies without running another instruction. */
  async kill(id: string, step: string): Promise<void> {
    await this.docker(['kill', '--signal', 'KILL', id], step, 'SOURCE_STOP_FAILED', 'docker kill');
  }

  async remove(
    id: string,
    step: string,
    options: { force?: boolean; volumes?: boolean } = {},
  ): Promise<void> {
    const flags = [...(options.force ? ['--force'] : []), ...(options.volumes ? ['--volumes'] : [])];
    await this.docker(['rm', ...flags, id], step);
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
    await runChecked(this.host, shellQuote(['docker', 'rm', '--force', '--', ref]), {
      step,
      what: 'docker rm',
    });
    return true;
  }

  async removeImage(id: string, step: string): Promise<void> {
    await this.docker(['image', 'rm', id], step);
  }

  async logs(id: string, step: string): Promise<string> {
    const command = `${shellQuote(['docker', 'logs', id])} 2>&1`;
    const result = await this.host.run(command);
    if (result.exitCode === 0) return result.stdout;
    return (await runChecked(this.host, command, { step, what: 'docker logs' })).stdout;
  }

  /** Command lines of the container's processes, as `docker top` shows them. */
  async processes(id: string, step: string): Promise<string[]> {
    // docker top insists on a PID column; drop it, host PIDs differ between hosts anyway.
    const out = await this.docker(['top', id, '-o', 'pid,args'], step);
    return out
      .split('\n')
      .slice(1)
      .map((line) => line.trim().replace(/^\d+\s+/, ''))
      .filter(Boolean);
  }
}
