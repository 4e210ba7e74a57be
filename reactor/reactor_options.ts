/**
 * The options, counters and error-handler type of a `Reactor`.
 *
 * @module
 */
import type { Registration } from "./registration.ts";

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
   * The longest the reactor runs synchronously while busy before it yields to
   * Deno's event loop (timers, I/O, signal listeners). Default 2 ms; a
   * finite number in (0, 60000].
   *
   * Every yield costs a turn of Deno's event loop (measured: tens of µs of
   * CPU), so a dedicated server whose Deno side has little to do runs
   * cheaper with a longer slice: the example servers use 10 (with
   * `busyWaitMs: 10`), which took the 64 KiB echo benchmark from 1.65x to
   * 1.14–1.37x the C server's CPU per message.
   */
  sliceMs?: number;
  /**
   * After a busy stretch, how long the reactor may wait for the next event on
   * the main thread (a blocking `epoll_wait`) instead of parking off-thread
   * at once. Such a wait never runs past the current slice, so Deno's own
   * tasks are still served at least every `sliceMs`. It saves a thread
   * round trip per event on servers with steady traffic. Default 0: never
   * block the main thread.
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
  /** Off-thread waits (parks and yields). */
  parks: number;
  /** Times the waker ended a wait. */
  wakeups: number;
  /** Timer callbacks run. */
  timersFired: number;
}
