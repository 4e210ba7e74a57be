/**
 * `Timer` (what `Reactor.setTimeout`/`setInterval` return) and `TimerQueue`,
 * the reactor's timers in a binary min-heap ordered by deadline (then by
 * creation order). Cancelled timers are dropped lazily when they reach the
 * top. `TimerQueue` is internal to the reactor (not exported by `mod.ts`).
 *
 * @module
 */

/**
 * The longest timer delay or interval, in ms: 2^31 - 1 (about 24.8 days), the
 * most one `epoll_wait` timeout can express, as for Deno's own `setTimeout`.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** Module-private access to a timer's internals (never exported). */
let fireTimer: (t: Timer) => void;
let newTimer: (
  queue: TimerQueue,
  deadline: number,
  interval: number,
  seq: number,
  cb: () => void,
) => Timer;
let seqOf: (t: Timer) => number;
let moveTimer: (t: Timer, deadline: number) => void;

/**
 * A scheduled timer, as returned by {@linkcode Reactor.setTimeout} and
 * {@linkcode Reactor.setInterval}. Disposing it cancels it.
 *
 * @example
 * ```ts
 * import { Reactor } from "@ffinet/ffinet/reactor";
 * const reactor = new Reactor();
 * {
 *   using t = reactor.setTimeout(() => console.log("never"), 100);
 *   console.log(t.cancelled); // false
 * } // cancelled here
 * reactor.close();
 * ```
 */
export class Timer implements Disposable {
  #deadline: number;
  #interval: number;
  #seq: number;
  readonly #callback: () => void;
  #cancelled = false;
  #queue: TimerQueue;

  /** @ignore Internal: see the static factory. */
  private constructor(
    queue: TimerQueue,
    deadline: number,
    interval: number,
    seq: number,
    cb: () => void,
  ) {
    this.#queue = queue;
    this.#deadline = deadline;
    this.#interval = interval;
    this.#seq = seq;
    this.#callback = cb;
  }

