import type { Host } from '../host/host.js';
import { runChecked, shellQuote } from '../host/shell.js';
import { DRILL_RECORD_FILE, type DrillRecord, parseDrillRecord } from '../policy/drill.js';
import { parseUnitRecord, type UnitRecord } from '../policy/unit-record.js';
import { PRIVATE } from './host-records.js';
import { newestFirstStored, parseManifest, type StoredCheckpoint, seriesOfContainer } from './store.js';

/** A complete checkpoint as list mode shows it: where it is, and its newest drill's result. */
export interface ListedCheckpoint extends StoredCheckpoint {
  /** The container name it is stored under (<store>/<name>/...). */
  stored: string;
  drill?: DrillRecord;
}

const SEPARATOR = '\n\u001e\n';

/**
 * Every complete checkpoint in the store (of one container name, or of all),
 * with each one's drill.json. Reads only: no lock, nothing written.
 */
export async function listStore(host: Host, store: string, container?: string): Promise<ListedCheckpoint[]> {
  const names = container ? shellQuote([container]) : '*';
  const script = [
    `cd ${shellQuote([store])} 2>/dev/null || exit 0`,
    `for f in ${names}/*/*/manifest.json ${names}/*/manifest.json; do`,
    '  [ -f "$f" ] || continue',
    `  printf 'M %s\\n' "$f"; cat "$f"; printf '\\n\\036\\n'`,
    `  d="\${f%/manifest.json}/${DRILL_RECORD_FILE}"`,
    `  if [ -f "$d" ]; then printf 'D %s\\n' "$d"; cat "$d"; printf '\\n\\036\\n'; fi`,
    'done',
  ].join('\n');
  const result = await runChecked(host, script, {
    step: 'list',
    what: 'reading the manifests in the store',
    options: { timeoutMs: 120_000 },
  });
  return parseStoreListing(result.stdout, store);
}

/** Every unit record in the store (compose projects checkpointed as one unit). Reads only. */
export async function listUnits(host: Host, store: string): Promise<UnitRecord[]> {
  const result = await runChecked(
    host,
    `cd ${shellQuote([store])} 2>/dev/null || exit 0\nfor f in .units/*/*.json; do [ -f "$f" ] || continue; cat "$f"; printf '\\n\\036\\n'; done`,
    { step: 'list', what: 'reading the unit records in the store', options: { timeoutMs: 120_000 } },
  );
  return result.stdout
    .split(SEPARATOR)
    .map((text) => parseUnitRecord(text))
    .filter((record): record is UnitRecord => record !== undefined);
}

/**
 * Parses listStore's output (paths relative to the store): M records are
 * manifests, D records the drill result next to the manifest before them.
 */
export function parseStoreListing(text: string, store: string): ListedCheckpoint[] {
  const found: ListedCheckpoint[] = [];
  const drills = new Map<string, DrillRecord>();
  for (const record of text.split(SEPARATOR)) {
    const trimmed = record.replace(/^\n+/, '');
    const newline = trimmed.indexOf('\n');
    if (newline < 0) continue;
    const head = trimmed.slice(0, newline);
    const body = trimmed.slice(newline + 1);
    const path = head.slice(2);
    const parts = path.split('/');
    if (head.startsWith('D ')) {
      const drill = parseDrillRecord(body);
      if (drill) drills.set(parts.slice(0, -1).join('/'), drill);
      continue;
    }
    if (!head.startsWith('M ')) continue;
    const manifest = parseManifest(body);
    if (!manifest || parts.some((part) => part === '' || part === '..')) continue;
    const stored = parts[0] as string;
    if (parts.length === 4) {
      found.push({
        manifest,
        stored,
        series: parts[1] as string,
        dir: `${store}/${parts.slice(0, 3).join('/')}`,
        legacy: false,
      });
    } else if (parts.length === 3) {
      found.push({
        manifest,
        stored,
        series: seriesOfContainer(manifest.container.id),
        dir: `${store}/${parts.slice(0, 2).join('/')}`,
        legacy: true,
      });
    }
  }
  for (const entry of found) {
    const drill = drills.get(entry.dir.slice(store.length + 1));
    if (drill) entry.drill = drill;
  }
  return newestFirstStored(found);
}

/**
 * Records a drill's result next to its checkpoint, replacing an older one in
 * one rename. The checkpoint's own files and manifest are not touched, and no
 * series lock is taken: a checkpoint removed by retention meanwhile is no error
 * (false comes back, and the caller says so).
 */
export async function writeDrillRecord(host: Host, dir: string, record: DrillRecord): Promise<boolean> {
  const file = `${dir}/${DRILL_RECORD_FILE}`;
  const temporary = `${dir}/.${DRILL_RECORD_FILE}.${record.id}`;
  const result = await host.run(
    `${PRIVATE} [ -d ${shellQuote([dir])} ] || exit 3; cat >${shellQuote([temporary])} && mv -f ${shellQuote([temporary, file])}`,
    { input: `${JSON.stringify(record)}\n`, timeoutMs: 60_000 },
  );
  if (result.exitCode === 3) return false;
  if (result.exitCode !== 0) throw new Error(result.stderr.trim() || `exit ${result.exitCode}`);
  return true;
}
