// The JSON API as small async functions. Every error becomes an ApiError carrying the
// server's message (a sentence a person can act on) and its HTTP status.

export class ApiError extends Error {
  constructor(status, message, detail = {}) {
    super(message);
    this.status = status;
    this.detail = detail;
  }
}

/** True when the request never reached the server (offline, DNS, connection dropped). */
export function isNetworkError(error) {
  return !(error instanceof ApiError);
}

/** Call the API. `body` is sent as JSON, or as is when it is FormData. */
export async function api(path, options = {}) {
  return (await answer(path, options)).data;
}

/** The URL of the next page from an RFC 8288 `Link: <...>; rel="next"` header, or null. */
export function nextLink(header) {
  const found = /<([^>]*)>\s*;\s*rel="?next"?/.exec(header || "");
  return found ? found[1] : null;
}

/** Every page of a paged list, first to last: each page's JSON, following its `next` link. */
export async function* pages(path, options = {}) {
  for (let url = path; url;) {
    const { data, next } = await answer(url, options);
    yield data;
    url = next;
  }
}

async function answer(path, { method = "GET", token = null, body = undefined, signal } = {}) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  let payload = body;
  if (body !== undefined && !(body instanceof FormData)) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const response = await fetch(path, { method, headers, body: payload, signal, cache: "no-store" });
  if (response.status === 204) return { data: null, next: null };
  const type = response.headers.get("Content-Type") || "";
  const data = type.includes("json") ? await response.json() : await response.arrayBuffer();
  if (!response.ok) {
    const message = (data && data.message) || `the server answered ${response.status}`;
    throw new ApiError(response.status, message, (data && data.detail) || {});
  }
  return { data, next: nextLink(response.headers.get("Link")) };
}

/** Fetch an authenticated image (or any file) as an object URL usable in <img src>. */
export async function objectUrl(path, token) {
  const response = await fetch(path, { headers: { Authorization: `Bearer ${token}` } });
  if (!response.ok) {
    let data = {};
    try { data = await response.json(); } catch { /* not JSON */ }
    throw new ApiError(response.status, data.message || `could not load ${path} (${response.status})`, data.detail || {});
  }
  return URL.createObjectURL(await response.blob());
}

/** Download an authenticated file (a poster) and hand it to the browser to save or open. */
export async function download(path, token, filename) {
  const url = await objectUrl(path, token);
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** Upload a multipart form with progress; resolves with the JSON answer. */
export function uploadWithProgress(path, form, token, onProgress) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("POST", path);
    if (token) request.setRequestHeader("Authorization", `Bearer ${token}`);
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    request.addEventListener("load", () => {
      let data = {};
      try { data = JSON.parse(request.responseText); } catch { /* not JSON: keep {} */ }
      if (request.status >= 200 && request.status < 300) {
        onProgress(1);
        resolve(data);
      } else {
        reject(new ApiError(request.status, data.message || `upload failed (${request.status})`, data.detail || {}));
      }
    });
    request.addEventListener("error", () => reject(new Error("the upload was interrupted; check the connection and retry")));
    request.send(form);
  });
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
