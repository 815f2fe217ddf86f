import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installHold, release, removeFaults, waitHeld } from './faults.js';
import { containerState, expectCounterContinued, expectNothingLeft } from './invariants.js';
import { type ActionRun, runAction, runPostStep, startAction } from './run-action.js';
import {
  containerLogs,
  loadTestbed,
  onHost,
  onHostResult,
  parseCounter,
  sshInputs,
  startCounter,
  type Testbed,
} from './testbed.js';

// Restore drills: a stored checkpoint is restored as a throw-away copy (no
// network, no ports, copies of its volumes), watched, and removed again, while
// the original keeps running, on its own host or another. List mode shows
// what the store holds, drill results included.
let bed: Testbed;
const name = 'e2e-drill';
const volume = 'e2e-drillvol';
const journalKey = `${name}-drill`;
const store = '/var/lib/criu-migrate-e2e-drill-store';
// A port the original publishes: a copy that published it too could not start beside it.
const port = 18181;

function inputs(extra: Record<string, string> = {}): Record<string, string> {
  return {
    container: name,
    'store-host': bed.host3,
    'store-path': store,
    'upload-artifact': 'false',
    ...sshInputs(bed),
    ...extra,
  };
}

async function cleanHost(host: string): Promise<void> {
  await onHostResult(
    bed,
    host,
    [
      `docker ps -aq --filter label=org.criu-migrate.drill | xargs -r docker rm -f`,
      `docker rm -f ${name}`,
      `docker volume ls -q --filter label=org.criu-migrate.drill | xargs -r docker volume rm`,
      `docker volume rm ${volume}`,
      `rm -rf /var/lib/criu-migrate/containers/${name} /var/lib/criu-migrate/containers/${journalKey}`,
    ].join('; '),
  );
}

/** Everything of a drill gone from a host: no labelled containers or volumes, no journal, lock or work files. */
async function expectDrillGone(host: string, key = journalKey): Promise<void> {
  const left = await onHost(
    bed,
    host,
    [
      `docker ps -a --format '{{.Names}}' --filter label=org.criu-migrate.drill`,
      `docker ps -a --format '{{.Names}}' | grep -e '-drill-' || true`,
      `docker volume ls -q --filter label=org.criu-migrate.drill`,
      `docker volume ls -q | grep -e '-drill-' || true`,
      `ls -A /var/lib/criu-migrate/criu 2>/dev/null | grep drill || true`,
    ].join('; '),
  );
  expect(left, `drill leftovers on ${host}`).toBe('');
  await expectNothingLeft(bed, key);
  // The store host keeps the drill's journal too (archived once settled), never an open one.
  expect(
    await onHost(
      bed,
      bed.host3,
      `ls -d /var/lib/criu-migrate/containers/${key}/journal.json /var/lib/criu-migrate/containers/${key}/lock 2>/dev/null; true`,
    ),
  ).toBe('');
}

interface StoredOnHost {
  dir: string;
  manifest: {
    name: string;
    series: string;
    createdAt: string;
    source: string;
    frozenMs: number;
    container: { id: string; imageId: string; imageRef: string };
    versions: { criu?: string; kernel?: string; docker?: string };
    files: { bytes: number }[];
    image: { bytes: number };
  };
  drill?: { restorable: boolean; at: string; reason?: string; host: string };
}

/** Each checkpoint's manifest and drill.json, read on the store host independently of the action. */
async function storedOnHost3(): Promise<StoredOnHost[]> {
  const dirs = (await onHost(bed, bed.host3, `cd ${store}/${name} && ls -d */*/manifest.json`))
    .split('\n')
    .filter((line) => line !== '')
    .map((path) => `${store}/${name}/${path.replace(/\/manifest\.json$/, '')}`);
  const found: StoredOnHost[] = [];
  for (const dir of dirs) {
    const manifest = JSON.parse(await onHost(bed, bed.host3, `cat ${dir}/manifest.json`));
    const drill = (await onHostResult(bed, bed.host3, `cat ${dir}/drill.json`)).stdout;
    found.push({ dir, manifest, ...(drill.trim() ? { drill: JSON.parse(drill) } : {}) });
  }
  return found;
}

