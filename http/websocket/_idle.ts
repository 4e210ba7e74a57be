/**
 * The keep-alive sweep of this thread's WebSocket sessions (private): one
 * interval for all of them, running only while some session has an idle
 * timeout. A session that was silent for its idle time gets a ping; silent
 * for as long again, it is closed.
 *
 * @module
 */

/** What the sweep needs of a session. */
export interface IdleTarget {
  /** Set by the session on every read. */
  heard: boolean;
  /** Milliseconds of silence so far (kept by the sweep). */
  silentMs: number;
  /** Whether a keep-alive ping is out (cleared when the peer is heard). */
  pingSent: boolean;
  /** Called when `silentMs` reaches the idle time. */
  idle(): void;
}

/** The sweep's period: idle times are rounded up to it. */
export const SWEEP_MS = 500;

class IdleSweep {
  readonly #targets = new Map<IdleTarget, number>();
  #timer: ReturnType<typeof setInterval> | undefined;

  add(target: IdleTarget, idleMs: number): void {
    this.#targets.set(target, idleMs);
    if (this.#timer === undefined) {
      const timer = setInterval(() => this.sweep(), SWEEP_MS);
      // Open sockets keep the process alive through the reactor, not this timer.
      Deno.unrefTimer(timer);
      this.#timer = timer;
    }
  }

  delete(target: IdleTarget): void {
    this.#targets.delete(target);
    if (this.#targets.size === 0 && this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  /** Visits every session once: the interval's work each period. */
  sweep(): void {
    // forEach, not for-of: iterating entries would allocate a [key, value]
    // array per session per sweep, garbage that keeps an idle server's
    // allocation rate up and with it V8 from shrinking its heap.
    this.#targets.forEach(visit);
  }
}

/** One session's turn in a sweep. */
function visit(idleMs: number, t: IdleTarget): void {
  if (t.heard) {
    t.heard = false;
    t.silentMs = 0;
    t.pingSent = false;
    return;
  }
  t.silentMs += SWEEP_MS;
  if (t.silentMs >= idleMs) {
    t.silentMs = 0;
    t.idle();
  }
}

/** The sweep of this thread. */
export const idleSweep: IdleSweep = new IdleSweep();
