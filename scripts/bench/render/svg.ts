/** latest.svg: downtime and wall time per size (log scale), the transport, and the action's phases. */
import { MIGRATION_WAYS, type Report, type Spread, type Summary, type TransportSummary } from '../report.js';
import { fmtBytes } from './format.js';

const COLORS: Record<string, string> = {
  seed: '#d62728',
  action: '#1f77b4',
  podman: '#9467bd',
  'podman-uncompressed': '#c5b0d5',
  floor: '#7f7f7f',
};
const PHASE_COLORS: Record<string, string> = {
  connect: '#c7c7c7',
  preflight: '#9edae5',
  stage: '#17becf',
  checkpoint: '#ff7f0e',
  transfer: '#2ca02c',
  restore: '#d62728',
  verify: '#bcbd22',
  finalize: '#8c564b',
};

export const esc = (t: string): string => t.replace(/&/g, '&amp;').replace(/</g, '&lt;');

/** 1, 2, 5 times powers of ten within [lo, hi]. */
export function logTicks(lo: number, hi: number): number[] {
  const ticks: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (v >= lo / 1.01 && v <= hi * 1.01) ticks.push(v);
    }
  }
  return ticks;
}

interface Series {
  name: string;
  color: string;
  dash?: boolean;
  points: { size: number; median: number; min: number; max: number }[];
}

