/**
 * `TimerQueue`: the reactor's timers, in a binary min-heap ordered by
 * deadline (then by creation order). Cancelled timers are dropped lazily
 * when they reach the top.
 *
 * @module
 */

/**
 * A scheduled timer.
 *
 * @example
 * ```ts ignore
 * const t = reactor.setTimeout(() => console.log("late"), 100);
 * t.cancel();
 * ```
 */
export class Timer {
  /** When it fires next (a `performance.now()` time). */
  deadline: number;
  /** The repeat period in ms, or 0 for one-shot. */
  readonly interval: number;
  /** @internal Creation order, for stable ordering of equal deadlines. */
  readonly seq: number;
  readonly #callback: () => void;
  #cancelled = false;
  #queue: TimerQueue;

  /** @internal Use {@linkcode TimerQueue.schedule}. */
  constructor(queue: TimerQueue, deadline: number, interval: number, seq: number, cb: () => void) {
    this.#queue = queue;
    this.deadline = deadline;
    this.interval = interval;
    this.seq = seq;
    this.#callback = cb;
  }

  /** Whether {@linkcode Timer.cancel} ran (or a one-shot timer fired). */
  get cancelled(): boolean {
    return this.#cancelled;
  }

  /** Stop the timer; it will not fire again. Idempotent. @example `timer.cancel()` */
  cancel(): void {
    if (this.#cancelled) return;
    this.#cancelled = true;
    this.#queue._cancelled();
  }

  /** @internal */
  _fire(): void {
    if (this.interval === 0) this.#cancelled = true;
    this.#callback();
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

  /** @internal */
  _cancelled(): void {
    this.#live--;
  }

  /**
   * Schedule `cb` after `delayMs`, repeating every `intervalMs` if non-zero.
   *
   * @example
   * ```ts ignore
   * queue.schedule(1000, 1000, tick);
   * ```
   */
  schedule(delayMs: number, intervalMs: number, cb: () => void): Timer {
    if (!(delayMs >= 0) || !Number.isFinite(delayMs)) {
      throw new RangeError(
        `Cannot schedule timer: delay ${delayMs} ms is not a finite number >= 0`,
      );
    }
    if (!(intervalMs >= 0) || !Number.isFinite(intervalMs)) {
      throw new RangeError(
        `Cannot schedule timer: interval ${intervalMs} ms is not a finite number >= 0`,
      );
    }
    const t = new Timer(this, performance.now() + delayMs, intervalMs, this.#seq++, cb);
    this.#push(t);
    this.#live++;
    return t;
  }

  /**
   * Milliseconds until the next live timer is due: -1 when there is none,
   * 0 when one is due now.
   *
   * @example
   * ```ts ignore
   * const timeout = queue.nextTimeout(performance.now());
   * ```
   */
  nextTimeout(now: number): number {
    const heap = this.#heap;
    while (heap.length > 0 && heap[0]!.cancelled) this.#pop();
    if (heap.length === 0) return -1;
    const d = heap[0]!.deadline - now;
    return d <= 0 ? 0 : Math.ceil(d);
  }

  /**
   * Fire every timer due at `now`; returns how many fired. A callback that
   * throws is reported to `onError` (or rethrown after the others ran).
   *
   * @example
   * ```ts ignore
   * queue.runDue(performance.now());
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
        t.deadline = Math.max(t.deadline + t.interval, now);
        this.#push(t);
      } else {
        this.#live--;
      }
      fired++;
      try {
        t._fire();
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
    return a.deadline < b.deadline || (a.deadline === b.deadline && a.seq < b.seq);
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
