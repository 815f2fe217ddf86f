#!/usr/bin/env node
/**
 * npm run bench [-- options]
 *
 * Migrates the same workload (test/testbed/workload/counter.sh, TICK=0.01,
 * holding MB MiB) from host 1 to host 2 of a test bed three ways, in rotating
 * order each repetition:
 *   seed    the seed article's manual procedure (scripts/bench/seed-procedure.sh)
 *   action  this action, the bundled dist/index.js, default settings
 *   podman  podman container checkpoint --export / restore --import (scripts/bench/podman-procedure.sh)
 * and measures the floor (dump + restore on one host, scripts/bench/floor.sh)
 * and the transport alone (1 GiB through the runner: the action's SSH code,
 * compiled from scripts/bench/transport-probe.ts, against OpenSSH ssh | ssh).
 *
 * The modes section measures the checkpoint and restore modes on host 1 alone,
 * with an incompressible workload (scripts/bench/counter-random.sh: MB MiB of
 * random bytes, a loop that never forks): mode checkpoint into a store on host 1
 * (its frozen-ms output against the dump itself, `docker pause` + `runc checkpoint`
 * timed on the host by scripts/bench/dump.sh on the same container just before and
 * just after), then the container is removed and mode restore brings the
 * checkpoint back onto host 1 (its restore phase against CRIU's own restore time
 * from that restore's restore.log). floor.sh adds a `docker start --checkpoint`
 * by hand for comparison. It runs after the floor in each repetition.
 *
 * Writes bench/results/latest.{md,json,svg} (modes.{md,json} with --only-modes).
 * The last two lines printed are
 *   checkpoint freeze ratio at 256 MiB: X.XX; restore ratio at 256 MiB: X.XX
 *   downtime ratio seed/action at 256 MiB: X.XX
 *
 * Options:
 *   --sizes 64,256,1024   workload sizes in MiB (default 64,256,1024)
 *   --skip-1g             leave out sizes of 1024 MiB and more
 *   --reps N              repetitions per size and way (default 3)
 *   --quick               smoke run: --sizes 64 --reps 1, 256 MiB transport (modes included)
 *   --methods a,b         subset of seed,action,podman
 *   --transport-mib N     size of the transport stream (default 1024)
 *   --no-transport        skip the transport measurement
 *   --no-floor            skip the floor measurement
 *   --no-modes            skip the checkpoint and restore modes section
 *   --only-modes          only the modes section (no ways, floor or transport); writes
 *                         modes.{md,json} of --out and leaves latest.* alone
 *   --out DIR             results directory (default bench/results)
 *   --render FILE         no measuring: rewrite latest.md and latest.svg of --out from a
 *                         results JSON (for example bench/results/latest.json; a
 *                         modes.json rewrites modes.md)
 * Environment (the bench's own test bed, separate from the e2e one):
 *   BENCH_TESTBED_STATE   state directory (default /var/lib/criu-migrate-testbed-bench)
 *   BENCH_HOST1_ADDR      host 1 loopback address (default 127.0.0.6)
 *   BENCH_HOST2_ADDR      host 2 loopback address (default 127.0.0.7)
 *   BENCH_HOST3_ADDR      host 3 (checkpoint store, sshd only) loopback address, for a
 *                         test bed that starts one (default 127.0.0.8); the bench's own
 *                         modes section keeps its store on host 1
 * The bed is brought up if it is not, and brought down again at the end in
 * that case. Podman is installed into the bench hosts (apt, once; the hosts'
 * upper layers keep it) when missing.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = resolve(import.meta.dirname, '..');
const BENCH_SCRIPTS = join(ROOT, 'scripts/bench');
const TESTBED = join(ROOT, 'test/testbed');
const DIST_ENTRY = join(ROOT, 'dist/index.js');
/**
 * What the runs execute: a copy of dist/ taken when the bench starts, so a
 * rebuild of dist/ during a run (ncc empties the directory first) neither
 * breaks a run nor mixes two builds in one report.
 */
let actionEntry = DIST_ENTRY;
const IMAGE = 'testbed/busybox:1';
const TICK = '0.01';
const MIB = 1024 * 1024;
const METHODS = ['seed', 'action', 'podman'];
const PODMAN = 'PODMAN_IGNORE_CGROUPSV1_WARNING=1 podman';
/** Podman's graph root: its overlay driver refuses the hosts' overlay root, so real ext4. */
const PODMAN_STORAGE_CONF = `[storage]
driver = "overlay"
runroot = "/run/containers/storage"
graphroot = "/var/lib/docker/podman-storage"
`;

// ---------------------------------------------------------------- options

function options() {
  const { values } = parseArgs({
    options: {
      sizes: { type: 'string' },
      'skip-1g': { type: 'boolean', default: false },
      reps: { type: 'string' },
      quick: { type: 'boolean', default: false },
      methods: { type: 'string' },
      'transport-mib': { type: 'string' },
      'no-transport': { type: 'boolean', default: false },
      'no-floor': { type: 'boolean', default: false },
      'no-modes': { type: 'boolean', default: false },
      'only-modes': { type: 'boolean', default: false },
      out: { type: 'string' },
      render: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    const text = readFileSync(new URL(import.meta.url), 'utf8');
    process.stdout.write(`${/\/\*\*([\s\S]*?)\*\//.exec(text)[1].replace(/^ \* ?/gm, '')}\n`);
    process.exit(0);
  }
  const positive = (text, name) => {
    const n = Number(text);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, not "${text}"`);
    return n;
  };
  let sizes = (values.sizes ?? (values.quick ? '64' : '64,256,1024'))
    .split(',')
    .map((s) => positive(s, '--sizes'));
  if (values['skip-1g']) sizes = sizes.filter((s) => s < 1024);
  const methods = (values.methods ?? METHODS.join(',')).split(',');
  for (const m of methods) if (!METHODS.includes(m)) throw new Error(`unknown method ${m}`);
  const addr = (name, fallback) => {
    const value = process.env[name] ?? fallback;
    // The bench never talks to anything but the loopback test bed.
    if (!/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(value))
      throw new Error(`${name} must be a 127.0.0.0/8 address`);
    return value;
  };
  if (values['only-modes'] && values['no-modes'])
    throw new Error('--only-modes and --no-modes exclude each other');
  const hosts = [
    addr('BENCH_HOST1_ADDR', '127.0.0.6'),
    addr('BENCH_HOST2_ADDR', '127.0.0.7'),
    addr('BENCH_HOST3_ADDR', '127.0.0.8'),
  ];
  // Each host runs its own sshd on port 22 of its address: they must differ.
  if (new Set(hosts).size !== hosts.length)
    throw new Error(
      `BENCH_HOST1_ADDR, BENCH_HOST2_ADDR and BENCH_HOST3_ADDR must differ: ${hosts.join(' ')}`,
    );
  const onlyModes = values['only-modes'];
  return {
    sizes: [...new Set(sizes)].sort((a, b) => a - b),
    reps: positive(values.reps ?? (values.quick ? '1' : '3'), '--reps'),
    quick: values.quick,
    methods: onlyModes ? [] : methods,
    transportBytes:
      positive(values['transport-mib'] ?? (values.quick ? '256' : '1024'), '--transport-mib') * MIB,
    transport: !values['no-transport'] && !onlyModes,
    floor: !values['no-floor'] && !onlyModes,
    modes: !values['no-modes'],
    onlyModes,
    out: resolve(ROOT, values.out ?? 'bench/results'),
    render: values.render ? resolve(values.render) : undefined,
    state: process.env.BENCH_TESTBED_STATE ?? '/var/lib/criu-migrate-testbed-bench',
    host1Addr: hosts[0],
    host2Addr: hosts[1],
    host3Addr: hosts[2],
  };
}

// ---------------------------------------------------------------- processes

const log = (message) =>
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const children = new Set();

/** Runs a command to completion; never rejects for a non-zero exit. Killed after timeoutMs. */
function run(command, args, { env, input, timeoutMs = 600_000, echo = false } = {}) {
  return new Promise((resolvePromise, reject) => {
    const started = performance.now();
    const child = spawn(command, args, { env: env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => {
      stdout += c;
    });
    child.stderr.on('data', (c) => {
      stderr += c;
      if (echo) process.stderr.write(c);
    });
    child.stdin.on('error', () => {});
    child.stdin.end(input ?? '');
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 5000).unref();
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      children.delete(child);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      resolvePromise({
        code: timedOut ? -1 : (code ?? -1),
        signal,
        stdout,
        stderr,
        ms: performance.now() - started,
      });
    });
  });
}

async function check(command, args, opts) {
  const result = await run(command, args, opts);
  if (result.code !== 0) {
    throw new Error(
      `${command} ${args.join(' ').slice(0, 200)} failed (${result.code}): ${result.stderr.slice(-800)}`,
    );
  }
  return result;
}

/** "key value" lines -> object (numbers where they parse). */
function keyValues(text) {
  const out = {};
  for (const line of text.split('\n')) {
    const m = /^([\w.]+) (.+)$/.exec(line.trim());
    if (m) out[m[1]] = Number.isFinite(Number(m[2])) ? Number(m[2]) : m[2];
  }
  return out;
}

// ---------------------------------------------------------------- test bed

class Bed {
  constructor(opts) {
    this.opts = opts;
    this.envFile = join(opts.state, 'client/env');
    this.broughtUp = false;
    const env = { ...process.env };
    for (const name of Object.keys(env))
      if (name.startsWith('TESTBED_') && name !== 'TESTBED_CACHE') delete env[name];
    this.testbedEnv = {
      ...env,
      TESTBED_STATE: opts.state,
      TESTBED_HOST1_ADDR: opts.host1Addr,
      TESTBED_HOST2_ADDR: opts.host2Addr,
      // up.sh may start a third host (a checkpoint store): it gets its own address, never the e2e bed's.
      TESTBED_HOST3_ADDR: opts.host3Addr,
    };
    this.wantsHost3 = readFileSync(join(TESTBED, 'lib.sh'), 'utf8').includes('TESTBED_HOST3_ADDR');
    this.ctl = mkdtempSync(join(tmpdir(), 'bench-ctl-'));
    this.masters = [];
  }

  readEnv() {
    if (!existsSync(this.envFile)) return undefined;
    const vars = {};
    for (const line of readFileSync(this.envFile, 'utf8').split('\n')) {
      const eq = line.indexOf('=');
      if (eq > 0) vars[line.slice(0, eq)] = line.slice(eq + 1);
    }
    return vars;
  }

  /** Whether the bed's host 3 is missing although up.sh would start one (a bed from before host 3). */
  host3Missing() {
    if (!this.wantsHost3) return false;
    const pid = this.readEnv()?.TESTBED_HOST3_PID;
    return !pid || !existsSync(`/proc/${pid}`);
  }

  async isUp() {
    const vars = this.readEnv();
    if (!vars) return false;
    for (const pid of [vars.TESTBED_HOST1_PID, vars.TESTBED_HOST2_PID]) {
      if (!pid || !existsSync(`/proc/${pid}`)) return false;
    }
    this.load(vars);
    for (const host of [this.host1, this.host2]) {
      const r = await run('ssh', [...this.sshArgs(host, false), 'docker version >/dev/null'], {
        timeoutMs: 20_000,
      });
      if (r.code !== 0) return false;
    }
    return true;
  }

  load(vars) {
    this.host1 = vars.TESTBED_HOST1;
    this.host2 = vars.TESTBED_HOST2;
    this.key = vars.TESTBED_SSH_KEY;
    this.knownHosts = vars.TESTBED_KNOWN_HOSTS;
    for (const host of [this.host1, this.host2]) {
      if (!/^root@127\.[\d.]+:\d+$/.test(host)) throw new Error(`${this.envFile}: unexpected host ${host}`);
    }
  }

  async up() {
    if (await this.isUp()) {
      log(`test bed already up (${this.opts.state}); it stays up`);
      if (this.host3Missing()) {
        // up.sh leaves running hosts alone and starts the missing one.
        log(`starting the bed's host 3 (${this.opts.host3Addr}), which up.sh now expects`);
        await check('bash', [join(TESTBED, 'up.sh')], {
          env: this.testbedEnv,
          timeoutMs: 1_800_000,
          echo: true,
        });
        if (!(await this.isUp())) throw new Error('the test bed is not up after starting host 3');
      }
    } else {
      log(
        `bringing the bench test bed up (${this.opts.state}, ${this.opts.host1Addr}/${this.opts.host2Addr}${this.wantsHost3 ? `/${this.opts.host3Addr}` : ''})`,
      );
      this.broughtUp = true;
      await check('bash', [join(TESTBED, 'up.sh')], {
        env: this.testbedEnv,
        timeoutMs: 1_800_000,
        echo: true,
      });
      if (!(await this.isUp())) throw new Error('the test bed did not come up');
    }
    for (const host of [this.host1, this.host2]) {
      const master = spawn('ssh', [...this.sshArgs(host, false), '-M', '-N', '-o', 'ControlMaster=yes'], {
        stdio: 'ignore',
      });
      this.masters.push(master);
    }
    for (let i = 0; i < 50; i++) {
      const ok = await Promise.all(
        [this.host1, this.host2].map((h) =>
          run('ssh', [...this.sshArgs(h), '-O', 'check'], { timeoutMs: 5000 }),
        ),
      );
      if (ok.every((r) => r.code === 0)) break;
      await sleep(100);
    }
  }

  async down() {
    for (const master of this.masters) if (master.exitCode === null) master.kill('SIGTERM');
    this.masters = [];
    rmSync(this.ctl, { recursive: true, force: true });
    if (this.broughtUp) {
      log('bringing the bench test bed down again (it was down when the bench started)');
      await run('bash', [join(TESTBED, 'down.sh')], { env: this.testbedEnv, timeoutMs: 300_000, echo: true });
      this.broughtUp = false;
    }
  }

  sshArgs(host, mux = true) {
    const m = /^(.+)@(.+):(\d+)$/.exec(host);
    return [
      '-o',
      'BatchMode=yes',
      '-o',
      `UserKnownHostsFile=${this.knownHosts ?? '/dev/null'}`,
      '-o',
      'StrictHostKeyChecking=yes',
      '-o',
      `IdentityFile=${this.key}`,
      '-o',
      'IdentitiesOnly=yes',
      ...(mux ? ['-o', `ControlPath=${this.ctl}/%C`, '-o', 'ControlMaster=no'] : []),
      '-p',
      m[3],
      `${m[1]}@${m[2]}`,
    ];
  }

  /** Runs a shell command on a host (OpenSSH, not the action's code). */
  on(host, command, opts = {}) {
    return run('ssh', [...this.sshArgs(host), command], { timeoutMs: 300_000, ...opts });
  }

  async must(host, command, opts = {}) {
    const r = await this.on(host, command, opts);
    if (r.code !== 0)
      throw new Error(`${host}: ${command.slice(0, 160)}: exit ${r.code}: ${r.stderr.slice(-600)}`);
    return r.stdout;
  }

  scriptEnv(extra = {}) {
    return { ...process.env, BENCH_SSH_KEY: this.key, BENCH_KNOWN_HOSTS: this.knownHosts, ...extra };
  }
}

