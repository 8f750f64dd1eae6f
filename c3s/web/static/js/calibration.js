// What a pixel phone does to be located, one function per method. Each returns a function
// that stops it (timers, players) when the phone moves on to the show.

import { api, ApiError, objectUrl, sleep } from "./api.js";
import { TimelinePlayer, cyclicSteps } from "./timeline.js";
import { recordWav } from "./wav.js";

const $ = (id) => document.getElementById(id);

/** QR: the code full screen, black on white, as large as the screen allows. */
export async function showQr(ctx) {
  const url = await objectUrl(ctx.me.calibration.svg_url, ctx.token);
  const image = document.createElement("img");
  image.id = "qr";
  image.alt = `Calibration code of pixel ${ctx.me.number}`;
  image.src = url;
  ctx.screen.replaceChildren(image);
  ctx.screen.className = "screen qr";
  ctx.showScreen(true);
  ctx.hint("Turn your screen brightness all the way up and hold the screen towards the stage.");
  await image.decode();
  return () => URL.revokeObjectURL(url);
}

/** Blink: the pattern's colours full screen, slot changes on the server clock. */
export async function playBlink(ctx) {
  const url = ctx.me.calibration.pattern_url;
  const pattern = await api(url, { token: ctx.token });
  ctx.screen.replaceChildren();
  ctx.screen.className = "screen";
  ctx.showScreen(true);
  ctx.hint("Turn your screen brightness all the way up and hold the screen towards the stage.");
  const player = new TimelinePlayer(ctx.clock, cyclicSteps(pattern.slot_ms, pattern.colors), (color) => {
    ctx.screen.style.backgroundColor = color;
  });
  player.leadMs = ctx.me.offset_ms ?? 0; // once a clip has timed this phone, a later clip is a sync check
  player.start();
  window.c3s.blink = { player, pattern };
  return () => player.stop();
}

function showSuggestions(box, suggestions, form) {
  box.replaceChildren();
  for (const s of suggestions) {
    const button = document.createElement("button");
    button.type = "button";
    const label = typeof s === "string" ? s : [s.section, s.row, s.seat].filter(Boolean).join(" · ");
    button.textContent = label;
    button.addEventListener("click", () => {
      if (typeof s === "object") {
        for (const key of ["section", "row", "seat"]) if (s[key] !== undefined) form.elements[key].value = s[key];
      }
      box.hidden = true;
    });
    box.append(button);
  }
  box.hidden = suggestions.length === 0;
}

/** Seat: the person types section, row and seat; unknown seats get suggestions. */
export async function seatForm(ctx) {
  const form = $("seat-form");
  const error = $("seat-error");
  const suggestions = $("seat-suggestions");
  form.hidden = false;
  ctx.say("Where are you sitting?", "Type the section, row and seat printed on your ticket.");
  const onSubmit = async (event) => {
    event.preventDefault();
    error.hidden = true;
    const body = {};
    for (const key of ["section", "row", "seat"]) {
      body[key] = form.elements[key].value.trim();
      if (!body[key]) {
        error.textContent = `Please fill in the ${key}.`;
        error.hidden = false;
        form.elements[key].focus();
        return;
      }
    }
    try {
      await api(ctx.me.calibration.seat_url, { method: "POST", token: ctx.token, body });
      form.hidden = true;
      ctx.say("Thank you!", `Seat ${body.section} · ${body.row} · ${body.seat} is yours. Wait for the show.`);
    } catch (e) {
      if (!(e instanceof ApiError)) {
        error.textContent = "No connection. Check your network and try again.";
      } else if (e.status === 409) {
        error.textContent = "Someone else already claimed this seat. Check your ticket, or ask a steward.";
      } else {
        error.textContent = e.message;
        showSuggestions(suggestions, e.detail.suggestions || [], form);
      }
      error.hidden = false;
    }
  };
  form.addEventListener("submit", onSubmit);
  return () => form.removeEventListener("submit", onSubmit);
}

