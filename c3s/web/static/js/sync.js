// The dashboard's sync card: how far the crowd's light lands from the server clock, as the newest
// blink clip (a sync check) timed it. A histogram of the phones' offsets and a map of the scene
// with every timed phone coloured by its offset; the figures of the recent checks beside them.
// It reads the operator page's scene and token (window.c3s.state) and refreshes on its own.

import { ApiError, pages } from "./api.js";
import { fillDefinitions } from "./dl.js";
import { dotRadius, drawSceneOutline } from "./scenemap.js";

const $ = (id) => document.getElementById(id);
const REFRESH_MS = Number(new URLSearchParams(location.search).get("refresh_ms")) || 5000;
// Phones per page of the report (the API's default unless the page's URL names one).
const PHONES_PER_PAGE = Number(new URLSearchParams(location.search).get("sync_limit")) || null;
// Offsets within this of the server clock are green; beyond it orange, then red at 4x.
const GOOD_MS = 5;

/** Colour of an offset: green on time, orange then red when late, blue when early. */
export function offsetColour(ms) {
  const a = Math.abs(ms);
  if (a <= GOOD_MS) return "#5cf28f";
  const t = Math.min(1, (a - GOOD_MS) / (3 * GOOD_MS));
  if (ms < 0) return `rgb(${Math.round(90 - 40 * t)},${Math.round(170 - 60 * t)},255)`;
  return `rgb(255,${Math.round(200 - 150 * t)},${Math.round(60 - 40 * t)})`;
}

export function drawHistogram(canvas, histogram) {
  const g = canvas.getContext("2d");
  g.fillStyle = "#111";
  g.fillRect(0, 0, canvas.width, canvas.height);
  const { edges_ms: edges, counts } = histogram;
  if (!counts.length) return;
  const left = 36, bottom = 22, top = 8;
  const w = (canvas.width - left - 8) / counts.length;
  const h = canvas.height - bottom - top;
  const most = Math.max(...counts);
  for (const [i, count] of counts.entries()) {
    const bar = (h * count) / most;
    g.fillStyle = offsetColour((edges[i] + edges[i + 1]) / 2);
    g.fillRect(left + i * w, top + h - bar, Math.max(1, w - 1), bar);
  }
  g.fillStyle = "#ccc";
  g.font = "11px system-ui, sans-serif";
  g.fillText(String(most), 2, top + 10);
  const step = Math.max(1, Math.ceil(counts.length / 8));
  for (let i = 0; i <= counts.length; i += step) g.fillText(`${edges[i]}`, left + i * w - 6, canvas.height - 6);
  g.fillText("ms", canvas.width - 20, canvas.height - 6);
}

export function drawOffsetMap(canvas, report) {
  const { g, t } = drawSceneOutline(canvas, report.width, report.height);
  const { x, y, offset_ms: offsets } = report.check.pixels;
  const r = dotRadius(t, report.width, report.height, x.length, 1.5);
  for (let i = 0; i < x.length; i += 1) {
    g.fillStyle = offsetColour(offsets[i]);
    g.fillRect(t.x(x[i]) - r, t.y(y[i]) - r, 2 * r, 2 * r);
  }
  g.strokeStyle = "#ff6b6b";
  for (const s of report.check.worst_sections.slice(0, 1)) {
    g.strokeRect(t.x(s.x0), t.y(s.y0), (s.x1 - s.x0) * t.scale, (s.y1 - s.y0) * t.scale);
  }
}

function figures(report) {
  const rows = [];
  const add = (label, value) => rows.push([label, value]);
  const ms = (v) => (v == null ? "–" : `${v.toFixed(1)} ms`);
  const check = report.check;
  add("Phones timed", check.phones);
  add("Median offset", ms(check.median_ms));
  add("95 % land within", ms(check.p95_abs_ms));
  add("Worst section", check.worst_sections.length
    ? `${check.worst_sections[0].section} (${ms(check.worst_sections[0].p95_abs_ms)})` : "–");
  add("Phones corrected", report.corrections.pixels);
  const earlier = report.history.slice(1, 4).map((h) => ms(h.p95_abs_ms)).join(", ");
  if (earlier) add("Earlier checks (p95)", earlier);
  fillDefinitions($("sync-figures"), rows, "figure");
}

/** The report with every phone of its check: the first page, and the phones of the others. */
async function wholeReport(path, token) {
  let report = null;
  for await (const page of pages(path, { token })) {
    if (!report) { report = page; continue; }
    for (const [key, values] of Object.entries(page.check.pixels)) report.check.pixels[key].push(...values);
  }
  return report;
}

async function refresh() {
  const { state } = window.c3s || {};
  const card = $("sync-card");
  if (!card || !state?.token || !state.scene) return;
  let report;
  try {
    const query = PHONES_PER_PAGE ? `?limit=${PHONES_PER_PAGE}` : "";
    report = await wholeReport(`/api/scenes/${state.scene.id}/sync${query}`, state.token);
  } catch (e) {
    if (e instanceof ApiError && e.status === 403) { card.hidden = true; return; }
    throw e;
  }
  card.hidden = false;
  window.c3s.sync = report;
  if (!report.check) {
    $("sync-status").textContent = "No sync check yet: film the blinking crowd (a blink clip with its start time) to time every phone's light.";
    $("sync-figures").replaceChildren();
    return;
  }
  $("sync-status").textContent = `Check of ${new Date(report.check.filmed_at).toLocaleTimeString()} (job ${report.check.job_id})`;
  figures(report);
  drawHistogram($("sync-histogram"), report.check.histogram);
  drawOffsetMap($("sync-map"), report);
}

async function loop() {
  for (;;) {
    try {
      await refresh();
    } catch { /* offline for a moment: the next round tries again */ }
    await new Promise((resolve) => setTimeout(resolve, REFRESH_MS));
  }
}

loop();