/** The copy's last log lines, which the step's log shows before the copy is removed. */
function drillLog(run: ActionRun): ReturnType<typeof parseCounter> {
  const at = run.stdout.indexOf('its last log lines:');
  expect(at, run.stdout).toBeGreaterThanOrEqual(0);
  return parseCounter(run.stdout.slice(at).split('\n').slice(1, 6).join('\n'));
}

let atCheckpoint: ReturnType<typeof parseCounter>;

beforeAll(async () => {
  bed = loadTestbed();
  for (const host of [bed.host1, bed.host2]) await cleanHost(host);
  await onHostResult(bed, bed.host3, `rm -rf ${store}`);
  await onHost(
    bed,
    bed.host1,
    `docker volume create ${volume} && docker run --rm -v ${volume}:/data ${bed.image} sh -c 'echo kept >/data/note'`,
  );
  await startCounter(bed, bed.host1, name, {
    mb: 8,
    extraArgs: `--restart unless-stopped -p 127.0.0.1:${port}:8080 -v ${volume}:/data --label team=batch`,
  });
  const taken = await runAction(
    inputs({ mode: 'checkpoint', source: bed.host1, 'checkpoint-name': 'dr-1', retention: '0' }),
  );
  expect(taken.exitCode, taken.stdout).toBe(0);
  atCheckpoint = parseCounter(await containerLogs(bed, bed.host1, name));
}, 300_000);

afterAll(async () => {
  for (const host of [bed.host1, bed.host2]) await cleanHost(host);
  await onHostResult(bed, bed.host3, `rm -rf ${store}`);
});