// ---------------------------------------------------------------- host preparation

async function preparePodman(bed) {
  for (const host of [bed.host1, bed.host2]) {
    const has = await bed.on(host, 'command -v podman >/dev/null');
    if (has.code !== 0) {
      log(`${host}: installing podman (trixie) into the bench host; its upper layer keeps it for later runs`);
      await bed.must(
        host,
        'export DEBIAN_FRONTEND=noninteractive; apt-get -qq -o Acquire::Check-Valid-Until=false update && apt-get install -y -qq --no-install-recommends podman >/dev/null',
        { timeoutMs: 900_000 },
      );
    }
    const conf = await bed.on(host, 'cat /etc/containers/storage.conf 2>/dev/null');
    if (conf.stdout !== PODMAN_STORAGE_CONF) {
      await bed.must(
        host,
        `mkdir -p /etc/containers /var/lib/docker/podman-storage && cat >/etc/containers/storage.conf && rm -rf /run/containers/storage`,
        { input: PODMAN_STORAGE_CONF },
      );
    }
  }
}

async function prepareImages(bed, withPodman) {
  // The image goes to host 2 once, before anything is measured: the action and
  // Podman then find it there, as with any image pulled from a registry.
  if ((await bed.on(bed.host2, `docker image inspect ${IMAGE} >/dev/null 2>&1`)).code !== 0) {
    log(`copying ${IMAGE} to host 2`);
    const save = `ssh ${bed.sshArgs(bed.host1).join(' ')} 'docker save ${IMAGE}'`;
    const load = `ssh ${bed.sshArgs(bed.host2).join(' ')} 'docker load -q >/dev/null'`;
    await check('bash', ['-o', 'pipefail', '-c', `${save} | ${load}`]);
  }
  if (!withPodman) return;
  for (const host of [bed.host1, bed.host2]) {
    if ((await bed.on(host, `${PODMAN} image exists ${IMAGE}`)).code !== 0) {
      await bed.must(host, `docker save ${IMAGE} | ${PODMAN} load -q >/dev/null`);
    }
  }
}

/** Removes everything a bench run leaves on a host. */
async function cleanHost(bed, host, withPodman) {
  const list = [
    'docker ps -aq --filter name=^bench-',
    ...(withPodman ? [`${PODMAN} ps -aq --filter name=^bench-`] : []),
  ];
  const result = await bed.on(
    host,
    [
      `docker ps -aq --filter name=^bench- | xargs -r docker rm -f >/dev/null 2>&1`,
      'docker image rm -f myapp-image:restored >/dev/null 2>&1',
      withPodman
        ? `${list[1]} | PODMAN_IGNORE_CGROUPSV1_WARNING=1 xargs -r podman rm -f -t 0 >/dev/null 2>&1`
        : 'true',
      // The action's records of bench containers too (journal, lock, history, work files).
      'rm -rf /tmp/checkpoint1.tar.gz /tmp/myapp-fs.tar.gz /tmp/bench-*.tar.zst /tmp/ctrd-checkpoint* /var/lib/criu-migrate/bench-* /var/lib/criu-migrate/containers/bench-* /var/lib/criu-migrate/work/bench-*',
      'sync',
      // Whatever is left over now would run beside the next measurement.
      `{ ${list.join('; ')}; } 2>/dev/null`,
    ].join('; '),
  );
  if (result.stdout.trim() !== '')
    throw new Error(`${host}: bench containers left after cleanup: ${result.stdout.trim()}`);
}

// ---------------------------------------------------------------- workload

function runOptions(sizeMiB, runtime) {
  // Same container for all three ways: no network (Podman's netavark would
  // have to configure the machine's own network namespace, where the hosts'
  // sshd lives), seccomp unconfined (the seed article asks for it).
  const common = `--security-opt seccomp=unconfined --network none -e MB=${sizeMiB} -e TICK=${TICK}`;
  return runtime === 'docker' ? `--runtime=runc ${common}` : common;
}

function logsCommand(runtime, name) {
  return runtime === 'docker' ? `docker logs ${name} 2>&1` : `${PODMAN} logs ${name} 2>&1`;
}

function parseCounter(text) {
  const lines = [];
  for (const line of text.split('\n')) {
    const m = /^(\d+) (\d{13}) ([0-9a-f-]{36})$/.exec(line.trim());
    if (m) lines.push({ n: Number(m[1]), ms: Number(m[2]), token: m[3] });
  }
  return lines;
}

