// The operator's dashboard: scenes, calibration coverage, frames with their crowd render,
// the show, exclusions. It refreshes the live map every few seconds while open.

import { api, ApiError, objectUrl } from "./api.js";
import { fillDefinitions } from "./dl.js";
import { ensureLogin, logout } from "./login.js";
import { drawCrowdRender, drawSceneMap, unpackColorMap } from "./scenemap.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const REFRESH_MS = Number(params.get("refresh_ms")) || 5000;
const state = { token: null, scene: null, scenes: [] };
window.c3s = { state };

const call = (path, options = {}) => api(path, { token: state.token, ...options });

function status(id, text, ok = true) {
  $(id).textContent = text;
  $(id).className = ok ? "ok" : "error";
}

// ---------------------------------------------------------------- scenes

function parseAnchors(text) {
  const anchors = [];
  for (const [i, line] of text.split("\n").entries()) {
    const parts = line.trim().split(/[\s,;]+/).filter(Boolean);
    if (!parts.length) continue;
    const [key, x, y] = parts;
    if (parts.length !== 3 || !Number.isFinite(Number(x)) || !Number.isFinite(Number(y))) {
      throw new Error(`anchor line ${i + 1} should read "KEY x y", e.g. "A1 0 0"`);
    }
    anchors.push({ key: key.toUpperCase(), x: Number(x), y: Number(y) });
  }
  return anchors;
}

function sceneBody(form) {
  const body = { name: form.elements.name.value.trim(), method: form.elements.method.value,
                 units: form.elements.units.value, fit: form.elements.fit.value,
                 anchors: parseAnchors(form.elements.anchors.value) };
  for (const key of ["width", "height"]) body[key] = Number(form.elements[key].value);
  for (const key of ["geo_lat", "geo_lon", "geo_bearing_deg", "geo_metres_per_unit"]) {
    const raw = form.elements[key].value;
    body[key] = raw === "" ? null : Number(raw);
  }
  for (const key of ["max_gps_accuracy_m", "temperature_c"]) {
    if (form.elements[key].value !== "") body[key] = Number(form.elements[key].value);
  }
  if (!body.name) throw new Error("give the scene a name");
  if (!(body.width > 0 && body.height > 0)) throw new Error("width and height must be positive numbers");
  return body;
}

function fillSceneForm(scene) {
  const form = $("scene-form");
  $("scene-form-title").textContent = scene ? `Scene ${scene.id}: ${scene.name}` : "New scene";
  const value = (v) => (v == null ? "" : String(v));
  form.elements.name.value = value(scene?.name);
  form.elements.method.value = scene?.method || "qr";
  form.elements.width.value = value(scene?.width);
  form.elements.height.value = value(scene?.height);
  form.elements.units.value = scene?.units || "m";
  form.elements.fit.value = scene?.fit || "contain";
  form.elements.anchors.value = (scene?.anchors || []).map((a) => `${a.key} ${a.x} ${a.y}`).join("\n");
  for (const key of ["geo_lat", "geo_lon", "geo_bearing_deg", "geo_metres_per_unit", "max_gps_accuracy_m", "temperature_c"]) {
    form.elements[key].value = value(scene?.[key]);
  }
  $("scene-saved").textContent = "";
}

async function loadScenes(selectId = null) {
  state.scenes = await call("/api/scenes");
  const select = $("scene-select");
  select.replaceChildren(...state.scenes.map((s) => new Option(`${s.id}: ${s.name} (${s.method})`, s.id)));
  const chosen = state.scenes.find((s) => s.id === selectId) || state.scenes[0] || null;
  if (chosen) select.value = chosen.id;
  await selectScene(chosen);
}

async function selectScene(scene) {
  state.scene = scene;
  fillSceneForm(scene);
  document.body.dataset.scene = scene ? scene.id : "";
  if (!scene) {
    $("scene-links").textContent = "No scene yet: create one below.";
    return;
  }
  const pixelUrl = `${location.origin}/s/${scene.id}`;
  $("scene-links").innerHTML = "";
  $("scene-links").append("Pixel link (put it on the posters): ", link(pixelUrl), " · Observers: ",
    link(`${location.origin}/observe/${scene.id}`));
  await Promise.allSettled([refreshMap(), refreshFrames(), refreshShow(), loadSpeakers()]);
}

function link(url) {
  const a = document.createElement("a");
  a.href = url;
  a.textContent = url;
  return a;
}

async function saveScene(event) {
  event.preventDefault();
  $("scene-error").hidden = true;
  try {
    const body = sceneBody($("scene-form"));
    const creating = !state.scene || $("scene-form").dataset.mode === "new";
    const saved = creating
      ? await call("/api/scenes", { method: "POST", body })
      : await call(`/api/scenes/${state.scene.id}`, { method: "PATCH", body });
    $("scene-form").dataset.mode = "";
    await loadScenes(saved.id);
    status("scene-saved", creating ? `Scene ${saved.id} created.` : "Saved.");
  } catch (e) {
    $("scene-error").textContent = e.message;
    $("scene-error").hidden = false;
  }
}