/** GPS: ask for one accurate fix and send it. */
export async function gpsPrompt(ctx) {
  const box = $("gps-box");
  const status = $("gps-status");
  box.hidden = false;
  ctx.say("Share your location", "Tap the button and allow location access so we can place you.");
  const onClick = () => {
    if (!navigator.geolocation) {
      status.textContent = "This browser cannot share a location.";
      return;
    }
    status.textContent = "Finding your position…";
    navigator.geolocation.getCurrentPosition(async (position) => {
      const { latitude: lat, longitude: lon, accuracy } = position.coords;
      try {
        await api(ctx.me.calibration.fix_url, { method: "POST", token: ctx.token,
          body: { lat, lon, accuracy_m: accuracy } });
        status.textContent = `Sent (accurate to ${Math.round(accuracy)} m). Wait for the show.`;
      } catch (e) {
        status.textContent = e.message || "Could not send your position; try again.";
      }
    }, (error) => {
      status.textContent = error.code === error.PERMISSION_DENIED
        ? "Location access was refused. Allow it in the browser settings and tap again."
        : "No position yet; step away from cover and tap again.";
    }, { enableHighAccuracy: true, timeout: 30_000, maximumAge: 0 });
  };
  $("gps-button").addEventListener("click", onClick);
  return () => $("gps-button").removeEventListener("click", onClick);
}

/** Sound: record the speakers' chirps for a few seconds and upload the WAV. */
export async function soundRecorder(ctx) {
  const box = $("sound-box");
  const status = $("sound-status");
  box.hidden = false;
  ctx.say("Listen", "Tap the button and allow the microphone. Hold the phone up, keep quiet for a few seconds.");
  const onClick = async () => {
    if (!navigator.mediaDevices || !window.AudioContext) {
      status.textContent = "This browser cannot record sound.";
      return;
    }
    const cal = ctx.me.calibration;
    if (cal.speakers !== undefined && cal.speakers < 4) {
      status.textContent = "The speakers are not set up yet; wait for the organisers and tap again.";
      return;
    }
    // Long enough to hear every speaker (the server says how long), never longer than it uses.
    const seconds = Math.min((cal.max_duration_ms || 30_000) / 1000,
      Math.max(2, (cal.min_duration_ms || 6000) / 1000));
    status.textContent = `Listening for ${Math.ceil(seconds)} seconds…`;
    try {
      const { wav, startMs } = await recordWav(ctx.clock, seconds, cal.sample_rate_hz);
      const form = new FormData();
      form.append("file", wav, "recording.wav");
      form.append("start_ms", String(Math.round(startMs)));
      status.textContent = "Sending…";
      let job = await api(ctx.me.calibration.recording_url, { method: "POST", token: ctx.token, body: form });
      status.textContent = "Working out where you are…";
      while (job.status === "queued" || job.status === "running") {
        await sleep(1500);
        job = await api(`${ctx.me.calibration.recording_url}/${job.id}`, { token: ctx.token });
      }
      // A fix less sure than half a seat is done but not placed: record again.
      status.textContent = job.status !== "done"
        ? `We could not place you: ${job.reason} Tap to try again.`
        : job.stats && job.stats.placed === false
          ? "Heard you, but not clearly enough to find your seat. Tap to try again."
          : "Heard you. Wait for the show.";
    } catch (e) {
      status.textContent = e.name === "NotAllowedError"
        ? "Microphone access was refused. Allow it in the browser settings and tap again."
        : `${e.message || "Recording failed"}. Tap to try again.`;
    }
  };
  $("sound-button").addEventListener("click", onClick);
  return () => $("sound-button").removeEventListener("click", onClick);
}

export const CALIBRATIONS = { qr: showQr, blink: playBlink, seat: seatForm, gps: gpsPrompt, sound: soundRecorder };
