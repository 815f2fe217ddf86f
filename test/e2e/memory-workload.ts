import { containerLogs, moveInputs, onHost, onHostResult, type Testbed } from './testbed.js';

/**
 * Holds MB MiB of incompressible bytes and prints their md5 once built ("sum0")
 * and again whenever /tmp/check changes ("sum"): computed by the workload
 * itself from the memory it holds, before and after a move.
 */
const WORKLOAD = [
  `big=$(head -c $((MB * 1048576)) /dev/urandom | tr '\\000\\n' '\\001\\001')`,
  'echo "sum0 $(printf %s "$big" | md5sum | cut -c1-32)"',
  'n=0; seen=',
  'while :; do',
  '  n=$((n + 1)); echo "tick $n"',
  '  if [ -s /tmp/check ]; then w=$(cat /tmp/check); if [ "$w" != "$seen" ]; then seen=$w; echo "sum $(printf %s "$big" | md5sum | cut -c1-32)"; fi; fi',
  '  sleep 0.1',
  'done',
].join('\n');

/** The log line every tick of the workload prints, for verify-log-pattern. */
export const TICK_PATTERN = '^tick \\d+$';

/** A migrate run of the workload from host 1 to host 2, checked by its ticks. */
export function memoryMoveInputs(
  bed: Testbed,
  name: string,
  extra: Record<string, string>,
): Record<string, string> {
  return moveInputs(bed, name, {
    'verify-log-pattern': TICK_PATTERN,
    'verify-timeout': '60',
    timeout: '10',
    ...extra,
  });
}

function quote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

export async function until<T>(what: string, probe: () => Promise<T | undefined>, polls = 400): Promise<T> {
  for (let i = 0; i < polls; i++) {
    const found = await probe();
    if (found !== undefined) return found;
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  throw new Error(`${what}: not seen after ${polls} polls`);
}

/** Starts the workload as `name` on host 1 (none on host 2) and returns the md5 it computed of its memory. */
export async function startMemoryWorkload(bed: Testbed, name: string, mb: number): Promise<string> {
  for (const host of [bed.host1, bed.host2]) {
    await onHostResult(
      bed,
      host,
      `docker rm -f ${name}; rm -rf /var/lib/criu-migrate/containers/${name} /var/lib/criu-migrate/work/*`,
    );
  }
  await onHost(
    bed,
    bed.host1,
    `docker run -d --name ${name} -e MB=${mb} ${bed.image} sh -c ${quote(WORKLOAD)}`,
  );
  return until('the workload built its memory', async () => {
    const logs = await containerLogs(bed, bed.host1, name);
    return /^sum0 ([0-9a-f]{32})$/m.exec(logs)?.[1];
  });
}

/** Asks the workload on a host for the md5 of its memory now. */
export async function memorySum(bed: Testbed, host: string, name: string): Promise<string> {
  const token = `${Date.now()}`;
  await onHost(bed, host, `docker exec ${name} sh -c 'echo ${token} >/tmp/check'`);
  return until(`the md5 of the memory on ${host}`, async () => {
    const logs = await containerLogs(bed, host, name);
    return [...logs.matchAll(/^sum ([0-9a-f]{32})$/gm)].at(-1)?.[1];
  });
}
