// The pixel phone: join as a guest, sync the clock, be located, then play the show's track
// full screen on the server clock. Every network call may fail: the phone keeps doing what it
// was doing (a downloaded track keeps playing) and tries again later.

import { api, ApiError, isNetworkError, sleep } from "./api.js";
import { CALIBRATIONS } from "./calibration.js";
import { ServerClock } from "./clock.js";
import { TimelinePlayer, cyclicSteps, trackSteps, withBurst } from "./timeline.js";

const TOKEN_KEY = "c3s.device_token";
const root = document.getElementById("pixel");
const sceneId = Number(root.dataset.sceneId);
const params = new URLSearchParams(location.search);
// How often to ask whether the show started or changed; long enough that a stadium stays
// cheap to serve (100,000 phones every 10 s is 10,000 cached reads a second).
const POLL_MS = Number(params.get("poll_ms")) || 10_000;
const $ = (id) => document.getElementById(id);

const clock = new ServerClock();
const state = { token: null, me: null, stopCalibration: null, player: null, track: null, show: null };
window.c3s = { clock, state, scene: sceneId };

function setState(name) {
  document.body.dataset.state = name;
  state.name = name;
}

function say(headline, message) {
  $("headline").textContent = headline;
  $("message").textContent = message;
}

function hint(text) {
  $("hint").textContent = text;
  $("hint").hidden = !text;
}

function showScreen(on) {
  $("screen").hidden = !on;
  $("panel").hidden = on;
  $("fullscreen-button").hidden = !on || !document.fullscreenEnabled;
}

async function deviceToken() {
  const kept = localStorage.getItem(TOKEN_KEY);
  if (kept) return kept;
  const guest = await api("/api/guests", { method: "POST", body: {} });
  localStorage.setItem(TOKEN_KEY, guest.token);
  return guest.token;
}

/** The phone's pixel in this scene: found again after a reload, or joined now. */
async function findOrJoin() {
  for (let attempt = 0; ; attempt += 1) {
    state.token = await deviceToken();
    try {
      const me = await api(`/api/scenes/${sceneId}/me`, { token: state.token });
      if (me.status !== "left") return me;
    } catch (e) {
      if (e instanceof ApiError && e.status === 401 && attempt === 0) {
        localStorage.removeItem(TOKEN_KEY); // expired or revoked: become a new guest
        continue;
      }
      if (!(e instanceof ApiError && e.status === 404)) throw e;
    }
    return api(`/api/scenes/${sceneId}/join`, { method: "POST", token: state.token });
  }
}

function showExcluded(reason) {
  stopEverything();
  setState("excluded");
  say("You have been removed from this show", reason || "A moderator removed this phone from the scene.");
}

function showEnded() {
  stopEverything();
  setState("ended");
  say("The show has ended", "Thank you for being part of the screen!");
}

function stopEverything() {
  if (state.stopCalibration) state.stopCalibration();
  state.stopCalibration = null;
  if (state.player) state.player.stop();
  state.player = null;
  showScreen(false);
  hint("");
  releaseWakeLock();
}

let wakeLock = null;
async function keepAwake() {
  if (!("wakeLock" in navigator) || wakeLock) return;
  try {
    wakeLock = await navigator.wakeLock.request("screen");
    wakeLock.addEventListener("release", () => { wakeLock = null; });
  } catch { /* refused (battery saver, not visible): the page still works */ }
}
function releaseWakeLock() {
  if (wakeLock) wakeLock.release();
  wakeLock = null;
}
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && ["calibrating", "playing", "waiting"].includes(state.name)) keepAwake();
});

async function calibrate() {
  const method = state.me.calibration.method;
  const ctx = { me: state.me, token: state.token, clock, screen: $("screen"), say, hint, showScreen };
  state.stopCalibration = await CALIBRATIONS[method](ctx);
  setState("calibrating");
  keepAwake();
}

function showActive(show) {
  return show && show.start_ms != null && !["stopped", "ended", "idle", "none"].includes(show.status);
}

async function loadTrack() {
  for (;;) {
    try {
      return await api(`/api/scenes/${sceneId}/pixels/${state.me.number}/track`, { token: state.token });
    } catch (e) {
      if (e instanceof ApiError && e.status === 409) { // colour maps are being built
        await sleep(500 + 500 * Math.random());
        continue;
      }
      throw e;
    }
  }
}

function play(track) {
  if (state.stopCalibration) state.stopCalibration();
  state.stopCalibration = null;
  if (state.player) state.player.stop();
  state.track = track;
  const screen = $("screen");
  screen.replaceChildren();
  screen.className = "screen";
  showScreen(true);
  hint("");
  setState("waiting");
  keepAwake();
  const steps = trackSteps(track.start_ms, track.durations_ms, track.colors, track.loop);
  state.baseSteps = steps;
  state.player = new TimelinePlayer(clock, steps, (color, step) => {
    if (step.phase === "playing") {
      setState("playing");
      screen.style.backgroundColor = color;
    } else if (step.phase === "before") {
      screen.style.backgroundColor = "#000000";
    } else {
      showEnded();
    }
  });
  state.player.leadMs = track.offset_ms ?? state.me.offset_ms ?? 0; // camera-measured, see sync.py
  state.player.start();
}

