import { Resvg } from '@resvg/resvg-js';

/**
 * Requests over time against Klaviyo's limits, as a PNG: per run, one panel of requests in the
 * trailing 60 seconds (Klaviyo's steady window) per endpoint with the steady limit, and one of
 * requests per second with the burst limit and the steady limit's per-second average.
 */
export interface PlottedRun {
  title: string;
  requests: { endpoint: string; seconds: number }[];
}

const WIDTH = 1000;
const PANEL_HEIGHT = 230;
const MARGIN = { left: 70, right: 230, top: 40, bottom: 40 };
const COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'];

interface Series {
  name: string;
  points: [number, number][];
}

interface Limit {
  label: string;
  value: number;
}

const xmlText = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function panel(top: number, title: string, series: Series[], limits: Limit[], yLabel: string, xMax: number) {
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = PANEL_HEIGHT - MARGIN.top - MARGIN.bottom;
  const observed = Math.max(1, ...series.flatMap((s) => s.points.map(([, y]) => y)));
  const shown = limits.filter((limit) => limit.value <= observed * 1.6);
  const yMax = Math.max(observed, ...shown.map((limit) => limit.value)) * 1.1;
  const x = (value: number) => MARGIN.left + (value / xMax) * plotWidth;
  const y = (value: number) => top + MARGIN.top + plotHeight - (value / yMax) * plotHeight;
  const parts: string[] = [
    `<text x="${MARGIN.left}" y="${top + 24}" font-size="15" font-weight="bold">${xmlText(title)}</text>`,
    `<rect x="${MARGIN.left}" y="${top + MARGIN.top}" width="${plotWidth}" height="${plotHeight}" fill="none" stroke="#999"/>`,
  ];
  for (let i = 0; i <= 4; i++) {
    const value = (yMax / 4) * i;
    parts.push(
      `<text x="${MARGIN.left - 8}" y="${y(value) + 4}" font-size="11" text-anchor="end">${value.toFixed(0)}</text>`,
      `<line x1="${MARGIN.left}" x2="${MARGIN.left + plotWidth}" y1="${y(value)}" y2="${y(value)}" stroke="#eee"/>`,
    );
  }
  const step = xMax > 120 ? 30 : 10;
  for (let second = 0; second <= xMax; second += step) {
    parts.push(
      `<text x="${x(second)}" y="${top + PANEL_HEIGHT - MARGIN.bottom + 16}" font-size="11" text-anchor="middle">${second}</text>`,
    );
  }
  parts.push(
    `<text x="${MARGIN.left + plotWidth / 2}" y="${top + PANEL_HEIGHT - 6}" font-size="11" text-anchor="middle">seconds since the first delivery</text>`,
    `<text x="16" y="${top + MARGIN.top + plotHeight / 2}" font-size="11" transform="rotate(-90 16 ${top + MARGIN.top + plotHeight / 2})" text-anchor="middle">${xmlText(yLabel)}</text>`,
  );
  for (const limit of shown) {
    parts.push(
      `<line x1="${MARGIN.left}" x2="${MARGIN.left + plotWidth}" y1="${y(limit.value)}" y2="${y(limit.value)}" stroke="#000" stroke-dasharray="6 4"/>`,
      `<text x="${MARGIN.left + plotWidth - 4}" y="${y(limit.value) - 4}" font-size="11" text-anchor="end">${xmlText(limit.label)}</text>`,
    );
  }
  const hidden = limits.filter((limit) => !shown.includes(limit));
  series.forEach((s, index) => {
    const colour = COLOURS[index % COLOURS.length];
    const path = s.points.map(
      ([px, py], i) => `${i === 0 ? 'M' : 'L'}${x(px).toFixed(1)},${y(py).toFixed(1)}`,
    );
    parts.push(
      `<path d="${path.join(' ')}" fill="none" stroke="${colour}" stroke-width="1.6"/>`,
      `<rect x="${WIDTH - MARGIN.right + 14}" y="${top + MARGIN.top + index * 18}" width="12" height="12" fill="${colour}"/>`,
      `<text x="${WIDTH - MARGIN.right + 32}" y="${top + MARGIN.top + index * 18 + 10}" font-size="11">${xmlText(s.name)}</text>`,
    );
  });
  hidden.forEach((limit, index) => {
    parts.push(
      `<text x="${WIDTH - MARGIN.right + 14}" y="${top + MARGIN.top + (series.length + index) * 18 + 24}" font-size="11">${xmlText(`${limit.label}: off the scale`)}</text>`,
    );
  });
  return parts.join('\n');
}

/** Per endpoint, a count for each whole second from 0 to `last`. */
function perSecond(requests: PlottedRun['requests'], last: number) {
  const counts = new Map<string, number[]>();
  for (const { endpoint, seconds } of requests) {
    const list = counts.get(endpoint) ?? new Array<number>(last + 1).fill(0);
    counts.set(endpoint, list);
    const index = Math.floor(seconds);
    if (index >= 0 && index <= last) list[index] = (list[index] ?? 0) + 1;
  }
  return [...counts].sort(([a], [b]) => a.localeCompare(b));
}

export function renderRequestPlot(
  runs: PlottedRun[],
  limits: { perSecond: number; perMinute: number },
): Buffer {
  const xMax = Math.max(
    10,
    ...runs.flatMap((run) => run.requests.map((request) => Math.ceil(request.seconds))),
  );
  const panels: string[] = [];
  runs.forEach((run, index) => {
    const top = index * PANEL_HEIGHT * 2;
    const counts = perSecond(run.requests, xMax);
    const trailing = counts.map(([name, list]) => ({
      name,
      points: list.map((_, second) => {
        const from = Math.max(0, second - 59);
        return [second, list.slice(from, second + 1).reduce((sum, n) => sum + n, 0)] as [number, number];
      }),
    }));
    const instant = counts.map(([name, list]) => ({
      name,
      points: list.map((count, second) => [second, count] as [number, number]),
    }));
    panels.push(
      panel(
        top,
        `${run.title}: requests in the last 60 s`,
        trailing,
        [{ label: `steady limit ${limits.perMinute}/min`, value: limits.perMinute }],
        'requests / 60 s',
        xMax,
      ),
      panel(
        top + PANEL_HEIGHT,
        `${run.title}: requests per second`,
        instant,
        [
          { label: `burst limit ${limits.perSecond}/s`, value: limits.perSecond },
          {
            label: `steady limit as a rate ${(limits.perMinute / 60).toFixed(1)}/s`,
            value: limits.perMinute / 60,
          },
        ],
        'requests / s',
        xMax,
      ),
    );
  });
  const height = runs.length * PANEL_HEIGHT * 2;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" font-family="DejaVu Sans, Arial, sans-serif">
<rect width="${WIDTH}" height="${height}" fill="white"/>
${panels.join('\n')}
</svg>`;
  return new Resvg(svg, { font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' } })
    .render()
    .asPng();
}
