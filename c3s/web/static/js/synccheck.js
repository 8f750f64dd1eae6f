// The observer's sync check: film the blinking crowd from this page, so the clip's first frame is
// known on the server clock (this page syncs its own clock) and the job can time every phone's
// light. A clip picked from the gallery has no such time; this one does. What this page cannot
// see (how long the camera takes from its first frame to the recorder's start) shifts every
// phone alike: the crowd still lands together.

import { api, uploadWithProgress } from "./api.js";
import { ServerClock } from "./clock.js";
import { SESSION_KEY } from "./login.js";

const $ = (id) => document.getElementById(id);
const root = document.getElementById("observer");
const sceneId = Number(root.dataset.sceneId);
const params = new URLSearchParams(location.search);
const RECORD_MS = Number(params.get("sync_record_ms")) || 3000; // two blink periods and a half
const clock = new ServerClock();

async function record() {
  const stream = await navigator.mediaDevices.getUserMedia({
    video: { facingMode: "environment", width: { ideal: 1920 }, height: { ideal: 1080 }, frameRate: { ideal: 30 } },
    audio: false,
  });
  const track = stream.getVideoTracks()[0];
  const settings = track.getSettings();
  const mimeType = ["video/webm;codecs=vp8", "video/webm", "video/mp4"].find((t) => MediaRecorder.isTypeSupported(t));
  const recorder = new MediaRecorder(stream, mimeType ? { mimeType, videoBitsPerSecond: 12_000_000 } : {});
  const chunks = [];
  recorder.addEventListener("dataavailable", (event) => { if (event.data.size) chunks.push(event.data); });
  const started = new Promise((resolve) => recorder.addEventListener("start", () => resolve(clock.now())));
  const stopped = new Promise((resolve) => recorder.addEventListener("stop", resolve));
  recorder.start();
  const startMs = await started;
  await new Promise((resolve) => setTimeout(resolve, RECORD_MS));
  recorder.stop();
  await stopped;
  for (const t of stream.getTracks()) t.stop();
  const type = recorder.mimeType || "video/webm";
  return { blob: new Blob(chunks, { type }), startMs, fps: settings.frameRate, type };
}

async function syncCheck() {
  const status = $("sync-check-status");
  const button = $("sync-check-button");
  const token = localStorage.getItem(SESSION_KEY);
  button.disabled = true;
  try {
    status.textContent = "Syncing this phone's clock…";
    await clock.sync();
    status.textContent = `Filming for ${RECORD_MS / 1000} s: hold the camera on the blinking crowd.`;
    const clip = await record();
    const form = new FormData();
    form.append("file", clip.blob, clip.type.includes("mp4") ? "sync-check.mp4" : "sync-check.webm");
    form.append("method", "blink");
    form.append("start_ms", String(clip.startMs));
    if (clip.fps) form.append("fps", String(clip.fps));
    let job = await uploadWithProgress(`/api/scenes/${sceneId}/jobs`, form, token, (share) => {
      status.textContent = `Uploading… ${Math.round(share * 100)} %`;
    });
    window.c3s = window.c3s || {};
    window.c3s.syncCheck = { job, startMs: clip.startMs, uncertaintyMs: clock.uncertaintyMs };
    while (job.status === "queued" || job.status === "running") {
      status.textContent = "Timing every phone's light…";
      await new Promise((resolve) => setTimeout(resolve, 1000));
      job = await api(`/api/scenes/${sceneId}/jobs/${job.id}`, { token });
    }
    window.c3s.syncCheck.job = job;
    const sync = (job.stats || {}).sync || {};
    status.textContent = job.status === "failed" ? `Could not use the clip: ${job.reason}`
      : job.stats.sync_refused ? `Not used for sync: ${job.stats.sync_refused}.`
      : sync.phones ? `${sync.phones} phones timed: 95 % land within ${sync.p95_abs_ms} ms of the server clock.`
        : "No phone could be timed in this clip; film closer, or with more of the crowd blinking.";
  } catch (e) {
    status.textContent = e.name === "NotAllowedError" ? "Camera access was refused; allow it and try again."
      : `${e.message || "The sync check failed"}; try again.`;
  } finally {
    button.disabled = false;
  }
}

if (navigator.mediaDevices && window.MediaRecorder) {
  $("sync-check").hidden = false;
  $("sync-check-button").addEventListener("click", syncCheck);
}