  static {
    newTimer = (q, d, i, s, cb) => new Timer(q, d, i, s, cb);
    fireTimer = (t) => {
      if (t.#interval === 0) t.#cancelled = true;
      t.#callback();
    };
    seqOf = (t) => t.#seq;
    moveTimer = (t, deadline) => {
      t.#deadline = deadline;
    };
  }

  /** When it fires next (a `performance.now()` time). */
  get deadline(): number {
    return this.#deadline;
  }

  /** The repeat period in ms, or 0 for one-shot. */
  get interval(): number {
    return this.#interval;
  }

  /** Whether {@linkcode Timer.cancel} ran (or a one-shot timer fired). */
  get cancelled(): boolean {
    return this.#cancelled;
  }

  /** Stop the timer; it will not fire again. Idempotent. @example `timer.cancel()` */
  cancel(): void {
    if (this.#cancelled) return;
    this.#cancelled = true;
    this.#queue.release(this);
  }

  /** Cancel (for `using`). */
  [Symbol.dispose](): void {
    this.cancel();
  }
}

/**
 * A min-heap of timers.
 *
 * @example
 * ```ts
 * import { TimerQueue } from "./timer_queue.ts";
 * const q = new TimerQueue();
 * q.schedule(10, 0, () => console.log("fired"));
 * q.runDue(performance.now() + 20);
 * ```
 */
export class TimerQueue {
  #heap: Timer[] = [];
  #seq = 0;
  #live = 0;

  /** How many timers are scheduled and not cancelled. */
  get size(): number {
    return this.#live;
  }

  /** A live timer of this queue was cancelled. */
  release(_timer: Timer): void {
    this.#live--;
  }

  /**
   * Schedule `cb` after `delayMs`, repeating every `intervalMs` if non-zero.
   *
   * @example
   * ```ts
   * import { TimerQueue } from "./timer_queue.ts";
   * const queue = new TimerQueue();
   * const t = queue.schedule(1000, 1000, () => console.log("tick"));
   * t.cancel();
   * ```
   */
  schedule(delayMs: number, intervalMs: number, cb: () => void): Timer {
    if (typeof delayMs !== "number" || !(delayMs >= 0 && delayMs <= MAX_TIMER_MS)) {
      throw new RangeError(
        `Cannot schedule timer: delayMs ${delayMs} is not a number of milliseconds in 0-${MAX_TIMER_MS}`,
      );
    }
    if (
      typeof intervalMs !== "number" ||
      !(intervalMs === 0 || (intervalMs >= 1 && intervalMs <= MAX_TIMER_MS))
    ) {
      throw new RangeError(
        `Cannot schedule timer: intervalMs ${intervalMs} is not 0 (one-shot) or a number of ` +
          `milliseconds in 1-${MAX_TIMER_MS}`,
      );
    }
    if (typeof cb !== "function") {
      throw new TypeError("Cannot schedule timer: the callback is not a function");
    }
    const t = newTimer(this, performance.now() + delayMs, intervalMs, this.#seq++, cb);
    this.#push(t);
    this.#live++;
    return t;
  }

  /**
   * Milliseconds until the next live timer is due: -1 when there is none,
   * 0 when one is due now.
   *
   * @example
   * ```ts
   * import { TimerQueue } from "./timer_queue.ts";
   * const queue = new TimerQueue();
   * queue.schedule(50, 0, () => {});
   * const timeout = queue.nextTimeout(performance.now()); // about 50
   * ```
   */
  nextTimeout(now: number): number {
    const heap = this.#heap;
    while (heap.length > 0 && heap[0]!.cancelled) this.#pop();
    if (heap.length === 0) return -1;
    const d = heap[0]!.deadline - now;
    return d <= 0 ? 0 : Math.min(Math.ceil(d), MAX_TIMER_MS);
  }

  /**
   * Fire every timer due at `now`; returns how many fired. A callback that
   * throws is reported to `onError` (or rethrown after the others ran).
   *
   * @example
   * ```ts
   * import { TimerQueue } from "./timer_queue.ts";
   * const queue = new TimerQueue();
   * queue.schedule(0, 0, () => console.log("due"));
   * queue.runDue(performance.now() + 1); // 1
   * ```
   */
  runDue(now: number, onError?: (e: unknown) => void): number {
    const heap = this.#heap;
    let fired = 0;
    let firstError: unknown;
    let failed = false;
    while (heap.length > 0 && heap[0]!.deadline <= now) {
      const t = this.#pop()!;
      if (t.cancelled) continue;
      if (t.interval > 0) {
        moveTimer(t, Math.max(t.deadline + t.interval, now));
        this.#push(t);
      } else {
        this.#live--;
      }
      fired++;
      try {
        fireTimer(t);
      } catch (e) {
        if (onError) onError(e);
        else if (!failed) {
          failed = true;
          firstError = e;
        }
      }
    }
    if (failed) throw firstError;
    return fired;
  }

  #less(a: Timer, b: Timer): boolean {
    return a.deadline < b.deadline || (a.deadline === b.deadline && seqOf(a) < seqOf(b));
  }

  #push(t: Timer): void {
    const heap = this.#heap;
    heap.push(t);
    let i = heap.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.#less(heap[i]!, heap[p]!)) break;
      [heap[i], heap[p]] = [heap[p]!, heap[i]!];
      i = p;
    }
  }

  #pop(): Timer | undefined {
    const heap = this.#heap;
    const top = heap[0];
    const last = heap.pop();
    if (heap.length > 0 && last !== undefined) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < heap.length && this.#less(heap[l]!, heap[m]!)) m = l;
        if (r < heap.length && this.#less(heap[r]!, heap[m]!)) m = r;
        if (m === i) break;
        [heap[i], heap[m]] = [heap[m]!, heap[i]!];
        i = m;
      }
    }
    return top;
  }
}
