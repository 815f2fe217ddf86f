import type { ContainerInspect } from '../engine/docker/inspect.js';
import type { Check } from './compatibility.js';
import type { VolumeInfo } from './volumes.js';

const NAME = /^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const IMAGE_ID = /^sha256:[0-9a-f]{64}$/;
const CONTAINER_ID = /^[0-9a-f]{64}$/;
/** Docker's own rule for names of local volumes (anonymous ones are 64 hex digits, which fit). */
const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const VOLUME_DRIVER = /^[a-zA-Z0-9][a-zA-Z0-9_.:/-]*$/;
/** The shapes of checkpoint-name and series (inputs.ts, state/series.ts). */
const CHECKPOINT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const SERIES = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const FILE_SEGMENT = /^[A-Za-z0-9_.+-]+$/;
const LAYER_ARCHIVES = new Set(['layer/bulk.tar', 'layer/frozen.tar']);
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it looks for.
const CONTROL = /[\u0000-\u001f\u007f]/;

/** An absolute path without ".." or "." segments or control characters; undefined when fine. */
export function absolutePathProblem(what: string, path: string): string | undefined {
  if (
    !path.startsWith('/') ||
    CONTROL.test(path) ||
    path.split('/').some((part) => part === '..' || part === '.')
  )
    return `${what} "${JSON.stringify(path).slice(1, -1)}" is not a plain absolute path`;
  return undefined;
}

/** A path relative to a directory that stays inside it: plain segments only. */
function relativePathProblem(what: string, path: string): string | undefined {
  const parts = path.split('/');
  if (path === '' || parts.some((part) => part === '.' || part === '..' || !FILE_SEGMENT.test(part)))
    return `${what} "${JSON.stringify(path).slice(1, -1)}" is not a plain relative path`;
  return undefined;
}

function volumeNameProblem(what: string, name: string | undefined): string | undefined {
  if (name === undefined || !VOLUME_NAME.test(name))
    return `${what} "${JSON.stringify(name ?? '').slice(1, -1)}" is not a Docker volume name`;
  return undefined;
}

/**
 * Values from the source's docker inspect become arguments and paths on the
 * target, the store and the source itself; a compromised or odd source must
 * not smuggle options or other paths in through them.
 */
export function inspectShapeProblems(container: ContainerInspect): string[] {
  const problems: string[] = [];
  if (!CONTAINER_ID.test(container.Id)) problems.push(`container ID "${container.Id}" is not 64 hex digits`);
  if (!NAME.test(container.Name)) problems.push(`container name "${container.Name}" is not a Docker name`);
  if (!IMAGE_ID.test(container.Image))
    problems.push(`image ID "${container.Image}" is not sha256:<64 hex digits>`);
  const ref = container.Config.Image;
  if (ref !== undefined && (ref.startsWith('-') || /\s/.test(ref) || CONTROL.test(ref))) {
    problems.push(`image reference "${ref}" starts with "-" or holds white space`);
  }
  const upper = container.GraphDriver?.Data?.UpperDir;
  if (upper !== undefined) problems.push(...[absolutePathProblem('writable layer', upper)].filter(isText));
  for (const mount of container.Mounts ?? []) {
    problems.push(
      ...[
        absolutePathProblem('mount destination', mount.Destination),
        mount.Type === 'volume' ? volumeNameProblem('volume', mount.Name) : undefined,
        mount.Type === 'bind' ? absolutePathProblem('bind mount source', mount.Source) : undefined,
      ].filter(isText),
    );
  }
  return problems;
}

/** The gate's check of what the source's inspects say, when anything has an unexpected shape. */
export function shapeCheck(problems: readonly string[], what: string): Check | undefined {
  if (problems.length === 0) return undefined;
  return {
    host: 'source',
    name: what,
    status: 'fail',
    observed: problems.join('; '),
    expected: 'names, IDs and paths of the shapes Docker and this action give them',
    remedy:
      'these values become paths and arguments on the hosts: rename what is named above (container, volume, image tag) with an ordinary name, or find out who changed it',
    code: 'UNSAFE_VALUE',
  };
}

/** What `docker volume inspect` said of a volume that moves: its mount point becomes a path there. */
export function volumeShapeProblems(name: string, info: VolumeInfo): string[] {
  return [
    volumeNameProblem('volume', info.name),
    info.name === name ? undefined : `volume "${name}" is described as "${info.name}"`,
    VOLUME_DRIVER.test(info.driver) ? undefined : `volume driver "${info.driver}" is not a driver name`,
    absolutePathProblem(`mount point of volume ${name}`, info.mountpoint),
  ].filter(isText);
}

/** What a stored manifest names, before any of it becomes a path on the store host or the target. */
export interface ManifestShape {
  name: string;
  series?: string;
  container: { id: string; imageId: string; imageRef: string };
  files: readonly { path: string }[];
  image: { path: string };
  layer?: { archives: readonly string[] };
  volumes?: readonly { name: string; info: VolumeInfo; archives: readonly string[] }[];
}

/**
 * A manifest read from the store: every name and path it holds has the shape
 * the checkpoint run writes (a store someone else can write to must not turn
 * a restore into reads or writes elsewhere).
 */
export function manifestShapeProblems(
  manifest: ManifestShape,
  imagePath: (imageId: string) => string,
): string[] {
  const problems: string[] = [];
  const add = (problem: string | undefined) => {
    if (problem) problems.push(problem);
  };
  if (!CHECKPOINT_NAME.test(manifest.name))
    add(`checkpoint name "${manifest.name}" is not a checkpoint name`);
  if (manifest.series !== undefined && !SERIES.test(manifest.series))
    add(`series "${manifest.series}" is not a series ID`);
  const { id, imageId, imageRef } = manifest.container;
  if (!CONTAINER_ID.test(id)) add(`container ID "${id}" is not 64 hex digits`);
  if (!IMAGE_ID.test(imageId)) add(`image ID "${imageId}" is not sha256:<64 hex digits>`);
  else if (manifest.image.path !== imagePath(imageId))
    add(`image file "${manifest.image.path}" is not ${imagePath(imageId)}`);
  if (imageRef.startsWith('-') || /\s/.test(imageRef) || CONTROL.test(imageRef))
    add(`image reference "${imageRef}" starts with "-" or holds white space`);
  for (const file of manifest.files) add(relativePathProblem('file', file.path));
  for (const archive of manifest.layer?.archives ?? []) {
    if (!LAYER_ARCHIVES.has(archive))
      add(`layer archive "${archive}" is not layer/bulk.tar or layer/frozen.tar`);
  }
  for (const volume of manifest.volumes ?? []) {
    const named = volumeNameProblem('volume', volume.name);
    add(named);
    if (named) continue;
    for (const problem of volumeShapeProblems(volume.name, volume.info)) add(problem);
    for (const archive of volume.archives) {
      if (archive !== `volumes/${volume.name}/bulk.tar` && archive !== `volumes/${volume.name}/frozen.tar`)
        add(`archive "${archive}" of volume ${volume.name} is not volumes/${volume.name}/(bulk|frozen).tar`);
    }
  }
  return problems;
}

function isText(value: string | undefined): value is string {
  return value !== undefined;
}
