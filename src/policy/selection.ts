import type { ContainerInspect } from '../engine/docker/inspect.js';
import { HOLDER_LABEL } from '../engine/docker/net-holder.js';
import { MigrationError } from '../errors.js';

/** The label Docker Compose puts on every container of a project. */
export const COMPOSE_PROJECT_LABEL = 'com.docker.compose.project';
export const COMPOSE_SERVICE_LABEL = 'com.docker.compose.service';

/** Which containers of the source a run is about, as the `selection` input names them. */
export type Selection =
  | { kind: 'all' }
  | { kind: 'names'; names: string[] }
  | { kind: 'label'; key: string; value?: string }
  | { kind: 'compose'; project: string };

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const LABEL_KEY = /^[A-Za-z0-9][A-Za-z0-9_.\-/]*$/;

function invalid(value: string, why: string): MigrationError {
  return new MigrationError('INPUT_INVALID', `selection: "${value}" ${why}`, {
    step: 'inputs',
    remedy:
      'write selection as all, compose=<project>, label=<key> or label=<key>=<value>, or container names separated by commas or new lines',
  });
}

/** Parses the selection input: `all`, `compose=<project>`, `label=<key>[=<value>]`, or names. */
export function parseSelection(text: string): Selection {
  const value = text.trim();
  if (value === 'all') return { kind: 'all' };
  if (value.startsWith('compose=')) {
    const project = value.slice('compose='.length);
    if (!NAME.test(project)) throw invalid(value, 'names no valid compose project');
    return { kind: 'compose', project };
  }
  if (value.startsWith('label=')) {
    const rest = value.slice('label='.length);
    const at = rest.indexOf('=');
    const key = at < 0 ? rest : rest.slice(0, at);
    if (!LABEL_KEY.test(key)) throw invalid(value, 'names no valid label key');
    return at < 0 ? { kind: 'label', key } : { kind: 'label', key, value: rest.slice(at + 1) };
  }
  const names = value.split(/[\s,]+/).filter(Boolean);
  if (names.length === 0) throw invalid(value, 'is empty');
  const bad = names.find((name) => !NAME.test(name));
  if (bad !== undefined) throw invalid(value, `has "${bad}", which is not a container name`);
  return { kind: 'names', names: [...new Set(names)] };
}

export function describeSelection(selection: Selection): string {
  switch (selection.kind) {
    case 'all':
      return 'every running container';
    case 'compose':
      return `compose project ${selection.project}`;
    case 'label':
      return `containers labelled ${selection.key}${selection.value === undefined ? '' : `=${selection.value}`}`;
    case 'names':
      return selection.names.join(', ');
  }
}

/** What moves together: a compose project (all its containers), or one container. */
export interface Unit {
  /** The container's name, or compose:<project>. */
  name: string;
  kind: 'container' | 'compose';
  members: ContainerInspect[];
}

export interface LeftOut {
  container: string;
  reason: string;
}

export interface ResolvedSelection {
  units: Unit[];
  leftOut: LeftOut[];
  /** Names the selection gave that the host does not have. */
  missing: string[];
}

export function containerNameOf(container: ContainerInspect): string {
  return container.Name.replace(/^\//, '');
}

function projectOf(container: ContainerInspect): string | undefined {
  return container.Config.Labels?.[COMPOSE_PROJECT_LABEL] || undefined;
}

function matches(container: ContainerInspect, selection: Selection): boolean {
  const labels = container.Config.Labels ?? {};
  switch (selection.kind) {
    case 'all':
      return true;
    case 'compose':
      return labels[COMPOSE_PROJECT_LABEL] === selection.project;
    case 'label':
      return selection.value === undefined
        ? selection.key in labels
        : labels[selection.key] === selection.value;
    case 'names':
      return selection.names.some(
        (name) => name === containerNameOf(container) || (name.length >= 12 && container.Id.startsWith(name)),
      );
  }
}

/** Pure: why a container must not move, or undefined when it may. */
function exclusion(container: ContainerInspect, ownContainerId: string | undefined): string | undefined {
  if (ownContainerId !== undefined && container.Id.startsWith(ownContainerId)) {
    return "the runner's own container: a run cannot move the runner it runs on";
  }
  if (container.Config.Labels?.[HOLDER_LABEL] !== undefined) {
    return 'a network holder of this action: it moves with the container that joins it';
  }
  if (!container.State.Running) return `not running (${container.State.Status})`;
  if (container.State.Paused) return 'paused: unpause it first, or it stays';
  return undefined;
}

/**
 * Pure: the units a selection names on a host. A compose project is one unit of all its
 * running containers, even when the selection named only some of them; every other
 * container is a unit of its own. What must not move is left out, with the reason.
 */
export function resolveUnits(
  all: readonly ContainerInspect[],
  selection: Selection,
  options: { ownContainerId?: string } = {},
): ResolvedSelection {
  const picked = all.filter((container) => matches(container, selection));
  const missing =
    selection.kind === 'names'
      ? selection.names.filter(
          (name) => !picked.some((container) => matches(container, { kind: 'names', names: [name] })),
        )
      : [];
  const projects = new Set(
    picked.map(projectOf).filter((project): project is string => project !== undefined),
  );
  const candidates = [
    ...picked.filter((container) => projectOf(container) === undefined),
    ...all.filter((container) => {
      const project = projectOf(container);
      return project !== undefined && projects.has(project);
    }),
  ];
  const leftOut: LeftOut[] = [];
  const byProject = new Map<string, ContainerInspect[]>();
  const units: Unit[] = [];
  for (const container of candidates) {
    const reason = exclusion(container, options.ownContainerId);
    if (reason) {
      leftOut.push({ container: containerNameOf(container), reason });
      continue;
    }
    const project = projectOf(container);
    if (project === undefined) {
      units.push({ name: containerNameOf(container), kind: 'container', members: [container] });
    } else {
      byProject.set(project, [...(byProject.get(project) ?? []), container]);
    }
  }
  for (const [project, members] of byProject) {
    members.sort((a, b) => containerNameOf(a).localeCompare(containerNameOf(b)));
    units.push({ name: `compose:${project}`, kind: 'compose', members });
  }
  units.sort((a, b) => a.name.localeCompare(b.name));
  leftOut.sort((a, b) => a.container.localeCompare(b.container));
  return { units, leftOut, missing };
}