const shQuote = (text) => `'${text.replace(/'/g, `'\\''`)}'`;

/**
 * The modes section's workload: scripts/bench/counter-random.sh as `sh -c` (the
 * image only has counter.sh), comments and blank lines left out of the command.
 */
function randomCounterCommand() {
  const script = readFileSync(join(BENCH_SCRIPTS, 'counter-random.sh'), 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.trimStart().startsWith('#'))
    .join('\n');
  return `sh -c ${shQuote(script)}`;
}

async function startWorkload(bed, runtime, host, name, sizeMiB, command = 'testbed-counter') {
  const cli = runtime === 'docker' ? 'docker' : PODMAN;
  await bed.must(
    host,
    `${cli} run -d --name ${name} ${runOptions(sizeMiB, runtime)} ${IMAGE} ${command} >/dev/null`,
  );
  // Building the value takes a while (about 80 s for 1 GiB with busybox on 2 cores).
  const deadline = Date.now() + 60_000 + sizeMiB * 300;
  for (;;) {
    const text = (await bed.on(host, logsCommand(runtime, name))).stdout;
    const afterStart = text.slice(text.indexOf('start '));
    if (text.includes('start ') && parseCounter(afterStart).length >= 10) return;
    if (Date.now() > deadline) throw new Error(`${name}: the workload did not start in time`);
    await sleep(1000);
  }
}

/** Waits until the restored copy has printed a few lines of its own, then reads both logs. */
async function workloadLogs(bed, runtime, source, target) {
  const sourceText = (await bed.on(source.host, logsCommand(runtime, source.name))).stdout;
  const lastN = parseCounter(sourceText).at(-1)?.n ?? 0;
  let targetText = '';
  for (let i = 0; i < 120; i++) {
    targetText = (await bed.on(target.host, logsCommand(runtime, target.name))).stdout;
    if (parseCounter(targetText).filter((l) => l.n > lastN).length >= 10) break;
    await sleep(500);
  }
  return { sourceText, targetText };
}

/**
 * Downtime as the workload saw it: the largest gap between consecutive
 * timestamps of the combined logs (deduplicated by line number, since a
 * restored Podman container brings its old log along).
 */
function analyse(sourceText, targetText) {
  const source = parseCounter(sourceText);
  const target = parseCounter(targetText);
  const byN = new Map();
  for (const line of [...source, ...target]) if (!byN.has(line.n)) byN.set(line.n, line);
  const lines = [...byN.values()].sort((a, b) => a.n - b.n);
  let gap = 0;
  const steps = [];
  for (let i = 1; i < lines.length; i++) {
    const d = lines[i].ms - lines[i - 1].ms;
    steps.push(d);
    if (d > gap) gap = d;
  }
  const last = source.at(-1);
  const next = last ? target.find((l) => l.n > last.n) : undefined;
  return {
    downtimeMs: gap,
    boundaryGapMs: last && next ? next.ms - last.ms : undefined,
    continued: Boolean(last && next && next.n === last.n + 1 && next.token === last.token),
    tickMs: median(steps),
  };
}

// ---------------------------------------------------------------- the three ways

async function migrateSeed(bed, sizeMiB, name) {
  const r = await run('bash', [join(BENCH_SCRIPTS, 'seed-procedure.sh'), bed.host1, bed.host2, name], {
    env: bed.scriptEnv({
      BENCH_CREATE_OPTS: runOptions(sizeMiB, 'docker'),
      BENCH_COMMAND: '/usr/local/bin/testbed-counter',
    }),
    timeoutMs: 1_800_000,
  });
  if (r.code !== 0) throw new Error(`seed procedure failed: ${r.stderr.slice(-800)}`);
  const kv = keyValues(r.stdout);
  return {
    totalMs: Math.round(r.ms),
    bytes: (kv['bytes.copy_checkpoint'] ?? 0) + (kv['bytes.copy_fs'] ?? 0),
    runnerRssKb: kv.runner_rss_kb,
    checkpointBytes: kv.checkpoint_bytes,
    stepsMs: stepsOf(kv),
  };
}

async function migratePodman(bed, _sizeMiB, name) {
  const r = await run('bash', [join(BENCH_SCRIPTS, 'podman-procedure.sh'), bed.host1, bed.host2, name], {
    env: bed.scriptEnv(),
    timeoutMs: 1_800_000,
  });
  if (r.code !== 0) throw new Error(`podman procedure failed: ${r.stderr.slice(-800)}`);
  const kv = keyValues(r.stdout);
  return {
    totalMs: Math.round(r.ms),
    bytes: kv['bytes.copy'],
    runnerRssKb: kv.runner_rss_kb,
    checkpointBytes: kv.checkpoint_bytes,
    stepsMs: stepsOf(kv),
  };
}

function stepsOf(kv) {
  return Object.fromEntries(
    Object.entries(kv)
      .filter(([k]) => k.startsWith('step.'))
      .map(([k, v]) => [k.slice(5), v]),
  );
}

/** Parses GITHUB_OUTPUT as the runner writes it (name<<DELIM ... DELIM). */
function parseOutputs(text) {
  const outputs = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = /^([^=<]+)<<(.+)$/.exec(lines[i]);
    if (m) {
      const value = [];
      for (i++; i < lines.length && lines[i] !== m[2]; i++) value.push(lines[i]);
      outputs[m[1]] = value.join('\n');
    } else if (lines[i].includes('=')) {
      outputs[lines[i].slice(0, lines[i].indexOf('='))] = lines[i].slice(lines[i].indexOf('=') + 1);
    }
  }
  return outputs;
}

/**
 * Runs the bundled action (dist/index.js) as the runner would, with these
 * inputs besides the connection ones; returns its outputs, metadata, log and
 * the node process's peak RSS and CPU time.
 */
async function runAction(bed, inputs) {
  const temp = mkdtempSync(join(tmpdir(), 'bench-runner-'));
  try {
    const outputFile = join(temp, 'github_output');
    const rssFile = join(temp, 'rss');
    writeFileSync(outputFile, '');
    writeFileSync(join(temp, 'summary.md'), '');
    const env = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/root',
      GITHUB_OUTPUT: outputFile,
      GITHUB_STEP_SUMMARY: join(temp, 'summary.md'),
      RUNNER_TEMP: temp,
      GITHUB_ACTIONS: 'true',
      GITHUB_RUN_ID: '1',
      GITHUB_WORKSPACE: temp,
      'INPUT_SSH-KEY': readFileSync(bed.key, 'utf8'),
      'INPUT_KNOWN-HOSTS': readFileSync(bed.knownHosts, 'utf8'),
      ...Object.fromEntries(Object.entries(inputs).map(([k, v]) => [`INPUT_${k.toUpperCase()}`, v])),
    };
    // /usr/bin/time reports the node process's own peak resident set.
    const r = await run('/usr/bin/time', ['-f', TIME_FORMAT, '-o', rssFile, process.execPath, actionEntry], {
      env,
      timeoutMs: 1_800_000,
    });
    const outputs = parseOutputs(readFileSync(outputFile, 'utf8'));
    if (r.code !== 0 || outputs.status !== 'succeeded') {
      throw new Error(
        `action (mode ${inputs.mode}) ended ${outputs.status ?? `with exit ${r.code}`}: ${r.stdout.slice(-1500)}`,
      );
    }
    const metadata = JSON.parse(readFileSync(outputs['metadata-path'], 'utf8'));
    return { r, outputs, metadata, time: readTime(rssFile) };
  } finally {
    rmSync(temp, { recursive: true, force: true });
  }
}

/** CRIU's own restore time: the last timestamp of the restore.log containerd keeps for a container. */
async function criuRestoreMs(bed, host, containerId) {
  const criu = await bed.on(
    host,
    `tail -n1 /var/lib/docker/containerd/daemon/io.containerd.runtime.v2.task/moby/${containerId}/restore.log 2>/dev/null`,
  );
  const m = /^\((\d+)\.(\d{3})/.exec(criu.stdout);
  return m ? Number(m[1]) * 1000 + Number(m[2]) : undefined;
}

async function migrateAction(bed, _sizeMiB, name) {
  // Default settings: only what the action needs to know.
  const { r, outputs, metadata, time } = await runAction(bed, {
    mode: 'migrate',
    container: name,
    source: bed.host1,
    target: bed.host2,
  });
  const rate = /checkpoint: ([\d.]+ \w+) in ([\d.]+) s \(([\d.]+ \w+)\/s\)/.exec(r.stdout);
  // CRIU's own share of the restore, from the restore log the target's containerd keeps.
  const restoreCriuMs = await criuRestoreMs(bed, bed.host2, outputs['target-container-id']);
  return {
    totalMs: Math.round(r.ms),
    bytes: Number(outputs['transferred-bytes']),
    runnerRssKb: time.rssKb,
    runnerCpuS: time.cpuS,
    checkpointBytes: Number(outputs['checkpoint-bytes']),
    reportedDowntimeMs: Number(outputs['downtime-ms']),
    phasesMs: metadata.timings.phasesMs,
    dumpMs: Number(/dumped in (\d+) ms/.exec(r.stdout)?.[1]) || undefined,
    checkpointStream: rate ? `${rate[1]} in ${rate[2]} s (${rate[3]}/s)` : undefined,
    restoreCriuMs,
    codec: /streams between the hosts: (?:compressed with )?(\w+)/.exec(r.stdout)?.[1],
    criuStats: metadata.criu,
  };
}

async function measureWay(bed, method, sizeMiB, rep, withPodman) {
  const runtime = method === 'podman' ? 'podman' : 'docker';
  const name = `bench-${method}-${sizeMiB}m-${rep}`;
  await Promise.all([cleanHost(bed, bed.host1, withPodman), cleanHost(bed, bed.host2, withPodman)]);
  await startWorkload(bed, runtime, bed.host1, name, sizeMiB);
  log(`${method} ${sizeMiB} MiB rep ${rep}: migrating`);
  const migrate = { seed: migrateSeed, action: migrateAction, podman: migratePodman }[method];
  const result = await migrate(bed, sizeMiB, name);
  const logs = await workloadLogs(bed, runtime, { host: bed.host1, name }, { host: bed.host2, name });
  const seen = analyse(logs.sourceText, logs.targetText);
  if (!seen.continued) log(`warning: ${name} did not continue where it stopped on host 1`);
  log(
    `${method} ${sizeMiB} MiB rep ${rep}: down ${seen.downtimeMs} ms, total ${result.totalMs} ms, ${fmtBytes(result.bytes)} sent`,
  );
  await Promise.all([cleanHost(bed, bed.host1, withPodman), cleanHost(bed, bed.host2, withPodman)]);
  return { method, sizeMiB, rep, ...seen, ...result };
}

/**
 * scripts/bench/floor.sh on host 1: `docker pause` NAME, `runc checkpoint
 * --leave-running` into a new container NAME-restored, `docker start --checkpoint`
 * of that one. NAME is left paused. Returns its "key value" results.
 */
async function runFloorScript(bed, sizeMiB, name) {
  const r = await run('bash', [join(BENCH_SCRIPTS, 'floor.sh'), bed.host1, name, `${name}-restored`], {
    env: bed.scriptEnv({ BENCH_CREATE_OPTS: runOptions(sizeMiB, 'docker'), BENCH_IMAGE: IMAGE }),
    timeoutMs: 1_800_000,
  });
  if (r.code !== 0) throw new Error(`floor failed: ${r.stderr.slice(-800)}`);
  return keyValues(r.stdout);
}

async function measureFloor(bed, sizeMiB, rep, withPodman) {
  const name = `bench-floor-${sizeMiB}m-${rep}`;
  await cleanHost(bed, bed.host1, withPodman);
  await startWorkload(bed, 'docker', bed.host1, name, sizeMiB);
  log(`floor ${sizeMiB} MiB rep ${rep}: dump and restore on host 1`);
  const kv = await runFloorScript(bed, sizeMiB, name);
  const logs = await workloadLogs(
    bed,
    'docker',
    { host: bed.host1, name },
    { host: bed.host1, name: `${name}-restored` },
  );
  const seen = analyse(logs.sourceText, logs.targetText);
  log(
    `floor ${sizeMiB} MiB rep ${rep}: down ${seen.downtimeMs} ms (dump ${kv.dump_ms} ms, restore ${kv.restore_ms} ms)`,
  );
  await cleanHost(bed, bed.host1, withPodman);
  return {
    sizeMiB,
    rep,
    ...seen,
    pauseMs: kv.pause_ms,
    dumpMs: kv.dump_ms,
    restoreMs: kv.restore_ms,
    restorePrepareMs: kv.restore_prepare_ms,
    restoreCriuMs: kv.restore_criu_ms,
    checkpointBytes: kv.checkpoint_bytes,
  };
}

// ---------------------------------------------------------------- checkpoint and restore modes

/** Where the modes section keeps its checkpoints, on host 1 (cleanHost removes it). */
const MODES_STORE = '/var/lib/criu-migrate/bench-store';

/**
 * The largest gap between consecutive lines of a workload log among those that
 * overlap [fromMs, toMs] (epoch ms, the runner's clock: the hosts share it).
 */
function gapWithin(text, fromMs, toMs) {
  const lines = parseCounter(text);
  let gap;
  for (let i = 1; i < lines.length; i++) {
    if (lines[i].ms < fromMs || lines[i - 1].ms > toMs) continue;
    const d = lines[i].ms - lines[i - 1].ms;
    if (gap === undefined || d > gap.ms) gap = { ms: d, after: lines[i] };
  }
  return gap;
}

/** Waits until a container has printed `count` counter lines past the last one seen now. */
async function moreLines(bed, host, name, count = 10) {
  const before = parseCounter((await bed.on(host, logsCommand('docker', name))).stdout).at(-1)?.n ?? 0;
  for (let i = 0; i < 120; i++) {
    const text = (await bed.on(host, logsCommand('docker', name))).stdout;
    if (parseCounter(text).filter((l) => l.n > before).length >= count) return text;
    await sleep(250);
  }
  throw new Error(`${name} printed no new lines`);
}

/** scripts/bench/dump.sh: pause, runc checkpoint --leave-running, unpause, each timed on the host. */
async function runDumpScript(bed, name) {
  const r = await run('bash', [join(BENCH_SCRIPTS, 'dump.sh'), bed.host1, name], {
    env: bed.scriptEnv(),
    timeoutMs: 1_800_000,
  });
  if (r.code !== 0) throw new Error(`dump.sh failed: ${r.stderr.slice(-800)}`);
  return keyValues(r.stdout);
}

/**
 * One repetition of the modes section on host 1, with the incompressible
 * workload: the dump itself (scripts/bench/dump.sh), mode checkpoint into a
 * store on host 1, the dump itself again (so the reference brackets the
 * action's dump in time), then scripts/bench/floor.sh for a `docker start
 * --checkpoint` done by hand; then the container is removed and mode restore
 * brings the stored checkpoint back onto host 1.
 */
async function measureModes(bed, sizeMiB, rep) {
  const host = bed.host1;
  const name = `bench-modes-${sizeMiB}m-${rep}`;
  const checkpointName = `${name}-ckpt`;
  await cleanHost(bed, host, false);
  await startWorkload(bed, 'docker', host, name, sizeMiB, randomCounterCommand());
  const result = { sizeMiB, rep, dumps: [] };
  const referenceDump = async () => {
    // Dirty pages of the step before are written out first, not during this one.
    await bed.must(host, 'sync');
    const kv = await runDumpScript(bed, name);
    result.dumps.push({
      pauseMs: kv.pause_ms,
      runcCheckpointMs: kv.dump_ms,
      unpauseMs: kv.unpause_ms,
      criuDumpMs: kv.criu_dump_ms,
      bytes: kv.checkpoint_bytes,
    });
    await moreLines(bed, host, name);
  };

  log(
    `modes ${sizeMiB} MiB rep ${rep}: the dump itself (dump.sh: docker pause, runc checkpoint, docker unpause)`,
  );
  await referenceDump();
  log(`modes ${sizeMiB} MiB rep ${rep}: mode checkpoint into ${host}:${MODES_STORE}`);
  await bed.must(host, 'sync');
  const fromMs = Date.now();
  const checkpoint = await runAction(bed, {
    mode: 'checkpoint',
    container: name,
    source: host,
    'store-host': host,
    'store-path': MODES_STORE,
    'checkpoint-name': checkpointName,
  });
  const toMs = Date.now();
  // dockerd's own record of the freeze: its pause and unpause events, without the commands' SSH round trips.
  const events = await bed.on(
    host,
    `docker events --since ${(fromMs / 1000).toFixed(3)} --until ${(toMs / 1000 + 1).toFixed(3)} --filter container=${name} --filter event=pause --filter event=unpause --format '{{.TimeNano}} {{.Action}}'`,
    { timeoutMs: 30_000 },
  );
  const eventAt = (action) => {
    const m = new RegExp(`^(\\d+) ${action}$`, 'm').exec(events.stdout);
    return m ? Number(BigInt(m[1]) / 1000n) / 1000 : undefined;
  };
  result.eventsFrozenMs = Math.round(eventAt('unpause') - eventAt('pause')) || undefined;
  const criuBytes = await bed.on(
    host,
    `du -sb ${shQuote(`${checkpoint.outputs['checkpoint-path']}/criu`)} | cut -f1`,
  );
  Object.assign(result, {
    frozenMs: Number(checkpoint.outputs['frozen-ms']),
    checkpointPhasesMs: checkpoint.metadata.timings.phasesMs,
    checkpointDurationMs: checkpoint.metadata.timings.durationMs,
    checkpointWallMs: Math.round(checkpoint.r.ms),
    checkpointBytes: Number(checkpoint.outputs['checkpoint-bytes']),
    criuImageBytes: Number(criuBytes.stdout.trim()) || undefined,
  });
  const afterCheckpoint = await moreLines(bed, host, name);
  const freeze = gapWithin(afterCheckpoint, fromMs, toMs);
  result.workloadFrozenMs = freeze?.ms;
  result.tickMs = analyse(afterCheckpoint, '').tickMs;
  log(`modes ${sizeMiB} MiB rep ${rep}: the dump itself again`);
  await referenceDump();
  const dumps = result.dumps;
  const mean = (f) => dumps.reduce((sum, d) => sum + f(d), 0) / dumps.length;
  Object.assign(result, {
    pauseMs: mean((d) => d.pauseMs),
    runcCheckpointMs: mean((d) => d.runcCheckpointMs),
    unpauseMs: mean((d) => d.unpauseMs),
    dumpMs: mean((d) => d.pauseMs + d.runcCheckpointMs),
    criuDumpMs: mean((d) => d.criuDumpMs),
    dumpBytes: mean((d) => d.bytes),
  });

  log(`modes ${sizeMiB} MiB rep ${rep}: floor.sh (a docker start --checkpoint on host 1, by hand)`);
  await bed.must(host, 'sync');
  const kv = await runFloorScript(bed, sizeMiB, name);
  Object.assign(result, {
    floorDumpMs: kv.pause_ms + kv.dump_ms,
    floorRestoreMs: kv.restore_ms,
    floorRestorePrepareMs: kv.restore_prepare_ms,
    floorRestoreCriuMs: kv.restore_criu_ms,
  });
  await bed.must(host, `docker rm -f ${name}-restored >/dev/null`);

  await bed.must(host, `docker rm -f ${name} >/dev/null && sync`);

  log(`modes ${sizeMiB} MiB rep ${rep}: mode restore from ${host}:${MODES_STORE} onto ${host}`);
  const { r, outputs, metadata } = await runAction(bed, {
    mode: 'restore',
    container: name,
    target: host,
    'store-host': host,
    'store-path': MODES_STORE,
    'checkpoint-name': checkpointName,
  });
  const restoreCriuMs = await criuRestoreMs(bed, host, outputs['target-container-id']);
  const restoredText = await moreLines(bed, host, name);
  const first = parseCounter(restoredText)[0];
  Object.assign(result, {
    restorePhasesMs: metadata.timings.phasesMs,
    restoreDurationMs: metadata.timings.durationMs,
    restoreWallMs: Math.round(r.ms),
    restoreCriuMs,
    // The restored copy prints first the line the source printed first after the action's freeze.
    continued: Boolean(first && freeze && first.n === freeze.after.n && first.token === freeze.after.token),
    restoredTickMs: analyse('', restoredText).tickMs,
    resumedAt: first ? `${first.n} ${first.token}` : undefined,
    expectedAt: freeze ? `${freeze.after.n} ${freeze.after.token}` : undefined,
  });
  result.freezeRatio = result.frozenMs / result.dumpMs;
  result.freezeRatioPhase = result.frozenMs / result.checkpointPhasesMs?.checkpoint;
  result.restoreRatio = result.restorePhasesMs?.restore / restoreCriuMs;
  result.restoreRunRatio = result.restoreDurationMs / restoreCriuMs;
  if (!result.continued) log(`warning: ${name} restored from the store did not continue where it was dumped`);
  log(
    `modes ${sizeMiB} MiB rep ${rep}: frozen ${result.frozenMs} ms vs pause + runc checkpoint ${Math.round(result.dumpMs)} ms ` +
      `(${result.freezeRatio.toFixed(2)}x); restore phase ${Math.round(result.restorePhasesMs?.restore)} ms vs CRIU ${restoreCriuMs} ms ` +
      `(${result.restoreRatio.toFixed(2)}x)`,
  );
  await cleanHost(bed, host, false);
  return result;
}

// ---------------------------------------------------------------- transport

async function buildProbe() {
  const dir = mkdtempSync(join(tmpdir(), 'bench-probe-'));
  log('compiling the transport probe (src/host/ssh-host.ts + relay.ts) with ncc into a temporary directory');
  await check(
    join(ROOT, 'node_modules/.bin/ncc'),
    ['build', join(BENCH_SCRIPTS, 'transport-probe.ts'), '-o', dir, '--no-source-map-register', '-q'],
    { timeoutMs: 300_000 },
  );
  return dir;
}

/** What `/usr/bin/time -f '%M %U %S'` wrote: peak RSS (KiB) and CPU seconds. */
function readTime(file) {
  const [rss, user, sys] = readFileSync(file, 'utf8').trim().split('\n').at(-1).split(' ').map(Number);
  return { rssKb: rss, cpuS: user + sys };
}
const TIME_FORMAT = '%M %U %S';

async function measureTransport(bed, probeDir, bytes, reps) {
  const results = [];
  const probe = async (mode, noDelay) => {
    const timeFile = join(probeDir, 'time');
    const args = JSON.stringify({
      from: bed.host1,
      to: bed.host2,
      key: bed.key,
      knownHosts: bed.knownHosts,
      bytes,
      mode,
      noDelay,
    });
    const r = await run(
      '/usr/bin/time',
      ['-f', TIME_FORMAT, '-o', timeFile, process.execPath, join(probeDir, 'index.js'), args],
      { timeoutMs: 900_000 },
    );
    if (r.code !== 0) throw new Error(`probe ${mode} failed: ${r.stderr.slice(-800)}`);
    const out = JSON.parse(r.stdout.trim().split('\n').at(-1));
    const t = readTime(timeFile);
    return { ms: out.ms, bytes: out.bytes, runnerRssKb: t.rssKb, runnerCpuS: t.cpuS };
  };
  const openssh = async () => {
    // Fresh connections, like the probe's: no control master.
    const dir = mkdtempSync(join(tmpdir(), 'bench-ossh-'));
    const src = `ssh ${bed.sshArgs(bed.host1, false).join(' ')} 'head -c ${bytes} /dev/zero'`;
    const dst = `ssh ${bed.sshArgs(bed.host2, false).join(' ')} 'cat >/dev/null'`;
    const t = (f) => `/usr/bin/time -f '${TIME_FORMAT}' -o ${dir}/${f}`;
    const started = performance.now();
    await check('bash', ['-o', 'pipefail', '-c', `${t('a')} ${src} | ${t('b')} ${dst}`], {
      timeoutMs: 900_000,
    });
    const ms = Math.round(performance.now() - started);
    const [a, b] = ['a', 'b'].map((f) => readTime(join(dir, f)));
    rmSync(dir, { recursive: true, force: true });
    return { ms, bytes, runnerRssKb: a.rssKb + b.rssKb, runnerCpuS: a.cpuS + b.cpuS };
  };
  const tools = {
    openssh: { label: 'OpenSSH: ssh | ssh', fn: openssh },
    action: {
      label: "action's SSH code: streamBetween (sha256 on both hosts and on the runner)",
      fn: () => probe('relay', undefined),
    },
    'action-raw': {
      label: "diagnostic: the action's SSH channels piped directly, no sha256 anywhere",
      fn: () => probe('raw', undefined),
    },
    'action-nagle': {
      label:
        "diagnostic: streamBetween with Nagle's algorithm left on (TCP_NODELAY off, as before commit 54c5651)",
      fn: () => probe('relay', false),
    },
  };
  const order = Object.keys(tools);
  for (let rep = 1; rep <= reps; rep++) {
    const rotated = order.map((_, i) => order[(i + rep - 1) % order.length]);
    for (const tool of rotated) {
      const r = await tools[tool].fn();
      const mbps = r.bytes / r.ms / 1000;
      log(
        `transport ${tool} rep ${rep}: ${fmtBytes(r.bytes)} in ${(r.ms / 1000).toFixed(2)} s = ${mbps.toFixed(1)} MB/s, runner CPU ${r.runnerCpuS.toFixed(1)} s`,
      );
      results.push({ tool, label: tools[tool].label, rep, ...r, MBps: mbps });
    }
  }
  return results;
}

// ---------------------------------------------------------------- statistics

function median(values) {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

function spread(values) {
  const v = values.filter((x) => Number.isFinite(x));
  if (v.length === 0) return undefined;
  return { median: median(v), min: Math.min(...v), max: Math.max(...v), n: v.length };
}

function push(groups, key, value) {
  if (!groups[key]) groups[key] = [];
  groups[key].push(value);
}

/** Keys of a modes run summarised per size (median, min, max, n). */
const MODES_KEYS = [
  'frozenMs',
  'workloadFrozenMs',
  'eventsFrozenMs',
  'unpauseMs',
  'pauseMs',
  'runcCheckpointMs',
  'dumpMs',
  'freezeRatio',
  'freezeRatioPhase',
  'checkpointDurationMs',
  'criuImageBytes',
  'criuDumpMs',
  'floorDumpMs',
  'dumpBytes',
  'restoreCriuMs',
  'restoreRatio',
  'restoreDurationMs',
  'restoreRunRatio',
  'floorRestoreMs',
  'floorRestorePrepareMs',
  'floorRestoreCriuMs',
];

function summariseModes(modes, size) {
  const ms = modes.filter((m) => m.sizeMiB === size && !m.error);
  if (ms.length === 0) return undefined;
  const entry = Object.fromEntries(MODES_KEYS.map((k) => [k, spread(ms.map((m) => m[k]))]));
  for (const [key, field] of [
    ['checkpointPhasesMs', 'checkpointPhasesMs'],
    ['restorePhasesMs', 'restorePhasesMs'],
  ]) {
    const phases = {};
    for (const m of ms) for (const [k, v] of Object.entries(m[field] ?? {})) push(phases, k, v);
    entry[key] = Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, spread(v)]));
  }
  entry.continued = ms.every((m) => m.continued);
  entry.failed = modes.filter((m) => m.sizeMiB === size && m.error).length;
  return entry;
}

function summarise(runs, floors, transport, sizes, modes = []) {
  const bySize = {};
  for (const size of sizes) {
    const entry = {};
    const m = summariseModes(modes, size);
    if (m) entry.modes = m;
    for (const method of METHODS) {
      const rs = runs.filter((r) => r.sizeMiB === size && r.method === method && !r.error);
      if (rs.length === 0) continue;
      entry[method] = {
        downtimeMs: spread(rs.map((r) => r.downtimeMs)),
        totalMs: spread(rs.map((r) => r.totalMs)),
        bytes: spread(rs.map((r) => r.bytes)),
        runnerRssKb: spread(rs.map((r) => r.runnerRssKb)),
        checkpointBytes: spread(rs.map((r) => r.checkpointBytes)),
        continued: rs.every((r) => r.continued),
      };
      if (method === 'action') {
        const phases = {};
        for (const r of rs) for (const [k, v] of Object.entries(r.phasesMs ?? {})) push(phases, k, v);
        entry.action.phasesMs = Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, median(v)]));
        entry.action.restoreCriuMs = spread(rs.map((r) => r.restoreCriuMs));
        entry.action.dumpMs = spread(rs.map((r) => r.dumpMs));
        entry.action.reportedDowntimeMs = spread(rs.map((r) => r.reportedDowntimeMs));
      }
      if (method !== 'action') {
        const steps = {};
        for (const r of rs) for (const [k, v] of Object.entries(r.stepsMs ?? {})) push(steps, k, v);
        entry[method].stepsMs = Object.fromEntries(Object.entries(steps).map(([k, v]) => [k, median(v)]));
      }
    }
    const fs = floors.filter((f) => f.sizeMiB === size);
    if (fs.length > 0) {
      entry.floor = Object.fromEntries(
        [
          'downtimeMs',
          'pauseMs',
          'dumpMs',
          'restoreMs',
          'restorePrepareMs',
          'restoreCriuMs',
          'checkpointBytes',
        ].map((k) => [k, spread(fs.map((f) => f[k]))]),
      );
    }
    bySize[size] = entry;
  }
  const tools = {};
  for (const t of transport) push(tools, t.tool, t);
  const transportSummary = Object.fromEntries(
    Object.entries(tools).map(([tool, ts]) => [
      tool,
      {
        label: ts[0].label,
        MBps: spread(ts.map((t) => t.MBps)),
        runnerRssKb: spread(ts.map((t) => t.runnerRssKb)),
        runnerCpuS: spread(ts.map((t) => t.runnerCpuS)),
      },
    ]),
  );
  return { bySize, transport: transportSummary };
}

function evaluateTargets(summary, sizes) {
  const targets = [];
  const at = (size, method, key) => summary.bySize[size]?.[method]?.[key]?.median;
  const ref = sizes.includes(256) ? 256 : sizes[sizes.length - 1];
  const modes = summary.bySize[ref]?.modes;
  if (modes?.freezeRatio) {
    targets.push({
      target: `checkpoint mode: frozen for at most 1.2x the dump itself (pause + runc checkpoint) at ${ref} MiB`,
      observed: `frozen-ms ${s(modes.frozenMs.median)} vs pause + runc checkpoint ${s(modes.dumpMs.median)}: ${range(modes.freezeRatio, (v) => `${v.toFixed(2)}x`)} (per-repetition ratios)`,
      met: modes.freezeRatio.median <= 1.2,
    });
  }
  if (modes?.restoreRatio) {
    targets.push({
      target: `restore mode from a store on the same host: at most 1.5x CRIU's own restore time at ${ref} MiB`,
      observed: `restore phase ${s(modes.restorePhasesMs?.restore?.median)} vs CRIU ${s(modes.restoreCriuMs.median)}: ${range(modes.restoreRatio, (v) => `${v.toFixed(2)}x`)} (per-repetition ratios)`,
      met: modes.restoreRatio.median <= 1.5,
    });
  }
  const seed = at(ref, 'seed', 'downtimeMs');
  const action = at(ref, 'action', 'downtimeMs');
  if (seed && action) {
    targets.push({
      target: `downtime at least 4x shorter than the seed procedure at ${ref} MiB`,
      observed: `seed ${s(seed)} / action ${s(action)} = ${(seed / action).toFixed(2)}x`,
      met: seed / action >= 4,
    });
  }
  for (const size of sizes) {
    const a = at(size, 'action', 'downtimeMs');
    const p = at(size, 'podman', 'downtimeMs');
    if (a && p) {
      targets.push({
        target: `downtime shorter than Podman's export/import at ${size} MiB`,
        observed: `action ${s(a)}, podman ${s(p)}`,
        met: a < p,
      });
    }
  }
  const speed = summary.transport.action?.MBps?.median;
  for (const size of sizes) {
    const a = at(size, 'action', 'downtimeMs');
    const floor = summary.bySize[size]?.floor?.downtimeMs?.median;
    const bytes = at(size, 'action', 'bytes');
    if (a && floor && bytes && speed) {
      const move = bytes / (speed * 1e3);
      const bound = 1.5 * (floor + move);
      targets.push({
        target: `downtime <= 1.5 x (floor + transfer at measured speed) at ${size} MiB`,
        observed: `action ${s(a)} vs 1.5 x (${s(floor)} + ${fmtBytes(bytes)} at ${speed.toFixed(1)} MB/s = ${s(move)}) = ${s(bound)}`,
        met: a <= bound,
      });
    }
  }
  const ossh = summary.transport.openssh?.MBps?.median;
  if (speed && ossh) {
    targets.push({
      target: "action's SSH transport at least 0.8x OpenSSH's throughput",
      observed: `${speed.toFixed(1)} MB/s vs ${ossh.toFixed(1)} MB/s = ${(speed / ossh).toFixed(2)}x`,
      met: speed / ossh >= 0.8,
    });
  }
  const rss = sizes.map((size) => at(size, 'action', 'runnerRssKb')).filter(Boolean);
  if (rss.length >= 2) {
    const growth = rss[rss.length - 1] - rss[0];
    targets.push({
      target: 'runner memory flat as the workload grows',
      observed: `action peak RSS ${sizes.map((size) => `${size} MiB: ${(at(size, 'action', 'runnerRssKb') / 1024).toFixed(0)} MiB`).join(', ')} (growth ${(growth / 1024).toFixed(0)} MiB)`,
      // Flat: grows by less than 10% of the workload growth and under 32 MiB.
      met: growth < 32 * 1024,
    });
  }
  return targets;
}

