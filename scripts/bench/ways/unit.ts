/**
 * The unit section (--unit): a compose project of two counters on its project network, moved
 * host 1 -> host 2 as one unit (one run, `unit: compose:<project>`) and, the same project again,
 * one container at a time (two plain `container:` runs). Freezes come from the workloads' ticks.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MigrationMetadata } from '../../../src/report/metadata.js';
import type { UnitReport } from '../../../src/report/unit-report.js';
import { runAction } from '../../../test/e2e/run-action.js';
import { parseCounter } from '../../../test/e2e/testbed.js';
import { sleep } from '../bed.js';
import { memoryVerdict } from '../stats.js';
import { combineFreezes, type Freeze, freezeOf, type UnitRun, type UnitWay } from '../unit-stats.js';
import { type BenchContext, bothLogs, cleanHost, counterSum, IMAGE, log, logsCommand, TICK } from './way.js';

export const UNIT_PROJECT = 'bench-unit';
export const UNIT_SERVICES = ['a', 'b'] as const;
const NETWORK = `${UNIT_PROJECT}_default`;
const containerOf = (service: string): string => `${UNIT_PROJECT}-${service}-1`;

/** Two counters on the project's default (bridge) network; the image is already on both hosts. */
export function unitComposeFile(sizeMiB: number, pattern: string): string {
  const service = (name: string) => `  ${name}:
    image: ${IMAGE}
    pull_policy: never
    runtime: runc
    security_opt:
      - seccomp=unconfined
    environment:
      MB: "${sizeMiB}"
      TICK: "${TICK}"
      PATTERN: "${pattern}"
`;
  return `services:\n${UNIT_SERVICES.map(service).join('')}`;
}

/** The bench's containers, the project's network and the action's records of them, on both hosts. */
async function cleanUnit(ctx: BenchContext): Promise<void> {
  const { bed } = ctx;
  await Promise.all([cleanHost(ctx, bed.host1), cleanHost(ctx, bed.host2)]);
  for (const host of [bed.host1, bed.host2])
    await bed.on(host, `docker network rm ${NETWORK} >/dev/null 2>&1; rm -rf /tmp/${UNIT_PROJECT}`);
}

async function composeUp(ctx: BenchContext, sizeMiB: number): Promise<void> {
  const { bed } = ctx;
  await bed.must(
    bed.host1,
    `mkdir -p /tmp/${UNIT_PROJECT} && cat >/tmp/${UNIT_PROJECT}/compose.yml && docker-compose -p ${UNIT_PROJECT} -f /tmp/${UNIT_PROJECT}/compose.yml up -d 2>&1`,
    { input: unitComposeFile(sizeMiB, ctx.opts.pattern) },
  );
  // Each service builds its value first (seconds per 64 MiB with busybox), then ticks.
  const deadline = Date.now() + 60_000 + sizeMiB * 600;
  for (const service of UNIT_SERVICES) {
    for (;;) {
      const text = (await bed.on(bed.host1, logsCommand('docker', containerOf(service)))).stdout;
      const at = text.indexOf('start ');
      if (at >= 0 && parseCounter(text.slice(at)).length >= 10) break;
      if (Date.now() > deadline)
        throw new Error(`${containerOf(service)}: the workload did not start in time`);
      await sleep(1000);
    }
  }
}

/**
 * One at a time, each container needs its network on the target: made there before the runs
 * with the source's subnet and gateway, as an operator moving them singly would.
 */
async function networkOnTarget(ctx: BenchContext): Promise<void> {
  const { bed } = ctx;
  const config = (
    await bed.must(bed.host1, `docker network inspect ${NETWORK} --format '{{json .IPAM.Config}}'`)
  ).trim();
  const pool = (JSON.parse(config) as { Subnet: string; Gateway: string }[])[0];
  if (!pool) throw new Error(`${NETWORK} on host 1 has no address pool`);
  await bed.must(
    bed.host2,
    `docker network create --subnet ${pool.Subnet} --gateway ${pool.Gateway} --label com.docker.compose.project=${UNIT_PROJECT} --label com.docker.compose.network=default ${NETWORK} >/dev/null`,
  );
}

function connection(ctx: BenchContext): Record<string, string> {
  const bed = ctx.bed.testbed;
  return {
    'ssh-key': readFileSync(bed.sshKeyPath, 'utf8'),
    'known-hosts': readFileSync(bed.knownHostsPath, 'utf8'),
    source: ctx.bed.host1,
    target: ctx.bed.host2,
    mode: 'migrate',
  };
}

