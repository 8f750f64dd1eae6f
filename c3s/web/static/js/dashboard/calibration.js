// Step 3, calibration: posters, live coverage, the map of placed phones (numbered dots; click
// one to see and exclude it), seat conflicts.

import { download } from "../api.js";
import { errorText } from "../login.js";
import { drawSceneMap, pixelAt } from "../scenemap.js";
import { refreshFrames } from "./frames.js";
import { $, call, callAll, definition, sceneOrSay, state, status, stepNote } from "./state.js";

// Up to this many pixels the map lists them all (with how each was placed); above it, counts
// come from one-row pages and positions from the layout, so a stadium costs a few requests.
const FULL_LIST_MAX = 5000;

async function allPixels(sceneId) {
  const pixels = [];
  for (let page = 1; ; page += 1) {
    const answer = await call(`/api/scenes/${sceneId}/pixels?page=${page}&per_page=1000`);
    pixels.push(...answer.pixels);
    if (pixels.length >= answer.total || !answer.pixels.length) return pixels;
  }
}

async function statusCounts(sceneId) {
  const counts = {};
  await Promise.all(["joined", "located", "excluded", "left"].map(async (name) => {
    counts[name] = (await call(`/api/scenes/${sceneId}/pixels?status=${name}&per_page=1`)).total;
  }));
  return counts;
}

function renderCoverage(counts, byMethod) {
  const rows = [["Joined, not placed yet", counts.joined], ["Placed", counts.located],
    ["Excluded", counts.excluded], ["Left", counts.left]];
  const active = counts.joined + counts.located;
  rows.push(["Coverage", active ? `${Math.round((100 * counts.located) / active)} %` : "—"]);
  for (const [method, n] of Object.entries(byMethod || {})) rows.push([`Placed by ${method}`, n]);
  $("coverage").replaceChildren(...rows.flatMap(([label, value]) => definition(label, value)));
  stepNote("calibration", `${counts.located} of ${active} placed`, counts.located > 0);
}

export async function refreshMap() {
  const scene = state.scene;
  if (!scene) return;
  const counts = await statusCounts(scene.id);
  state.counts = counts;
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  let pixels;
  let byMethod = null;
  if (total <= FULL_LIST_MAX) {
    pixels = await allPixels(scene.id);
    byMethod = {};
    for (const p of pixels) {
      if (p.status === "located" && p.located_by) byMethod[p.located_by] = (byMethod[p.located_by] || 0) + 1;
    }
  } else {
    const layout = await call(`/api/scenes/${scene.id}/layout`);
    pixels = layout.numbers.map((number, i) => ({ number, status: "located", x: layout.x[i], y: layout.y[i] }));
  }
  if (state.scene !== scene) return;
  state.pixels = pixels;
  state.placed = pixels.filter((p) => p.status === "located" && p.x != null);
  // New places change how the crowd renders each frame: redraw the frames' renders.
  if (state.lastLocated !== undefined && state.lastLocated !== counts.located) refreshFrames().catch(() => {});
  state.lastLocated = counts.located;
  renderCoverage(counts, byMethod);
  drawSceneMap($("scene-map"), scene, pixels, { labels: pixels.length <= 400 });
  try {
    const conflicts = await callAll(`/api/scenes/${scene.id}/seat-conflicts`);
    $("conflicts").textContent = conflicts.length
      ? `Seat conflicts: ${conflicts.map((c) => `${c.section}-${c.row}-${c.seat} (pixels ${c.claims.map((k) => k.pixel_number).join(", ")})`).join("; ")}`
      : "No seat conflicts.";
  } catch (e) {
    $("conflicts").textContent = `Seat conflicts unavailable: ${errorText(e)}`;
  }
}

async function exclude(number, reason) {
  const scene = sceneOrSay("exclude-status");
  if (!scene) return;
  try {
    await call(`/api/scenes/${scene.id}/pixels/${number}/exclude`, { method: "POST", body: { reason } });
    status("exclude-status", `Pixel ${number} excluded.`);
    $("pixel-detail").hidden = true;
    await refreshMap();
  } catch (e) {
    status("exclude-status", e, false);
  }
}

function showPixel(pixel) {
  const box = $("pixel-detail");
  box.replaceChildren();
  const title = document.createElement("h3");
  title.textContent = `Pixel ${pixel.number}`;
  const facts = document.createElement("dl");
  facts.className = "counts";
  const where = pixel.x == null ? "not placed" : `x ${pixel.x.toFixed(2)}, y ${pixel.y.toFixed(2)}`;
  facts.append(...definition("Status", pixel.status, "pixel-status"), ...definition("Where", where, "pixel-where"),
    ...definition("Placed by", pixel.located_by || "—", "pixel-by"),
    ...definition("Uncertainty", pixel.sigma == null ? "—" : `± ${pixel.sigma.toFixed(2)}`, "pixel-sigma"));
  box.append(title, facts);
  if (pixel.status !== "excluded") {
    const reason = document.createElement("input");
    reason.id = "pixel-detail-reason";
    reason.placeholder = "Reason (the phone shows it)";
    const button = document.createElement("button");
    button.type = "button";
    button.id = "pixel-detail-exclude";
    button.textContent = `Exclude pixel ${pixel.number}`;
    button.addEventListener("click", () => exclude(pixel.number, reason.value));
    box.append(reason, button);
  } else if (pixel.excluded_reason) {
    const p = document.createElement("p");
    p.textContent = `Excluded: ${pixel.excluded_reason}`;
    box.append(p);
  }
  box.hidden = false;
  $("exclude-number").value = pixel.number;
}

function onMapClick(event) {
  const scene = state.scene;
  if (!scene || !state.pixels) return;
  const canvas = $("scene-map");
  const rect = canvas.getBoundingClientRect();
  const x = ((event.clientX - rect.left) * canvas.width) / rect.width;
  const y = ((event.clientY - rect.top) * canvas.height) / rect.height;
  const pixel = pixelAt(canvas, scene, state.pixels, x, y);
  if (pixel) showPixel(pixel);
}

async function poster(button) {
  const scene = sceneOrSay("poster-status");
  if (!scene) return;
  const [kind, query] = button.dataset.poster.split("?");
  try {
    await download(`/api/scenes/${scene.id}/posters/${button.dataset.poster}`, state.token,
      `scene-${scene.id}-${kind}-${new URLSearchParams(query).get("size")}.pdf`);
    status("poster-status", `The ${kind} poster is downloaded.`);
  } catch (e) {
    status("poster-status", e, false);
  }
}

export function wireCalibration() {
  $("scene-map").addEventListener("click", onMapClick);
  $("exclude-form").addEventListener("submit", (event) => {
    event.preventDefault();
    exclude(Number(event.target.elements.number.value), event.target.elements.reason.value);
  });
  for (const button of document.querySelectorAll("#calibration-card [data-poster]")) {
    button.addEventListener("click", () => poster(button));
  }
}
