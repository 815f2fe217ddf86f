/** unit.md: the compose unit's frozen window against the same containers moved one at a time. */
import type { UnitRun, UnitSummary, UnitWay } from '../unit-stats.js';
import { UNIT_WAYS } from '../unit-stats.js';
import { cell, range, ratio, sec } from './format.js';

export interface UnitResults {
  schema: 1;
  startedAt: string;
  finishedAt: string;
  machine: { cpus: number; loadStart: string; loadEnd: string; uptimeStart?: string; uptimeEnd?: string };
  versions: Record<string, string>;
  dist: { sha256: string };
  settings: {
    sizeMiB: number;
    reps: number;
    tick: string;
    pattern: string;
    project: string;
    services: string[];
  };
  summary: UnitSummary;
  runs: UnitRun[];
  notes: string[];
}

const WAY_TEXT: Record<UnitWay, string> = {
  unit: 'one unit (`unit: compose:<project>`, one run)',
  'one-at-a-time': 'one at a time (two plain `container:` runs)',
};

function memoryText(m: { intact: number; differs: number; notChecked: number }): string {
  const parts = [`${m.intact} intact`];
  if (m.differs > 0) parts.push(`**${m.differs} differ**`);
  if (m.notChecked > 0) parts.push(`${m.notChecked} not checked`);
  return parts.join(', ');
}

function runRow(run: UnitRun): string {
  if (run.error)
    return `| ${run.way} | ${run.rep} | failed: ${cell(run.error.replace(/\s+/g, ' ').slice(0, 400))} | | | | |`;
  const members = (run.freezes ?? [])
    .map(
      (f) =>
        `${f.container} ${sec(f.ms)} (action ${sec(f.reportedMs)}, memory ${f.memory.status}${f.continued ? '' : ', **did not continue**'})`,
    )
    .join('; ');
  return `| ${run.way} | ${run.rep} | ${sec(run.totalFrozenMs)} | ${sec(run.longestFreezeMs)} | ${sec(run.spanMs)} | ${sec(run.actionMs)} | ${cell(members)} |`;
}

export function unitMarkdown(results: UnitResults): string {
  const { summary, settings } = results;
  const out: string[] = [
    `# A compose unit's frozen window (npm run bench -- --unit)`,
    '',
    `Two services (${settings.services.join(', ')}) of compose project \`${settings.project}\` on its project network, each the bench counter holding ${settings.sizeMiB} MiB of ${settings.pattern} memory and ticking every ${settings.tick} s; moved host 1 -> host 2 ${settings.reps} time(s) per way, ways alternating first. ${results.startedAt} to ${results.finishedAt}, ${results.machine.cpus} CPUs, load ${results.machine.loadStart} at the start, ${results.machine.loadEnd} at the end.`,
    '',
    '| way | total frozen (sum of members) | longest single freeze | project not whole for | action says: total / longest | action wall time | memory by content | continued |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const way of UNIT_WAYS) {
    const s = summary[way];
    if (!s) continue;
    const failed = s.failed > 0 ? ` (${s.failed} of ${s.runs} runs failed)` : '';
    out.push(
      `| ${WAY_TEXT[way]}${failed} | ${range(s.totalFrozenMs, sec)} | ${range(s.longestFreezeMs, sec)} | ${range(s.spanMs, sec)} | ${range(s.reportedTotalMs, sec)} / ${range(s.reportedLongestMs, sec)} | ${range(s.actionMs, sec)} | ${memoryText(s.memory)} | ${s.continued ? 'yes' : 'no'} |`,
    );
  }
  out.push('');
  out.push('Medians, (min–max) over the repetitions that completed.');
  if (summary.totalFrozenRatio !== undefined || summary.longestFreezeRatio !== undefined) {
    out.push(
      `One at a time / one unit: total frozen ${summary.totalFrozenRatio === undefined ? 'n/a' : ratio(summary.totalFrozenRatio)}, longest single freeze ${summary.longestFreezeRatio === undefined ? 'n/a' : ratio(summary.longestFreezeRatio)}.`,
    );
  }
  out.push(
    '',
    '## Runs',
    '',
    '| way | rep | total frozen | longest | not whole for | action wall time | members |',
  );
  out.push('|---|---|---|---|---|---|---|');
  for (const run of results.runs) out.push(runRow(run));
  out.push('', '## Notes', '', ...results.notes.map((n) => `- ${n}`), '');
  return out.join('\n');
}