describe('drill mode', () => {
  it('restores the newest checkpoint beside the running original on its own host, and removes the copy', async () => {
    const before = await onHost(
      bed,
      bed.host1,
      `docker inspect --format '{{.State.Pid}} {{.State.StartedAt}}' ${name}`,
    );
    const since = (await onHost(bed, bed.host1, 'date +%s')).trim();
    const run = await runAction(inputs({ mode: 'drill', target: bed.host1, 'verify-stable-seconds': '3' }));
    const until = (await onHost(bed, bed.host1, 'date +%s')).trim();
    expect(run.exitCode, run.stdout).toBe(0);
    expect(run.outputs.status).toBe('succeeded');
    expect(run.outputs.restorable).toBe('true');
    expect(run.outputs['restorable-reason']).toBe('');
    expect(run.outputs['checkpoint-name']).toBe('dr-1');
    expect(run.outputs['drill-container']).toMatch(/^e2e-drill-drill-[0-9a-f]{8}$/);
    expect(run.summary).toContain('Restore drill');
    expect(run.summary).toMatch(
      /Drill copy<\/td><td>e2e-drill-drill-[0-9a-f]{8}: ran, watched [^<]*first process \/bin\/sh \/usr\/local\/bin\/testbed-counter, \d+ log lines after the restore, removed/,
    );
    // Reports never hold container logs: the copy's lines are in the step's log only.
    expect(run.summary).not.toMatch(/\d{13} [0-9a-f-]{36}/);

    // The copy ran: its own log continues the checkpoint's counter, same token (the same memory).
    const copy = drillLog(run);
    const last = atCheckpoint.at(-1)!;
    expect(copy.length).toBeGreaterThan(0);
    expect(new Set(copy.map((line) => line.token))).toEqual(new Set([last.token]));
    // It resumed where the checkpoint froze it, not from 1. These are the copy's last lines, after
    // its stability window, and the original's log was read after the checkpoint run ended (the
    // original counting on meanwhile): neither bounds the other, so only "continued" is checked.
    expect(copy[0]!.n).toBeGreaterThan(atCheckpoint[0]!.n);
    // It had no network and no ports: the action saw to that, and says so in its log.
    expect(run.stdout).toMatch(/network none, no published ports, restart policy no, volumes as copies/);

    // The original: same process, never paused, counting on without a gap.
    const after = await onHost(
      bed,
      bed.host1,
      `docker inspect --format '{{.State.Pid}} {{.State.StartedAt}}' ${name}`,
    );
    expect(after).toBe(before);
    // By ID: a name filter also matches the copy, whose name starts with the original's.
    const id = (await onHost(bed, bed.host1, `docker inspect --format '{{.Id}}' ${name}`)).trim();
    const events = await onHost(
      bed,
      bed.host1,
      `docker events --since ${since} --until ${Number(until) + 1} --format '{{.Actor.ID}} {{.Action}}'`,
    );
    const copyEvents = events
      .split('\n')
      .filter((line) => !line.startsWith(id) && /\b(start|die)\b/.test(line));
    expect(copyEvents.length, events).toBeGreaterThan(0);
    expect(
      events.split('\n').filter((line) => line.startsWith(id)),
      events,
    ).toEqual([]);
    const lines = parseCounter(await containerLogs(bed, bed.host1, name));
    expect(new Set(lines.map((line) => line.token)).size).toBe(1);
    for (const [i, line] of lines.entries()) expect(line.n).toBe(lines[0]!.n + i);
    await expectCounterContinued(bed, bed.host1, name);
    expect(await onHost(bed, bed.host1, `docker port ${name}`)).toContain(`127.0.0.1:${port}`);
    expect(
      await onHost(bed, bed.host1, `docker run --rm -v ${volume}:/data ${bed.image} cat /data/note`),
    ).toBe('kept\n');

    await expectDrillGone(bed.host1);
    const stored = await storedOnHost3();
    expect(stored).toHaveLength(1);
    expect(stored[0]!.drill).toMatchObject({ schema: 1, restorable: true, host: bed.host1 });
  }, 300_000);

  it('drills on another host, which loads the image and removes it again', async () => {
    const imageId = (await onHost(bed, bed.host1, `docker inspect --format '{{.Image}}' ${name}`)).trim();
    const hadImage = (await onHostResult(bed, bed.host2, `docker image inspect ${imageId}`)).code === 0;
    const run = await runAction(inputs({ mode: 'drill', target: bed.host2, 'checkpoint-name': 'latest' }));
    expect(run.exitCode, run.stdout).toBe(0);
    expect(run.outputs.restorable).toBe('true');
    expect(drillLog(run)[0]!.token).toBe(atCheckpoint.at(-1)!.token);
    await expectDrillGone(bed.host2);
    const hasImage = (await onHostResult(bed, bed.host2, `docker image inspect ${imageId}`)).code === 0;
    expect(hasImage).toBe(hadImage);
    expect(await containerState(bed, bed.host1, name)).toMatchObject({ Running: true, Paused: false });
  }, 300_000);

  it('reports a damaged checkpoint not restorable, fails the step with its code, and leaves nothing', async () => {
    const taken = await runAction(
      inputs({ mode: 'checkpoint', source: bed.host1, 'checkpoint-name': 'dr-bad', retention: '0' }),
    );
    expect(taken.exitCode, taken.stdout).toBe(0);
    // Damage one byte of the stored memory pages, as a failing disk would.
    const dir = taken.outputs['checkpoint-path'];
    await onHost(
      bed,
      bed.host3,
      `f=$(ls ${dir}/criu/pages-*.img | head -n 1); printf 'X' | dd of="$f" bs=1 seek=4096 conv=notrunc status=none`,
    );
    const run = await runAction(inputs({ mode: 'drill', target: bed.host1, 'checkpoint-name': 'dr-bad' }));
    expect(run.exitCode).not.toBe(0);
    expect(run.outputs.restorable).toBe('false');
    expect(run.outputs['error-code']).toBe('CHECKPOINT_NOT_RESTORABLE');
    expect(run.outputs['restorable-reason']).toMatch(/^CHECKSUM_MISMATCH: /);
    expect(run.stdout).toMatch(/pages-\d+\.img: FAILED/);
    expect(run.summary).toContain('❌ false');
    await expectDrillGone(bed.host1);
    const stored = await storedOnHost3();
    const bad = stored.find((entry) => entry.manifest.name === 'dr-bad');
    expect(bad?.drill).toMatchObject({
      restorable: false,
      reason: expect.stringMatching(/^CHECKSUM_MISMATCH/),
    });
    expect(await containerState(bed, bed.host1, name)).toMatchObject({ Running: true, Paused: false });
  }, 300_000);
});

