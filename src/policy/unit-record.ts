import type { NetworkSpec } from './compose-unit.js';

/** One member of a stored unit: where its own checkpoint is in the store. */
export interface UnitRecordMember {
  container: string;
  service: string;
  /** Its container ID on the source at the checkpoint. */
  id: string;
  /** The member's checkpoint: a complete checkpoint of its own, in its own series. */
  checkpoint: string;
  series: string;
  /** Its addresses and aliases on the project's networks, as the source had them. */
  endpoints: { network: string; address?: string; aliases: string[] }[];
}

/**
 * A compose project's checkpoint: written into the store only once every member's checkpoint
 * is complete, so a unit that has a record is whole. Restore reads nothing else to find it.
 */
export interface UnitRecord {
  schema: 1;
  kind: 'compose';
  project: string;
  /** The unit's checkpoint name (each member's checkpoint is named after it). */
  name: string;
  createdAt: string;
  /** The source host the unit was checkpointed on: the unit's series. */
  source: string;
  /** Restore order (a dependency before what depends on it), and what each member waits for. */
  order: string[];
  waitsFor: Record<string, string[]>;
  members: UnitRecordMember[];
  networks: NetworkSpec[];
  /** The longest frozen window of any member: they were frozen together. */
  frozenMs?: number;
}

/** Where the store keeps a project's unit records (a hidden directory: never a container's). */
export function unitRecordsDir(store: string, project: string): string {
  return `${store}/.units/${project}`;
}

export function unitRecordPath(store: string, project: string, name: string): string {
  return `${unitRecordsDir(store, project)}/${name}.json`;
}

/** A member's checkpoint name: the unit's, then the member, within Docker's 128 characters. */
export function memberCheckpointName(unitName: string, member: string): string {
  return `${unitName}-${member}`.slice(0, 128);
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** Pure: a unit record as stored, or undefined when it is not one (every name checked before it becomes a path). */
export function parseUnitRecord(text: string): UnitRecord | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const record = value as Partial<UnitRecord>;
  if (record.schema !== 1 || record.kind !== 'compose') return undefined;
  if (typeof record.project !== 'string' || !NAME.test(record.project)) return undefined;
  if (typeof record.name !== 'string' || !NAME.test(record.name)) return undefined;
  if (typeof record.createdAt !== 'string' || typeof record.source !== 'string') return undefined;
  if (!Array.isArray(record.members) || record.members.length === 0) return undefined;
  if (!Array.isArray(record.order) || !Array.isArray(record.networks)) return undefined;
  for (const member of record.members) {
    if (typeof member !== 'object' || member === null) return undefined;
    if (
      ![member.container, member.checkpoint, member.series].every(
        (v) => typeof v === 'string' && NAME.test(v),
      )
    )
      return undefined;
  }
  const names = new Set(record.members.map((member) => member.container));
  if (record.order.length !== names.size || !record.order.every((name) => names.has(name))) return undefined;
  return { ...(record as UnitRecord), waitsFor: record.waitsFor ?? {} };
}

/** Pure: the records newest first (by creation, then name). */
export function newestUnitsFirst(records: readonly UnitRecord[]): UnitRecord[] {
  return [...records].sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.name.localeCompare(a.name));
}

/** Pure: the unit checkpoint a restore takes: the named one, or the newest (of one source when given). */
export function chooseUnitRecord(
  records: readonly UnitRecord[],
  wanted: { name?: string; source?: string },
): UnitRecord | undefined {
  const fitting = records.filter(
    (record) =>
      (wanted.name === undefined || record.name === wanted.name) &&
      (wanted.source === undefined || record.source === wanted.source),
  );
  return newestUnitsFirst(fitting)[0];
}

/** Pure: which unit checkpoints retention removes: of the same project and source, all but the newest `keep` (0 keeps all). */
export function unitRetentionPlan(
  records: readonly UnitRecord[],
  source: string,
  keep: number,
): UnitRecord[] {
  if (keep === 0) return [];
  return newestUnitsFirst(records.filter((record) => record.source === source)).slice(keep);
}
