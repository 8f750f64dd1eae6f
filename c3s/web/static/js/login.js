// Staff log in with email and password; the session token is kept in localStorage so the
// observer page and the dashboard share one login.

import { api, ApiError } from "./api.js";

export const SESSION_KEY = "c3s.session_token";

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
  form.hidden = false;
  const error = form.querySelector(".error");
  return new Promise((resolve) => {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.hidden = true;
      try {
        const answer = await api("/api/tokens", { method: "POST", body: {
          email: form.elements.email.value.trim(), password: form.elements.password.value } });
        localStorage.setItem(SESSION_KEY, answer.token);
        form.hidden = true;
        resolve(answer.token);
      } catch (e) {
        error.textContent = e.message || "Could not log in; check the connection.";
        error.hidden = false;
      }
    });
  });
}

export function logout() {
  localStorage.removeItem(SESSION_KEY);
  location.reload();
}
