// What every part of the dashboard shares: the session, the chosen scene, the API call with the
// token, and how a status line shows a result or an error with the API's detail.

import { api, pages } from "../api.js";
import { errorText } from "../login.js";

export const $ = (id) => document.getElementById(id);
export const state = { token: null, scene: null, scenes: [], mode: "new", layout: null, frames: [], placed: [] };
window.c3s = { state };

export const call = (path, options = {}) => api(path, { token: state.token, ...options });

/** Every item of a paged list whose pages are JSON arrays (its `Link` header names the next). */
export async function callAll(path) {
  const items = [];
  for await (const page of pages(path, { token: state.token })) items.push(...page);
  return items;
}

/** Show `text` (or an error with its detail) in the status line `id`. */
export function status(id, text, ok = true) {
  $(id).textContent = text instanceof Error ? errorText(text) : text;
  $(id).className = ok && !(text instanceof Error) ? "ok" : "error";
}

/** The scene every step acts on; says so plainly when there is none yet. */
export function sceneOrSay(id) {
  if (state.scene) return state.scene;
  status(id, "Create or choose a scene first (step 1).", false);
  return null;
}

export function definition(label, value, key = label) {
  const dt = document.createElement("dt");
  dt.textContent = label;
  const dd = document.createElement("dd");
  dd.textContent = value;
  dd.dataset.count = key;
  return [dt, dd];
}

/** Set the short note of a step in the step bar. */
export function stepNote(step, text, done = false) {
  const link = document.querySelector(`#steps [data-step="${step}"]`);
  link.querySelector(".step-note").textContent = text;
  link.classList.toggle("done", done);
}
