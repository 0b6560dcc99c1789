/** A small hand-made SVG writer: one line chart with whiskers, target markers and a legend. */

export type ChartPoint = {
  readonly x: number;
  readonly y: number;
  /** Whisker (e.g. min–max over the runs). */
  readonly low?: number;
  readonly high?: number;
};

export type ChartSeries = { readonly label: string; readonly color: string; readonly points: readonly ChartPoint[] };

export type Chart = {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly series: readonly ChartSeries[];
  /** Drawn as hollow diamonds, with one legend entry. */
  readonly targets?: { readonly label: string; readonly points: readonly ChartPoint[] };
  readonly width?: number;
  readonly height?: number;
};

function esc(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** Round step (1, 2 or 5 × 10^k) giving about `count` intervals over [0, max]. */
function niceStep(max: number, count: number): number {
  const raw = max / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const unit = raw / power;
  return (unit <= 1 ? 1 : unit <= 2 ? 2 : unit <= 5 ? 5 : 10) * power;
}

const n = (v: number) => (Math.round(v * 10) / 10).toString();

export function lineChart(chart: Chart): string {
  const width = chart.width ?? 720;
  const height = chart.height ?? 420;
  const m = { left: 64, right: 200, top: 40, bottom: 52 };
  const plotW = width - m.left - m.right;
  const plotH = height - m.top - m.bottom;
  const all = [...chart.series.flatMap((s) => s.points), ...(chart.targets?.points ?? [])];
  const xMaxData = Math.max(1, ...all.map((p) => p.x));
  const yMaxData = Math.max(1e-9, ...all.map((p) => Math.max(p.y, p.high ?? p.y)));
  const xStep = niceStep(xMaxData, 6);
  const yStep = niceStep(yMaxData * 1.08, 5);
  const xMax = Math.ceil((xMaxData * 1.05) / xStep) * xStep;
  const yMax = Math.ceil((yMaxData * 1.08) / yStep) * yStep;
  const px = (x: number) => m.left + (x / xMax) * plotW;
  const py = (y: number) => m.top + plotH - (y / yMax) * plotH;

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<title>${esc(chart.title)}</title>`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${m.left}" y="22" font-size="15" font-weight="bold">${esc(chart.title)}</text>`,
  );
  for (let y = 0; y <= yMax + 1e-9; y += yStep) {
    out.push(
      `<line x1="${m.left}" y1="${n(py(y))}" x2="${m.left + plotW}" y2="${n(py(y))}" stroke="#e3e3e3"/>`,
      `<text x="${m.left - 6}" y="${n(py(y) + 4)}" text-anchor="end">${esc(Number(y.toPrecision(6)).toString())}</text>`,
    );
  }
  for (let x = 0; x <= xMax + 1e-9; x += xStep) {
    out.push(
      `<line x1="${n(px(x))}" y1="${m.top}" x2="${n(px(x))}" y2="${m.top + plotH}" stroke="#f0f0f0"/>`,
      `<text x="${n(px(x))}" y="${m.top + plotH + 16}" text-anchor="middle">${esc(Number(x.toPrecision(6)).toString())}</text>`,
    );
  }
  out.push(
    `<rect x="${m.left}" y="${m.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#444"/>`,
    `<text x="${m.left + plotW / 2}" y="${height - 12}" text-anchor="middle">${esc(chart.xLabel)}</text>`,
    `<text transform="translate(16 ${m.top + plotH / 2}) rotate(-90)" text-anchor="middle">${esc(chart.yLabel)}</text>`,
  );
  chart.series.forEach((s, index) => {
    // Series side by side by a few pixels, so that their whiskers do not hide each other.
    const shift = (index - (chart.series.length - 1) / 2) * 6;
    const sx = (x: number) => px(x) + shift;
    const pts = [...s.points].sort((a, b) => a.x - b.x);
    if (pts.length > 1) {
      const d = pts.map((p) => `${n(sx(p.x))},${n(py(p.y))}`).join(" ");
      out.push(`<polyline points="${d}" fill="none" stroke="${s.color}" stroke-width="2"/>`);
    }
    for (const p of pts) {
      if (p.low !== undefined && p.high !== undefined) {
        const x = sx(p.x);
        out.push(
          `<line x1="${n(x)}" y1="${n(py(p.low))}" x2="${n(x)}" y2="${n(py(p.high))}" stroke="${s.color}"/>`,
          `<line x1="${n(x - 4)}" y1="${n(py(p.low))}" x2="${n(x + 4)}" y2="${n(py(p.low))}" stroke="${s.color}"/>`,
          `<line x1="${n(x - 4)}" y1="${n(py(p.high))}" x2="${n(x + 4)}" y2="${n(py(p.high))}" stroke="${s.color}"/>`,
        );
      }
      out.push(`<circle cx="${n(sx(p.x))}" cy="${n(py(p.y))}" r="3.5" fill="${s.color}"/>`);
    }
  });
  const diamond = (x: number, y: number) =>
    `<path d="M${n(x)},${n(y - 6)} L${n(x + 6)},${n(y)} L${n(x)},${n(y + 6)} L${n(x - 6)},${n(y)} Z" fill="none" stroke="#c0392b" stroke-width="1.5"/>`;
  for (const p of chart.targets?.points ?? []) out.push(diamond(px(p.x), py(p.y)));

  const legendX = m.left + plotW + 16;
  let legendY = m.top + 8;
  for (const s of chart.series) {
    out.push(
      `<line x1="${legendX}" y1="${legendY}" x2="${legendX + 22}" y2="${legendY}" stroke="${s.color}" stroke-width="2"/>`,
      `<circle cx="${legendX + 11}" cy="${legendY}" r="3.5" fill="${s.color}"/>`,
      `<text x="${legendX + 30}" y="${legendY + 4}">${esc(s.label)}</text>`,
    );
    legendY += 20;
  }
  if (chart.targets !== undefined && chart.targets.points.length > 0) {
    out.push(
      diamond(legendX + 11, legendY),
      `<text x="${legendX + 30}" y="${legendY + 4}">${esc(chart.targets.label)}</text>`,
    );
    legendY += 20;
  }
  out.push(
    `<text x="${legendX}" y="${legendY + 6}" fill="#666" font-size="11">dots: medians; bars: min–max</text>`,
    "</svg>",
  );
  return `${out.join("\n")}\n`;
}