// ---------------------------------------------------------------- formatting

function fmtBytes(bytes) {
  if (!Number.isFinite(bytes)) return 'n/a';
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(u === 0 ? 0 : 1)} ${units[u]}`;
}
const s = (ms) => (Number.isFinite(ms) ? `${(ms / 1000).toFixed(2)} s` : 'n/a');
const range = (sp, f) => (sp ? `${f(sp.median)} (${f(sp.min)}–${f(sp.max)})` : 'n/a');
const md = (sp) => (sp ? Math.round(sp.median) : '');
const cell = (text) => String(text).replace(/\|/g, '\\|');
const mib = (kb) => `${(kb / 1024).toFixed(0)} MiB`;

function markdown(report) {
  const { summary, settings } = report;
  const out = [];
  out.push('# Benchmark: live migration downtime, three ways', '');
  out.push(
    `Run ${report.startedAt} on ${report.machine.cpus} CPUs, ${report.machine.memGiB} GiB RAM, kernel ${report.machine.kernel}; ` +
      `Docker ${report.versions.docker}, containerd ${report.versions.containerd}, runc ${report.versions.runc}, ` +
      `CRIU ${report.versions.criu}, Podman ${report.versions.podman}, Node ${report.versions.node}` +
      (report.dist?.sha256 ? `; dist/index.js sha256 ${report.dist.sha256.slice(0, 16)}. ` : '. ') +
      `${settings.reps} repetition(s) per size and way, order rotated each repetition. Load average at start ${report.machine.loadStart}, at end ${report.machine.loadEnd}` +
      (report.machine.loadSamples?.length
        ? `, during the run ${loadRange(report.machine.loadSamples)}.`
        : '.'),
    '',
    `Workload: test/testbed/workload/counter.sh with TICK=${TICK} and MB = size, container with \`--network none --security-opt seccomp=unconfined\` for all three ways. ` +
      'Downtime is what the workload saw: the largest gap between consecutive timestamps of its combined source and target logs. ' +
      'Values: median (min–max).',
    '',
  );
  out.push(
    '| size | way | downtime | total wall time | bytes between hosts | CRIU image (memory dumped) | runner peak RSS |',
    '|---|---|---|---|---|---|---|',
  );
  for (const size of settings.sizes) {
    for (const method of METHODS) {
      const m = summary.bySize[size]?.[method];
      if (!m) continue;
      out.push(
        `| ${size} MiB | ${method}${m.continued ? '' : ' (did not continue!)'} | ${range(m.downtimeMs, s)} | ${range(m.totalMs, s)} | ${range(m.bytes, fmtBytes)} | ${range(m.checkpointBytes, fmtBytes)} | ${range(m.runnerRssKb, mib)} |`,
      );
    }
    const f = summary.bySize[size]?.floor;
    if (f) {
      out.push(
        `| ${size} MiB | floor (one host, no transfer) | ${range(f.downtimeMs, s)} | | 0 | ${range(f.checkpointBytes, fmtBytes)} | |`,
      );
    }
  }
  out.push('', '## Where the time goes', '');
  out.push(
    'Action phases (median ms, from the metadata JSON; the source is frozen from `checkpoint` to the end of `restore`):',
    '',
  );
  const phaseNames = [
    'connect',
    'preflight',
    'stage',
    'checkpoint',
    'transfer',
    'restore',
    'verify',
    'finalize',
  ];
  out.push(
    `| size | ${phaseNames.join(' | ')} | runc checkpoint (in checkpoint) | CRIU restore (in restore) | downtime-ms output |`,
    `|---|${phaseNames.map(() => '---|').join('')}---|---|---|`,
  );
  for (const size of settings.sizes) {
    const a = summary.bySize[size]?.action;
    if (!a) continue;
    out.push(
      `| ${size} MiB | ${phaseNames.map((p) => (a.phasesMs?.[p] !== undefined ? Math.round(a.phasesMs[p]) : '')).join(' | ')} | ${md(a.dumpMs)} | ${md(a.restoreCriuMs)} | ${md(a.reportedDowntimeMs)} |`,
    );
  }
  for (const method of ['seed', 'podman']) {
    const names = [
      ...new Set(
        settings.sizes.flatMap((size) => Object.keys(summary.bySize[size]?.[method]?.stepsMs ?? {})),
      ),
    ];
    if (names.length === 0) continue;
    out.push('', `${method} steps (median ms):`, '');
    out.push(`| size | ${names.join(' | ')} |`, `|---|${names.map(() => '---|').join('')}`);
    for (const size of settings.sizes) {
      const st = summary.bySize[size]?.[method]?.stepsMs;
      if (st)
        out.push(
          `| ${size} MiB | ${names.map((n) => (st[n] !== undefined ? Math.round(st[n]) : '')).join(' | ')} |`,
        );
    }
  }
  const floorRows = settings.sizes.filter((size) => summary.bySize[size]?.floor);
  if (floorRows.length > 0) {
    out.push(
      '',
      'Floor on one host (`docker pause`, `runc checkpoint --leave-running`, `docker start --checkpoint`), median ms:',
      '',
    );
    out.push(
      '| size | downtime | pause | dump | docker start --checkpoint | of which Docker + containerd copying the images | of which CRIU restore |',
      '|---|---|---|---|---|---|---|',
    );
    for (const size of floorRows) {
      const f = summary.bySize[size].floor;
      out.push(
        `| ${size} MiB | ${md(f.downtimeMs)} | ${md(f.pauseMs)} | ${md(f.dumpMs)} | ${md(f.restoreMs)} | ${md(f.restorePrepareMs)} | ${md(f.restoreCriuMs)} |`,
      );
    }
  }
  const modes = modesSection(report);
  if (modes.length > 0) out.push('', ...modes);
  const tools = Object.entries(summary.transport);
  if (tools.length > 0) {
    out.push('', `## Transport alone: ${fmtBytes(settings.transportBytes)} host 1 -> runner -> host 2`, '');
    out.push('| tool | MB/s (10^6 B/s) | runner peak RSS | runner CPU time |', '|---|---|---|---|');
    for (const [, t] of tools) {
      out.push(
        `| ${cell(t.label)} | ${range(t.MBps, (v) => v.toFixed(1))} | ${range(t.runnerRssKb, mib)} | ${range(t.runnerCpuS, (v) => `${v.toFixed(1)} s`)} |`,
      );
    }
  }
  out.push('', ...analysis(report));
  out.push('', '## Targets', '', '| target | observed | met |', '|---|---|---|');
  for (const t of report.targets)
    out.push(`| ${cell(t.target)} | ${cell(t.observed)} | ${t.met ? 'yes' : '**no**'} |`);
  out.push('', '## Notes', '');
  for (const note of report.notes) out.push(`- ${note}`);
  out.push('', '![chart](latest.svg)', '');
  return out.join('\n');
}

