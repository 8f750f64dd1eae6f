// The server's clock, estimated NTP-style over one keep-alive connection to /api/time. Local time
// comes from performance.now(), which never jumps; re-sync now and then since phone clocks drift
// 10-20 ppm.
//
// Each sample brackets the offset (server minus local). The request left at local time `sent`
// and reached the server at `received_ms`; the answer left at `server_ms` and its first byte
// arrived at local `arrived`. Whatever the delays, offset <= received_ms - sent and
// offset >= server_ms - arrived. `sent` and `arrived` come from the browser's Resource Timing
// (requestStart, responseStart), so neither connection set-up nor the page's event loop enters
// a sample; without it they are the times around fetch(). Intersecting the brackets keeps the
// quickest uplink and the quickest downlink seen, even from different samples; the midpoint is
// the estimate. What is left is (a) how far those quickest trips still sit above their floors,
// estimated from the gap to the second quickest, and sampled down until small or the budget is
// spent (`uncertaintyMs`), and (b) the difference between the two directions' floors, which no
// round-trip method can see: the offset is only known to lie within ±`boundMs`.
//
// A re-sync keeps what the last sync learnt: its brackets, widened by the most the two clocks
// can have drifted apart since (`driftPpm`), join the new samples, so a few round trips a minute
// keep the first sync's precision. Brackets that no longer overlap (a clock stepped) are dropped.

const perfToUnix = () => performance.timeOrigin + performance.now();
// Resource Timing keeps 250 entries by default, then records no more: clear it before that.
const RESOURCE_BUFFER_LIMIT = 230;

export class ServerClock {
  constructor({
    url = "/api/time", samples = 6, maxSamples = 64, budgetMs = 5000, targetMs = 0.5, driftPpm = 50,
  } = {}) {
    this.url = url;
    this.samples = samples; // at least this many round trips per sync
    this.maxSamples = maxSamples;
    this.budgetMs = budgetMs; // a sync stops after this long once it has `samples`
    this.targetMs = targetMs; // ... or as soon as its uncertainty is this small
    this.driftPpm = driftPpm; // the most the phone's and the server's clocks drift apart
    this.bracket = null; // what the last sync learnt, carried into the next
    this.offsetMs = null; // server time minus local (timeOrigin + performance.now()) time
    this.uncertaintyMs = null; // the estimate's likely error, asymmetry aside
    this.boundMs = null; // the offset certainly lies within offsetMs ± boundMs
    this.rttMs = null; // the quickest network round trip seen (server time excluded)
    this.samplesUsed = 0;
    this.timing = null; // "resource" (Resource Timing) or "fetch" (times around fetch)
    this.syncedAt = null;
    this.timer = null;
    this.sequence = 0;
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

  /** One round trip: the bracket [low, high] the offset lies in, and how it was timed. */
  async sample() {
    this.sequence += 1;
    if (performance.getEntriesByType?.("resource").length > RESOURCE_BUFFER_LIMIT) performance.clearResourceTimings();
    const before = perfToUnix();
    const href = new URL(`${this.url}?t0=${Math.round(before)}&n=${this.sequence}`, location.href).href;
    const response = await fetch(href, { cache: "no-store" });
    const body = await response.json().catch(() => null);
    const after = perfToUnix();
    if (!response.ok || body === null) throw new Error(`time endpoint answered ${response.status}`);
    const entry = await resourceEntry(href);
    const timed = entry !== null;
    const sent = timed ? performance.timeOrigin + entry.requestStart : before;
    const arrived = timed ? performance.timeOrigin + entry.responseStart : after;
    const received = body.received_ms ?? body.server_ms;
    return { low: body.server_ms - arrived, high: received - sent, timed,
             rtt: arrived - sent - (body.server_ms - received) };
  }

  /** Sample until the estimate is good enough or the budget is spent; throws only if no sample
   * succeeded. `limits` overrides `samples`, `maxSamples` and `budgetMs` for this sync. */
  async sync(limits = {}) {
    const { samples = this.samples, maxSamples = this.maxSamples, budgetMs = this.budgetMs } = limits;
    const started = performance.now();
    const fresh = new Bracket();
    const merged = this.bracket ? this.bracket.aged(started, this.driftPpm) : new Bracket();
    let lastError = null;
    for (let i = 0; i < maxSamples; i += 1) {
      try {
        const sample = await this.sample();
        fresh.add(sample);
        merged.add(sample);
      } catch (error) {
        lastError = error;
      }
      const elapsed = performance.now() - started;
      if (fresh.count >= samples && (merged.uncertainty() <= this.targetMs || elapsed >= budgetMs)) break;
      if (fresh.count === 0 && (i + 1 >= samples || elapsed >= budgetMs)) break;
    }
    if (fresh.count === 0) throw lastError;
    // Crossed brackets mean a clock stepped or drifted faster than allowed: start again.
    const bracket = merged.crossedBy() > 0.5 ? fresh : merged;
    bracket.at = started; // its sides hold from here on, widened by drift as time passes
    this.bracket = bracket;
    this.offsetMs = bracket.offset();
    this.uncertaintyMs = bracket.uncertainty();
    this.boundMs = bracket.bound();
    this.rttMs = fresh.rtt;
    this.samplesUsed = fresh.count;
    this.timing = fresh.timed === fresh.count ? "resource" : "fetch";
    this.syncedAt = performance.now();
    return { offsetMs: this.offsetMs, rttMs: this.rttMs, uncertaintyMs: this.uncertaintyMs,
             boundMs: this.boundMs, samples: this.samplesUsed, timing: this.timing };
  }

  /** Re-sync every `intervalMs` (with jitter, so a stadium does not sync in lockstep), a few
   * round trips each time: the last sync's brackets carry over. */
  keepSynced(intervalMs = 60_000, limits = { samples: 4, maxSamples: 4 }) {
    clearTimeout(this.timer);
    const next = () => {
      this.timer = setTimeout(async () => {
        try { await this.sync(limits); } catch { /* offline: keep the last estimate, try later */ }
        next();
      }, intervalMs * (0.8 + 0.4 * Math.random()));
    };
    next();
  }
}

/** The samples' brackets intersected: the two highest lows and the two lowest highs. */
class Bracket {
  constructor() {
    this.lows = [-Infinity, -Infinity];
    this.highs = [Infinity, Infinity];
    this.count = 0;
    this.timed = 0;
    this.rtt = Infinity;
  }

