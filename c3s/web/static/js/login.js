// Staff log in with email and password; the session token is kept in localStorage so the
// observer page and the dashboard share one login. A new person can sign up on the same card.

import { api, ApiError } from "./api.js";

export const SESSION_KEY = "c3s.session_token";

/** The API's message with its detail (which field, which columns), as one readable sentence. */
export function errorText(error) {
  if (!(error instanceof ApiError)) return error.message || "No connection; check the network and retry.";
  const parts = [];
  const walk = (value, path) => {
    if (Array.isArray(value)) value.forEach((v, i) => (typeof v === "object" ? walk(v, `${path}[${i}]`) : parts.push(path ? `${path}: ${v}` : String(v))));
    else if (value && typeof value === "object") for (const [k, v] of Object.entries(value)) walk(v, path ? `${path}.${k}` : k);
    else if (value !== undefined && value !== null && value !== "") parts.push(path ? `${path}: ${value}` : String(value));
  };
  walk(error.detail, "");
  return parts.length ? `${error.message} (${parts.join("; ")})` : error.message;
}

async function logIn(email, password) {
  const answer = await api("/api/tokens", { method: "POST", body: { email, password } });
  localStorage.setItem(SESSION_KEY, answer.token);
  return answer.token;
}

function fail(form, e) {
  const error = form.querySelector(".error");
  error.textContent = errorText(e);
  error.hidden = false;
}

/** Resolve with a working session token, showing the login form in `form` if needed. */
export async function ensureLogin(form) {
  const kept = localStorage.getItem(SESSION_KEY);
  if (kept) {
    try {
      await api("/api/users/me", { token: kept });
      return kept;
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 401)) throw e;
      localStorage.removeItem(SESSION_KEY);
    }
  }
  const signup = document.getElementById("signup-form");
  form.hidden = false;
  document.getElementById("show-signup")?.addEventListener("click", () => { form.hidden = true; signup.hidden = false; });
  document.getElementById("show-login")?.addEventListener("click", () => { signup.hidden = true; form.hidden = false; });
  return new Promise((resolve) => {
    const done = (token) => { form.hidden = true; if (signup) signup.hidden = true; resolve(token); };
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      form.querySelector(".error").hidden = true;
      try {
        done(await logIn(form.elements.email.value.trim(), form.elements.password.value));
      } catch (e) { fail(form, e); }
    });
    signup?.addEventListener("submit", async (event) => {
      event.preventDefault();
      signup.querySelector(".error").hidden = true;
      const email = signup.elements.email.value.trim();
      const password = signup.elements.password.value;
      try {
        await api("/api/users", { method: "POST", body: { email, password,
          display_name: signup.elements.display_name.value.trim() } });
        done(await logIn(email, password));
      } catch (e) { fail(signup, e); }
    });
  });
}

/** The rights the logged-in user holds, as a Set of "name" and "name:scene" strings. */
export async function myRights(token) {
  const me = await api("/api/users/me", { token });
  const grants = await api(`/api/users/${me.id}/permissions`, { token });
  return { me, rights: new Set(grants.map((g) => (g.scene_id == null ? g.permission : `${g.permission}:${g.scene_id}`))) };
}

export function logout() {
  localStorage.removeItem(SESSION_KEY);
  location.reload();
}