function linePanel(
  x0: number,
  y0: number,
  w: number,
  h: number,
  title: string,
  sizes: number[],
  series: Series[],
): string {
  const values = series.flatMap((sr) => sr.points.flatMap((p) => [p.min, p.max])).filter((v) => v > 0);
  if (values.length === 0) return '';
  const lo = 10 ** Math.floor(Math.log10(Math.min(...values)));
  let hi = 10 ** Math.ceil(Math.log10(Math.max(...values)));
  if (hi <= lo) hi = lo * 10;
  const px = (i: number) =>
    x0 + 50 + (sizes.length === 1 ? (w - 70) / 2 : (i * (w - 90)) / (sizes.length - 1) + 10);
  const py = (v: number) =>
    y0 + h - 30 - ((Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * (h - 80);
  const parts = [
    `<text x="${x0 + w / 2}" y="${y0 + 14}" text-anchor="middle" font-weight="bold">${esc(title)}</text>`,
    `<line x1="${x0 + 50}" y1="${y0 + 50}" x2="${x0 + 50}" y2="${y0 + h - 30}" stroke="#333"/>`,
    `<line x1="${x0 + 50}" y1="${y0 + h - 30}" x2="${x0 + w - 10}" y2="${y0 + h - 30}" stroke="#333"/>`,
  ];
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
    const dash = sr.dash ? ' stroke-dasharray="5,4"' : '';
    if (pts.length > 1) {
      parts.push(
        `<polyline fill="none" stroke="${sr.color}" stroke-width="2"${dash} points="${pts.map((p) => `${p.x},${py(p.median)}`).join(' ')}"/>`,
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

function phasePanel(
  x0: number,
  y0: number,
  w: number,
  sizes: number[],
  summary: Summary,
): { svg: string; height: number } {
  const phases = Object.keys(PHASE_COLORS);
  const rows = sizes.filter((size) => summary.bySize[String(size)]?.ways.action?.phasesMs);
  if (rows.length === 0) return { svg: '', height: 0 };
  const phasesOf = (size: number) => summary.bySize[String(size)]?.ways.action?.phasesMs ?? {};
  const totals = rows.map((size) => phases.reduce((sum, p) => sum + (phasesOf(size)[p] ?? 0), 0));
  const max = Math.max(...totals, 1);
  const barW = w - 150;
  const parts = [
    `<text x="${x0 + w / 2}" y="${y0 + 14}" text-anchor="middle" font-weight="bold">The action's phases (median; the source is frozen during checkpoint, transfer and restore)</text>`,
  ];
  rows.forEach((size, i) => {
    const y = y0 + 30 + i * 34;
    parts.push(`<text x="${x0 + 70}" y="${y + 16}" text-anchor="end" font-size="11">${size} MiB</text>`);
    let x = x0 + 80;
    for (const p of phases) {
      const v = phasesOf(size)[p] ?? 0;
      const pw = (v / max) * barW;
      if (pw <= 0) continue;
      parts.push(
        `<rect x="${x}" y="${y}" width="${pw}" height="24" fill="${PHASE_COLORS[p]}"><title>${p}: ${Math.round(v)} ms</title></rect>`,
      );
      if (pw > 34)
        parts.push(
          `<text x="${x + pw / 2}" y="${y + 16}" text-anchor="middle" font-size="10">${(v / 1000).toFixed(1)}</text>`,
        );
      x += pw;
    }
    parts.push(
      `<text x="${x + 5}" y="${y + 16}" font-size="11">${((totals[i] ?? 0) / 1000).toFixed(1)} s</text>`,
    );
  });
  const ly = y0 + 30 + rows.length * 34 + 6;
  phases.forEach((p, i) => {
    const lx = x0 + 80 + i * 100;
    parts.push(`<rect x="${lx}" y="${ly}" width="12" height="12" fill="${PHASE_COLORS[p]}"/>`);
    parts.push(`<text x="${lx + 16}" y="${ly + 10}" font-size="11">${p}</text>`);
  });
  return { svg: parts.join('\n'), height: rows.length * 34 + 60 };
}

function transportPanel(
  x0: number,
  y0: number,
  w: number,
  h: number,
  transport: Record<string, TransportSummary>,
  bytes: number,
): string {
  const tools = Object.entries(transport);
  if (tools.length === 0) return '';
  const max = Math.max(...tools.map(([, t]) => t.MBps.max)) * 1.1;
  const rowH = Math.min(40, (h - 50) / tools.length);
  const names: Record<string, string> = {
    openssh: 'OpenSSH',
    action: 'action',
    'action-raw': 'no sha256',
    'host-to-host': 'host to host',
  };
  const parts = [
    `<text x="${x0 + w / 2}" y="${y0 + 14}" text-anchor="middle" font-weight="bold">Transport alone, ${esc(fmtBytes(bytes))} host 1 to host 2 (MB/s)</text>`,
  ];
  tools.forEach(([tool, t], i) => {
    const y = y0 + 40 + i * rowH;
    const scale = (v: number) => (v / max) * (w - 170);
    parts.push(
      `<text x="${x0 + 100}" y="${y + rowH / 2}" text-anchor="end" font-size="11">${esc(names[tool] ?? tool)}</text>`,
    );
    parts.push(
      `<rect x="${x0 + 105}" y="${y + 4}" width="${scale(t.MBps.median)}" height="${rowH - 12}" fill="${tool === 'openssh' || tool === 'host-to-host' ? '#555' : COLORS.action}" fill-opacity="${tool.startsWith('action-') || tool === 'host-to-host' ? 0.45 : 0.9}"/>`,
    );
    parts.push(
      `<line x1="${x0 + 105 + scale(t.MBps.min)}" y1="${y + rowH / 2 - 2}" x2="${x0 + 105 + scale(t.MBps.max)}" y2="${y + rowH / 2 - 2}" stroke="#000"/>`,
    );
    parts.push(
      `<text x="${x0 + 110 + scale(t.MBps.max)}" y="${y + rowH / 2}" font-size="11">${t.MBps.median.toFixed(1)}</text>`,
    );
  });
  return parts.join('\n');
}

const seconds = (s: Spread) => ({ median: s.median / 1000, min: s.min / 1000, max: s.max / 1000 });

export function chart(report: Report): string {
  const { sizes } = report.settings;
  const { summary } = report;
  const wayKey = (key: 'downtimeMs' | 'totalMs'): Series[] =>
    MIGRATION_WAYS.map((way) => ({
      name: way,
      color: COLORS[way] ?? '#000',
      points: sizes.flatMap((size) => {
        const sp = summary.bySize[String(size)]?.ways[way]?.[key];
        return sp ? [{ size, ...seconds(sp) }] : [];
      }),
    }));
  const floor: Series = {
    name: 'floor',
    color: COLORS.floor ?? '#777',
    dash: true,
    points: sizes.flatMap((size) => {
      const sp = summary.bySize[String(size)]?.floor?.floorMs;
      return sp ? [{ size, ...seconds(sp) }] : [];
    }),
  };
  const W = 960;
  const panelH = 300;
  const phases = phasePanel(20, panelH + 20, W - 40, sizes, summary);
  const transportH = Object.keys(summary.transport).length > 0 ? 200 : 0;
  const H = panelH + 40 + phases.height + transportH + 40;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    linePanel(
      10,
      10,
      W / 2 - 20,
      panelH,
      `Downtime seen by the workload (PATTERN=${report.settings.pattern}, log scale)`,
      sizes,
      [...wayKey('downtimeMs'), floor],
    ),
    linePanel(W / 2 + 10, 10, W / 2 - 20, panelH, 'Total wall time (log scale)', sizes, wayKey('totalMs')),
    phases.svg,
    transportPanel(
      10,
      panelH + 30 + phases.height,
      W - 20,
      transportH,
      summary.transport,
      report.settings.transportBytes,
    ),
    `<text x="${W - 10}" y="${H - 8}" text-anchor="end" font-size="10" fill="#666">npm run bench, ${esc(report.startedAt)}; dots: median, bars: min–max</text>`,
    '</svg>',
    '',
  ].join('\n');
}