/** The checkpoint and restore modes section: tables, where the time goes, and how it was measured. */
function modesSection(report) {
  const { summary, settings } = report;
  const rows = settings.sizes.filter((size) => summary.bySize[size]?.modes);
  if (rows.length === 0) return [];
  const ms = (sp) => range(sp, (v) => `${Math.round(v)}`);
  const x = (sp) => range(sp, (v) => `${v.toFixed(2)}x`);
  const out = ['## Checkpoint and restore modes (store on the same host)', ''];
  out.push(
    'Host 1 alone, workload scripts/bench/counter-random.sh (MB MiB of random bytes, incompressible; a loop that never forks, so every dump holds one copy). ' +
      'Per repetition, on one running container: the dump itself by scripts/bench/dump.sh (`docker pause`, `runc checkpoint --leave-running` into /var/lib/criu-migrate, `docker unpause`, each timed on the host, no SSH round trip inside), ' +
      'mode checkpoint into a store on host 1 (`store-host` = `source` = host 1, default settings otherwise: compression auto, leave-running true), the dump itself again ' +
      "(the reference is the mean of the two, which bracket the action's dump in time), then scripts/bench/floor.sh (a `docker start --checkpoint` by hand, for comparison); " +
      'then the container is removed and mode restore brings the stored checkpoint back onto host 1. ' +
      'Ratios are per repetition, then median (min–max); times in ms, median (min–max).',
    '',
    '| size | frozen-ms output | paused per dockerd (pause to unpause event) | freeze seen by the workload | dump itself: pause + runc checkpoint | of which pause | freeze ratio (frozen-ms / dump) | checkpoint phase (action timer) | frozen-ms / checkpoint phase | whole checkpoint run | CRIU image (action / dump.sh) |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  );
  for (const size of rows) {
    const m = summary.bySize[size].modes;
    out.push(
      `| ${size} MiB${m.failed ? ` (${m.failed} failed)` : ''} | ${ms(m.frozenMs)} | ${ms(m.eventsFrozenMs)} | ${ms(m.workloadFrozenMs)} | ${ms(m.dumpMs)} | ${ms(m.pauseMs)} | **${x(m.freezeRatio)}** | ${ms(m.checkpointPhasesMs?.checkpoint)} | ${x(m.freezeRatioPhase)} | ${ms(m.checkpointDurationMs)} | ${m.criuImageBytes ? fmtBytes(m.criuImageBytes.median) : 'n/a'} / ${m.dumpBytes ? fmtBytes(m.dumpBytes.median) : 'n/a'} |`,
    );
  }
  out.push(
    '',
    "| size | restore phase | CRIU's own restore (restore.log of that restore) | restore ratio (phase / CRIU) | whole restore run | run / CRIU | transfer from the store | verify | floor.sh: docker start --checkpoint | of which Docker + containerd copying | of which CRIU | restored copy continued |",
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
  );
  for (const size of rows) {
    const m = summary.bySize[size].modes;
    const p = m.restorePhasesMs ?? {};
    out.push(
      `| ${size} MiB | ${ms(p.restore)} | ${ms(m.restoreCriuMs)} | **${x(m.restoreRatio)}** | ${ms(m.restoreDurationMs)} | ${x(m.restoreRunRatio)} | ${ms(p.transfer)} | ${ms(p.verify)} | ${ms(m.floorRestoreMs)} | ${ms(m.floorRestorePrepareMs)} | ${ms(m.floorRestoreCriuMs)} | ${m.continued ? 'yes' : '**no**'} |`,
    );
  }
  out.push('', '### Where the time goes', '');
  for (const size of rows) {
    const m = summary.bySize[size].modes;
    const med = (sp) => sp?.median;
    const frozen = med(m.frozenMs);
    const dump = med(m.dumpMs);
    const phase = med(m.checkpointPhasesMs?.checkpoint);
    const restore = med(m.restorePhasesMs?.restore);
    const criu = med(m.restoreCriuMs);
    const start = med(m.floorRestoreMs);
    const copy = med(m.floorRestorePrepareMs);
    const events = med(m.eventsFrozenMs);
    const runc = med(m.runcCheckpointMs);
    out.push(
      `- ${size} MiB, freeze: frozen-ms ${s(frozen)} against the dump itself ${s(dump)} (pause ${s(med(m.pauseMs))}, runc checkpoint ${s(runc)}, of which CRIU's own dump ${s(med(m.criuDumpMs))}; medians)` +
        (frozen > dump ? `, ${s(frozen - dump)} more. ` : '. ') +
        (events
          ? `dockerd had the container paused for ${s(events)} (its pause and unpause events): runc checkpoint about ${s(runc)} of it, the other ${s(events - runc)} the action's own steps between pause and unpause ` +
            '(the journal write that records the pause, the SSH round trips of runc checkpoint and of one measuring command (du, sha256 of the inventory, CRIU stats), and the unpause command until dockerd acts); ' +
            `the remaining ${s(frozen - events)} of frozen-ms are the \`docker pause\` command until dockerd paused plus the \`docker unpause\` command after it. `
          : '') +
        `The action's checkpoint phase measured ${s(phase)} (pause to measured, no unpause), and the workload itself saw a gap of ${s(med(m.workloadFrozenMs))}.`,
    );
    out.push(
      `- ${size} MiB, restore: restore phase ${s(restore)} against CRIU's own ${s(criu)}: ${s(restore - criu)} is not CRIU. ` +
        (start
          ? `The same restore done by hand (floor.sh's \`docker start --checkpoint\` on the same host) takes ${s(start)}, of which ${s(copy)} is Docker and containerd copying the checkpoint (Docker 26 tars the checkpoint directory into containerd's content store, containerd unpacks it into /tmp/ctrd-checkpoint*) before CRIU starts, and ${s(med(m.floorRestoreCriuMs))} CRIU; ` +
            `so \`docker start --checkpoint\` alone is ${(start / med(m.floorRestoreCriuMs)).toFixed(2)}x CRIU, and the action's restore phase is ${(restore / start).toFixed(2)}x that \`docker start --checkpoint\`.`
          : 'No floor.sh restore to compare with.'),
    );
    const rp = m.restorePhasesMs ?? {};
    const run = med(m.restoreDurationMs);
    const timed = ['connect', 'stage', 'transfer', 'restore', 'verify'].reduce(
      (sum, k) => sum + (med(rp[k]) ?? 0),
      0,
    );
    out.push(
      `- ${size} MiB, the whole restore run: ${s(run)} = connect ${s(med(rp.connect))}` +
        (rp.stage ? ` + image ${s(med(rp.stage))}` : '') +
        ` + transfer from the store ${s(med(rp.transfer))} (the store is on the same host, yet the images go tar | zstd | SSH | runner | SSH | zstd -d | tar) + restore ${s(restore)} + verify ${s(med(rp.verify))} (verify-stable-seconds) + ${s(run - timed)} untimed (reading the store, sha256 of every file against the manifest, CPU check, creating the container).`,
    );
  }
  return out;
}

/** modes.md: the modes section alone (--only-modes). */
function modesMarkdown(report) {
  const out = ['# Benchmark: checkpoint and restore modes', ''];
  out.push(
    `Run ${report.startedAt} on ${report.machine.cpus} CPUs, ${report.machine.memGiB} GiB RAM, kernel ${report.machine.kernel}; ` +
      `Docker ${report.versions.docker}, containerd ${report.versions.containerd}, runc ${report.versions.runc}, ` +
      `CRIU ${report.versions.criu}, Node ${report.versions.node}; dist/index.js sha256 ${report.dist?.sha256?.slice(0, 16) ?? 'n/a'}. ` +
      `${report.settings.reps} repetition(s) per size. Load average (1 min) at start ${report.machine.loadStart}, at end ${report.machine.loadEnd}` +
      (report.machine.loadSamples?.length
        ? `, during the run ${loadRange(report.machine.loadSamples)}`
        : '') +
      '; other test beds may run on the same machine.',
    '',
    ...modesSection(report),
  );
  out.push('', '## Targets', '', '| target | observed | met |', '|---|---|---|');
  for (const t of report.targets)
    out.push(`| ${cell(t.target)} | ${cell(t.observed)} | ${t.met ? 'yes' : '**no**'} |`);
  out.push('', '## Notes', '');
  for (const note of report.notes) out.push(`- ${note}`);
  out.push('');
  return out.join('\n');
}

function loadRange(samples) {
  const v = samples.map((x) => x.load1);
  return `${Math.min(...v).toFixed(2)}–${Math.max(...v).toFixed(2)} (median ${median(v).toFixed(2)})`;
}

/**
 * Where the frozen time goes, computed from the runs: the action's downtime
 * split into its phases, and the restore cost per GiB of CRIU image for each
 * way (the image size varies from run to run, so per-GiB rates compare better).
 */
function analysis(report) {
  const { summary, settings } = report;
  const lines = ['### Analysis', ''];
  for (const size of settings.sizes) {
    const a = summary.bySize[size]?.action;
    if (!a?.phasesMs) continue;
    const { checkpoint = 0, transfer = 0, restore = 0 } = a.phasesMs;
    const frozen = checkpoint + transfer + restore;
    const pct = (v) => `${Math.round((100 * v) / frozen)}%`;
    const criu = a.restoreCriuMs?.median;
    lines.push(
      `- ${size} MiB, action frozen ${s(frozen)} (medians): checkpoint ${s(checkpoint)} (${pct(checkpoint)}; runc checkpoint ${s(a.dumpMs?.median)}), ` +
        `transfer ${s(transfer)} (${pct(transfer)}), restore ${s(restore)} (${pct(restore)}` +
        (criu
          ? `; CRIU's own restore ${s(criu)}, the rest is \`docker start --checkpoint\` copying the images`
          : '') +
        ').',
    );
  }
  const perGiB = (rows, ms) => {
    const rates = rows
      .filter((r) => r.checkpointBytes > 0 && ms(r) > 0)
      .map((r) => ms(r) / (r.checkpointBytes / 1024 ** 3));
    return rates.length ? spread(rates) : undefined;
  };
  const big = (rows) => {
    const large = rows.filter((r) => r.sizeMiB >= 256);
    return large.length ? large : rows;
  };
  const ok = report.runs.filter((r) => !r.error);
  const rates = [
    [
      'action: restore phase',
      perGiB(big(ok.filter((r) => r.method === 'action')), (r) => r.phasesMs?.restore),
    ],
    ['floor: docker start --checkpoint', perGiB(big(report.floors), (r) => r.restoreMs)],
    [
      'seed: docker start --checkpoint',
      perGiB(big(ok.filter((r) => r.method === 'seed')), (r) => r.stepsMs?.restore),
    ],
    [
      'seed: docker checkpoint create',
      perGiB(big(ok.filter((r) => r.method === 'seed')), (r) => r.stepsMs?.checkpoint),
    ],
    [
      'podman: container restore --import',
      perGiB(big(ok.filter((r) => r.method === 'podman')), (r) => r.stepsMs?.restore),
    ],
    [
      'podman: container checkpoint --export',
      perGiB(big(ok.filter((r) => r.method === 'podman')), (r) => r.stepsMs?.checkpoint),
    ],
    [
      'action: checkpoint + transfer',
      perGiB(
        big(ok.filter((r) => r.method === 'action')),
        (r) => (r.phasesMs?.checkpoint ?? 0) + (r.phasesMs?.transfer ?? 0),
      ),
    ],
  ].filter(([, v]) => v);
  if (rates.length) {
    lines.push(
      '',
      'Seconds per GiB of CRIU image (runs of 256 MiB and more when there are any; median, min–max):',
      '',
      '| step | s/GiB |',
      '|---|---|',
      ...rates.map(([name, v]) => `| ${name} | ${range(v, (x) => (x / 1000).toFixed(1))} |`),
    );
  }
  const rate = (name) => rates.find(([n]) => n === name)?.[1]?.median;
  const largest = [...settings.sizes].reverse().find((size) => summary.bySize[size]?.action?.phasesMs);
  const phases = largest ? summary.bySize[largest].action.phasesMs : undefined;
  const frozen = phases ? (phases.checkpoint ?? 0) + (phases.transfer ?? 0) + (phases.restore ?? 0) : 0;
  if (phases && phases.restore / frozen > 0.5 && rate('action: restore phase')) {
    const podman = rate('podman: container restore --import');
    lines.push(
      '',
      `- What would close the gap to Podman and to 4x the seed: the action's own frozen work (checkpoint + transfer) is ${(rate('action: checkpoint + transfer') / 1000).toFixed(1)} s/GiB; ` +
        `\`docker start --checkpoint\` is ${(rate('action: restore phase') / 1000).toFixed(1)} s/GiB (Docker 26 tars the checkpoint directory into containerd's content store, containerd unpacks it into /tmp/ctrd-checkpoint*, then CRIU restores), ` +
        `against ${podman ? (podman / 1000).toFixed(1) : 'n/a'} s/GiB for Podman's whole restore. ` +
        'The seed pays the same restore, so the ratio is capped near (seed checkpoint + restore) / restore. Only making Docker copy less closes it: ' +
        'memory pages left out of the checkpoint directory and served to the restored process afterwards (CRIU lazy pages with a page server on the source); ' +
        'pre-copy would need mem_dirty_track, which this kernel lacks.',
    );
  }
  const t = summary.transport;
  if (t.action && t.openssh) {
    lines.push(
      '',
      `- Transport: the action's streamBetween ${t.action.MBps.median.toFixed(1)} MB/s, OpenSSH ${t.openssh.MBps.median.toFixed(1)} MB/s` +
        (t['action-raw']
          ? `, the same ssh2 channels without the sha256 wrappers ${t['action-raw'].MBps.median.toFixed(1)} MB/s`
          : '') +
        (t['action-nagle']
          ? `, with Nagle's algorithm on ${t['action-nagle'].MBps.median.toFixed(1)} MB/s`
          : '') +
        ". Runner, source and target all share the machine's CPUs here, so work on the hosts (tee, fifo and sha256sum on each end) slows the relay too.",
    );
    const raw = t['action-raw']?.MBps.median;
    if (raw && t.action.MBps.median < 0.8 * t.openssh.MBps.median && raw >= 0.8 * t.openssh.MBps.median) {
      lines.push(
        "- What would close the transport gap: the ssh2 code keeps up with OpenSSH; the end-to-end sha256 (a tee into a fifo read by sha256sum on each host, plus the runner's own hash) costs the difference. " +
          'Compressed streams already carry a checksum that the receiving zstd or gzip verifies, so for them the host-side wrappers could be dropped; for uncompressed streams one hashing pass per host without the extra pipe copies would do.',
      );
    }
  }
  return lines;
}

// ---------------------------------------------------------------- chart

const COLORS = { seed: '#d62728', action: '#1f77b4', podman: '#9467bd', floor: '#7f7f7f' };
const PHASE_COLORS = {
  connect: '#c7c7c7',
  preflight: '#9edae5',
  stage: '#17becf',
  checkpoint: '#ff7f0e',
  transfer: '#2ca02c',
  restore: '#d62728',
  verify: '#bcbd22',
  finalize: '#8c564b',
};
const esc = (t) => String(t).replace(/&/g, '&amp;').replace(/</g, '&lt;');

function logTicks(lo, hi) {
  const ticks = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (v >= lo / 1.01 && v <= hi * 1.01) ticks.push(v);
    }
  }
  return ticks;
}

