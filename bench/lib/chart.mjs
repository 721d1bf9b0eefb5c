// The results chart, drawn as plain SVG text (no external tools): S1 latency percentiles per
// peer (grouped bars, log scale) and S2 pipelined throughput per peer (bars with min–max whiskers).

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const PALETTE = ['#4c78a8', '#f58518', '#54a24b', '#b279a2', '#e45756', '#72b7b2'];
const HIGHLIGHT = '#d62728';

function niceNumber(x) {
  if (x >= 1e6) return `${+(x / 1e6).toFixed(x >= 1e7 ? 0 : 1)}M`;
  if (x >= 1e3) return `${+(x / 1e3).toFixed(x >= 1e4 ? 0 : 1)}k`;
  return `${+x.toFixed(x >= 10 ? 0 : 1)}`;
}

/**
 * rows: [{ label, highlight?, s1: { p50, p90, p99, p999 } (µs medians), s2: { median, min, max } (asks/s) }]
 */
export function renderChart(rows, { title = 'interprocess-converse benchmark', subtitle = '', window = 256 } = {}) {
  const W = 960;
  const pad = 24;
  const out = [];
  const panel1Top = 70;
  const panel1H = 330;
  const panel2Top = panel1Top + panel1H + 110;
  const barH = 26;
  const panel2H = rows.length * (barH + 10) + 30;
  const H = panel2Top + panel2H + 10;
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text x="${pad}" y="28" font-size="18" font-weight="bold">${esc(title)}</text>`);
  if (subtitle) out.push(`<text x="${pad}" y="48" font-size="12" fill="#555">${esc(subtitle)}</text>`);

  // ── Panel 1: S1 latency percentiles, log scale ──
  const pcts = [
    ['p50', 'p50'],
    ['p90', 'p90'],
    ['p99', 'p99'],
    ['p999', 'p99.9'],
  ];
  const all = rows.flatMap((r) => pcts.map(([k]) => r.s1?.[k])).filter((v) => v > 0);
  const lo = Math.pow(10, Math.floor(Math.log10(Math.min(...all, 10))));
  const top = Math.max(...all, 100);
  const decade = Math.pow(10, Math.floor(Math.log10(top)));
  const hi = [1, 2, 5, 10].map((k) => k * decade).find((v) => v >= top * 1.15) ?? 20 * decade;
  const x0 = 80;
  const x1 = W - pad - 110;
  const y0 = panel1Top + panel1H; // axis baseline
  const yTop = panel1Top + 20;
  const y = (v) => y0 - ((Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * (y0 - yTop);
  out.push(`<text x="${pad}" y="${panel1Top}" font-size="14" font-weight="bold">S1 sequential ask latency (µs, log scale; median of repetitions)</text>`);
  for (let d = lo; d <= hi; d *= 10) {
    for (const m of [1, 2, 5]) {
      if (d * m < lo) continue;
      const v = d * m;
      if (v > hi) break;
      const yy = y(v);
      out.push(`<line x1="${x0}" x2="${x1}" y1="${yy.toFixed(1)}" y2="${yy.toFixed(1)}" stroke="${m === 1 ? '#bbb' : '#e5e5e5'}" stroke-width="1"/>`);
      out.push(`<text x="${x0 - 6}" y="${(yy + 4).toFixed(1)}" text-anchor="end" fill="#444">${niceNumber(v)}</text>`);
    }
  }
  out.push(`<line x1="${x0}" x2="${x1}" y1="${y0}" y2="${y0}" stroke="#333"/>`);
  const groupW = (x1 - x0) / rows.length;
  const bw = Math.min(22, (groupW - 20) / pcts.length);
  rows.forEach((r, i) => {
    const gx = x0 + i * groupW + (groupW - bw * pcts.length) / 2;
    pcts.forEach(([k], j) => {
      const v = r.s1?.[k];
      if (!(v > 0)) return;
      const yy = y(Math.max(v, lo));
      out.push(
        `<rect x="${(gx + j * bw).toFixed(1)}" y="${yy.toFixed(1)}" width="${(bw - 2).toFixed(1)}" height="${(y0 - yy).toFixed(1)}" fill="${PALETTE[j]}"><title>${esc(r.label)} ${pcts[j][1]}: ${v.toFixed(1)} µs</title></rect>`,
      );
      out.push(`<text x="${(gx + j * bw + (bw - 2) / 2).toFixed(1)}" y="${(yy - 3).toFixed(1)}" text-anchor="middle" font-size="9" fill="#333">${niceNumber(v)}</text>`);
    });
    out.push(
      `<text x="${(x0 + i * groupW + groupW / 2).toFixed(1)}" y="${y0 + 16}" text-anchor="middle" font-size="11" font-weight="${r.highlight ? 'bold' : 'normal'}" fill="${r.highlight ? HIGHLIGHT : '#222'}">${esc(r.label)}</text>`,
    );
  });
  pcts.forEach(([, name], j) => {
    const ly = panel1Top + 30 + j * 18;
    out.push(`<rect x="${x1 + 20}" y="${ly - 10}" width="12" height="12" fill="${PALETTE[j]}"/>`);
    out.push(`<text x="${x1 + 38}" y="${ly}" fill="#222">${name}</text>`);
  });

  // ── Panel 2: S2 throughput ──
  out.push(`<text x="${pad}" y="${panel2Top - 20}" font-size="14" font-weight="bold">S2 pipelined throughput (asks/s, ${window} in flight; bar = median, whisker = min–max)</text>`);
  const raw2 = Math.max(...rows.map((r) => r.s2?.max ?? r.s2?.median ?? 0), 1);
  const mag = Math.pow(10, Math.floor(Math.log10(raw2)));
  const step = [0.1, 0.2, 0.25, 0.5, 1, 2].map((k) => k * mag).find((st) => raw2 / st <= 6);
  const ticks = Math.ceil(raw2 / step);
  const max2 = ticks * step;
  const lx = 200;
  const rx = W - pad - 90;
  const sx = (v) => lx + (v / max2) * (rx - lx);
  for (let k = 0; k <= ticks; k++) {
    const v = step * k;
    const xx = sx(v);
    out.push(`<line x1="${xx.toFixed(1)}" x2="${xx.toFixed(1)}" y1="${panel2Top}" y2="${panel2Top + rows.length * (barH + 10)}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${xx.toFixed(1)}" y="${panel2Top + rows.length * (barH + 10) + 16}" text-anchor="middle" fill="#444">${niceNumber(v)}</text>`);
  }
  rows.forEach((r, i) => {
    const yy = panel2Top + i * (barH + 10);
    out.push(`<text x="${lx - 8}" y="${yy + barH / 2 + 4}" text-anchor="end" font-weight="${r.highlight ? 'bold' : 'normal'}" fill="${r.highlight ? HIGHLIGHT : '#222'}">${esc(r.label)}</text>`);
    const m = r.s2?.median;
    if (!(m > 0)) {
      out.push(`<text x="${lx + 4}" y="${yy + barH / 2 + 4}" fill="#999">no result</text>`);
      return;
    }
    out.push(`<rect x="${lx}" y="${yy}" width="${(sx(m) - lx).toFixed(1)}" height="${barH}" fill="${r.highlight ? HIGHLIGHT : '#4c78a8'}" opacity="0.85"><title>${esc(r.label)}: ${Math.round(m)} asks/s</title></rect>`);
    if (r.s2.min !== undefined && r.s2.max !== undefined) {
      const cy = yy + barH / 2;
      out.push(`<line x1="${sx(r.s2.min).toFixed(1)}" x2="${sx(r.s2.max).toFixed(1)}" y1="${cy}" y2="${cy}" stroke="#222" stroke-width="1.5"/>`);
      for (const v of [r.s2.min, r.s2.max]) out.push(`<line x1="${sx(v).toFixed(1)}" x2="${sx(v).toFixed(1)}" y1="${cy - 6}" y2="${cy + 6}" stroke="#222" stroke-width="1.5"/>`);
    }
    out.push(`<text x="${(sx(Math.max(m, r.s2.max ?? m)) + 6).toFixed(1)}" y="${yy + barH / 2 + 4}" fill="#222">${niceNumber(m)}/s</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
