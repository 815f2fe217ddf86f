import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containerState } from './invariants.js';
import { runAction } from './run-action.js';
import { loadTestbed, onHost, onHostResult, sshInputs, startCounter, type Testbed } from './testbed.js';

// The cutover gate over a whole host: real compose projects, plain containers, one that
// must be refused and one that is not running; then the matrix drives real migrations.
let bed: Testbed;
const plain = ['e2e-sel-a', 'e2e-sel-b'];

function composeFile(services: string[]): string {
  const lines = ['services:'];
  for (const service of services) {
    lines.push(
      `  ${service}:`,
      `    image: ${bed.image}`,
      '    command: testbed-counter',
      '    environment:',
      '      MB: "8"',
    );
  }
  return `${lines.join('\n')}\n`;
}

/** A project whose client holds one TCP connection to its server open: a connection between members. */
function connectedFile(): string {
  // Each end reads a FIFO it holds open itself, so neither nc sees end of input and closes.
  const hold = 'mkfifo /tmp/f; exec 3<>/tmp/f; while true; do';
  return `services:
  db:
    image: ${bed.image}
    command: ["sh", "-c", "${hold} nc -l -p 7000 <&3 >/dev/null; done"]
  app:
    image: ${bed.image}
    command: ["sh", "-c", "${hold} nc db 7000 <&3 >/dev/null; sleep 0.2; done"]
    depends_on:
      - db
`;
}

async function composeUp(project: string, services: string[], file = composeFile(services)): Promise<void> {
  await onHost(
    bed,
    bed.host1,
    `mkdir -p /tmp/${project} && cat >/tmp/${project}/compose.yml <<'EOF'\n${file}EOF\ndocker-compose -p ${project} -f /tmp/${project}/compose.yml up -d --quiet-pull 2>&1`,
  );
}

async function clean(): Promise<void> {
  for (const host of [bed.host1, bed.host2]) {
    await onHostResult(
      bed,
      host,
      'docker ps -aq | xargs -r docker rm -f; docker network ls -q --filter label=com.docker.compose.project | xargs -r docker network rm',
    );
  }
}

function gateInputs(extra: Record<string, string> = {}): Record<string, string> {
  return {
    mode: 'preflight',
    selection: 'all',
    source: bed.host1,
    target: bed.host2,
    ...sshInputs(bed),
    'upload-artifact': 'false',
    ...extra,
  };
}

