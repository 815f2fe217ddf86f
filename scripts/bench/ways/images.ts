/** Images the ways need on both hosts (and in Podman), as after a registry pull. */
import { check, log } from '../bed.js';
import { type BenchContext, PODMAN } from './way.js';

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
