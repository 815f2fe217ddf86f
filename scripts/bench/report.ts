/** The benchmark's results file (bench/results/latest.json): raw runs, their summary, targets, notes. */

export const MIGRATION_WAYS = [
  'seed',
  'action',
  'action-overlap',
  'podman',
  'podman-uncompressed',
  'action-lazy',
] as const;
/** The ways a plain `npm run bench` runs; action-lazy (memory: lazy) only with --lazy or --methods. */
export const DEFAULT_WAYS = [
  'seed',
  'action',
  'action-overlap',
  'podman',
  'podman-uncompressed',
] as const satisfies readonly MigrationWay[];
/** The sizes of the post-copy section (--lazy): the flat-downtime target names them. */
export const LAZY_SIZES = [256, 1024, 2048] as const;
export type MigrationWay = (typeof MIGRATION_WAYS)[number];
/** Podman's configurations: its default (zstd) and `--compress none`; the better one is "Podman's best". */
export const PODMAN_WAYS = ['podman', 'podman-uncompressed'] as const satisfies readonly MigrationWay[];
/** The transports the floor may take its speed from: the fastest of them in the same run sets it. */
export const FLOOR_TRANSPORTS = ['openssh', 'action-raw', 'host-to-host'] as const;

/**
 * The workload's proof that its memory arrived: a checksum of the whole value
 * it holds, computed by the workload itself before the move (source) and after
 * it (target). "not checked" when either side could not be read.
 */
export interface MemoryCheck {
  status: 'intact' | 'differs' | 'not checked';
  before?: string;
  after?: string;
  /** Why it was not checked, when it was not. */
  why?: string;
}

export interface MemoryCount {
  intact: number;
  differs: number;
  notChecked: number;
}
export const MEMORY_PATTERNS = ['random', 'text', 'zeros'] as const;
export type MemoryPattern = (typeof MEMORY_PATTERNS)[number];

export interface Spread {
  median: number;
  min: number;
  max: number;
  n: number;
}

/** One migration of the counter workload (or of the redis service) by one way. */
export interface MigrationRun {
  method: MigrationWay;
  /** "counter" (the workload of MB MiB) or "redis" (the real service). */
  workload?: 'counter' | 'redis';
  sizeMiB: number;
  rep: number;
  position?: number;
  error?: string;
  /** The largest gap in the workload's combined logs; for redis, the longest run of failed pings. */
  downtimeMs?: number;
  boundaryGapMs?: number;
  continued?: boolean;
  tickMs?: number;
  totalMs?: number;
  bytes?: number;
  runnerRssKb?: number;
  runnerCpuS?: number;
  checkpointBytes?: number;
  stepsMs?: Record<string, number>;
  /** Action only: from its metadata JSON. */
  reportedDowntimeMs?: number;
  /** action-lazy: from the freeze until the last page arrived on the target (timings.lastPageMs). */
  lastPageMs?: number;
  /** action-lazy: the bytes that followed the restored container through the runner. */
  lazyPageBytes?: number;
  /** Action only: container bytes that crossed the runner (metadata route.runnerBytes), and the route taken. */
  runnerBytes?: number;
  route?: string;
  /** The action's own breakdown of the frozen window (timings.frozenWindowMs), when it reports one. */
  windowMs?: Record<string, number>;
  phasesMs?: Record<string, number>;
  dumpMs?: number;
  restoreCriuMs?: number;
  codec?: string;
  restorePath?: string;
  criuStats?: Record<string, number>;
  /** The workload's content checksum before and after the move. */
  memory?: MemoryCheck;
  /** Redis only: whether the process survived (same run_id) and the data set came along (same DBSIZE). */
  redis?: { runIdKept: boolean; keysBefore: number; keysAfter: number };
}

/** The floor's measured parts on one host; the transfer part is added from the transport measurement. */
export interface FloorRun {
  sizeMiB: number;
  rep: number;
  pauseMs?: number;
  dumpMs?: number;
  /** `docker start --checkpoint` with the page images staged outside the checkpoint directory. */
  restoreMs?: number;
  restoreCriuMs?: number;
  checkpointBytes?: number;
  /** The same frozen container dumped again into a `criu page-server` on the host's own loopback. */
  dumpPageServerMs?: number;
  /** The gap the workload saw on one host (dump then staged restore, no transfer). */
  oneHostDowntimeMs?: number;
  tickMs?: number;
}

export interface TransportRun {
  tool: string;
  /** Where its clock starts: "after connections are open" for every tool of this bench. */
  clock?: string;
  label: string;
  rep: number;
  ms: number;
  bytes: number;
  MBps: number;
  runnerRssKb: number;
  runnerCpuS: number;
}

