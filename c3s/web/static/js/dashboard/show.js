// Step 5, the show: warnings before a show that would look wrong, the live count of phones
// ready and playing, and a start far enough ahead that every phone checks in before it.

import { api } from "../api.js";
import { errorText } from "../login.js";
import { $, call, definition, sceneOrSay, state, stepNote } from "./state.js";

const root = document.getElementById("operator");
// A phone checks in every CHECKIN_MS (+-25 %) and then fetches its track (c3s/checkin.py).
const MIN_LEAD_S = Math.ceil(Number(root.dataset.minLeadMs || 15000) / 1000);
const CHECKIN_S = Number(root.dataset.checkinMs || 10000) / 1000;
const FEW_PHONES = 20;

/** Where a frame lands on the scene, in scene units, for the scene's fit mode. */
function frameRect(scene, frame) {
  if (scene.fit !== "contain") return { x: 0, y: 0, w: scene.width, h: scene.height };
  const scale = Math.min(scene.width / frame.width, scene.height / frame.height);
  const w = frame.width * scale;
  const h = frame.height * scale;
  return { x: (scene.width - w) / 2, y: (scene.height - h) / 2, w, h };
}

export function showWarnings() {
  const scene = state.scene;
  if (!scene) return [];
  const warnings = [];
  const phones = state.placed || [];
  const placed = phones.length;
  if (!state.frames.length) warnings.push("No frames yet: add some in step 4.");
  if (placed === 0) warnings.push("No phone is placed: the show would be dark. Calibrate in step 3.");
  else if (placed < FEW_PHONES) warnings.push(`Only ${placed} phone(s) are placed: the picture will be very coarse.`);
  if (placed > 0) {
    for (const frame of state.frames) {
      const r = frameRect(scene, frame);
      const inside = phones.filter(({ x, y }) => x >= r.x && x <= r.x + r.w && y >= r.y && y <= r.y + r.h).length;
      if (inside === 0) warnings.push(`Frame ${frame.position + 1} has no placed phone inside it: it will not show.`);
    }
  }
  $("show-warnings").replaceChildren(...warnings.map((text) => {
    const li = document.createElement("li");
    li.textContent = text;
    return li;
  }));
  return warnings;
}

async function refreshLiveCount(scene) {
  try {
    const live = await call(`/api/scenes/${scene.id}/show/phones`);
    $("live-count").replaceChildren(...definition("Placed phones", live.located, "live-located"),
      ...definition("Tracks fetched, clock synced", live.tracks_fetched, "live-fetched"),
      ...definition("Playing", live.playing, "live-playing"));
  } catch (e) {
    $("live-count").replaceChildren(...definition("Live count", errorText(e), "live-error"));
  }
}

function clockTime(serverMs) {
  return new Date(serverMs - (state.serverOffsetMs || 0)).toLocaleTimeString();
}

export async function refreshShow() {
  const scene = state.scene;
  if (!scene) return;
  try {
    const show = await call(`/api/scenes/${scene.id}/show`);
    if (state.scene !== scene) return;
    state.show = show;
    const when = show.start_ms ? clockTime(show.start_ms) : "not scheduled";
    let text = `Show: ${show.status}, start ${when}, ${show.frames.length} frame(s), `
      + `${(show.total_ms / 1000).toFixed(1)} s${show.loop ? ", looping" : ""}.`;
    const serverNow = Date.now() + (state.serverOffsetMs || 0);
    if (show.status === "playing" && show.start_ms > serverNow) {
      text += ` Phones begin at ${when} (in ${Math.ceil((show.start_ms - serverNow) / 1000)} s).`;
    }
    $("show-status").textContent = text;
    document.body.dataset.show = show.status;
    stepNote("show", show.status === "playing" ? "on" : show.status, show.status === "playing");
  } catch (e) {
    $("show-status").textContent = `Show status unavailable: ${errorText(e)}`;
  }
  showWarnings();
  await refreshLiveCount(scene);
}

async function startShow() {
  const scene = sceneOrSay("show-status");
  if (!scene) return;
  let delay = Number($("show-delay").value || 0);
  if (!(delay >= MIN_LEAD_S)) {
    delay = MIN_LEAD_S;
    $("show-delay").value = String(MIN_LEAD_S);
  }
  try {
    const t0 = Date.now();
    const time = await api(`/api/time?t0=${t0}`);
    state.serverOffsetMs = time.server_ms - (t0 + Date.now()) / 2;
    const warnings = showWarnings();
    await call(`/api/scenes/${scene.id}/show`, { method: "POST",
      body: { start_at_ms: Math.round(time.server_ms + delay * 1000), loop: $("show-loop").checked } });
    await refreshShow();
    if (warnings.length) $("show-status").textContent += ` Started despite ${warnings.length} warning(s).`;
    const { refreshFrames } = await import("./frames.js");
    await refreshFrames(); // the crowd render of the show about to play
  } catch (e) {
    $("show-status").textContent = `Could not start the show: ${errorText(e)}`;
  }
}

async function stopShow() {
  const scene = sceneOrSay("show-status");
  if (!scene) return;
  try {
    await call(`/api/scenes/${scene.id}/show`, { method: "DELETE" });
    await refreshShow();
  } catch (e) {
    $("show-status").textContent = `Could not stop the show: ${errorText(e)}`;
  }
}

export function wireShow() {
  $("show-delay").value = String(MIN_LEAD_S);
  $("show-delay").min = String(MIN_LEAD_S);
  $("show-lead-note").textContent = `Phones check in every ${CHECKIN_S} s, so a show starts at least `
    + `${MIN_LEAD_S} s ahead: every phone then has its track before the first frame.`;
  $("show-start").addEventListener("click", startShow);
  $("show-stop").addEventListener("click", stopShow);
}
