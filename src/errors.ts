// Every refusal and failure carries a stable code: the operators' guide and
// later runs key on these, so never rename one, only add.
export const ERROR_CODES = [
  'INPUT_INVALID',
  'SSH_KEY_MISSING',
  'HOST_KEY_UNKNOWN',
  'HOST_KEY_MISMATCH',
  'SSH_UNREACHABLE',
  'SSH_TIMEOUT',
  'SSH_AUTH_FAILED',
  'SSH_DISCONNECTED',
  'SUDO_REFUSED',
  'COMMAND_FAILED',
  'KERNEL_MISMATCH',
  'CRIU_MISSING',
  'CRIU_TOO_OLD',
  'CRIU_CHECK_FAILED',
  'CRIU_TARGET_OLDER',
  'CPU_INCOMPATIBLE',
  'DOCKER_MISSING',
  'DOCKER_NOT_EXPERIMENTAL',
  'DOCKER_RESTORE_BROKEN',
  'RUNTIME_UNSUPPORTED',
  'STORAGE_DRIVER_UNSUPPORTED',
  'CONTAINER_NOT_FOUND',
  'CONTAINER_NOT_RUNNING',
  'CONTAINER_HAS_DEVICES',
  'TARGET_NAME_TAKEN',
  'PORT_IN_USE',
  'MOUNT_SOURCE_MISSING',
  'DISK_SPACE_LOW',
  'IMAGE_TRANSFER_FAILED',
  'TARGET_CREATE_FAILED',
  'CHECKPOINT_FAILED',
  'TRANSFER_FAILED',
  'CHECKSUM_MISMATCH',
  'RESTORE_FAILED',
  'VERIFY_FAILED',
  'SOURCE_STOP_FAILED',
  'ROLLBACK_FAILED',
  'TIMEOUT',
  'PREFLIGHT_FAILED',
  'MODE_NOT_IMPLEMENTED',
  'CONTAINER_SHARES_NAMESPACE',
  // Preflight: every check that does not pass carries one of these (warnings too: strict fails on them).
  'FACT_UNREADABLE',
  'NOT_ROOT',
  'HOST_KEY_UNVERIFIED',
  'CRIU_FEATURE_MISSING',
  'CPU_FEATURES_DIFFER',
  'DOCKER_UNTESTED',
  'CGROUP_MISMATCH',
  'NETWORK_MODE_HOST',
  'NETWORK_MISSING',
  'VOLUME_MISSING',
  'TCP_CONNECTIONS_OPEN',
  'SETTINGS_NOT_CARRIED',
  'MEMORY_LOW',
  'COMPRESSION_UNAVAILABLE',
  'CANCELLED',
  'MIGRATION_IN_PROGRESS',
  'CHECKPOINT_NOT_FOUND',
  // Named volumes that move with the container.
  'VOLUME_SHARED',
  'VOLUME_TARGET_NOT_EMPTY',
  'VOLUME_TRANSFER_FAILED',
  // A target volume with driver options (o=bind, NFS): its _data is not what the container sees.
  'VOLUME_TARGET_HAS_OPTIONS',
  // A name or path read from a host (docker inspect, a stored manifest) of a shape the action will not use.
  'UNSAFE_VALUE',
  // Docker 28/29 targets: the network holder's program exists for some architectures only,
  // and the holder container itself can fail to come up.
  'NETWORK_HOLDER_UNSUPPORTED',
  'NETWORK_HOLDER_FAILED',
  // cgroup v2 targets whose runc and Docker give CRIU no way into the new container's cgroup.
  'CGROUP2_RESTORE_UNSUPPORTED',
  // docker exec sessions: not dumped; one holding a connection to the container's own processes stops the dump.
  'EXEC_PROCESSES_LEFT',
  'EXEC_SESSION_CONNECTED',
  // The commit point reached no host's journal: the verified target runs, the source stays frozen.
  'COMMIT_NOT_DURABLE',
  // memory: lazy (post-copy): a host that cannot serve or take lazy pages; the page stream broke.
  'LAZY_PAGES_UNSUPPORTED',
  'LAZY_PAGES_BROKEN',
  // route: direct, and the source cannot stream to the target itself.
  'DIRECT_ROUTE_UNAVAILABLE',
  // The checkpoint store: a stored layer that disagrees with the dump; a name with several series.
  'CHECKPOINT_INCONSISTENT',
  'SERIES_AMBIGUOUS',
  // A selection's compose project: it can only move as one unit, which is not built yet.
  'COMPOSE_UNIT_UNSUPPORTED',
  // Restore mode: a checkpoint's network route (manifest) that the target cannot take.
  'CHECKPOINT_DIRECT_ONLY',
  'CHECKPOINT_NEEDS_HOLDER',
  // Restore drills: the checkpoint did not restore; a checkpoint that cannot be drilled in isolation.
  'CHECKPOINT_NOT_RESTORABLE',
  'DRILL_NEEDS_NETWORK',
  'DRILL_MOUNT_NOT_COPIED',
  // A compose project moved as one unit.
  'COMPOSE_PEER_CONNECTED',
  'COMPOSE_DEPENDENCY_CYCLE',
  'COMPOSE_NETWORK_CONFLICT',
  'COMPOSE_MEMBER_FAILED',
  'UNIT_COMMIT_UNKNOWN',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export interface ErrorContext {
  /** Migration phase the error happened in (connect, preflight, stage, checkpoint, transfer, restore, verify, finalize, rollback). */
  step?: string;
  /** Host label and address, e.g. "target root@10.0.0.2:22". */
  host?: string;
  /** One line telling the operator what to do about it. */
  remedy?: string;
  /** Extra lines worth showing (for example the tail of a CRIU log). */
  detail?: string;
  cause?: unknown;
}

export class MigrationError extends Error {
  readonly code: ErrorCode;
  readonly step: string | undefined;
  readonly host: string | undefined;
  readonly remedy: string | undefined;
  readonly detail: string | undefined;

  constructor(code: ErrorCode, message: string, context: ErrorContext = {}) {
    super(message, context.cause === undefined ? undefined : { cause: context.cause });
    this.name = 'MigrationError';
    this.code = code;
    this.step = context.step;
    this.host = context.host;
    this.remedy = context.remedy;
    this.detail = context.detail;
  }

  /** One block an operator can read in a log: code, where, what, what to do. */
  describe(): string {
    const where = [this.step && `step ${this.step}`, this.host && `on ${this.host}`]
      .filter(Boolean)
      .join(' ');
    const lines = [`${this.code}: ${this.message}${where ? ` (${where})` : ''}`];
    if (this.detail) lines.push(this.detail);
    if (this.remedy) lines.push(`What to do: ${this.remedy}`);
    return lines.join('\n');
  }
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

/** Wraps anything thrown into a MigrationError, keeping one that already is. */
export function asMigrationError(
  error: unknown,
  code: ErrorCode,
  context: ErrorContext = {},
): MigrationError {
  if (error instanceof MigrationError) return error;
  return new MigrationError(code, errorMessage(error), { ...context, cause: error });
}

/** The same error, naming the step it happened in when it did not say. */
export function inStep(error: MigrationError, step: string): MigrationError {
  if (error.step) return error;
  return new MigrationError(error.code, error.message, {
    step,
    host: error.host,
    detail: error.detail,
    remedy: error.remedy,
    cause: error,
  });
}

/** The same error with a remedy, when it had none. */
export function withRemedy(error: MigrationError, remedy: string): MigrationError {
  if (error.remedy) return error;
  return new MigrationError(error.code, error.message, {
    step: error.step,
    host: error.host,
    detail: error.detail,
    remedy,
    cause: error,
  });
}

/**
 * Promise.all that waits for every promise before it throws the first
 * rejection: a rollback must not start while a sibling is still making the
 * side effect it is about to undo.
 */
export async function allSettledOrThrow<T extends readonly unknown[] | []>(
  promises: T,
): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }> {
  const results: readonly PromiseSettledResult<unknown>[] = await Promise.allSettled([...promises]);
  const values: unknown[] = [];
  for (const result of results) {
    if (result.status === 'rejected') throw result.reason;
    values.push(result.value);
  }
  return values as {
    -readonly [K in keyof T]: Awaited<T[K]>;
  };
}
