/** Command line and environment of `npm run bench`; pure, so the unit tests can drive it. */
import { parseArgs } from 'node:util';
import {
  DEFAULT_WAYS,
  LAZY_SIZES,
  MEMORY_PATTERNS,
  type MemoryPattern,
  MIGRATION_WAYS,
  type MigrationWay,
} from './report.js';

export const USAGE = `npm run bench [-- options]

Migrates the counter workload (scripts/bench/workload/bench-counter.sh, TICK=0.01, MB MiB
of memory of PATTERN) from host 1 to host 2 of the bench's own test bed by every way, in
rotating order each repetition: seed (the seed article's procedure), action (dist/, default
settings), podman (checkpoint --export / restore --import, its default zstd) and
podman-uncompressed (the same with --compress none). Each run checks the workload's memory
by content (md5 of its whole value before and after). Then per size the floor
(scripts/bench/floor.sh) and the checkpoint/restore modes on host 1, then the transport
alone (OpenSSH relay, the action's SSH code with and without sha256, OpenSSH host 1 ->
host 2 directly), then redis-server with a data set (DEBUG DIGEST before and after).

Options:
  --sizes 64,256,1024   workload sizes in MiB (default 64,256,1024)
  --skip-1g             leave out sizes of 1024 MiB and more
  --reps N              repetitions per size and way (default 3)
  --quick               smoke run: --sizes 64 --reps 1, 256 MiB transport, 64 MiB redis
  --methods a,b         subset of seed,action,action-overlap,podman,podman-uncompressed,action-lazy (none:
                        only the floor and the modes; default: all but action-lazy)
  --lazy                the post-copy section alone: the action with memory: lazy
                        (action-lazy) at 256,1024,2048 MiB (--sizes and --methods still apply),
                        no transport, floor, modes or redis; per run the downtime the workload
                        saw, the time until the last page arrived, the memory by checksum and the
                        action's frozen-window breakdown. Raises the kernel's fs.pipe-max-size to
                        4 MiB for the runs (CRIU's page pipes) and puts the old value back
  --pattern P           random (default: incompressible), text or zeros
  --transport-mib N     size of the transport stream (default 1024)
  --redis-mib N         redis data set in MiB of random values (default 256)
  --redis-reps N        repetitions of the redis section (default: --reps)
  --layer-mib N         modes: write N MiB of random data into the container's writable layer
                        before the checkpoint (default 0: the counter's small layer)
  --dist DIR            run the action bundle in DIR (another build's dist/) instead of dist/
  --no-transport, --no-floor, --no-modes, --no-redis   leave that part out
  --out DIR             results directory (default bench/results)
  --unit                only the compose unit section (off by default; 2.5 min per repetition at
                        load 15 to 33 here): a two-service compose project (two counters of
                        --unit-mib MiB each on the project network) moved as one unit against the
                        same two containers moved one at a time (two plain migrate runs); total
                        frozen time and longest single freeze from the workloads' ticks, the
                        action's metadata beside them, memory by content; writes unit.json and
                        unit.md into --out (latest.* are left alone); uses --reps and --pattern
  --unit-mib N          memory per service of the unit section (default 64)
  --render FILE         no measuring: write latest.md and latest.svg of --out again from a results JSON
Environment (the bench's own test bed):
  BENCH_TESTBED_STATE   state directory (default /var/lib/criu-migrate-testbed-bench)
  BENCH_HOST1_ADDR, BENCH_HOST2_ADDR, BENCH_HOST3_ADDR   loopback addresses (127.0.0.6, .7, .8)
The last two lines printed are
  checkpoint freeze ratio at 256 MiB: X.XX; restore ratio at 256 MiB: X.XX
  downtime ratio seed/action at 256 MiB: X.XX; podman/action: Y.YY; action/floor: Z.ZZ
(podman: its best configuration at 256 MiB; floor: priced at the fastest transport measured)
`;

export interface Options {
  sizes: number[];
  reps: number;
  quick: boolean;
  methods: MigrationWay[];
  pattern: MemoryPattern;
  transportBytes: number;
  redisMiB: number;
  redisReps: number;
  layerMiB: number;
  /** The bundle directory the action runs from; dist/ of the repository when undefined. */
  dist: string | undefined;
  transport: boolean;
  floor: boolean;
  modes: boolean;
  redis: boolean;
  out: string;
  render: string | undefined;
  /** Only the compose unit section (unit.json / unit.md). */
  unit: boolean;
  unitMiB: number;
  /** The post-copy section alone (action-lazy at LAZY_SIZES). */
  lazy: boolean;
  help: boolean;
  state: string;
  hostAddrs: [string, string, string];
}