// ---------------------------------------------------------------- calibration map

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
  await Promise.all(["joined", "located", "excluded", "left"].map(async (status) => {
    counts[status] = (await call(`/api/scenes/${sceneId}/pixels?status=${status}&per_page=1`)).total;
  }));
  return counts;
}

function renderCoverage(counts, byMethod) {
  const rows = [["Joined, not placed yet", counts.joined], ["Placed", counts.located],
    ["Excluded", counts.excluded], ["Left", counts.left]];
  const active = counts.joined + counts.located;
  rows.push(["Coverage", active ? `${Math.round((100 * counts.located) / active)} %` : "—"]);
  for (const [method, n] of Object.entries(byMethod || {})) rows.push([`Placed by ${method}`, n]);
  fillDefinitions($("coverage"), rows, "count");
}

async function refreshMap() {
  const scene = state.scene;
  if (!scene) return;
  const counts = await statusCounts(scene.id);
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
  renderCoverage(counts, byMethod);
  drawSceneMap($("scene-map"), scene, pixels);
  try {
    const conflicts = await call(`/api/scenes/${scene.id}/seat-conflicts`);
    $("conflicts").textContent = conflicts.length
      ? `Seat conflicts: ${conflicts.map((c) => `${c.section}-${c.row}-${c.seat} (pixels ${c.claims.map((k) => k.pixel_number).join(", ")})`).join("; ")}`
      : "No seat conflicts.";
  } catch (e) {
    $("conflicts").textContent = `Seat conflicts unavailable: ${e.message}`;
  }
}

async function excludePixel(event) {
  event.preventDefault();
  const form = event.target;
  const number = Number(form.elements.number.value);
  try {
    await call(`/api/scenes/${state.scene.id}/pixels/${number}/exclude`, { method: "POST",
      body: { reason: form.elements.reason.value } });
    status("exclude-status", `Pixel ${number} excluded.`);
    await refreshMap();
  } catch (e) {
    status("exclude-status", e.message, false);
  }
}

// ---------------------------------------------------------------- seat map and speakers

async function uploadSeatMap() {
  const file = $("seatmap-file").files[0];
  if (!file) return status("seatmap-status", "Choose a CSV or JSON seat map first.", false);
  const form = new FormData();
  form.append("file", file, file.name);
  try {
    const answer = await call(`/api/scenes/${state.scene.id}/seatmap`, { method: "PUT", body: form });
    status("seatmap-status", `Seat map saved${answer && answer.seats ? `: ${answer.seats} seats` : ""}.`);
  } catch (e) {
    status("seatmap-status", e.message, false);
  }
}

async function loadSpeakers() {
  try {
    const answer = await call(`/api/scenes/${state.scene.id}/speakers`);
    const speakers = (answer.speakers || []).map(({ index, ...rest }) => rest);
    $("speakers").value = speakers.length ? JSON.stringify(speakers) : "";
  } catch {
    $("speakers").value = "";
  }
}

async function saveSpeakers() {
  let body;
  try {
    const parsed = JSON.parse($("speakers").value);
    body = Array.isArray(parsed) ? { speakers: parsed } : parsed;
  } catch {
    return status("speakers-status", "Speakers must be valid JSON.", false);
  }
  try {
    await call(`/api/scenes/${state.scene.id}/speakers`, { method: "PUT", body });
    status("speakers-status", "Speakers saved.");
  } catch (e) {
    status("speakers-status", e.message, false);
  }
}

// ---------------------------------------------------------------- frames and crowd render

function previewSelectedFrame() {
  const box = $("frame-file-preview");
  box.replaceChildren();
  const file = $("frame-file").files[0];
  if (!file) return;
  const url = URL.createObjectURL(file);
  const media = document.createElement(file.type.startsWith("video/") ? "video" : "img");
  media.src = url;
  media.alt = "The file about to be uploaded";
  if (media.tagName === "VIDEO") { media.muted = true; media.controls = true; }
  media.style.maxWidth = "320px";
  const figure = document.createElement("figure");
  const caption = document.createElement("figcaption");
  caption.textContent = `${file.name} (${Math.round(file.size / 1024)} KiB), not uploaded yet`;
  figure.append(media, caption);
  box.append(figure);
}

async function uploadFrames() {
  const file = $("frame-file").files[0];
  if (!file) return status("frame-status", "Choose an image, GIF or video first.", false);
  const form = new FormData();
  form.append("file", file, file.name);
  const duration = $("frame-duration").value;
  if (duration) form.append("duration_ms", duration);
  status("frame-status", "Uploading…");
  try {
    const added = await call(`/api/scenes/${state.scene.id}/frames`, { method: "POST", body: form });
    status("frame-status", `${added.length} frame(s) added.`);
    $("frame-file").value = "";
    $("frame-file-preview").replaceChildren();
    await refreshFrames();
  } catch (e) {
    status("frame-status", e.message, false);
  }
}

