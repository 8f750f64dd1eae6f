// The operator's dashboard, in steps: the scene, its method's set-up, calibration with live
// coverage, frames, the show. Step 1 either creates a scene ("New scene") or edits the chosen
// one, never both. The live parts refresh every few seconds while the page is visible.

import { api } from "./api.js";
import { ensureLogin, logout, myRights } from "./login.js";
import { refreshMap, wireCalibration } from "./dashboard/calibration.js";
import { refreshFrames, wireFrames } from "./dashboard/frames.js";
import { refreshShow, wireShow } from "./dashboard/show.js";
import { $, call, state, status, stepNote } from "./dashboard/state.js";

const params = new URLSearchParams(location.search);
const REFRESH_MS = Number(params.get("refresh_ms")) || 5000;
const GEO_KEYS = ["geo_lat", "geo_lon", "geo_bearing_deg", "geo_metres_per_unit"];

// ---------------------------------------------------------------- step 1: the scene

function sceneBody(form) {
  const body = { name: form.elements.name.value.trim(), method: form.elements.method.value,
                 units: form.elements.units.value, fit: form.elements.fit.value };
  for (const key of ["width", "height"]) body[key] = Number(form.elements[key].value);
  if (!body.name) throw new Error("give the scene a name");
  if (!(body.width > 0 && body.height > 0)) throw new Error("width and height must be positive numbers");
  return body;
}

function setMode(mode) {
  state.mode = mode;
  const scene = mode === "edit" ? state.scene : null;
  $("scene-form-title").textContent = scene ? `Scene ${scene.id}: ${scene.name}` : "New scene";
  $("scene-save").textContent = scene ? "Save changes" : "Create scene";
  $("scene-mode-note").textContent = scene
    ? "Changes apply to this scene."
    : "A new scene: name it, choose how phones are located and how big the scene is.";
  $("scene-cancel").hidden = !(mode === "new" && state.scene);
  const form = $("scene-form");
  const value = (v) => (v == null ? "" : String(v));
  form.elements.name.value = value(scene?.name);
  form.elements.method.value = scene?.method || "qr";
  form.elements.width.value = value(scene?.width);
  form.elements.height.value = value(scene?.height);
  form.elements.units.value = scene?.units || "m";
  form.elements.fit.value = scene?.fit || "contain";
  $("scene-saved").textContent = "";
  $("scene-error").hidden = true;
  // The later steps belong to a scene that exists.
  for (const card of document.querySelectorAll(".needs-scene")) card.hidden = !scene;
  for (const link of document.querySelectorAll("#steps a:not([data-step=scene])")) link.hidden = !scene;
  document.body.dataset.mode = mode;
}

/** A scene this account runs or staffs: its owner, an administrator, or granted a staff right for it. */
function isMine(scene) {
  const rights = state.rights || new Set();
  if (rights.has("admin") || scene.owner_id === state.me?.id) return true;
  return ["scene_admin", "moderator", "observer"].some((r) => rights.has(`${r}:${scene.id}`) || (r !== "scene_admin" && rights.has(r)));
}

async function loadScenes(selectId = null) {
  state.scenes = (await call("/api/scenes")).filter(isMine); // the API scopes them too
  const select = $("scene-select");
  select.replaceChildren(...state.scenes.map((s) => new Option(`${s.id}: ${s.name} (${s.method})`, s.id)));
  const chosen = state.scenes.find((s) => s.id === selectId) || state.scenes[0] || null;
  if (chosen) select.value = chosen.id;
  select.disabled = !state.scenes.length;
  await selectScene(chosen);
}

async function selectScene(scene) {
  state.scene = scene;
  state.frames = [];
  state.layout = null;
  state.placed = [];
  state.lastLocated = undefined;
  setMode(scene ? "edit" : "new");
  document.body.dataset.scene = scene ? scene.id : "";
  $("scene-links").replaceChildren();
  if (!scene) {
    $("scene-links").textContent = state.scenes.length ? "" : "No scene yet: create one in step 1.";
    return;
  }
  stepNote("scene", scene.method, true);
  $("scene-links").append("Phone link (on the join poster): ", link(`${location.origin}/s/${scene.id}`),
    " · Observers: ", link(`${location.origin}/observe/${scene.id}`));
  fillSetup(scene);
  await Promise.allSettled([refreshMap(), refreshFrames(), loadSpeakers()]);
  await refreshShow();
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
  const creating = state.mode === "new" || !state.scene;
  try {
    const body = sceneBody($("scene-form"));
    const saved = creating
      ? await call("/api/scenes", { method: "POST", body })
      : await call(`/api/scenes/${state.scene.id}`, { method: "PATCH", body });
    await loadScenes(saved.id);
    status("scene-saved", creating ? `Scene ${saved.id} created. Next: its set-up (step 2).` : "Saved.");
  } catch (e) {
    status("scene-error", e, false);
    $("scene-error").hidden = false;
  }
}

// ---------------------------------------------------------------- step 2: the method's set-up

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