describe('a drill cut short', () => {
  // Held while it fills the copy of the volume: the copy's container and volume exist by then.
  // dr-1, not the newest: the damaged dr-bad would stop before the hold.
  const HOLD = '*"/volumes/e2e-drillvol-drill-"*';

  afterAll(async () => {
    await removeFaults(bed);
  });

  it('cancelled as the runner cancels: what it made is removed, the post step finds nothing left', async () => {
    await installHold(bed, bed.host1, 'tar', HOLD, 'drill-cancel');
    const running = startAction(inputs({ mode: 'drill', target: bed.host1, 'checkpoint-name': 'dr-1' }));
    await waitHeld(bed, bed.host1, 'drill-cancel', 60_000, running);
    expect(
      await onHost(
        bed,
        bed.host1,
        `docker ps -a --format '{{.Names}}' --filter label=org.criu-migrate.drill`,
      ),
    ).toMatch(/^e2e-drill-drill-[0-9a-f]{8}\n$/);
    const cancelled = running.cancel();
    await release(bed, bed.host1, 'drill-cancel');
    const main = await cancelled;
    expect(main.exitCode).not.toBe(0);
    expect(main.outputs['error-code'], main.stdout).toBe('CANCELLED');
    expect(main.outputs.restorable).toBe('unknown');
    const post = await runPostStep(
      inputs({ mode: 'drill', target: bed.host1, 'checkpoint-name': 'dr-1' }),
      main,
    );
    expect(post.exitCode, post.stdout).toBe(0);
    await removeFaults(bed);
    await expectDrillGone(bed.host1);
    expect(await containerState(bed, bed.host1, name)).toMatchObject({ Running: true, Paused: false });
  }, 300_000);

  it('killed outright: its post step removes what it left', async () => {
    await installHold(bed, bed.host1, 'tar', HOLD, 'drill-kill-post');
    const running = startAction(inputs({ mode: 'drill', target: bed.host1, 'checkpoint-name': 'dr-1' }));
    await waitHeld(bed, bed.host1, 'drill-kill-post', 60_000, running);
    const main = await running.kill();
    await release(bed, bed.host1, 'drill-kill-post');
    await removeFaults(bed);
    expect(
      await onHost(
        bed,
        bed.host1,
        `docker ps -a --format '{{.Names}}' --filter label=org.criu-migrate.drill`,
      ),
    ).toMatch(/^e2e-drill-drill-[0-9a-f]{8}\n$/);
    const post = await runPostStep(
      inputs({ mode: 'drill', target: bed.host1, 'checkpoint-name': 'dr-1' }),
      main,
    );
    expect(post.exitCode, post.stdout).toBe(0);
    expect(post.stdout).toMatch(/post: the main step left .* unfinished/);
    await expectDrillGone(bed.host1);
  }, 300_000);

  it('killed outright (no post step): the next drill removes what it left, then drills', async () => {
    await installHold(bed, bed.host1, 'tar', HOLD, 'drill-kill');
    const running = startAction(inputs({ mode: 'drill', target: bed.host1, 'checkpoint-name': 'dr-1' }));
    await waitHeld(bed, bed.host1, 'drill-kill', 60_000, running);
    await running.kill();
    await release(bed, bed.host1, 'drill-kill');
    await removeFaults(bed);
    const left = await onHost(
      bed,
      bed.host1,
      `docker ps -a --format '{{.Names}}' --filter label=org.criu-migrate.drill`,
    );
    expect(left).toMatch(/^e2e-drill-drill-[0-9a-f]{8}\n$/);
    const next = await runAction(inputs({ mode: 'drill', target: bed.host1, 'checkpoint-name': 'dr-1' }));
    expect(next.exitCode, next.stdout).toBe(0);
    expect(next.outputs.restorable).toBe('true');
    expect(next.stdout).toMatch(/found an unfinished run of e2e-drill-drill/);
    const metadata = JSON.parse(readFileSync(next.outputs['metadata-path']!, 'utf8'));
    expect(metadata.resumed.direction).toBe('rollback');
    expect(metadata.resumed.done.join('\n')).toContain(`removed container`);
    expect(next.outputs['drill-container']).not.toBe(left.trim());
    await expectDrillGone(bed.host1);
  }, 300_000);
});

