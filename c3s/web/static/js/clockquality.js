// The dashboard's "Phone clocks" card: how well the scene's phones know the server clock, from
// the uncertainty each reports after syncing (GET /api/scenes/:id/clock). It follows the scene
// chosen in #scene-select and refreshes itself; it needs nothing from the rest of the dashboard.

import { api } from "./api.js";
import { SESSION_KEY } from "./login.js";

const REFRESH_MS = 10_000;
const FRAME_MS = 1000 / 30; // one video frame: an uncertainty above it shows in the show

const ms = (value) => (value === null ? "–" : `${value.toFixed(1)} ms`);

async function render(card, sceneId) {
  const token = localStorage.getItem(SESSION_KEY);
  if (!sceneId || !token) return;
  const summary = await api(`/api/scenes/${sceneId}/clock`, { token });
  const line = card.querySelector("#clock-quality");
  line.textContent = summary.reporting === 0
    ? `No phone has reported its clock yet (${summary.pixels} joined).`
    : `${summary.reporting} of ${summary.pixels} phones reported: uncertainty median `
      + `${ms(summary.median_uncertainty_ms)}, 95 % under ${ms(summary.p95_uncertainty_ms)}.`;
  const late = summary.worst.filter((w) => w.uncertainty_ms > FRAME_MS);
  card.querySelector("#clock-worst").textContent = late.length
    ? `Over one frame (${ms(FRAME_MS)}): ${late.map((w) => `#${w.number} ${ms(w.uncertainty_ms)}`).join(", ")}`
    : "";
  card.hidden = false;
}

export function mountClockQuality(card = document.getElementById("clock-card")) {
  const select = document.getElementById("scene-select");
  if (!card || !select) return;
  const refresh = () => render(card, select.value).catch(() => { card.hidden = true; });
  select.addEventListener("change", refresh);
  new MutationObserver(refresh).observe(select, { childList: true });
  setInterval(refresh, REFRESH_MS);
  refresh();
}

mountClockQuality();
