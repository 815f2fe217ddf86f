import { expect } from 'vitest';
import {
  type CounterLine,
  containerLogs,
  onHost,
  onHostResult,
  parseCounter,
  type Testbed,
} from './testbed.js';

/** The container's state on a host, or undefined when it has none by that name. */
export async function containerState(
  bed: Testbed,
  destination: string,
  name: string,
): Promise<{ Running: boolean; Paused: boolean; Status: string } | undefined> {
  const result = await onHostResult(bed, destination, `docker inspect --format '{{json .State}}' ${name}`);
  if (result.code !== 0) return undefined;
  return JSON.parse(result.stdout);
}

/** Running and not paused on `where`; absent or stopped on the other host. */
export async function expectRunningOnlyOn(bed: Testbed, where: string, name: string): Promise<void> {
  const other = where === bed.host1 ? bed.host2 : bed.host1;
  const here = await containerState(bed, where, name);
  expect(here, `${name} on ${where}`).toMatchObject({ Running: true, Paused: false });
  const there = await containerState(bed, other, name);
  if (there) expect(there.Running, `${name} must not run on ${other}`).toBe(false);
}

/** One process all along (one token), numbers without a gap or restart, still counting. */
export async function expectCounterContinued(bed: Testbed, where: string, name: string): Promise<void> {
  const before = parseCounter(await containerLogs(bed, where, name));
  await new Promise((resolve) => setTimeout(resolve, 1200));
  const after = parseCounter(await containerLogs(bed, where, name));
  expect(after.length).toBeGreaterThan(before.length);
  expect(new Set(after.map((line) => line.token)).size).toBe(1);
  after.forEach((line, i) => {
    expect(line.n).toBe(after[0]!.n + i);
  });
}

/**
 * The restored process goes on from the last line seen before the freeze: same token, next
 * number. CRIU saves what sat unread in the stdout pipe at the freeze and writes it back on
 * restore, while the source's log reader may already have read it, so the boundary line can
 * show on both sides: then it is that very line (same number and timestamp), followed by the next.
 */
export function expectResumedAfter(last: CounterLine, restored: CounterLine[]): void {
  const first = restored[0];
  expect(first, 'the restored container printed no counter line').toBeDefined();
  expect(first!.token).toBe(last.token);
  if (first!.n === last.n) {
    expect(first!.ms, 'a repeated number must be the replayed pipe line, not a rerun').toBe(last.ms);
    expect(restored[1]?.n).toBe(last.n + 1);
  } else {
    expect(first!.n).toBe(last.n + 1);
  }
}

/**
 * Nothing of the run left on either host: no memory images, no open journal,
 * no lock, no checkpoint directories, no containerd restore copies, no stream
 * fifos and no stream process still waiting.
 */
export async function expectNothingLeft(bed: Testbed, name: string): Promise<void> {
  for (const host of [bed.host1, bed.host2]) {
    const listing = await onHost(
      bed,
      host,
      [
        `ls -A /var/lib/criu-migrate/work 2>/dev/null`,
        `ls -d /var/lib/criu-migrate/containers/${name}/journal.json /var/lib/criu-migrate/containers/${name}/lock 2>/dev/null`,
        'ls -d /var/lib/docker/containers/*/checkpoints/* 2>/dev/null',
        'ls -d /tmp/ctrd-checkpoint* 2>/dev/null',
        // A stream's fifo directory, as relay.ts made them before its streams used plain pipes.
        "find /tmp -maxdepth 2 -path '/tmp/tmp.*/f' -type p 2>/dev/null",
        // An armed direct stream's pipe to its ssh client (host/armed.ts), and the run's route files.
        "find /tmp -maxdepth 2 -path '/tmp/tmp.*/p' -type p 2>/dev/null",
        'ls -A /var/lib/criu-migrate/direct 2>/dev/null',
        // A direct stream's ssh client, or the receiving end of one, still running in this host's mount namespace.
        `for p in $(pgrep -f '[H]ostKeyAlias=criu-migrate-target|criu-migrate/direct/.*/[r]eceive'); do [ "$(readlink /proc/$p/ns/mnt)" = "$(readlink /proc/self/ns/mnt)" ] && echo "direct stream $p: $(tr '\\0' ' ' </proc/$p/cmdline)"; done`,
        // A stream's hash (relay.ts) still running in this host's mount namespace: nothing may wait for ever.
        `for p in $(pgrep -x sha256sum); do [ "$(readlink /proc/$p/ns/mnt)" = "$(readlink /proc/self/ns/mnt)" ] && echo "sha256sum $p: $(tr '\\0' ' ' </proc/$p/cmdline)"; done`,
        'true',
      ].join('; '),
    );
    expect(listing, `left on ${host}`).toBe('');
  }
}

/** The newest archived journal of the container on a host. */
export async function lastRecord(bed: Testbed, host: string, name: string): Promise<Record<string, unknown>> {
  const text = await onHost(
    bed,
    host,
    `cat "$(ls -1t /var/lib/criu-migrate/containers/${name}/history/*.json | head -n 1)"`,
  );
  return JSON.parse(text);
}