async function crowdRender(sceneId, frame, canvas, layout) {
  for (let attempt = 0; attempt < 30; attempt += 1) {
    try {
      const data = await call(`/api/scenes/${sceneId}/frames/${frame.id}/map`);
      drawCrowdRender(canvas, layout, unpackColorMap(data));
      canvas.dataset.rendered = "yes";
      return;
    } catch (e) {
      const g = canvas.getContext("2d");
      g.fillStyle = "#111";
      g.fillRect(0, 0, canvas.width, canvas.height);
      g.fillStyle = "#aaa";
      g.font = "14px system-ui";
      const building = e instanceof ApiError && e.status === 409;
      g.fillText(building ? "colour map being built…" : `no crowd render: ${e.message}`, 8, 20);
      if (!building || state.scene?.id !== sceneId) return;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
}

async function refreshFrames() {
  const scene = state.scene;
  const frames = await call(`/api/scenes/${scene.id}/frames`);
  let layout = null;
  try {
    layout = await call(`/api/scenes/${scene.id}/layout`);
  } catch { /* no layout yet (nothing placed, or no show API): images only */ }
  const box = $("frames");
  box.replaceChildren();
  for (const frame of frames) {
    const row = document.createElement("div");
    row.className = "side-by-side frame";
    row.dataset.frameId = frame.id;
    const figure = document.createElement("figure");
    const image = document.createElement("img");
    image.alt = `Frame ${frame.position + 1}`;
    objectUrl(frame.image_url, state.token).then((url) => { image.src = url; }).catch(() => {});
    const caption = document.createElement("figcaption");
    caption.textContent = `Frame ${frame.position + 1}: ${frame.width}×${frame.height}, ${frame.duration_ms} ms`;
    figure.append(image, caption);
    const renderFigure = document.createElement("figure");
    const canvas = document.createElement("canvas");
    canvas.width = 320;
    canvas.height = Math.round((320 * scene.height) / scene.width);
    canvas.setAttribute("aria-label", `How the crowd renders frame ${frame.position + 1}`);
    const renderCaption = document.createElement("figcaption");
    renderCaption.textContent = layout ? `As the crowd shows it (${layout.numbers.length} phones)` : "Crowd render appears once phones are placed";
    renderFigure.append(canvas, renderCaption);
    row.append(figure, renderFigure);
    box.append(row);
    if (layout && layout.numbers.length) crowdRender(scene.id, frame, canvas, layout);
  }
}

// ---------------------------------------------------------------- show

async function refreshShow() {
  try {
    const show = await call(`/api/scenes/${state.scene.id}/show`);
    state.show = show;
    const when = show.start_ms ? new Date(show.start_ms).toLocaleTimeString() : "not scheduled";
    $("show-status").textContent = `Show: ${show.status}, start ${when}, ${show.frames.length} frame(s), `
      + `${(show.total_ms / 1000).toFixed(1)} s${show.loop ? ", looping" : ""}.`;
    document.body.dataset.show = show.status;
  } catch (e) {
    $("show-status").textContent = `Show status unavailable: ${e.message}`;
  }
}

async function startShow() {
  const delay = Number($("show-delay").value || 0);
  try {
    const time = await api(`/api/time?t0=${Date.now()}`);
    await call(`/api/scenes/${state.scene.id}/show`, { method: "POST",
      body: { start_at_ms: Math.round(time.server_ms + delay * 1000), loop: $("show-loop").checked } });
    await refreshShow();
    await refreshFrames(); // the crowd render of the show about to play
  } catch (e) {
    $("show-status").textContent = `Could not start the show: ${e.message}`;
  }
}

async function stopShow() {
  try {
    await call(`/api/scenes/${state.scene.id}/show`, { method: "DELETE" });
    await refreshShow();
  } catch (e) {
    $("show-status").textContent = `Could not stop the show: ${e.message}`;
  }
}

// ---------------------------------------------------------------- wiring

async function main() {
  state.token = await ensureLogin($("login-form"));
  $("dashboard").hidden = false;
  const methods = await api("/api/methods");
  $("scene-method").replaceChildren(...methods.map((m) => new Option(`${m.name} (${m.code})`, m.code)));
  $("scene-select").addEventListener("change", (e) =>
    selectScene(state.scenes.find((s) => s.id === Number(e.target.value))));
  $("new-scene").addEventListener("click", () => {
    fillSceneForm(null);
    $("scene-form").dataset.mode = "new";
    $("scene-name").focus();
  });
  $("logout").addEventListener("click", logout);
  $("scene-form").addEventListener("submit", saveScene);
  $("exclude-form").addEventListener("submit", excludePixel);
  $("seatmap-upload").addEventListener("click", uploadSeatMap);
  $("speakers-save").addEventListener("click", saveSpeakers);
  $("frame-file").addEventListener("change", previewSelectedFrame);
  $("frame-upload").addEventListener("click", uploadFrames);
  $("show-start").addEventListener("click", startShow);
  $("show-stop").addEventListener("click", stopShow);
  await loadScenes();
  if (!state.scene) $("scene-form").dataset.mode = "new";
  document.body.dataset.state = "ready";
  setInterval(() => {
    if (state.scene && document.visibilityState === "visible") {
      refreshMap().catch(() => {});
      refreshShow().catch(() => {});
    }
  }, REFRESH_MS);
}

main();
