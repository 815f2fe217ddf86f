import { MigrationError } from '../errors.js';
import type { ContainerInspect, ImageConfig } from './docker/inspect.js';

/**
 * A command of the container engine that failed. The engine knows only the
 * command and its answer; the phase that called it knows what it means and
 * maps it to a stable code with `as()`.
 */
export class EngineError extends MigrationError {
  constructor(
    readonly command: string,
    readonly exitCode: number,
    readonly stderr: string,
    message: string,
    context: { step: string; host: string },
  ) {
    super('COMMAND_FAILED', message, { ...context, detail: stderr.trim() || undefined });
    this.name = 'EngineError';
  }

  /** The same failure under the code of the step that met it. */
  as(code: MigrationError['code'], remedy?: string): MigrationError {
    return new MigrationError(code, this.message, {
      step: this.step,
      host: this.host,
      detail: this.detail,
      remedy: remedy ?? this.remedy,
      cause: this,
    });
  }
}

/** Runs an engine call and gives its failure the caller's code; other errors pass through. */
export async function mapped<T>(call: Promise<T>, code: MigrationError['code'], remedy?: string): Promise<T> {
  try {
    return await call;
  } catch (error) {
    throw error instanceof EngineError ? error.as(code, remedy) : error;
  }
}

/** One process of a container as the engine lists it (host PIDs). */
export interface ProcessRow {
  pid: number;
  ppid: number;
  args: string;
}

/**
 * The container's init first: the one whose parent is outside the container.
 * PIDs are not an order (they wrap), and host PIDs differ between hosts.
 */
export function initFirstRows(rows: readonly ProcessRow[]): ProcessRow[] {
  const pids = new Set(rows.map((row) => row.pid));
  return [...rows.filter((row) => !pids.has(row.ppid)), ...rows.filter((row) => pids.has(row.ppid))];
}

/**
 * What the action needs of a container engine on one host. Docker today
 * (engine/docker); another engine (Podman) implements the same.
 */
export interface ContainerEngine {
  inspectContainer(ref: string, step: string): Promise<ContainerInspect | undefined>;
  /** Every container of the host, in any state. */
  listContainers(step: string): Promise<ContainerInspect[]>;
  /** Raw inspect output as the engine printed it, for storing with a checkpoint. */
  inspectContainerRaw(ref: string, step: string): Promise<unknown>;
  imageId(ref: string): Promise<string | undefined>;
  imageConfig(imageId: string, step: string): Promise<{ config: ImageConfig | undefined; raw: unknown }>;
  tagImage(imageId: string, ref: string, step: string): Promise<void>;
  containersUsingImage(imageId: string): Promise<string[]>;
  /**
   * Creates a container; `env` (KEY=value lines) goes through a 0600 file in `envDir`, never the
   * command line. `cidFile` receives the new ID as soon as the engine made the container.
   */
  createWithEnvFile(
    args: string[],
    env: string[],
    envDir: string,
    step: string,
    cidFile?: string,
  ): Promise<string>;
  /** Creates and starts a container with no environment; prints nothing it is given. */
  createAndStart(args: string[], step: string, cidFile?: string): Promise<string>;
  pause(id: string, step: string): Promise<void>;
  unpause(id: string, step: string): Promise<void>;
  startFromCheckpoint(id: string, checkpoint: string, step: string): Promise<void>;
  setRestartPolicy(id: string, policy: string, step: string): Promise<void>;
  kill(id: string, step: string): Promise<void>;
  remove(id: string, step: string, options?: { force?: boolean; volumes?: boolean }): Promise<void>;
  rename(id: string, name: string, step: string): Promise<void>;
  removeIfPresent(ref: string, step: string): Promise<boolean>;
  removeImage(id: string, step: string): Promise<void>;
  logs(id: string, step: string): Promise<string>;
  processes(id: string, step: string): Promise<string[]>;
  /** The processes in the container's cgroup, by host PID. */
  processTable(id: string, step: string): Promise<ProcessRow[]>;
  /** Shell commands for streams: an image written to stdout, and read from stdin. */
  saveImageCommand(ref: string): string;
  loadImageCommand(): string;
  /** Where the engine reads a checkpoint for a restore. */
  checkpointDir(root: string, containerId: string, checkpoint: string): string;
  /** Where the runtime writes CRIU's restore log while a restore runs. */
  restoreLogPaths(root: string, containerId: string): string[];
}