describe('a drill and the hourly checkpoint at once', () => {
  const other = 'e2e-drl-ret';
  const data = 'e2e-drlret';

  afterAll(async () => {
    await removeFaults(bed);
    await onHostResult(
      bed,
      bed.host1,
      `docker rm -f ${other}; docker volume rm ${data}; rm -rf /var/lib/criu-migrate/containers/${other} /var/lib/criu-migrate/containers/${other}-drill`,
    );
  });

  it('never blocks the checkpoint, and a checkpoint retention removed under it is unknown, not false', async () => {
    await startCounter(bed, bed.host1, other, { mb: 4, extraArgs: `-v ${data}:/data` });
    const first = await runAction(
      inputs({ container: other, mode: 'checkpoint', source: bed.host1, retention: '0' }),
    );
    expect(first.exitCode, first.stdout).toBe(0);
    await installHold(bed, bed.host1, 'tar', `*"/volumes/${data}-drill-"*`, 'drill-ret');
    const drilling = startAction(inputs({ container: other, mode: 'drill', target: bed.host1 }));
    await waitHeld(bed, bed.host1, 'drill-ret', 60_000, drilling);
    // The next checkpoint, with retention 1, while the drill holds the older one open.
    const next = await runAction(
      inputs({ container: other, mode: 'checkpoint', source: bed.host1, retention: '1' }),
    );
    expect(next.exitCode, next.stdout).toBe(0);
    expect(
      (await onHostResult(bed, bed.host3, `test -e ${first.outputs['checkpoint-path']}`)).code,
      'retention removed the drilled checkpoint',
    ).not.toBe(0);
    await release(bed, bed.host1, 'drill-ret');
    const run = await drilling.done;
    expect(run.exitCode).not.toBe(0);
    expect(run.outputs.restorable, run.stdout).toBe('unknown');
    expect(run.outputs['restorable-reason']).toMatch(/^the checkpoint left the store during the drill/);
    expect(run.outputs['error-code']).not.toBe('CHECKPOINT_NOT_RESTORABLE');
    await removeFaults(bed);
    await expectDrillGone(bed.host1, `${other}-drill`);
    // Nothing recorded for it, and the new checkpoint is untouched by the drill.
    expect(
      await onHost(bed, bed.host3, `ls -A ${next.outputs['checkpoint-path']} | grep -c drill || true`),
    ).toBe('0\n');
  }, 300_000);
});

