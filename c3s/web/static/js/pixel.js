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
// How often to ask whether the show started or changed, from c3s/checkin.py: long enough that a
// stadium stays cheap to serve, short enough that the operator's start lead covers it.
const POLL_MS = Number(params.get("poll_ms")) || Number(root.dataset.checkinMs) || 10_000;
const JITTER = Number(root.dataset.checkinJitter || 0.25);
// Until it is placed, a phone checks in faster, so its place shows within a few seconds.
const PLACING_POLL_MS = Math.min(POLL_MS, Number(params.get("placing_poll_ms")) || Number(root.dataset.placingCheckinMs) || 3000);
const VISUAL_METHODS = ["qr", "blink"];
const $ = (id) => document.getElementById(id);

const clock = new ServerClock();
const state = { token: null, me: null, stopCalibration: null, player: null, track: null, show: null };
window.c3s = { clock, state, scene: sceneId, pollMs: POLL_MS, placingPollMs: PLACING_POLL_MS };

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
  document.body.dataset.hint = text ? "on" : "off";
  // The QR code takes what the hint bar leaves, however many lines the hint wraps to.
  document.documentElement.style.setProperty("--hint-h", text ? `${$("hint").offsetHeight}px` : "0px");
}

function showScreen(on) {
  $("screen").hidden = !on;
  $("panel").hidden = on;
  document.body.dataset.screen = on ? "on" : "off";
  updateFullscreenButton();
}

/** Full screen where the browser has it; on an iPhone (no Fullscreen API) say how to get it. */
function updateFullscreenButton() {
  const available = Boolean(document.fullscreenEnabled);
  document.body.dataset.fullscreen = available && !document.fullscreenElement ? "offered" : "no";
  $("fullscreen-button").hidden = !available || Boolean(document.fullscreenElement);
  const ios = /iPhone|iPad|iPod/.test(navigator.userAgent) && !navigator.standalone;
  $("home-screen-note").hidden = available || !ios;
}
document.addEventListener("fullscreenchange", () => {
  updateFullscreenButton();
  hint($("hint").textContent); // the bar's height changes with the button
});

function goFullscreen() {
  if (document.fullscreenEnabled && !document.fullscreenElement) {
    document.documentElement.requestFullscreen?.().catch(() => {});
  }
  keepAwake();
}

/** The phone's pixel in this scene: found again after a reload, or joined now (a new phone
 * becomes a guest and joins in one request). */
async function findOrJoin() {
  const kept = localStorage.getItem(TOKEN_KEY);
  if (kept) {
    state.token = kept;
    try {
      const me = await api(`/api/scenes/${sceneId}/me`, { token: kept });
      if (me.status !== "left") return me;
      return await api(`/api/scenes/${sceneId}/join`, { method: "POST", token: kept });
    } catch (e) {
      if (e instanceof ApiError && e.status === 404 && e.detail.reason === "not_joined") {
        return api(`/api/scenes/${sceneId}/join`, { method: "POST", token: kept });
      }
      if (!(e instanceof ApiError && e.status === 401)) throw e;
      localStorage.removeItem(TOKEN_KEY); // expired or revoked: become a new guest
    }
  }
  const joined = await api(`/api/scenes/${sceneId}/guests`, { method: "POST", body: {} });
  localStorage.setItem(TOKEN_KEY, joined.token);
  state.token = joined.token;
  return joined;
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
  stopCountdown();
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
  screen.replaceChildren(countdown);
  screen.className = "screen";
  showScreen(true);
  hint("");
  setState("waiting");
  keepAwake();
  startCountdown(track.start_ms);
  const steps = trackSteps(track.start_ms, track.durations_ms, track.colors, track.loop);
  state.baseSteps = steps;
  state.player = new TimelinePlayer(clock, steps, (color, step) => {
    if (step.phase === "playing") {
      stopCountdown();
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

// The waiting screen: black (so the crowd's screens stay dark) with a small countdown.
const countdown = $("countdown");
let countdownTimer = null;
function startCountdown(startMs) {
  stopCountdown();
  const tick = () => {
    const left = Math.ceil((startMs - clock.now()) / 1000);
    countdown.hidden = left <= 0;
    countdown.textContent = left > 60
      ? `The show starts at ${new Date(startMs - (clock.offsetMs ?? 0)).toLocaleTimeString()}. Keep this page open.`
      : `The show starts in ${left} s`;
    window.c3s.countdown = left;
  };
  tick();
  countdownTimer = setInterval(tick, 250);
}
function stopCountdown() {
  clearInterval(countdownTimer);
  countdownTimer = null;
  countdown.hidden = true;
}

/** Waiting to be placed: the phone checks in faster. */
function placing() {
  return state.name === "calibrating" && state.me.status !== "located";
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

/** One look at the scene: excluded? show started, changed or stopped? One request: the
 * pixel's own row with the show's timeline head (GET …/me?show=1, on the server's fast path). */
async function checkIn() {
  await reportClock();
  const { show, ...me } = await api(`/api/scenes/${sceneId}/me?show=1`, { token: state.token });
  state.me = me;
  if (me.status === "excluded") return showExcluded(me.excluded_reason);
  applyOffset(me.offset_ms);
  const was = state.show;
  state.show = show;
  if (showActive(show)) {
    const stale = !state.track || state.track.start_ms !== show.start_ms
      || state.track.maps_version !== show.maps_version;
    if (stale) {
      try {
        await state.synced; // a fetched track means a synced clock (the operator counts them)
        const track = await loadTrack();
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
  if (me.status === "located" && state.name === "calibrating") showPlaced(me);
  return null;
}

/** Tell the person they are placed, in the words of their method. */
function showPlaced(me) {
  document.body.dataset.placed = "yes";
  const method = me.calibration.method;
  if (VISUAL_METHODS.includes(method)) {
    hint("You are on the screen. Keep holding it up until the show starts.");
  } else {
    say("You are on the screen", "Your place is set. Keep this page open; the show starts soon.");
  }
}

async function pollForever() {
  let failures = 0;
  for (;;) {
    if (["excluded"].includes(state.name)) return;
    try {
      await checkIn();
      failures = 0;
      $("message").classList.remove("offline");
    } catch (e) {
      failures += 1;
      if (e instanceof ApiError && e.status === 403) return showExcluded(e.message);
      if (isNetworkError(e) && !state.player) say("Connection lost", "Trying again… keep this page open.");
    }
    const every = placing() ? PLACING_POLL_MS : POLL_MS;
    const backoff = Math.min(60_000, every * 2 ** Math.min(failures, 3));
    await sleep(backoff * (1 - JITTER + 2 * JITTER * Math.random()));
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
  updateFullscreenButton();
  $("fullscreen-button").addEventListener("click", goFullscreen);
  $("screen").addEventListener("click", goFullscreen); // a tap on the code or the colour too
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
