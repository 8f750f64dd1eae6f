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

const perfToUnix = () => performance.timeOrigin + performance.now();
// Resource Timing keeps 250 entries by default, then records no more: clear it before that.
const RESOURCE_BUFFER_LIMIT = 230;

export class ServerClock {
  constructor({
    url = "/api/time", samples = 6, maxSamples = 64, budgetMs = 5000, targetMs = 0.5,
  } = {}) {
    this.url = url;
    this.samples = samples; // at least this many round trips per sync
    this.maxSamples = maxSamples;
    this.budgetMs = budgetMs; // a sync stops after this long once it has `samples`
    this.targetMs = targetMs; // ... or as soon as its uncertainty is this small
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
   * succeeded. A worse estimate than the one held (a congested network) does not replace it
   * unless the held one is old: drift makes any estimate stale within minutes. */
  async sync() {
    const started = performance.now();
    const bracket = new Bracket();
    let lastError = null;
    for (let i = 0; i < this.maxSamples; i += 1) {
      try {
        bracket.add(await this.sample());
      } catch (error) {
        lastError = error;
      }
      if (bracket.count >= this.samples
          && (bracket.uncertainty() <= this.targetMs || performance.now() - started >= this.budgetMs)) break;
      if (bracket.count === 0 && (i + 1 >= this.samples || performance.now() - started >= this.budgetMs)) break;
    }
    if (bracket.count === 0) throw lastError;
    const uncertainty = bracket.uncertainty();
    const stale = this.syncedAt === null || performance.now() - this.syncedAt > 300_000;
    if (stale || uncertainty <= Math.max(this.uncertaintyMs * 1.5, this.targetMs)) {
      this.offsetMs = bracket.offset();
      this.uncertaintyMs = uncertainty;
      this.boundMs = bracket.bound();
      this.rttMs = bracket.rtt;
      this.samplesUsed = bracket.count;
      this.timing = bracket.timed === bracket.count ? "resource" : "fetch";
      this.syncedAt = performance.now();
    }
    return { offsetMs: this.offsetMs, rttMs: this.rttMs, uncertaintyMs: this.uncertaintyMs,
             boundMs: this.boundMs, samples: this.samplesUsed, timing: this.timing };
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

  offset() {
    return (this.lows[0] + this.highs[0]) / 2;
  }

  bound() {
    return Math.max(0, (this.highs[0] - this.lows[0]) / 2);
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
