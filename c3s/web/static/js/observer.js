// The observer's camera page: take a photo or clip, upload it with a progress bar, follow the
// locate job and draw what was recognised over the photo.

import { api, download, sleep, uploadWithProgress } from "./api.js";
import { fillDefinitions } from "./dl.js";
import { ensureLogin, errorText } from "./login.js";

const root = document.getElementById("observer");
const sceneId = Number(root.dataset.sceneId);
const $ = (id) => document.getElementById(id);
window.c3s = { scene: sceneId };

const COUNT_LABELS = [
  ["codes_decoded", "Codes found"],
  ["pixels_matched", "Phones recognised"],
  ["pixels_located", "Phones placed (new)"],
  ["pixels_moved", "Phones moved"],
  ["observations", "Observations recorded"],
  ["anchors_found", "Anchors in view"],
  ["anchors_used", "Anchors used"],
  ["reference_anchors", "Reference codes"],
  ["pixel_anchors", "Placed phones used as anchors"],
];

function renderCounts(stats) {
  const rows = COUNT_LABELS.filter(([key]) => key in stats).map(([key, label]) => [label, stats[key]]);
  const rejections = Object.entries(stats).filter(([k, v]) => k.startsWith("rejected_") && v);
  rows.push(["Rejected", rejections.reduce((sum, [, v]) => sum + v, 0)]);
  for (const [key, value] of rejections) rows.push([`  ${key.slice(9).replaceAll("_", " ")}`, value]);
  fillDefinitions($("job-counts"), rows, "count");
}

async function drawDetections(file, stats) {
  const canvas = $("detections");
  if (!file.type.startsWith("image/")) {
    canvas.hidden = true; // a clip's detections are in its first frame; not drawn here
    return;
  }
  const bitmap = await createImageBitmap(file);
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  canvas.hidden = false;
  const g = canvas.getContext("2d");
  g.drawImage(bitmap, 0, 0);
  const radius = Math.max(6, Math.min(bitmap.width, bitmap.height) / 60);
  g.lineWidth = Math.max(2, radius / 3);
  g.font = `bold ${Math.round(radius * 1.6)}px system-ui, sans-serif`;
  for (const d of stats.detections || []) {
    g.strokeStyle = "#00ff66";
    g.beginPath();
    g.arc(d.x_img, d.y_img, radius, 0, 2 * Math.PI);
    g.stroke();
    g.fillStyle = "#ffd60a";
    g.fillText(String(d.number), d.x_img + radius * 1.2, d.y_img - radius * 0.5);
  }
  window.c3s.drawn = (stats.detections || []).length;
}

async function followJob(job, file, token) {
  $("result").hidden = false;
  const status = $("job-status");
  for (;;) {
    status.textContent = job.status === "queued" ? "Waiting for a worker…" : `Working (${job.status})…`;
    if (job.status === "done" || job.status === "failed") break;
    await sleep(1000);
    job = await api(`/api/scenes/${sceneId}/jobs/${job.id}`, { token });
  }
  window.c3s.job = job;
  document.body.dataset.state = `job-${job.status}`;
  if (job.status === "failed") {
    status.textContent = `Could not use this upload: ${job.reason}`;
    status.className = "big error";
  } else {
    status.textContent = `Done: ${job.stats.pixels_matched || 0} phones recognised.`;
    status.className = "big ok";
  }
  renderCounts(job.stats || {});
  await drawDetections(file, job.stats || {});
}

async function main() {
  const token = await ensureLogin($("login-form"));
  $("capture").hidden = false;
  $("posters").hidden = false;
  for (const button of document.querySelectorAll("[data-poster]")) {
    button.addEventListener("click", async () => {
      const [kind, query] = button.dataset.poster.split("?");
      try {
        await download(`/api/scenes/${sceneId}/posters/${button.dataset.poster}`, token,
          `scene-${sceneId}-${kind}-${new URLSearchParams(query).get("size")}.pdf`);
        $("poster-status").textContent = "";
      } catch (e) {
        $("poster-status").textContent = errorText(e);
        $("poster-status").className = "error";
      }
    });
  }
  document.body.dataset.state = "ready";
  const input = $("media-input");
  const button = $("upload-button");
  const onChoose = () => { button.disabled = !input.files.length; };
  input.addEventListener("change", onChoose);
  onChoose(); // a file may have been chosen while logging in
  button.addEventListener("click", async () => {
    const file = input.files[0];
    if (!file) return;
    button.disabled = true;
    const form = new FormData();
    form.append("file", file, file.name || "upload");
    $("upload-status").textContent = "Uploading…";
    document.body.dataset.state = "uploading";
    try {
      const job = await uploadWithProgress(`/api/scenes/${sceneId}/jobs`, form, token, (share) => {
        $("upload-progress").value = share;
        $("upload-status").textContent = `Uploading… ${Math.round(share * 100)} %`;
      });
      $("upload-status").textContent = "Uploaded.";
      await followJob(job, file, token);
    } catch (e) {
      $("upload-status").textContent = errorText(e);
      $("upload-status").className = "error";
      document.body.dataset.state = "upload-failed";
    } finally {
      button.disabled = false;
    }
  });
}

main();