/** The action's ::error:: line (its code, message and remedy), or the end of its log. */
export function errorLine(stdout: string): string {
  const line = stdout.split('\n').find((l) => l.startsWith('::error::'));
  return (line ?? stdout.slice(-1500)).replace(/%0A/g, ' / ');
}

/** One action run; its outputs, or an error with the end of its log. */
async function runOnce(ctx: BenchContext, inputs: Record<string, string>) {
  const runnerTemp = mkdtempSync(join(tmpdir(), 'bench-runner-'));
  try {
    const run = await runAction(
      { ...connection(ctx), ...inputs },
      { runnerTemp, command: [process.execPath, ctx.actionEntry], timeoutMs: 1_800_000 },
    );
    if (run.exitCode !== 0 || run.outputs.status !== 'succeeded')
      throw new Error(
        `action (${JSON.stringify(inputs)}) ended ${run.outputs.status ?? `with exit ${run.exitCode}`} ${run.outputs['error-code'] ?? ''}: ${errorLine(run.stdout)}`,
      );
    const metadataPath = run.outputs['metadata-path'];
    const metadata = metadataPath ? (JSON.parse(readFileSync(metadataPath, 'utf8')) as unknown) : undefined;
    return { ms: run.ms, outputs: run.outputs, metadata };
  } finally {
    rmSync(runnerTemp, { recursive: true, force: true });
  }
}

/** What the action said each member was frozen for. */
async function move(
  ctx: BenchContext,
  way: UnitWay,
): Promise<{ actionMs: number; reported: Map<string, number> }> {
  const reported = new Map<string, number>();
  if (way === 'unit') {
    const run = await runOnce(ctx, { unit: `compose:${UNIT_PROJECT}` });
    const unit = JSON.parse(run.outputs.unit ?? '{}') as Partial<UnitReport>;
    for (const member of unit.members ?? [])
      if (member.downtimeMs !== undefined) reported.set(member.container, member.downtimeMs);
    return { actionMs: run.ms, reported };
  }
  await networkOnTarget(ctx);
  let actionMs = 0;
  for (const service of UNIT_SERVICES) {
    const run = await runOnce(ctx, { container: containerOf(service) });
    actionMs += run.ms;
    const downtime = (run.metadata as MigrationMetadata | undefined)?.timings.downtimeMs;
    if (downtime !== undefined) reported.set(containerOf(service), downtime);
  }
  return { actionMs, reported };
}

export async function measureUnit(
  ctx: BenchContext,
  way: UnitWay,
  sizeMiB: number,
  rep: number,
): Promise<UnitRun> {
  const { bed } = ctx;
  await cleanUnit(ctx);
  await composeUp(ctx, sizeMiB);
  const before = new Map<string, { sum?: string; why?: string }>();
  for (const service of UNIT_SERVICES)
    before.set(service, await counterSum(ctx, 'docker', bed.host1, containerOf(service), sizeMiB));
  log(`unit section, ${way}, ${sizeMiB} MiB x ${UNIT_SERVICES.length}, rep ${rep}: migrating`);
  const window = { fromMs: Date.now(), toMs: 0 };
  const moved = await move(ctx, way);
  window.toMs = Date.now();
  const freezes: Freeze[] = [];
  for (const service of UNIT_SERVICES) {
    const name = containerOf(service);
    const logs = await bothLogs(ctx, 'docker', { host: bed.host1, name }, { host: bed.host2, name });
    const seen = freezeOf(parseCounter(logs.sourceText), parseCounter(logs.targetText), window);
    if (!seen) throw new Error(`${name}: no gap in its ticks during the move`);
    const after = await counterSum(ctx, 'docker', bed.host2, name, sizeMiB);
    const memory = memoryVerdict(before.get(service) ?? {}, after);
    if (memory.status !== 'intact') log(`warning: ${name}: memory ${memory.status} (${memory.why ?? ''})`);
    const freeze: Freeze = { container: name, ...seen, memory };
    const reported = moved.reported.get(name);
    if (reported !== undefined) freeze.reportedMs = reported;
    freezes.push(freeze);
  }
  const run: UnitRun = {
    way,
    rep,
    sizeMiB,
    freezes,
    actionMs: Math.round(moved.actionMs),
    ...combineFreezes(freezes),
  };
  log(
    `unit section, ${way}, rep ${rep}: total frozen ${run.totalFrozenMs} ms, longest ${run.longestFreezeMs} ms, memory ${freezes.map((f) => f.memory.status).join('/')}`,
  );
  await cleanUnit(ctx);
  return run;
}

export { cleanUnit };