/** One repetition of the checkpoint and restore modes section on host 1. */
export interface ModesRun {
  sizeMiB: number;
  /** Random data written into the writable layer before the checkpoint (--layer-mib). */
  layerMiB?: number;
  rep: number;
  error?: string;
  frozenMs?: number;
  workloadFrozenMs?: number;
  eventsFrozenMs?: number;
  pauseMs?: number;
  runcCheckpointMs?: number;
  unpauseMs?: number;
  dumpMs?: number;
  criuDumpMs?: number;
  dumpBytes?: number;
  checkpointPhasesMs?: Record<string, number>;
  checkpointDurationMs?: number;
  checkpointBytes?: number;
  restorePhasesMs?: Record<string, number>;
  restoreDurationMs?: number;
  restoreCriuMs?: number;
  freezeRatio?: number;
  restoreRatio?: number;
  continued?: boolean;
  tickMs?: number;
}

export interface WaySummary {
  downtimeMs?: Spread;
  totalMs?: Spread;
  bytes?: Spread;
  runnerRssKb?: Spread;
  checkpointBytes?: Spread;
  continued: boolean;
  failed: number;
  /** Memory checks of the runs that completed (failed runs are counted in failed). */
  memory?: MemoryCount;
  phasesMs?: Record<string, number>;
  stepsMs?: Record<string, number>;
  dumpMs?: Spread;
  restoreCriuMs?: Spread;
  reportedDowntimeMs?: Spread;
  lastPageMs?: Spread;
  /** Container bytes through the runner, and the routes the runs took. */
  runnerBytes?: Spread;
  routes?: string[];
  windowMs?: Record<string, number>;
}

/** The floor at one size: its parts (medians) and their sum, per repetition then median. */
export interface FloorSummary {
  pauseMs?: Spread;
  dumpMs?: Spread;
  restoreMs?: Spread;
  restoreCriuMs?: Spread;
  checkpointBytes?: Spread;
  /** The transport whose median speed set the floor (the fastest of FLOOR_TRANSPORTS measured). */
  transferTool?: string;
  transferMBps?: number;
  /** checkpointBytes at that speed. */
  transferMs?: Spread;
  /** pause + dump + transfer + staged restore. */
  floorMs?: Spread;
  /** pause + max(dump, transfer) + staged restore: dump and transfer overlapped. */
  overlapFloorMs?: Spread;
  dumpPageServerMs?: Spread;
  /**
   * pause + max(dump into a local page server, transfer) + staged restore: the bound for
   * memory: overlap, whose dump writes no pages on the source.
   */
  pageServerFloorMs?: Spread;
  oneHostDowntimeMs?: Spread;
}

export interface ModesSummary {
  frozenMs?: Spread;
  dumpMs?: Spread;
  freezeRatio?: Spread;
  restoreCriuMs?: Spread;
  restoreRatio?: Spread;
  restorePhaseMs?: Spread;
  checkpointPhaseMs?: Spread;
  workloadFrozenMs?: Spread;
  eventsFrozenMs?: Spread;
  continued: boolean;
  failed: number;
}

export interface SizeSummary {
  ways: Partial<Record<MigrationWay, WaySummary>>;
  floor?: FloorSummary;
  modes?: ModesSummary;
}

export interface TransportSummary {
  label: string;
  MBps: Spread;
  runnerRssKb?: Spread;
  runnerCpuS?: Spread;
}

export interface Summary {
  bySize: Record<string, SizeSummary>;
  transport: Record<string, TransportSummary>;
  /** The redis service, per way (one size: the data set). */
  /** runIdKept / keysKept undefined: no run completed, so not measured. */
  redis: Partial<Record<MigrationWay, WaySummary & { runIdKept?: boolean; keysKept?: boolean }>>;
}

export interface Target {
  target: string;
  observed: string;
  met: boolean | undefined;
}

export interface Report {
  schema: 2;
  startedAt: string;
  finishedAt: string;
  machine: {
    cpus: number;
    memGiB: number;
    kernel: string;
    loadStart: string;
    loadEnd: string;
    loadSamples: { at: string; load1: number }[];
  };
  versions: Record<string, string>;
  dist: { sha256: string; changedDuringRun: boolean };
  settings: {
    sizes: number[];
    reps: number;
    quick: boolean;
    methods: MigrationWay[];
    pattern: MemoryPattern;
    floor: boolean;
    transport: boolean;
    modes: boolean;
    redis: boolean;
    redisMiB: number;
    /** Absent in results from before --redis-reps: the same as reps then. */
    redisReps?: number;
    /** A post-copy-only run (--lazy): its files are lazy.*; absent in older results. */
    lazy?: boolean;
    tick: string;
    transportBytes: number;
    out: string;
    testbed: Record<string, string>;
  };
  summary: Summary;
  targets: Target[];
  notes: string[];
  runs: MigrationRun[];
  floors: FloorRun[];
  transport: TransportRun[];
  modes: ModesRun[];
}
