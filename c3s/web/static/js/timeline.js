// Plays a piecewise-constant colour timeline on the server clock. requestAnimationFrame drives
// the screen; when a change is due before the next animation frame, a timer aimed at the exact
// boundary applies it, so changes land within a few milliseconds of server time instead of
// up to one display frame late. With `leadMs` (the phone's measured light-output offset) every
// change is made that much earlier, so the light that leaves the screen lands on the server clock.

const WAKE_EARLY_MS = 3;

export class TimelinePlayer {
  /**
   * @param clock   a ServerClock
   * @param stepAt  (serverMs) => {value, index, startsAt, changesAt}; value null shows nothing
   * @param apply   (value, step) => void, called only when the value changes
   */
  constructor(clock, stepAt, apply) {
    this.clock = clock;
    this.stepAt = stepAt;
    this.apply = apply;
    this.current = undefined;
    this.running = false;
    this.frameMs = 16.7;
    this.lastFrame = null;
    this.timer = null;
    this.leadMs = 0; // play this much early (ms): the display's latency plus the clock's error
    // Recent changes (diagnostics): {index, dueMs, appliedMs} in target time, serverMs the clock.
    this.log = [];
  }

  /** The server time whose colour shows now: the clock plus the lead. */
  target() {
    return this.clock.now() + this.leadMs;
  }

  start() {
    if (this.running) return;
    this.running = true;
    this.update();
    const loop = (stamp) => {
      if (!this.running) return;
      if (this.lastFrame !== null) {
        // Track the display's frame interval to know when a change would be late.
        this.frameMs = 0.9 * this.frameMs + 0.1 * Math.min(100, stamp - this.lastFrame);
      }
      this.lastFrame = stamp;
      this.update();
      requestAnimationFrame(loop);
    };
    requestAnimationFrame(loop);
  }

  stop() {
    this.running = false;
    clearTimeout(this.timer);
    this.timer = null;
  }

  update() {
    const now = this.target();
    const step = this.stepAt(now);
    const value = step ? step.value : null;
    if (value !== this.current) {
      this.current = value;
      this.apply(value, step);
      if (step && value !== null) {
        this.log.push({ index: step.index, dueMs: step.startsAt, appliedMs: now, serverMs: now - this.leadMs });
        if (this.log.length > 200) this.log.splice(0, this.log.length - 200);
      }
    }
    if (step && step.changesAt != null && this.timer === null) {
      const due = step.changesAt;
      const wait = due - now;
      if (wait <= this.frameMs * 1.5) {
        // Timers wake a few ms late on a busy phone: wake early, then wait out the rest.
        this.timer = setTimeout(() => {
          this.timer = null;
          if (!this.running) return;
          const spinUntil = performance.now() + WAKE_EARLY_MS + 1;
          while (this.target() < due && performance.now() < spinUntil) { /* at most ~4 ms */ }
          this.update();
        }, Math.max(0, wait - WAKE_EARLY_MS));
      }
    }
  }
}

/** Steps of a cyclic pattern: slot k of `colors` shown during [k, k+1) * slotMs mod period. */
export function cyclicSteps(slotMs, colors) {
  return (t) => {
    const slot = Math.floor(t / slotMs);
    const index = ((slot % colors.length) + colors.length) % colors.length;
    return { value: colors[index], index, startsAt: slot * slotMs, changesAt: (slot + 1) * slotMs };
  };
}

/** Steps of a show track: frame i lasts durations[i] ms from startMs; loops if `loop`.
 * Before the start and after the end (without loop) the value is null and `phase` says which. */
export function trackSteps(startMs, durations, colors, loop) {
  const ends = [];
  let total = 0;
  for (const d of durations) { total += d; ends.push(total); }
  return (t) => {
    let elapsed = t - startMs;
    if (elapsed < 0 || total <= 0) {
      return { value: null, index: -1, phase: "before", startsAt: null, changesAt: total > 0 ? startMs : null };
    }
    let cycleStart = startMs;
    if (elapsed >= total) {
      if (!loop) return { value: null, index: durations.length, phase: "ended", startsAt: startMs + total, changesAt: null };
      const cycles = Math.floor(elapsed / total);
      cycleStart += cycles * total;
      elapsed -= cycles * total;
    }
    let i = 0;
    while (ends[i] <= elapsed) i += 1;
    return { value: colors[i], index: i, phase: "playing", startsAt: cycleStart + (i ? ends[i - 1] : 0),
             changesAt: cycleStart + ends[i] };
  };
}

/** Steps of `steps`, except during a sync burst [startMs, startMs + durationMs), when
 * `burstSteps` (the phone's blink pattern) play instead: the crowd filmed then is a sync check. */
export function withBurst(steps, startMs, durationMs, burstSteps) {
  const endMs = startMs + durationMs;
  return (t) => {
    if (t >= startMs && t < endMs) {
      const b = burstSteps(t);
      return { ...b, phase: "playing", burst: true, startsAt: Math.max(b.startsAt, startMs),
               changesAt: Math.min(b.changesAt, endMs) };
    }
    const s = steps(t);
    if (t < startMs && (s.changesAt == null || s.changesAt > startMs)) return { ...s, changesAt: startMs };
    return s;
  };
}