/** A sync check measured this phone's light output again: play that much earlier from now on. */
function applyOffset(offsetMs) {
  if (offsetMs == null) return;
  for (const player of [state.player, window.c3s.blink?.player]) if (player) player.leadMs = offsetMs;
}

/** A sync check inside the show: blink the pattern during the burst (the correction applied). */
async function applyBurst(burst) {
  if (!burst || !state.player || !state.baseSteps) return;
  if (!state.pattern) {
    try {
      state.pattern = await api(`/api/scenes/${sceneId}/pixels/${state.me.number}/pattern`, { token: state.token });
    } catch (e) {
      if (e instanceof ApiError) return; // no pattern for this phone: it sits the burst out
      throw e;
    }
  }
  const blink = cyclicSteps(state.pattern.slot_ms, state.pattern.colors);
  state.player.stepAt = withBurst(state.baseSteps, burst.start_ms, burst.duration_ms, blink);
}

/** Tell the operator how well this phone knows the server clock, when that changed. */
async function reportClock() {
  const value = clock.uncertaintyMs;
  const last = state.reportedUncertaintyMs;
  if (value === null || (last != null && Math.abs(value - last) <= Math.max(1, last / 2))) return;
  try {
    await api(`/api/scenes/${sceneId}/me/clock`, { method: "PUT", token: state.token, body: { uncertainty_ms: value } });
    state.reportedUncertaintyMs = value;
  } catch { /* the next check-in tries again; the show does not depend on it */ }
}

/** One look at the scene: excluded? show started, changed or stopped? */
async function checkIn(round) {
  await reportClock();
  // The show's timeline is the cheap public read a stadium polls; the pixel's own row (needs
  // the token and the database) is read one round in four.
  if (round % 4 === 0) {
    state.me = await api(`/api/scenes/${sceneId}/me`, { token: state.token });
    if (state.me.status === "excluded") return showExcluded(state.me.excluded_reason);
    applyOffset(state.me.offset_ms);
  }
  const me = state.me;
  const show = await api(`/api/scenes/${sceneId}/show?frames=false`);
  const was = state.show;
  state.show = show;
  if (showActive(show)) {
    const stale = !state.track || state.track.start_ms !== show.start_ms
      || state.track.maps_version !== show.maps_version;
    if (stale) {
      try {
        const track = await loadTrack();
        await state.synced;
        play(track);
      } catch (e) {
        if (e instanceof ApiError && e.detail.reason === "excluded") return showExcluded(e.message);
        if (e instanceof ApiError && (e.status === 404 || e.status === 403)) {
          stopEverything();
          setState("unplaced");
          say("The show is on", "This phone was not placed on the screen, so it sits this show out.");
        } else throw e;
      }
    }
    await applyBurst(show.sync_burst);
  } else if (state.player || (was && showActive(was))) {
    showEnded();
  }
  if (me.status === "located" && state.name === "calibrating") hint("You are on the screen. Keep holding it up until the show starts.");
  return null;
}

async function pollForever() {
  let failures = 0;
  for (let round = 0; ; round += 1) {
    if (["excluded"].includes(state.name)) return;
    try {
      await checkIn(round);
      failures = 0;
      $("message").classList.remove("offline");
    } catch (e) {
      failures += 1;
      if (e instanceof ApiError && e.status === 403) return showExcluded(e.message);
      if (isNetworkError(e) && !state.player) say("Connection lost", "Trying again… keep this page open.");
    }
    const backoff = Math.min(60_000, POLL_MS * 2 ** Math.min(failures, 3));
    await sleep(backoff * (0.75 + 0.5 * Math.random()));
  }
}

async function syncClock() {
  for (let failures = 0; ; failures += 1) {
    try {
      await clock.sync();
      clock.keepSynced();
      return;
    } catch {
      await sleep(Math.min(30_000, 1000 * 2 ** failures));
    }
  }
}

async function main() {
  setState("joining");
  $("fullscreen-button").addEventListener("click", () => {
    document.documentElement.requestFullscreen?.().catch(() => {});
    keepAwake();
  });
  let me;
  try {
    me = await findOrJoin();
  } catch (e) {
    if (e instanceof ApiError && e.status === 403) return showExcluded(e.message);
    if (e instanceof ApiError && e.status === 409 && /ended/.test(e.message)) return showEnded();
    setState("error");
    say("Cannot join", isNetworkError(e) ? "No connection. Reload the page to try again." : e.message);
    return;
  }
  state.me = me;
  window.c3s.number = me.number;
  $("number").textContent = me.number;
  $("number-line").hidden = false;
  if (me.status === "excluded") return showExcluded(me.excluded_reason);
  state.synced = syncClock();
  // A QR code or a seat form needs no clock; a blink pattern and a recording do.
  if (["blink", "sound"].includes(me.calibration.method)) await state.synced;
  await calibrate();
  pollForever();
}

main();