const MIB = 1024 * 1024;

function positive(text: string, name: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, not "${text}"`);
  return n;
}

/** The bench never talks to anything but its loopback test bed. */
function loopback(env: NodeJS.ProcessEnv, name: string, fallback: string): string {
  const value = env[name] ?? fallback;
  if (!/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(value))
    throw new Error(`${name} must be a 127.0.0.0/8 address, not ${value}`);
  return value;
}

export function parseOptions(args: string[], env: NodeJS.ProcessEnv): Options {
  const { values } = parseArgs({
    args,
    options: {
      sizes: { type: 'string' },
      'skip-1g': { type: 'boolean', default: false },
      reps: { type: 'string' },
      quick: { type: 'boolean', default: false },
      methods: { type: 'string' },
      pattern: { type: 'string' },
      'transport-mib': { type: 'string' },
      'redis-mib': { type: 'string' },
      'redis-reps': { type: 'string' },
      'layer-mib': { type: 'string' },
      dist: { type: 'string' },
      'no-transport': { type: 'boolean', default: false },
      'no-floor': { type: 'boolean', default: false },
      'no-modes': { type: 'boolean', default: false },
      'no-redis': { type: 'boolean', default: false },
      out: { type: 'string' },
      render: { type: 'string' },
      unit: { type: 'boolean', default: false },
      lazy: { type: 'boolean', default: false },
      'unit-mib': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  const quick = values.quick ?? false;
  const lazy = values.lazy ?? false;
  const defaultSizes = lazy ? LAZY_SIZES.join(',') : quick ? '64' : '64,256,1024';
  let sizes = (values.sizes ?? defaultSizes).split(',').map((s) => positive(s, '--sizes'));
  if (values['skip-1g']) sizes = sizes.filter((s) => s < 1024);
  const methodsText = values.methods ?? (lazy ? 'action-lazy' : DEFAULT_WAYS.join(','));
  const methods = (methodsText === 'none' ? [] : methodsText.split(',')).map((m) => {
    const way = MIGRATION_WAYS.find((w) => w === m);
    if (!way) throw new Error(`unknown way ${m}: one of ${MIGRATION_WAYS.join(', ')}`);
    return way;
  });
  const patternText = values.pattern ?? 'random';
  const pattern = MEMORY_PATTERNS.find((p) => p === patternText);
  if (!pattern) throw new Error(`--pattern must be one of ${MEMORY_PATTERNS.join(', ')}, not ${patternText}`);
  const reps = positive(values.reps ?? (quick ? '1' : '3'), '--reps');
  const hostAddrs: [string, string, string] = [
    loopback(env, 'BENCH_HOST1_ADDR', '127.0.0.6'),
    loopback(env, 'BENCH_HOST2_ADDR', '127.0.0.7'),
    loopback(env, 'BENCH_HOST3_ADDR', '127.0.0.8'),
  ];
  // Each host runs its own sshd on port 22 of its address.
  if (new Set(hostAddrs).size !== 3)
    throw new Error(`the bench hosts' addresses must differ: ${hostAddrs.join(' ')}`);
  return {
    sizes: [...new Set(sizes)].sort((a, b) => a - b),
    reps,
    redisReps: values['redis-reps'] === undefined ? reps : positive(values['redis-reps'], '--redis-reps'),
    quick,
    methods,
    pattern,
    transportBytes: positive(values['transport-mib'] ?? (quick ? '256' : '1024'), '--transport-mib') * MIB,
    redisMiB: positive(values['redis-mib'] ?? (quick ? '64' : '256'), '--redis-mib'),
    layerMiB: values['layer-mib'] === undefined ? 0 : positive(values['layer-mib'], '--layer-mib'),
    dist: values.dist,
    // The post-copy section measures the lazy moves alone.
    transport: !lazy && !values['no-transport'],
    floor: !lazy && !values['no-floor'],
    modes: !lazy && !values['no-modes'],
    redis: !lazy && !values['no-redis'],
    lazy,
    out: values.out ?? 'bench/results',
    render: values.render,
    unit: values.unit ?? false,
    unitMiB: positive(values['unit-mib'] ?? '64', '--unit-mib'),
    help: values.help ?? false,
    state: env.BENCH_TESTBED_STATE ?? '/var/lib/criu-migrate-testbed-bench',
    hostAddrs,
  };
}