function fillSetup(scene) {
  $("setup-method").textContent = scene.method;
  for (const box of document.querySelectorAll(".method-fields")) {
    box.hidden = !box.dataset.methods.split(" ").includes(scene.method);
  }
  $("scene-anchors").value = (scene.anchors || []).map((a) => `${a.key} ${a.x} ${a.y}`).join("\n");
  const fields = { "geo-lat": "geo_lat", "geo-lon": "geo_lon", "geo-bearing": "geo_bearing_deg",
                   "geo-mpu": "geo_metres_per_unit", "geo-acc": "max_gps_accuracy_m", "scene-temp": "temperature_c" };
  for (const [id, key] of Object.entries(fields)) $(id).value = scene[key] == null ? "" : String(scene[key]);
  $("setup-save").hidden = scene.method === "seat";
  $("setup-status").textContent = "";
  const anchors = (scene.anchors || []).length;
  const ready = { qr: anchors >= 4, blink: anchors >= 4, gps: scene.geo_lat != null, seat: true, sound: true }[scene.method];
  stepNote("setup", ["qr", "blink"].includes(scene.method) ? `${anchors} anchor(s)` : "", ready);
}

function setupBody(method) {
  if (["qr", "blink"].includes(method)) return { anchors: parseAnchors($("scene-anchors").value) };
  const number = (id) => ($(id).value === "" ? null : Number($(id).value));
  if (method === "gps") {
    const body = Object.fromEntries(GEO_KEYS.map((key, i) => [key, number(["geo-lat", "geo-lon", "geo-bearing", "geo-mpu"][i])]));
    if (number("geo-acc") != null) body.max_gps_accuracy_m = number("geo-acc");
    return body;
  }
  if (method === "sound" && number("scene-temp") != null) return { temperature_c: number("scene-temp") };
  return null;
}

async function saveSetup() {
  const scene = state.scene;
  if (!scene) return status("setup-status", "Create or choose a scene first (step 1).", false);
  try {
    const body = setupBody(scene.method);
    if (body) await call(`/api/scenes/${scene.id}`, { method: "PATCH", body });
    if (scene.method === "sound") await saveSpeakers();
    await loadScenes(scene.id);
    status("setup-status", "Set-up saved.");
  } catch (e) {
    status("setup-status", e, false);
  }
}

async function uploadSeatMap() {
  const scene = state.scene;
  if (!scene) return status("seatmap-status", "Create or choose a scene first (step 1).", false);
  const file = $("seatmap-file").files[0];
  if (!file) return status("seatmap-status", "Choose a CSV or JSON seat map first.", false);
  const form = new FormData();
  form.append("file", file, file.name);
  try {
    const answer = await call(`/api/scenes/${scene.id}/seatmap`, { method: "PUT", body: form });
    status("seatmap-status", `Seat map saved${answer && answer.seats ? `: ${answer.seats} seats` : ""}.`);
  } catch (e) {
    status("seatmap-status", e, false);
  }
}

async function loadSpeakers() {
  if (state.scene?.method !== "sound") return;
  try {
    const answer = await call(`/api/scenes/${state.scene.id}/speakers`);
    const speakers = (answer.speakers || []).map(({ index, ...rest }) => rest);
    $("speakers").value = speakers.length ? JSON.stringify(speakers) : "";
  } catch {
    $("speakers").value = "";
  }
}

async function saveSpeakers() {
  if (!$("speakers").value.trim()) return;
  let body;
  try {
    const parsed = JSON.parse($("speakers").value);
    body = Array.isArray(parsed) ? { speakers: parsed } : parsed;
  } catch {
    throw new Error("speakers must be valid JSON, e.g. [{\"x\": 0, \"y\": 0}, …]");
  }
  await call(`/api/scenes/${state.scene.id}/speakers`, { method: "PUT", body });
}

// ---------------------------------------------------------------- wiring

/** Tell a fresh account what it may do and how to get more. */
async function showRights() {
  const { me, rights } = await myRights(state.token);
  state.me = me;
  state.rights = rights;
  const canCreate = rights.has("admin") || rights.has("scene_admin");
  $("rights-note").hidden = canCreate;
  $("rights-email").textContent = me.email;
  $("new-scene").disabled = !canCreate;
}

async function main() {
  state.token = await ensureLogin($("login-form"));
  $("dashboard").hidden = false;
  await showRights();
  const methods = await api("/api/methods");
  $("scene-method").replaceChildren(...methods.map((m) => new Option(`${m.name} (${m.code})`, m.code)));
  $("scene-select").addEventListener("change", (e) =>
    selectScene(state.scenes.find((s) => s.id === Number(e.target.value))));
  $("new-scene").addEventListener("click", () => {
    setMode("new");
    $("scene-name").focus();
  });
  $("scene-cancel").addEventListener("click", () => setMode("edit"));
  $("logout").addEventListener("click", logout);
  $("scene-form").addEventListener("submit", saveScene);
  $("setup-save").addEventListener("click", saveSetup);
  $("seatmap-upload").addEventListener("click", uploadSeatMap);
  wireCalibration();
  wireFrames();
  wireShow();
  await loadScenes();
  document.body.dataset.state = "ready";
  setInterval(() => {
    if (state.scene && document.visibilityState === "visible") {
      refreshMap().then(refreshShow).catch(() => {}); // the show's warnings read the fresh map
    }
  }, REFRESH_MS);
}

main();