function linePanel(x0, y0, w, h, title, sizes, series) {
  const parts = [];
  const values = series.flatMap((sr) => sr.points.flatMap((p) => [p.min, p.max])).filter((v) => v > 0);
  if (values.length === 0) return '';
  const lo = 10 ** Math.floor(Math.log10(Math.min(...values)));
  const hi = 10 ** Math.ceil(Math.log10(Math.max(...values)));
  const px = (i) => x0 + 50 + (sizes.length === 1 ? (w - 70) / 2 : (i * (w - 90)) / (sizes.length - 1) + 10);
  const py = (v) =>
    y0 + h - 30 - ((Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * (h - 80);
  parts.push(
    `<text x="${x0 + w / 2}" y="${y0 + 14}" text-anchor="middle" font-weight="bold">${esc(title)}</text>`,
  );
  parts.push(`<line x1="${x0 + 50}" y1="${y0 + 50}" x2="${x0 + 50}" y2="${y0 + h - 30}" stroke="#333"/>`);
  parts.push(
    `<line x1="${x0 + 50}" y1="${y0 + h - 30}" x2="${x0 + w - 10}" y2="${y0 + h - 30}" stroke="#333"/>`,
  );
  for (const t of logTicks(lo, hi)) {
    const y = py(t);
    parts.push(`<line x1="${x0 + 50}" y1="${y}" x2="${x0 + w - 10}" y2="${y}" stroke="#eee"/>`);
    parts.push(
      `<text x="${x0 + 45}" y="${y + 4}" text-anchor="end" font-size="11">${t >= 1 ? t : t.toFixed(1)} s</text>`,
    );
  }
  sizes.forEach((size, i) => {
    parts.push(
      `<text x="${px(i)}" y="${y0 + h - 12}" text-anchor="middle" font-size="11">${size} MiB</text>`,
    );
  });
  for (const sr of series) {
    const pts = sr.points.map((p) => ({ ...p, x: px(sizes.indexOf(p.size)) })).filter((p) => p.median > 0);
    if (pts.length > 1) {
      parts.push(
        `<polyline fill="none" stroke="${sr.color}" stroke-width="2"${sr.dash ? ' stroke-dasharray="5,4"' : ''} points="${pts.map((p) => `${p.x},${py(p.median)}`).join(' ')}"/>`,
      );
    }
    for (const p of pts) {
      parts.push(`<line x1="${p.x}" y1="${py(p.min)}" x2="${p.x}" y2="${py(p.max)}" stroke="${sr.color}"/>`);
      parts.push(`<circle cx="${p.x}" cy="${py(p.median)}" r="3.5" fill="${sr.color}"/>`);
    }
  }
  series.forEach((sr, i) => {
    const lx = x0 + 60 + i * 95;
    parts.push(
      `<line x1="${lx}" y1="${y0 + 30}" x2="${lx + 18}" y2="${y0 + 30}" stroke="${sr.color}" stroke-width="2"${sr.dash ? ' stroke-dasharray="5,4"' : ''}/>`,
    );
    parts.push(`<text x="${lx + 22}" y="${y0 + 34}" font-size="11">${esc(sr.name)}</text>`);
  });
  return parts.join('\n');
}

function phasePanel(x0, y0, w, sizes, bySize) {
  const phases = Object.keys(PHASE_COLORS);
  const rows = sizes.filter((size) => bySize[size]?.action?.phasesMs);
  if (rows.length === 0) return { svg: '', height: 0 };
  const totals = rows.map((size) =>
    phases.reduce((sum, p) => sum + (bySize[size].action.phasesMs[p] ?? 0), 0),
  );
  const max = Math.max(...totals);
  const barW = w - 150;
  const parts = [
    `<text x="${x0 + w / 2}" y="${y0 + 14}" text-anchor="middle" font-weight="bold">The action's phases (median; the source is frozen during checkpoint, transfer and restore)</text>`,
  ];
  rows.forEach((size, i) => {
    const y = y0 + 30 + i * 34;
    parts.push(`<text x="${x0 + 70}" y="${y + 16}" text-anchor="end" font-size="11">${size} MiB</text>`);
    let x = x0 + 80;
    for (const p of phases) {
      const v = bySize[size].action.phasesMs[p] ?? 0;
      const pw = (v / max) * barW;
      if (pw <= 0) continue;
      parts.push(
        `<rect x="${x}" y="${y}" width="${pw}" height="24" fill="${PHASE_COLORS[p]}"><title>${p}: ${Math.round(v)} ms</title></rect>`,
      );
      if (pw > 34) {
        parts.push(
          `<text x="${x + pw / 2}" y="${y + 16}" text-anchor="middle" font-size="10">${(v / 1000).toFixed(1)}</text>`,
        );
      }
      x += pw;
    }
    parts.push(`<text x="${x + 5}" y="${y + 16}" font-size="11">${(totals[i] / 1000).toFixed(1)} s</text>`);
  });
  const ly = y0 + 30 + rows.length * 34 + 6;
  phases.forEach((p, i) => {
    const lx = x0 + 80 + i * 100;
    parts.push(`<rect x="${lx}" y="${ly}" width="12" height="12" fill="${PHASE_COLORS[p]}"/>`);
    parts.push(`<text x="${lx + 16}" y="${ly + 10}" font-size="11">${p}</text>`);
  });
  return { svg: parts.join('\n'), height: rows.length * 34 + 60 };
}

/** Every run's downtime against the size of its CRIU image (log-log), one colour per way. */
function scatterPanel(x0, y0, w, h, runs, floors) {
  const points = [
    ...runs
      .filter((r) => !r.error)
      .map((r) => ({ x: r.checkpointBytes, y: r.downtimeMs, color: COLORS[r.method] })),
    ...floors.map((f) => ({ x: f.checkpointBytes, y: f.downtimeMs, color: COLORS.floor })),
  ].filter((p) => p.x > 0 && p.y > 0);
  if (points.length === 0) return '';
  const bounds = (vals) => [
    10 ** Math.floor(Math.log10(Math.min(...vals))),
    10 ** Math.ceil(Math.log10(Math.max(...vals))),
  ];
  // Image sizes on a log2 axis, ticks every factor of 4 (16 MiB, 64 MiB, 256 MiB, 1 GiB, ...).
  const xs = points.map((p) => p.x / MIB);
  const xlo = 4 ** Math.floor(Math.log(Math.min(...xs)) / Math.log(4));
  const xhi = Math.max(4 ** Math.ceil(Math.log(Math.max(...xs)) / Math.log(4)), xlo * 4);
  const [ylo, yhi] = bounds(points.map((p) => p.y / 1000));
  const px = (v) =>
    x0 + 50 + ((Math.log10(v) - Math.log10(xlo)) / (Math.log10(xhi) - Math.log10(xlo))) * (w - 60);
  const py = (v) =>
    y0 + h - 30 - ((Math.log10(v) - Math.log10(ylo)) / (Math.log10(yhi) - Math.log10(ylo))) * (h - 80);
  const parts = [
    `<text x="${x0 + w / 2}" y="${y0 + 14}" text-anchor="middle" font-weight="bold">Downtime against CRIU image size, every run (log-log)</text>`,
    `<line x1="${x0 + 50}" y1="${y0 + 50}" x2="${x0 + 50}" y2="${y0 + h - 30}" stroke="#333"/>`,
    `<line x1="${x0 + 50}" y1="${y0 + h - 30}" x2="${x0 + w - 10}" y2="${y0 + h - 30}" stroke="#333"/>`,
  ];
  for (const t of logTicks(ylo, yhi)) {
    parts.push(`<line x1="${x0 + 50}" y1="${py(t)}" x2="${x0 + w - 10}" y2="${py(t)}" stroke="#eee"/>`);
    parts.push(
      `<text x="${x0 + 45}" y="${py(t) + 4}" text-anchor="end" font-size="11">${t >= 1 ? t : t.toFixed(1)} s</text>`,
    );
  }
  for (let t = xlo; t <= xhi; t *= 4) {
    const label = t >= 1024 ? `${t / 1024} GiB` : `${t} MiB`;
    parts.push(`<text x="${px(t)}" y="${y0 + h - 14}" text-anchor="middle" font-size="11">${label}</text>`);
  }
  for (const p of points) {
    parts.push(
      `<circle cx="${px(p.x / MIB)}" cy="${py(p.y / 1000)}" r="3.5" fill="${p.color}" fill-opacity="0.75"/>`,
    );
  }
  ['seed', 'action', 'podman', 'floor'].forEach((name, i) => {
    const lx = x0 + 60 + i * 95;
    parts.push(`<circle cx="${lx + 6}" cy="${y0 + 30}" r="4" fill="${COLORS[name]}"/>`);
    parts.push(`<text x="${lx + 14}" y="${y0 + 34}" font-size="11">${name}</text>`);
  });
  return parts.join('\n');
}

/** Median throughput of each transport, with min–max. */
function transportPanel(x0, y0, w, h, transport, bytes) {
  const tools = Object.entries(transport);
  if (tools.length === 0) return '';
  const max = Math.max(...tools.map(([, t]) => t.MBps.max)) * 1.1;
  const rowH = Math.min(40, (h - 50) / tools.length);
  const names = {
    openssh: 'OpenSSH',
    action: 'action',
    'action-raw': 'no sha256',
    'action-nagle': 'Nagle on',
  };
  const parts = [
    `<text x="${x0 + w / 2}" y="${y0 + 14}" text-anchor="middle" font-weight="bold">Transport alone, ${esc(fmtBytes(bytes))} through the runner (MB/s)</text>`,
  ];
  tools.forEach(([tool, t], i) => {
    const y = y0 + 40 + i * rowH;
    const bw = (t.MBps.median / max) * (w - 170);
    const color = tool === 'openssh' ? '#555' : COLORS.action;
    parts.push(
      `<text x="${x0 + 100}" y="${y + rowH / 2}" text-anchor="end" font-size="11">${esc(names[tool] ?? tool)}</text>`,
    );
    parts.push(
      `<rect x="${x0 + 105}" y="${y + 4}" width="${bw}" height="${rowH - 12}" fill="${color}" fill-opacity="${tool.startsWith('action-') ? 0.45 : 0.9}"/>`,
    );
    const lo = x0 + 105 + (t.MBps.min / max) * (w - 170);
    const hi = x0 + 105 + (t.MBps.max / max) * (w - 170);
    parts.push(
      `<line x1="${lo}" y1="${y + rowH / 2 - 2}" x2="${hi}" y2="${y + rowH / 2 - 2}" stroke="#000"/>`,
    );
    parts.push(
      `<text x="${Math.max(hi, x0 + 105 + bw) + 5}" y="${y + rowH / 2}" font-size="11">${t.MBps.median.toFixed(1)}</text>`,
    );
  });
  return parts.join('\n');
}

function chart(report) {
  const { sizes } = report.settings;
  const { bySize } = report.summary;
  const seriesFor = (key) => [
    ...METHODS.map((method) => ({
      name: method,
      color: COLORS[method],
      points: sizes
        .filter((size) => bySize[size]?.[method]?.[key])
        .map((size) => ({ size, ...bySize[size][method][key] })),
    })),
    ...(key === 'downtimeMs'
      ? [
          {
            name: 'floor',
            color: COLORS.floor,
            dash: true,
            points: sizes
              .filter((size) => bySize[size]?.floor)
              .map((size) => ({ size, ...bySize[size].floor.downtimeMs })),
          },
        ]
      : []),
  ];
  const toSeconds = (series) =>
    series.map((sr) => ({
      ...sr,
      points: sr.points.map((p) => ({
        size: p.size,
        median: p.median / 1000,
        min: p.min / 1000,
        max: p.max / 1000,
      })),
    }));
  const W = 960;
  const panelH = 300;
  const row2 = panelH + 20;
  const phases = phasePanel(20, row2 + panelH + 30, W - 40, sizes, bySize);
  const H = row2 + panelH + 40 + phases.height + 40;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    linePanel(
      10,
      10,
      W / 2 - 20,
      panelH,
      'Downtime seen by the workload (log scale)',
      sizes,
      toSeconds(seriesFor('downtimeMs')),
    ),
    linePanel(
      W / 2 + 10,
      10,
      W / 2 - 20,
      panelH,
      'Total wall time (log scale)',
      sizes,
      toSeconds(seriesFor('totalMs')),
    ),
    scatterPanel(10, row2, W / 2 - 20, panelH, report.runs, report.floors),
    transportPanel(
      W / 2 + 10,
      row2,
      W / 2 - 20,
      panelH,
      report.summary.transport,
      report.settings.transportBytes,
    ),
    phases.svg,
    `<text x="${W - 10}" y="${H - 8}" text-anchor="end" font-size="10" fill="#666">npm run bench, ${esc(report.startedAt)}; dots: median, bars: min–max</text>`,
    '</svg>',
    '',
  ].join('\n');
}

// ---------------------------------------------------------------- main

async function versions(bed, withPodman) {
  const v = await bed.on(
    bed.host1,
    [
      "docker version --format '{{.Server.Version}}'",
      ...['containerd', 'runc', 'criu'].map((p) => `dpkg-query -W -f '\${Version}\\n' ${p}`),
      withPodman ? `${PODMAN} --version | cut -d' ' -f3` : 'echo n/a',
    ].join('; '),
  );
  const [docker, containerd, runc, criu, podman] = v.stdout.trim().split('\n');
  return { docker, containerd, runc, criu, podman, node: process.version };
}

function writeResults(report, out) {
  mkdirSync(out, { recursive: true });
  if (report.settings.onlyModes) {
    // A part of the benchmark: latest.* stay the last full run's.
    writeFileSync(join(out, 'modes.json'), `${JSON.stringify(report, null, 2)}\n`);
    const table = modesMarkdown(report);
    writeFileSync(join(out, 'modes.md'), table);
    process.stdout.write(`${table}\n`);
    log(`results: ${relative(ROOT, join(out, 'modes.md'))}, modes.json`);
    return;
  }
  writeFileSync(join(out, 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(join(out, 'latest.svg'), chart(report));
  const table = markdown(report);
  writeFileSync(join(out, 'latest.md'), table);
  process.stdout.write(`${table}\n`);
  log(`results: ${relative(ROOT, join(out, 'latest.md'))}, latest.json, latest.svg`);
}

function modesRatioLine(report) {
  const m = report.summary.bySize[256]?.modes;
  const f = (sp) => (sp ? sp.median.toFixed(2) : 'n/a');
  return `checkpoint freeze ratio at 256 MiB: ${f(m?.freezeRatio)}; restore ratio at 256 MiB: ${f(m?.restoreRatio)}\n`;
}

function ratioLine(report) {
  const seed = report.summary.bySize[256]?.seed?.downtimeMs?.median;
  const action = report.summary.bySize[256]?.action?.downtimeMs?.median;
  return `downtime ratio seed/action at 256 MiB: ${seed && action ? (seed / action).toFixed(2) : 'n/a'}\n`;
}

async function main() {
  const opts = options();
  if (opts.render) {
    const report = JSON.parse(readFileSync(opts.render, 'utf8'));
    // Summaries and targets are derived again from the raw runs.
    report.summary = summarise(
      report.runs,
      report.floors,
      report.transport,
      report.settings.sizes,
      report.modes ?? [],
    );
    report.targets = evaluateTargets(report.summary, report.settings.sizes);
    // How the modes section measures is this script's to say: its notes are written again.
    if (report.modes?.length)
      report.notes = [...MODES_NOTES, ...report.notes.filter((n) => !n.startsWith('Modes section:'))];
    report.settings.out = relative(ROOT, opts.out);
    writeResults(report, opts.out);
    if (report.modes?.length) process.stdout.write(modesRatioLine(report));
    process.stdout.write(ratioLine(report));
    return;
  }
  if (process.getuid?.() !== 0) throw new Error('the benchmark drives the test bed and needs root');
  if (!existsSync(DIST_ENTRY)) throw new Error('dist/index.js is missing: run npm run build first');
  const withPodman = opts.methods.includes('podman');
  const bed = new Bed(opts);
  let interrupted = false;
  const onSignal = async () => {
    if (interrupted) return;
    interrupted = true;
    log('interrupted: cleaning up');
    for (const child of children) child.kill('SIGTERM');
    await bed.down().catch(() => {});
    process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const startedAt = new Date().toISOString();
  const loadStart = loadavg()[0].toFixed(2);
  // Other test beds may share the machine: the load is sampled all along.
  const loadSamples = [];
  const sampleLoad = () =>
    loadSamples.push({ at: new Date().toISOString(), load1: Number(loadavg()[0].toFixed(2)) });
  sampleLoad();
  const sampler = setInterval(sampleLoad, 30_000);
  sampler.unref();
  const distCopy = mkdtempSync(join(tmpdir(), 'bench-dist-'));
  cpSync(dirname(DIST_ENTRY), distCopy, { recursive: true });
  actionEntry = join(distCopy, 'index.js');
  const distSha256 = createHash('sha256').update(readFileSync(actionEntry)).digest('hex');
  log(`running a copy of dist/ (index.js sha256 ${distSha256.slice(0, 16)}) from ${distCopy}`);
  const runs = [];
  const floors = [];
  const modes = [];
  let transport = [];
  let probeDir;
  const notes = [];
  let report;
  try {
    await bed.up();
    if (withPodman) await preparePodman(bed);
    // Host 2 needs the image only for the migrations.
    if (!opts.onlyModes) await prepareImages(bed, withPodman);
    await Promise.all([cleanHost(bed, bed.host1, withPodman), cleanHost(bed, bed.host2, withPodman)]);
    const ver = await versions(bed, withPodman);
    if (opts.transport) probeDir = await buildProbe();

    for (const size of opts.sizes) {
      for (let rep = 1; rep <= opts.reps; rep++) {
        // Rotate the order: each way goes first, second and third once every three repetitions.
        const order = opts.methods.map((_, i) => opts.methods[(i + rep - 1) % opts.methods.length]);
        for (const [position, method] of order.entries()) {
          try {
            runs.push({ ...(await measureWay(bed, method, size, rep, withPodman)), position: position + 1 });
          } catch (error) {
            log(`${method} ${size} MiB rep ${rep} failed: ${error.message}`);
            runs.push({ method, sizeMiB: size, rep, error: error.message });
            await Promise.all([cleanHost(bed, bed.host1, withPodman), cleanHost(bed, bed.host2, withPodman)]);
          }
        }
        if (opts.floor) {
          try {
            floors.push(await measureFloor(bed, size, rep, withPodman));
          } catch (error) {
            log(`floor ${size} MiB rep ${rep} failed: ${error.message}`);
          }
        }
        if (opts.modes) {
          try {
            modes.push(await measureModes(bed, size, rep));
          } catch (error) {
            log(`modes ${size} MiB rep ${rep} failed: ${error.message}`);
            modes.push({ sizeMiB: size, rep, error: error.message });
            await cleanHost(bed, bed.host1, withPodman);
          }
        }
      }
    }
    if (opts.transport) transport = await measureTransport(bed, probeDir, opts.transportBytes, opts.reps);

    clearInterval(sampler);
    sampleLoad();
    const summary = summarise(runs, floors, transport, opts.sizes, modes);
    const targets = evaluateTargets(summary, opts.sizes);
    const codecs = [...new Set(runs.filter((r) => r.method === 'action' && r.codec).map((r) => r.codec))];
    if (opts.modes) notes.push(...MODES_NOTES);
    if (!opts.onlyModes)
      notes.push(
        `The action ran with default settings (compression: auto); its streams went: ${codecs.join(', ') || 'n/a'}.`,
        "Podman runs with runc and CRIU from the same host root, storage driver overlay on ext4 (graphroot /var/lib/docker/podman-storage: the overlay driver refuses the hosts' overlay root), default zstd-compressed export including root file system changes.",
        "All containers use --network none: Podman's netavark would have to set up bridges and firewall rules in the machine's own network namespace, where the test bed hosts' sshd live; Docker's daemons have their own namespaces. The same flags are used for all three ways.",
        'The image is on host 2 before the run (Docker and Podman), as after a registry pull; the seed procedure moves the file system with docker export/import by design.',
        "The workload's memory is one long string of 'x': it compresses to almost nothing, so bytes sent by the seed procedure (tar -czf, gzip), Podman (zstd) and the action (compression: auto, zstd -1 when both hosts have it) are far below the memory size; real memory compresses less.",
        "The workload forks for every line (command substitution): depending on the moment of the freeze, CRIU dumps one to three copies of its memory (parent plus forked children), so the CRIU image size varies from run to run for all three ways (see the 'CRIU image' column).",
        'The workload prints every TICK=10 ms plus the cost of forking a process that holds the value, which grows with the size: the time resolution of the downtime is the median tick shown in latest.json (tickMs).',
        'Seed and Podman copies go through the runner over one multiplexed OpenSSH connection per host, opened before the timed part; their runner RSS is both control connections plus the largest relay pipeline.',
        'Total wall time: the action process from start to exit (connect, preflight, stage, verify and finalize included); the seed and Podman scripts from start to exit.',
        `Bytes between hosts: the action's transferred-bytes output; for seed and Podman, the bytes the relay copied.`,
      );
    report = {
      schema: 1,
      startedAt,
      finishedAt: new Date().toISOString(),
      machine: {
        cpus: cpus().length,
        memGiB: Math.round(totalmem() / 1024 ** 3),
        kernel: readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(),
        loadStart,
        loadEnd: loadavg()[0].toFixed(2),
        loadSamples,
      },
      versions: ver,
      dist: { sha256: distSha256, changedDuringRun: distChanged(distSha256) },
      settings: {
        sizes: opts.sizes,
        reps: opts.reps,
        quick: opts.quick,
        methods: opts.methods,
        floor: opts.floor,
        transport: opts.transport,
        modes: opts.modes,
        onlyModes: opts.onlyModes,
        tick: TICK,
        transportBytes: opts.transportBytes,
        out: relative(ROOT, opts.out),
        testbed: { state: opts.state, host1: bed.host1, host2: bed.host2, host3Addr: opts.host3Addr },
      },
      summary,
      targets,
      notes,
      runs,
      floors,
      transport,
      modes,
    };
    writeResults(report, opts.out);
  } finally {
    if (probeDir) rmSync(probeDir, { recursive: true, force: true });
    rmSync(distCopy, { recursive: true, force: true });
    if (bed.host1) {
      await Promise.all([cleanHost(bed, bed.host1, withPodman), cleanHost(bed, bed.host2, withPodman)]).catch(
        () => {},
      );
    }
    clearInterval(sampler);
    await bed.down();
  }
  if (opts.modes) process.stdout.write(modesRatioLine(report));
  process.stdout.write(ratioLine(report));
}

/** Whether the repository's dist/index.js is another build now than the copy the runs used. */
function distChanged(sha256) {
  let now;
  try {
    now = createHash('sha256').update(readFileSync(DIST_ENTRY)).digest('hex');
  } catch {
    now = undefined;
  }
  if (now !== sha256)
    log('note: dist/index.js changed during the run; the runs used the copy taken at the start');
  return now !== sha256;
}

const MODES_NOTES = [
  "Modes section: the dump itself is timed by scripts/bench/dump.sh on the host (date +%s%3N around `docker pause`, around `runc checkpoint --leave-running` into /var/lib/criu-migrate, where the action's work directory is, and around `docker unpause`: the same commands and flags as the action's freeze, no SSH round trip inside), twice per repetition on the same container, right before and right after the action's checkpoint; the reference is the mean of the two. It is the most direct measure of pause + runc checkpoint: the action's checkpoint-mode log and metadata have no separate dump time (the `dumped in X ms` line is migrate mode's), and its timings.phasesMs.checkpoint also holds the journal write, SSH round trips and the measuring command it runs while frozen (shown beside it).",
  "Modes section: 'paused per dockerd' is the time between the container's pause and unpause events (docker events on host 1) during the action's checkpoint run; the freeze seen by the workload is the largest gap between its lines in that run (10 ms ticks).",
  "Modes section: CRIU's own restore time is the last timestamp of the restore.log that containerd keeps for the restored container (the same source as the floor's and the migrate runs' CRIU restore column), read for the very restore the ratio is about. floor.sh (`docker pause`, `runc checkpoint --leave-running` into a new container's checkpoints directory, `docker start --checkpoint`) runs on the same container after the second reference dump, only to show what `docker start --checkpoint` costs by hand.",
  'Modes section: restore mode runs with default settings (verify-stable-seconds 5, so the whole restore run includes 5 s of watching the restored container).',
  'Modes section: busybox `sleep` ends early when CRIU dumps it with --leave-running (seen on this bed), so counter-random.sh keeps its pipe open with a loop of sleeps; the restored copy and the source tick every 10 ms (tickMs, restoredTickMs in the JSON).',
];

// Only when run, not when imported (for example to reuse a helper).
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error) => {
    log(`error: ${error.stack ?? error.message}`);
    process.exit(1);
  });
}
