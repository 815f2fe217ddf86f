/** Images the ways need on both hosts (and in Podman), as after a registry pull. */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { check, log } from '../bed.js';
import { BASE_IMAGE, type BenchContext, benchScript, IMAGE, PODMAN, WORKLOAD } from './way.js';

/**
 * The bench's workload image on host 1: the bed's busybox image plus
 * bench-counter.sh, rebuilt when the script or the base image changed (a label
 * holds both). test/testbed stays as it is; the bench's workload is its own.
 */
export async function buildWorkloadImage(ctx: BenchContext): Promise<void> {
  const { bed } = ctx;
  const script = readFileSync(benchScript(ctx, 'workload/bench-counter.sh'));
  const base = (await bed.must(bed.host1, `docker image inspect --format '{{.Id}}' ${BASE_IMAGE}`)).trim();
  const stamp = createHash('sha256').update(script).update(base).digest('hex').slice(0, 16);
  const have = await bed.on(
    bed.host1,
    `docker image inspect --format '{{index .Config.Labels "bench.workload"}}' ${IMAGE} 2>/dev/null`,
  );
  if (have.stdout.trim() === stamp) return;
  log(`building ${IMAGE} on host 1 (${BASE_IMAGE} + scripts/bench/workload/bench-counter.sh)`);
  const tmp = 'bench-image-build';
  await bed.must(
    bed.host1,
    `docker rm -f ${tmp} >/dev/null 2>&1; docker run -i --name ${tmp} --network none ${BASE_IMAGE} sh -c 'cat >${WORKLOAD} && chmod 755 ${WORKLOAD}' && ` +
      `docker commit --change 'CMD ["${WORKLOAD}"]' --change 'LABEL bench.workload=${stamp}' ${tmp} ${IMAGE} >/dev/null; r=$?; docker rm -f ${tmp} >/dev/null; exit $r`,
    { input: script.toString('utf8') },
  );
}

/**
 * The image goes to host 2 (and into Podman on both hosts) before anything is
 * measured, as after a registry pull; again whenever host 1's differs (up.sh
 * imports a new one when the workload changed).
 */
export async function copyImage(ctx: BenchContext, image: string, withPodman: boolean): Promise<void> {
  const { bed } = ctx;
  const id = async (host: string, cli: string) =>
    (await bed.on(host, `${cli} image inspect --format '{{.Id}}' ${image} 2>/dev/null`)).stdout.trim();
  const want = await id(bed.host1, 'docker');
  if (!want) throw new Error(`host 1 has no image ${image}`);
  const quote = (args: string[]) => args.map((a) => `'${a}'`).join(' ');
  if ((await id(bed.host2, 'docker')) !== want) {
    log(`copying ${image} to host 2`);
    await check([
      'bash',
      '-o',
      'pipefail',
      '-c',
      `${quote([...bed.ssh(bed.host1), `docker save ${image}`])} | ${quote([...bed.ssh(bed.host2), 'docker load -q >/dev/null'])}`,
    ]);
  }
  if (!withPodman) return;
  for (const host of [bed.host1, bed.host2]) {
    // Podman's image id of a docker save differs from Docker's: compare by a label-free digest of the config instead.
    const stamp = `/var/lib/docker/podman-storage/.bench-${image.replace(/[/:]/g, '_')}`;
    if (
      (await bed.on(host, `[ "$(cat ${stamp} 2>/dev/null)" = ${want} ] && ${PODMAN} image exists ${image}`))
        .code !== 0
    ) {
      await bed.must(host, `docker save ${image} | ${PODMAN} load -q >/dev/null && echo ${want} >${stamp}`);
    }
  }
}
