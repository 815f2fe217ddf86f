/** The bench's own test bed: brought up if it is not, one OpenSSH control connection per host. */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OPENSSH_CIPHERS } from '../../src/policy/direct-route.js';
import { type ProcessOptions, type ProcessResult, runProcess } from '../../test/e2e/process.js';
import { loadTestbed, onHostResult, sshArgs, type Testbed } from '../../test/e2e/testbed.js';
import type { Options } from './options.js';

export const log = (message: string): void => {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
};
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A command that must succeed; the error names it and ends with its stderr. */
export async function check(argv: string[], options: ProcessOptions = {}): Promise<ProcessResult> {
  const r = await runProcess(argv, { timeoutMs: 600_000, ...options });
  if (r.code !== 0)
    throw new Error(`${argv.join(' ').slice(0, 200)} failed (${r.code}): ${r.stderr.slice(-800)}`);
  return r;
}

export class BenchBed {
  readonly envFile: string;
  private broughtUp = false;
  private masters: ChildProcess[] = [];
  private readonly controlDir = mkdtempSync(join(tmpdir(), 'bench-ctl-'));
  private bed: Testbed | undefined;

  constructor(
    private readonly opts: Options,
    private readonly testbedDir: string,
  ) {
    this.envFile = join(opts.state, 'client/env');
  }

  /** The environment up.sh and down.sh get: the bench bed's, never another bed's. */
  private testbedEnv(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {};
    for (const [name, value] of Object.entries(process.env))
      if (!name.startsWith('TESTBED_') || name === 'TESTBED_CACHE') env[name] = value;
    const [h1, h2, h3] = this.opts.hostAddrs;
    return {
      ...env,
      TESTBED_STATE: this.opts.state,
      TESTBED_HOST1_ADDR: h1,
      TESTBED_HOST2_ADDR: h2,
      TESTBED_HOST3_ADDR: h3,
    };
  }

  get testbed(): Testbed {
    if (!this.bed) throw new Error('the bench bed is not up');
    return this.bed;
  }
  get host1(): string {
    return this.testbed.host1;
  }
  get host2(): string {
    return this.testbed.host2;
  }

  private async alive(): Promise<boolean> {
    if (!existsSync(this.envFile)) return false;
    const bed = loadTestbed(this.envFile);
    for (const pid of [bed.host1Pid, bed.host2Pid, bed.host3Pid])
      if (!existsSync(`/proc/${pid}`)) return false;
    for (const host of [bed.host1, bed.host2]) {
      if (!/^root@127\.[\d.]+:\d+$/.test(host)) throw new Error(`${this.envFile}: unexpected host ${host}`);
      if ((await onHostResult(bed, host, 'docker version >/dev/null', { timeoutMs: 20_000 })).code !== 0)
        return false;
    }
    this.bed = bed;
    return true;
  }

  /**
   * up.sh runs every time: it leaves running hosts alone and imports the
   * workload image again when counter.sh changed.
   */
  async up(): Promise<void> {
    const wasUp = await this.alive();
    log(
      wasUp
        ? `test bed up (${this.opts.state}); it stays up`
        : `bringing the bench test bed up (${this.opts.state})`,
    );
    this.broughtUp = !wasUp;
    await check(['bash', join(this.testbedDir, 'up.sh')], {
      env: this.testbedEnv(),
      timeoutMs: 1_800_000,
      echoStderr: true,
    });
    if (!(await this.alive())) throw new Error('the bench test bed is not up');
    const bed = this.testbed;
    for (const host of [bed.host1, bed.host2]) {
      this.masters.push(
        spawn(
          'ssh',
          [
            ...sshArgs(bed, host),
            '-M',
            '-N',
            '-o',
            'ControlMaster=yes',
            '-o',
            `ControlPath=${this.controlDir}/%C`,
          ],
          {
            stdio: 'ignore',
          },
        ),
      );
    }
    this.bed = { ...bed, controlDir: this.controlDir };
    for (let i = 0; i < 50; i++) {
      const ok = await Promise.all(
        [bed.host1, bed.host2].map((h) =>
          runProcess(['ssh', ...sshArgs(this.testbed, h), '-O', 'check'], { timeoutMs: 5000 }),
        ),
      );
      if (ok.every((r) => r.code === 0)) break;
      await sleep(100);
    }
  }

  async down(): Promise<void> {
    for (const master of this.masters) if (master.exitCode === null) master.kill('SIGTERM');
    this.masters = [];
    rmSync(this.controlDir, { recursive: true, force: true });
    if (this.broughtUp) {
      log('bringing the bench test bed down again (it was down when the bench started)');
      await runProcess(['bash', join(this.testbedDir, 'down.sh')], {
        env: this.testbedEnv(),
        timeoutMs: 300_000,
        echoStderr: true,
      });
      this.broughtUp = false;
    }
  }

  /** A shell command on a host over the control connection (OpenSSH, not the action's code). */
  on(host: string, command: string, options: ProcessOptions = {}): Promise<ProcessResult> {
    return onHostResult(this.testbed, host, command, { timeoutMs: 300_000, ...options });
  }

  async must(host: string, command: string, options: ProcessOptions = {}): Promise<string> {
    const r = await this.on(host, command, options);
    if (r.code !== 0)
      throw new Error(`${host}: ${command.slice(0, 160)}: exit ${r.code}: ${r.stderr.slice(-600)}`);
    return r.stdout;
  }

  /** ssh arguments for a host, through the control connection. */
  ssh(host: string): string[] {
    return ['ssh', ...sshArgs(this.testbed, host)];
  }

  /** What the shell procedures (scripts/bench/*.sh) need. */
  scriptEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    return {
      ...process.env,
      BENCH_SSH_KEY: this.testbed.sshKeyPath,
      BENCH_KNOWN_HOSTS: this.testbed.knownHostsPath,
      BENCH_SSH_CIPHERS: OPENSSH_CIPHERS,
      ...extra,
    };
  }
}
