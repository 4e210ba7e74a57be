/**
 * The options, counters and error-handler type of a `Reactor`.
 *
 * @module
 */
import type { Registration } from "./poller.ts";

/**
 * What handles an error thrown by a callback the reactor ran (a registration
 * callback, a timer, a signal listener, or a connection's handlers). The
 * registration is the one whose callback threw, if any.
 */
export type ReactorErrorHandler = (error: unknown, registration?: Registration<unknown>) => void;

/** Options for `Reactor`. */
export interface ReactorOptions {
  /** Initial events buffer capacity (events one wait returns). Default 256; 1-65536. */
  initialCapacity?: number;
  /** The most events one wait can return; the buffer grows up to this. Default 4096; 1-65536. */
  maxCapacity?: number;
  /**
   * The longest the reactor runs batch after batch while busy before it
   * gives Deno's event loop a full turn (timers, I/O, signal listeners, and
   * every pending promise continuation). Default 2 ms; a finite number in
   * (0, 60000]. The reactor also gives a turn whenever it runs out of events,
   * before it waits: a slice only matters under steady load.
   *
   * Every turn costs a little CPU (a few µs), so a dedicated server whose
   * Deno side has little to do runs cheaper with a longer slice: the example
   * servers use 10 (with `busyWaitMs: 10`).
   */
  sliceMs?: number;
  /**
   * After a busy stretch, how long the reactor may wait for the next event on
   * the main thread (a blocking `epoll_wait`) instead of parking off-thread
   * at once; never longer than a slice. Such a wait comes only after a turn
   * of Deno's event loop has run every promise continuation the last events
   * started, so it never holds up a handler's promise chain. A wait that
   * ends with no event (the app is waiting on something else, such as a
   * file read or a `fetch`, which the wait would delay) is not repeated for
   * 50 ms. It saves a thread round trip per event on servers with steady
   * traffic. Default 0: never block the main thread.
   */
  busyWaitMs?: number;
  /**
   * Called when a callback, timer or signal listener throws (the same as
   * setting `Reactor.onError`). Such an error never stops the
   * reactor; without a handler it is logged once with `console.error`,
   * naming the registration. A connection whose handler threw is closed.
   */
  onError?: ReactorErrorHandler;
}

/** Options for `Reactor.run`. */
export interface RunOptions {
  /** Stop the loop when this signal aborts (as `stop()` does). */
  signal?: AbortSignal;
}

/** Counters a reactor keeps; cheap to read at any time. */
export interface ReactorStats {
  /** Live registrations. */
  registrations: number;
  /** Events dispatched to callbacks. */
  events: number;
  /** Events dropped because their registration was gone or its fd reused. */
  staleEvents: number;
  /** Synchronous `epoll_wait` calls. */
  polls: number;
  /** Off-thread waits (the reactor was idle). */
  parks: number;
  /** Turns given to Deno's event loop after a batch of events or timers. */
  turns: number;
  /** Times the waker ended a wait. */
  wakeups: number;
  /** Timer callbacks run. */
  timersFired: number;
}
