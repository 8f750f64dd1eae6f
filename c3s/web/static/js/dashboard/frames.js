// Step 4, frames: upload with a preview, then each frame as a thumbnail beside how the crowd
// renders it, with buttons to move it up or down and to delete it.

import { ApiError, objectUrl } from "../api.js";
import { errorText } from "../login.js";
import { drawCrowdRender, unpackColorMap } from "../scenemap.js";
import { $, call, sceneOrSay, state, status, stepNote } from "./state.js";

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
  const figure = document.createElement("figure");
  const caption = document.createElement("figcaption");
  caption.textContent = `${file.name} (${Math.round(file.size / 1024)} KiB), not uploaded yet`;
  figure.append(media, caption);
  box.append(figure);
}

// A video is decoded by the show worker: follow its job until the frames are in.
async function decoded(sceneId, job) {
  while (job.status === "queued" || job.status === "running") {
    status("frame-status", `Decoding the video… ${Math.round(job.progress * 100)} %`);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    job = await call(`/api/scenes/${sceneId}/frame-jobs/${job.id}`);
  }
  if (job.status === "failed") throw new Error(job.reason);
  return job.frame_ids;
}

async function uploadFrames() {
  const scene = sceneOrSay("frame-status");
  if (!scene) return;
  const file = $("frame-file").files[0];
  if (!file) return status("frame-status", "Choose an image, GIF or video first.", false);
  const form = new FormData();
  form.append("file", file, file.name);
  const duration = $("frame-duration").value;
  if (duration) form.append("duration_ms", duration);
  status("frame-status", "Uploading…");
  try {
    let added = await call(`/api/scenes/${scene.id}/frames`, { method: "POST", body: form });
    if (!Array.isArray(added)) added = await decoded(scene.id, added);
    status("frame-status", `${added.length} frame(s) added.`);
    $("frame-file").value = "";
    $("frame-file-preview").replaceChildren();
    await refreshFrames();
  } catch (e) {
    status("frame-status", e, false);
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
      g.fillText(building ? "colour map being built…" : `no crowd render: ${errorText(e)}`, 8, 20);
      if (!building || state.scene?.id !== sceneId) return;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
}

async function move(frame, by) {
  const ids = state.frames.map((f) => f.id);
  const from = ids.indexOf(frame.id);
  const to = from + by;
  if (to < 0 || to >= ids.length) return;
  [ids[from], ids[to]] = [ids[to], ids[from]];
  try {
    await call(`/api/scenes/${state.scene.id}/frames/order`, { method: "PUT", body: { frame_ids: ids } });
    status("frame-status", `Frame moved to place ${to + 1}.`);
    await refreshFrames();
  } catch (e) {
    status("frame-status", e, false);
  }
}

async function remove(frame) {
  try {
    await call(`/api/scenes/${state.scene.id}/frames/${frame.id}`, { method: "DELETE" });
    status("frame-status", `Frame ${frame.position + 1} deleted.`);
    await refreshFrames();
  } catch (e) {
    status("frame-status", e, false);
  }
}

function actionButton(label, title, action, disabled = false) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "secondary small";
  button.textContent = label;
  button.title = title;
  button.setAttribute("aria-label", title);
  button.dataset.action = title.split(" ")[0].toLowerCase();
  button.disabled = disabled;
  button.addEventListener("click", action);
  return button;
}

function frameRow(scene, frame, layout, count) {
  const row = document.createElement("div");
  row.className = "side-by-side frame";
  row.dataset.frameId = frame.id;
  const figure = document.createElement("figure");
  const image = document.createElement("img");
  image.alt = `Frame ${frame.position + 1}`;
  image.className = "thumb";
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
  const actions = document.createElement("div");
  actions.className = "frame-actions";
  actions.append(actionButton("↑", `Move frame ${frame.position + 1} up`, () => move(frame, -1), frame.position === 0),
    actionButton("↓", `Move frame ${frame.position + 1} down`, () => move(frame, 1), frame.position === count - 1),
    actionButton("✕", `Delete frame ${frame.position + 1}`, () => remove(frame)));
  row.append(figure, renderFigure, actions);
  if (layout && layout.numbers.length) crowdRender(scene.id, frame, canvas, layout);
  return row;
}

export async function refreshFrames() {
  const scene = state.scene;
  if (!scene) return;
  const frames = await call(`/api/scenes/${scene.id}/frames`);
  let layout = null;
  try {
    layout = await call(`/api/scenes/${scene.id}/layout`);
  } catch { /* no layout yet (nothing placed): images only */ }
  if (state.scene !== scene) return;
  state.frames = frames;
  state.layout = layout;
  $("frames").replaceChildren(...frames.map((f) => frameRow(scene, f, layout, frames.length)));
  stepNote("frames", `${frames.length} frame(s)`, frames.length > 0);
}

export function wireFrames() {
  $("frame-file").addEventListener("change", previewSelectedFrame);
  $("frame-upload").addEventListener("click", uploadFrames);
}
