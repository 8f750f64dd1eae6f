// The server's clock, estimated NTP-style: several round trips to /api/time, keep the one with
// the lowest round-trip time (its midpoint is the least uncertain), re-sync now and then since
// phone clocks drift 10-20 ppm. Local time comes from performance.now(), which never jumps.

const perfToUnix = () => performance.timeOrigin + performance.now();

export class ServerClock {
  constructor({ url = "/api/time", samples = 8 } = {}) {
    this.url = url;
    this.samples = samples;
    this.offsetMs = null; // server time minus local (timeOrigin + performance.now()) time
    this.rttMs = null;
    this.syncedAt = null;
    this.timer = null;
  }

  get synced() {
    return this.offsetMs !== null;
  }

  /** Server time now, in Unix milliseconds (fractional). */
  now() {
    return perfToUnix() + (this.offsetMs ?? 0);
  }

  /** Local performance.now() at which the server clock will read `serverMs`. */
  perfAt(serverMs) {
    return serverMs - (this.offsetMs ?? 0) - performance.timeOrigin;
  }

  async sample() {
    const t0 = perfToUnix();
    const response = await fetch(`${this.url}?t0=${Math.round(t0)}`, { cache: "no-store" });
    const t1 = perfToUnix();
    if (!response.ok) throw new Error(`time endpoint answered ${response.status}`);
    const body = await response.json();
    return { rtt: t1 - t0, offset: body.server_ms - (t0 + t1) / 2 };
  }

  /** Take `samples` round trips and keep the best; throws only if every sample failed. */
  async sync() {
    let best = null;
    let lastError = null;
    for (let i = 0; i < this.samples; i += 1) {
      try {
        const s = await this.sample();
        if (best === null || s.rtt < best.rtt) best = s;
      } catch (error) {
        lastError = error;
      }
    }
    if (best === null) throw lastError;
    // A worse estimate than the one we hold (a congested network) does not replace it unless
    // the held one is old: drift makes any estimate stale within minutes.
    const stale = this.syncedAt === null || performance.now() - this.syncedAt > 300_000;
    if (stale || best.rtt <= this.rttMs * 1.5) {
      this.offsetMs = best.offset;
      this.rttMs = best.rtt;
      this.syncedAt = performance.now();
    }
    return { offsetMs: this.offsetMs, rttMs: this.rttMs };
  }

  /** Re-sync every `intervalMs` (with jitter, so a stadium does not sync in lockstep). */
  keepSynced(intervalMs = 60_000) {
    clearTimeout(this.timer);
    const next = () => {
      this.timer = setTimeout(async () => {
        try { await this.sync(); } catch { /* offline: keep the last estimate, try later */ }
        next();
      }, intervalMs * (0.8 + 0.4 * Math.random()));
    };
    next();
  }
}