  add({ low, high, timed, rtt }) {
    this.count += 1;
    this.timed += timed ? 1 : 0;
    this.rtt = Math.min(this.rtt, rtt);
    if (low > this.lows[0]) this.lows = [low, this.lows[0]];
    else if (low > this.lows[1]) this.lows[1] = low;
    if (high < this.highs[0]) this.highs = [high, this.highs[0]];
    else if (high < this.highs[1]) this.highs[1] = high;
  }

  /** The same bracket at `now`, each side widened by the drift possible since it was taken. */
  aged(now, driftPpm) {
    const widen = (now - (this.at ?? now)) * driftPpm * 1e-6;
    const older = new Bracket();
    older.lows = this.lows.map((low) => low - widen);
    older.highs = this.highs.map((high) => high + widen);
    older.count = this.count;
    return older;
  }

  offset() {
    return (this.lows[0] + this.highs[0]) / 2;
  }

  bound() {
    return Math.max(0, (this.highs[0] - this.lows[0]) / 2);
  }

  crossedBy() {
    return this.lows[0] - this.highs[0];
  }

  /** Near its floor a delay's spread is about the gap between its two quickest samples; the
   * estimate moves by half of each side's excess. Until a side has two samples, the bound. */
  uncertainty() {
    if (this.count < 2) return this.bound();
    return Math.hypot(this.highs[1] - this.highs[0], this.lows[0] - this.lows[1]) / 2;
  }
}

/** The fetch's Resource Timing entry, when the browser exposes its request and response times. */
async function resourceEntry(href) {
  if (typeof performance.getEntriesByName !== "function") return null;
  for (let attempt = 0; attempt < 2; attempt += 1) {
    const entries = performance.getEntriesByName(href, "resource");
    const entry = entries[entries.length - 1];
    if (entry && entry.requestStart > 0 && entry.responseStart >= entry.requestStart) return entry;
    await new Promise((resolve) => setTimeout(resolve, 0)); // entries are queued after the body
  }
  return null;
}
