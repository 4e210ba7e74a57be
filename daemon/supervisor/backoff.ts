/**
 * The restart policy of a supervisor slot (PM2-like): an exponential
 * backoff between restarts, a crash-loop detector and an optional limit.
 *
 * @example
 * ```ts
 * import { Backoff, RestartPolicy } from "./backoff.ts";
 * const policy = new RestartPolicy({});
 * const b = new Backoff(policy);
 * b.crashed(Date.now(), 50).delayMs; // 100
 * b.crashed(Date.now(), 50).delayMs; // 150
 * ```
 *
 * @module
 */

/** The numbers of a {@linkcode RestartPolicy} (all optional). */
export interface RestartPolicyOptions {
  /** The first restart delay (default 100 ms). */
  restartDelayMs?: number;
  /** The factor applied per consecutive crash (default 1.5). */
  restartDelayFactor?: number;
  /** The cap on the delay (default 15 000 ms). */
  maxRestartDelayMs?: number;
  /** A worker that ran this long resets the delay (default 30 000 ms). */
  stableAfterMs?: number;
  /** Crashes within `crashLoopWindowMs` that make a crash loop (default 5). */
  crashLoopCount?: number;
  /** The crash loop window (default 60 000 ms). */
  crashLoopWindowMs?: number;
  /** Give a slot up after this many restarts (default Infinity). */
  maxRestarts?: number;
}

/**
 * Check that `value` (or `fallback`) is a number `>= min`; `RangeError`
 * naming the option otherwise.
 *
 * @example
 * ```ts
 * import { checkNumber } from "./backoff.ts";
 * checkNumber("workers", 2, 1, 1); // 2
 * ```
 */
export function checkNumber(
  name: string,
  value: number | undefined,
  fallback: number,
  min = 0,
): number {
  const v = value ?? fallback;
  if (typeof v !== "number" || Number.isNaN(v) || v < min) {
    throw new RangeError(`Cannot create supervisor: ${name} must be a number >= ${min}, got ${v}`);
  }
  return v;
}

/** Validated restart numbers shared by every slot. */
export class RestartPolicy {
  /** First delay. */
  readonly initialDelayMs: number;
  /** Growth factor. */
  readonly factor: number;
  /** Delay cap. */
  readonly maxDelayMs: number;
  /** Uptime that resets the backoff. */
  readonly stableAfterMs: number;
  /** Crashes that make a loop. */
  readonly loopCount: number;
  /** The loop window. */
  readonly loopWindowMs: number;
  /** Restarts before giving up. */
  readonly maxRestarts: number;

  /** Validate the options (`RangeError` naming the bad one). */
  constructor(o: RestartPolicyOptions) {
    this.initialDelayMs = checkNumber("restartDelayMs", o.restartDelayMs, 100);
    this.factor = checkNumber("restartDelayFactor", o.restartDelayFactor, 1.5, 1);
    this.maxDelayMs = checkNumber("maxRestartDelayMs", o.maxRestartDelayMs, 15_000);
    this.stableAfterMs = checkNumber("stableAfterMs", o.stableAfterMs, 30_000);
    this.loopCount = checkNumber("crashLoopCount", o.crashLoopCount, 5, 1);
    this.loopWindowMs = checkNumber("crashLoopWindowMs", o.crashLoopWindowMs, 60_000);
    this.maxRestarts = checkNumber("maxRestarts", o.maxRestarts, Infinity);
  }
}

/** What {@linkcode Backoff.crashed} decided. */
export interface CrashDecision {
  /** True when the slot must be given up (`maxRestarts` reached). */
  gaveUp: boolean;
  /** The delay before the restart. */
  delayMs: number;
  /** True when this crash made the slot enter a crash loop. */
  enteredLoop: boolean;
  /** Crashes within the window, this one included. */
  crashesInWindow: number;
}

/** One slot's backoff state. */
export class Backoff {
  readonly #policy: RestartPolicy;
  #nextDelay: number;
  #crashes: number[] = [];
  /** Restarts so far. */
  restarts = 0;
  /** Whether the slot is in a crash loop. */
  crashLooping = false;

  /** A fresh state under `policy`. */
  constructor(policy: RestartPolicy) {
    this.#policy = policy;
    this.#nextDelay = policy.initialDelayMs;
  }

  /**
   * Record an unexpected exit after `uptimeMs` at time `now` and decide
   * the restart.
   *
   * @example
   * ```ts
   * import { Backoff, RestartPolicy } from "./backoff.ts";
   * const backoff = new Backoff(new RestartPolicy({ maxRestarts: 3 }));
   * const d = backoff.crashed(Date.now(), 120);
   * if (!d.gaveUp) console.log(`restart in ${d.delayMs} ms`); // "restart in 100 ms"
   * ```
   */
  crashed(now: number, uptimeMs: number): CrashDecision {
    const p = this.#policy;
    if (uptimeMs >= p.stableAfterMs) this.reset();
    if (this.restarts >= p.maxRestarts) {
      return {
        gaveUp: true,
        delayMs: 0,
        enteredLoop: false,
        crashesInWindow: this.#crashes.length,
      };
    }
    const delayMs = this.#nextDelay;
    this.#nextDelay = Math.min(this.#nextDelay * p.factor, p.maxDelayMs);
    this.restarts++;
    this.#crashes.push(now);
    this.#crashes = this.#crashes.filter((t) => now - t <= p.loopWindowMs);
    let enteredLoop = false;
    if (!this.crashLooping && this.#crashes.length >= p.loopCount) {
      this.crashLooping = true;
      enteredLoop = true;
    }
    return { gaveUp: false, delayMs, enteredLoop, crashesInWindow: this.#crashes.length };
  }

  /**
   * The worker ran long enough: reset the delay and the crash window.
   * Returns true when this ended a crash loop.
   *
   * @example
   * ```ts
   * import { Backoff, RestartPolicy } from "./backoff.ts";
   * const backoff = new Backoff(new RestartPolicy({ crashLoopCount: 2 }));
   * backoff.crashed(Date.now(), 10);
   * backoff.crashed(Date.now(), 10); // enteredLoop: true
   * if (backoff.reset()) console.log("recovered");
   * ```
   */
  reset(): boolean {
    this.#nextDelay = this.#policy.initialDelayMs;
    this.#crashes = [];
    const was = this.crashLooping;
    this.crashLooping = false;
    return was;
  }
}