describe('a checkpoint that cannot be drilled in isolation', () => {
  const others = { bind: 'e2e-drl-bind', host: 'e2e-drl-host' };

  afterAll(async () => {
    for (const container of Object.values(others)) {
      await onHostResult(
        bed,
        bed.host1,
        `docker rm -f ${container}; rm -rf /var/lib/criu-migrate/containers/${container} /var/lib/criu-migrate/containers/${container}-drill /tmp/e2e-drl-bind`,
      );
    }
  });

  async function refused(container: string, code: string, problem: RegExp): Promise<void> {
    const taken = await runAction(
      inputs({ container, mode: 'checkpoint', source: bed.host1, retention: '0' }),
    );
    expect(taken.exitCode, taken.stdout).toBe(0);
    const before = await onHost(
      bed,
      bed.host1,
      `docker ps -aq; docker volume ls -q; ls -A /var/lib/criu-migrate/work`,
    );
    const run = await runAction(inputs({ container, mode: 'drill', target: bed.host1 }));
    expect(run.exitCode).not.toBe(0);
    expect(run.outputs['error-code'], run.stdout).toBe(code);
    expect(run.outputs.status).toBe('refused');
    expect(run.outputs.restorable).toBe('unknown');
    expect(run.outputs['restorable-reason']).toMatch(problem);
    expect(
      await onHost(bed, bed.host1, `docker ps -aq; docker volume ls -q; ls -A /var/lib/criu-migrate/work`),
    ).toBe(before);
    await expectDrillGone(bed.host1, `${container}-drill`);
    expect(await containerState(bed, bed.host1, container)).toMatchObject({ Running: true, Paused: false });
  }

  it("refuses a bind mount, whose files are the original's: DRILL_MOUNT_NOT_COPIED", async () => {
    await onHost(bed, bed.host1, `mkdir -p /tmp/e2e-drl-bind && echo original >/tmp/e2e-drl-bind/file`);
    await startCounter(bed, bed.host1, others.bind, { mb: 4, extraArgs: '-v /tmp/e2e-drl-bind:/bind' });
    await refused(others.bind, 'DRILL_MOUNT_NOT_COPIED', /bind mount \/tmp\/e2e-drl-bind at \/bind/);
    expect(await onHost(bed, bed.host1, 'cat /tmp/e2e-drl-bind/file')).toBe('original\n');
  }, 300_000);

  it("refuses the host's network: DRILL_NEEDS_NETWORK", async () => {
    await startCounter(bed, bed.host1, others.host, { mb: 4, extraArgs: '--network host' });
    await refused(others.host, 'DRILL_NEEDS_NETWORK', /host's network/);
  }, 300_000);
});

describe('drill of a container with a listening socket', () => {
  const sockets = { any: 'e2e-drl-any', own: 'e2e-drl-own' };

  async function checkpointListener(container: string, address: string): Promise<void> {
    await onHostResult(bed, bed.host1, `docker rm -f ${container}`);
    // A web server beside the counter, listening on all addresses or on the container's own one.
    await onHost(
      bed,
      bed.host1,
      `docker run -d --name ${container} -e MB=4 ${bed.image} sh -c 'httpd -f -p ${address}:8080 & exec testbed-counter'`,
    );
    await onHost(
      bed,
      bed.host1,
      `for i in $(seq 50); do docker exec ${container} netstat -ltn | grep -q :8080 && exit 0; sleep 0.2; done; exit 1`,
    );
    const taken = await runAction(
      inputs({ container, mode: 'checkpoint', source: bed.host1, retention: '0' }),
    );
    expect(taken.exitCode, taken.stdout).toBe(0);
  }

  afterAll(async () => {
    for (const container of Object.values(sockets)) {
      await onHostResult(
        bed,
        bed.host1,
        `docker rm -f ${container}; rm -rf /var/lib/criu-migrate/containers/${container} /var/lib/criu-migrate/containers/${container}-drill`,
      );
    }
  });

  it('restores a socket bound to every address into the copy without a network', async () => {
    await checkpointListener(sockets.any, '0.0.0.0');
    const run = await runAction(inputs({ container: sockets.any, mode: 'drill', target: bed.host1 }));
    expect(run.exitCode, run.stdout).toBe(0);
    expect(run.outputs.restorable).toBe('true');
    await expectDrillGone(bed.host1, `${sockets.any}-drill`);
  }, 300_000);

  it('says DRILL_NEEDS_NETWORK, not restorable false, for a socket bound to the address its network gave', async () => {
    await checkpointListener(sockets.own, '$(hostname -i)');
    const run = await runAction(inputs({ container: sockets.own, mode: 'drill', target: bed.host1 }));
    expect(run.exitCode).not.toBe(0);
    expect(run.outputs['error-code'], run.stdout).toBe('DRILL_NEEDS_NETWORK');
    expect(run.outputs.restorable).toBe('unknown');
    expect(run.outputs['restorable-reason']).toMatch(/^RESTORE_FAILED: /);
    expect(run.stdout).toMatch(/Can't bind inet socket/);
    await expectDrillGone(bed.host1, `${sockets.own}-drill`);
    expect(await containerState(bed, bed.host1, sockets.own)).toMatchObject({ Running: true, Paused: false });
  }, 300_000);
});

describe('list mode', () => {
  it("shows the store's checkpoints and drill results, matching the manifests on the store host", async () => {
    const run = await runAction({
      mode: 'list',
      container: name,
      'store-host': bed.host3,
      'store-path': store,
      ...sshInputs(bed),
    });
    expect(run.exitCode, run.stdout).toBe(0);
    expect(run.outputs.status).toBe('succeeded');
    const listing = JSON.parse(run.outputs.listing!);
    const stored = await storedOnHost3();
    expect(listing.store.path).toBe(store);
    expect(listing.series).toHaveLength(1);
    const series = listing.series[0];
    expect(series.container).toBe(name);
    expect(series.id).toBe(stored[0]!.manifest.series);
    const byName = new Map(stored.map((entry) => [entry.manifest.name, entry]));
    expect(series.checkpoints.map((c: { name: string }) => c.name).sort()).toEqual([...byName.keys()].sort());
    for (const listed of series.checkpoints) {
      const { manifest, drill, dir } = byName.get(listed.name)!;
      expect(listed).toEqual({
        name: manifest.name,
        createdAt: manifest.createdAt,
        source: manifest.source,
        containerId: manifest.container.id,
        bytes: manifest.files.reduce((sum: number, file: { bytes: number }) => sum + file.bytes, 0),
        imageBytes: manifest.image.bytes,
        frozenMs: manifest.frozenMs,
        image: { id: manifest.container.imageId, ref: manifest.container.imageRef },
        versions: {
          criu: manifest.versions.criu ?? null,
          kernel: manifest.versions.kernel ?? null,
          docker: manifest.versions.docker ?? null,
        },
        path: dir,
        legacy: false,
        drill: drill
          ? { restorable: drill.restorable, at: drill.at, reason: drill.reason ?? null, host: drill.host }
          : null,
      });
    }
    // Newest first; dr-1 passed its drill, dr-bad failed.
    expect(series.checkpoints[0].name).toBe('dr-bad');
    expect(series.checkpoints.find((c: { name: string }) => c.name === 'dr-1').drill.restorable).toBe(true);
    expect(run.summary).toContain('✅ passed');
    expect(run.summary).toContain('❌ failed');

    // Every container (no name): the same series among them; the store unchanged by listing.
    const before = await onHost(bed, bed.host3, `find ${store} -printf '%p %s %T@\\n' | sort`);
    const all = await runAction({
      mode: 'list',
      'store-host': bed.host3,
      'store-path': store,
      ...sshInputs(bed),
    });
    expect(all.exitCode, all.stdout).toBe(0);
    const every = JSON.parse(all.outputs.listing!).series as { container: string }[];
    expect(every.filter((entry) => entry.container === name)).toEqual(listing.series);
    // The other tests' containers are in the same store, one series each, in name order.
    const containers = await onHost(
      bed,
      bed.host3,
      `cd ${store} && ls -d */*/*/manifest.json | cut -d/ -f1 | sort -u`,
    );
    expect(every.map((entry) => entry.container)).toEqual(containers.trim().split('\n'));
    expect(every.length).toBeGreaterThan(1);
    expect(await onHost(bed, bed.host3, `find ${store} -printf '%p %s %T@\\n' | sort`)).toBe(before);
  }, 300_000);
});

describe('a drill beside a restore of the same checkpoint', () => {
  it('both succeed on one host at once, each with its own work files, and the drill leaves nothing', async () => {
    const common = { target: bed.host2, 'checkpoint-name': 'dr-1', 'verify-stable-seconds': '3' };
    const [drilled, restored] = await Promise.all([
      runAction(inputs({ mode: 'drill', ...common })),
      runAction(inputs({ mode: 'restore', source: bed.host1, ...common })),
    ]);
    expect(drilled.exitCode, drilled.stdout).toBe(0);
    expect(drilled.outputs.restorable).toBe('true');
    expect(restored.exitCode, restored.stdout).toBe(0);
    expect(restored.outputs.status).toBe('succeeded');
    expect(await containerState(bed, bed.host2, name)).toMatchObject({ Running: true, Paused: false });
    await expectCounterContinued(bed, bed.host2, name);
    await expectDrillGone(bed.host2);
  });
});