beforeAll(async () => {
  bed = loadTestbed();
  await clean();
  await composeUp('e2e-shop', ['web', 'cache']);
  await composeUp('e2e-blog', ['db', 'app'], connectedFile());
  // The client's connection to the server is up (established in the server's table).
  for (let i = 0; i < 50; i++) {
    const tcp = await onHostResult(bed, bed.host1, 'docker exec e2e-blog-app-1 cat /proc/net/tcp');
    if (/^\s*\d+: \S+ \S+:1B58 01 /m.test(tcp.stdout)) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  for (const name of plain) await startCounter(bed, bed.host1, name, { mb: 8 });
  await startCounter(bed, bed.host1, 'e2e-sel-dev', { mb: 8, extraArgs: '--device /dev/zero' });
  await onHost(bed, bed.host1, `docker create --name e2e-sel-old ${bed.image} testbed-counter`);
});

afterAll(async () => {
  await clean();
});

describe('preflight over a selection (the cutover gate)', () => {
  let matrix: { include: { unit: string; container?: string }[] };

  it('gates every unit of the host once, reports each, and lists only the movable ones in the matrix', async () => {
    const run = await runAction(gateInputs());
    expect(run.exitCode, run.stdout).toBe(0);
    expect(run.outputs.status).toBe('succeeded');
    matrix = JSON.parse(run.outputs.matrix ?? '');
    expect(matrix).toEqual({
      include: [
        { unit: 'compose:e2e-shop' },
        { unit: 'e2e-sel-a', container: 'e2e-sel-a' },
        { unit: 'e2e-sel-b', container: 'e2e-sel-b' },
      ],
    });
    const report = JSON.parse(run.outputs.report ?? '');
    expect(JSON.parse(readFileSync(run.outputs['report-path'] ?? '', 'utf8'))).toEqual(report);
    const units = Object.fromEntries(
      report.units.map((unit: { unit: string }) => [unit.unit, unit]),
    ) as Record<
      string,
      {
        result: string;
        blockingCodes: string[];
        containers: string[];
        memoryBytes?: number;
        estimatedFrozenMs?: number;
      }
    >;
    expect(Object.keys(units).sort()).toEqual([
      'compose:e2e-blog',
      'compose:e2e-shop',
      'e2e-sel-a',
      'e2e-sel-b',
      'e2e-sel-dev',
    ]);
    expect(units['compose:e2e-shop']!.containers).toEqual(['e2e-shop-cache-1', 'e2e-shop-web-1']);
    // A project is one unit: movable, its members gated together.
    expect(units['compose:e2e-shop']!.result).toBe('movable');
    expect(units['compose:e2e-shop']!.memoryBytes).toBeGreaterThan(16 * 1024 * 1024);
    // A connection between two members blocks the unit, naming both ends.
    expect(units['compose:e2e-blog']!.result).toBe('blocked');
    expect(units['compose:e2e-blog']!.blockingCodes[0]).toBe('COMPOSE_PEER_CONNECTED');
    const peer = (
      units['compose:e2e-blog'] as unknown as { problems: { code: string; observed: string }[] }
    ).problems.find((problem) => problem.code === 'COMPOSE_PEER_CONNECTED');
    expect(peer?.observed).toMatch(/^e2e-blog-app-1 [\d.]+:\d+ ↔ e2e-blog-db-1 [\d.]+:7000$/);
    expect(units['e2e-sel-dev']!.blockingCodes).toEqual(['CONTAINER_HAS_DEVICES']);
    for (const name of plain) {
      expect(units[name]!.result).toBe('movable');
      // 8 MiB of counter memory, and an estimate from the measured speed.
      expect(units[name]!.memoryBytes).toBeGreaterThan(8 * 1024 * 1024);
      expect(units[name]!.estimatedFrozenMs).toBeGreaterThanOrEqual(0);
    }
    expect(report.leftOut).toEqual([{ container: 'e2e-sel-old', reason: 'not running (created)' }]);
    expect(report.streamSpeed.bytes).toBe(64 * 1024 * 1024);
    expect(report.totals).toMatchObject({ units: 5, movable: 3, blocked: 2 });
    expect(run.summary).toContain('Cutover gate: every running container');
    expect(run.summary).toMatch(/e2e-sel-dev<\/td><td>e2e-sel-dev<\/td><td>⛔ blocked/);
    expect(run.summary).toContain('Left out: e2e-sel-old (not running (created))');
    // Read-only: everything still runs on host 1, unpaused, and host 2 got nothing.
    for (const name of [...plain, 'e2e-shop-web-1', 'e2e-shop-cache-1', 'e2e-blog-app-1', 'e2e-blog-db-1']) {
      expect(await containerState(bed, bed.host1, name)).toMatchObject({ Running: true, Paused: false });
    }
    expect(await onHost(bed, bed.host2, 'docker ps -aq | wc -l')).toBe('0\n');
  });

  it('with strict, fails naming every blocked unit', async () => {
    const run = await runAction(gateInputs({ strict: 'true' }));
    expect(run.exitCode, run.stdout).toBe(1);
    expect(run.outputs.status).toBe('refused');
    expect(run.outputs['error-code']).toBe('COMPOSE_PEER_CONNECTED');
    const annotation = run.stdout.split('\n').find((line) => line.startsWith('::error'));
    expect(annotation).toMatch(/compose:e2e-blog \(COMPOSE_PEER_CONNECTED/);
    expect(annotation).not.toMatch(/compose:e2e-shop/);
    expect(annotation).toMatch(/e2e-sel-dev \(CONTAINER_HAS_DEVICES\)/);
    expect(annotation).toMatch(/strict: every unit must pass/);
  });

  it('a name that is not on the source fails the gate', async () => {
    const run = await runAction(gateInputs({ selection: 'e2e-sel-a, e2e-sel-missing' }));
    expect(run.exitCode, run.stdout).toBe(1);
    expect(run.outputs.status).toBe('refused');
    expect(run.outputs['error-code']).toBe('CONTAINER_NOT_FOUND');
    expect(JSON.parse(run.outputs.report ?? '').missing).toEqual(['e2e-sel-missing']);
  });

  it("the matrix drives one migration per unit, as the workflow's matrix would", async () => {
    const moves = await Promise.all(
      matrix.include.map((entry) =>
        runAction({
          unit: entry.unit,
          source: bed.host1,
          target: bed.host2,
          ...sshInputs(bed),
          'upload-artifact': 'false',
          'verify-stable-seconds': '1',
        }),
      ),
    );
    for (const move of moves) {
      expect(move.exitCode, move.stdout).toBe(0);
      expect(move.outputs.status).toBe('succeeded');
    }
    for (const name of [...plain, 'e2e-shop-web-1', 'e2e-shop-cache-1']) {
      expect(await containerState(bed, bed.host2, name)).toMatchObject({ Running: true, Paused: false });
      expect(await containerState(bed, bed.host1, name)).toMatchObject({ Running: false });
    }
    const ps = await onHost(
      bed,
      bed.host2,
      "docker-compose -p e2e-shop ps --format '{{.Service}} {{.State}}'",
    );
    expect(ps.trim().split('\n').sort()).toEqual(['cache running', 'web running']);
    // What the gate blocked stayed where it was.
    expect(await containerState(bed, bed.host1, 'e2e-blog-app-1')).toMatchObject({ Running: true });
  });
});
