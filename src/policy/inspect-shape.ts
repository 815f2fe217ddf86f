import type { ContainerInspect } from '../engine/docker/inspect.js';

const NAME = /^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const IMAGE_ID = /^sha256:[0-9a-f]{64}$/;
const CONTAINER_ID = /^[0-9a-f]{64}$/;

/**
 * Values from the source's docker inspect become arguments on the target; a
 * compromised or odd source must not smuggle options in through them.
 */
export function inspectShapeProblems(container: ContainerInspect): string[] {
  const problems: string[] = [];
  if (!CONTAINER_ID.test(container.Id)) problems.push(`container ID "${container.Id}" is not 64 hex digits`);
  if (!NAME.test(container.Name)) problems.push(`container name "${container.Name}" is not a Docker name`);
  if (!IMAGE_ID.test(container.Image))
    problems.push(`image ID "${container.Image}" is not sha256:<64 hex digits>`);
  const ref = container.Config.Image;
  if (ref !== undefined && (ref.startsWith('-') || /\s/.test(ref))) {
    problems.push(`image reference "${ref}" starts with "-" or holds white space`);
  }
  return problems;
}
