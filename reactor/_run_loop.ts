/**
 * The reactor's run loop: how it shares the main thread with Deno.
 *
 * Blocking the main thread in `epoll_wait` would freeze Deno (timers,
 * promises, signal listeners, fetch). So the loop:
 *
 * - parks one **off-thread** `epoll_wait` (a `nonblocking: true` FFI call)
 *   when nothing is ready; the reactor's waker eventfd ends the wait;
 * - handles ready events with **synchronous** calls on the main thread, and
 *   under load keeps draining with `epoll_wait(…, 0)` instead of parking;
 *   with `busyWaitMs`, it may wait for the next event on the main thread;
 * - lets promise continuations run after every batch (a microtask
 *   checkpoint) and yields to Deno's macrotasks at least every `sliceMs`.
 *
 * Internal to the reactor (not exported by `mod.ts`).
 *
 * @module
 */
import type { Poller } from "./poller.ts";
import type { ReactorStats } from "./reactor_options.ts";
import type { TimerQueue } from "./timer_queue.ts";

/** What the loop drives: the reactor's poller, timers, counters and callbacks. */
export interface LoopHost {
  readonly poller: Poller;
  readonly timers: TimerQueue;
  readonly stats: ReactorStats;
  readonly sliceMs: number;
  readonly busyWaitMs: number;
  /** Whether `stop()` was asked. */
  stopping(): boolean;
  /** Publish the loop's clock (`Reactor.now`). */
  setNow(now: number): void;
  /** Run the callbacks of the `n` events the last wait returned. */
  dispatch(n: number): void;
  /** Fire the timers due at `now`. */
  runTimers(now: number): void;
}

/** Run until `host.stopping()`. */
export async function runLoop(host: LoopHost): Promise<void> {
  const poller = host.poller;
  const stats = host.stats;
  let sliceStart = performance.now();
  let lastBusy = -Infinity;
  while (!host.stopping()) {
    let now = performance.now();
    host.setNow(now);
    const used = now - sliceStart;
    if (used >= host.sliceMs) {
      // This thread has been ours for a whole slice: let Deno's macrotasks
      // (timers, I/O, signal listeners) run, then carry on.
      stats.parks++;
      const n = await poller.pollAsync(0);
      sliceStart = now = performance.now();
      host.setNow(now);
      if (n > 0) {
        lastBusy = now;
        host.dispatch(n);
      }
      host.runTimers(now);
      await undefined; // promise continuations run before the next batch
      continue;
    }
    const timeout = host.timers.nextTimeout(now);
    // Block this thread only when recently busy (busyWaitMs), and never
    // past the slice or the next timer; otherwise just look.
    let wait = 0;
    if (host.busyWaitMs > 0) {
      const left = Math.min(host.sliceMs - used, host.busyWaitMs - (now - lastBusy));
      if (left >= 1) wait = Math.floor(left);
      if (timeout >= 0 && timeout < wait) wait = timeout;
    }
    let n = poller.poll(wait);
    stats.polls++;
    if (wait > 0) {
      now = performance.now();
      host.setNow(now);
    }
    if (n > 0) {
      lastBusy = now;
      host.dispatch(n);
    }
    host.runTimers(now);
    if (host.stopping()) break;
    if (n > 0) {
      await undefined; // let promise continuations run
      continue;
    }
    if (wait > 0 || timeout === 0) continue; // look again (maybe yield or park)
    // Idle: park off-thread; Deno's event loop runs meanwhile.
    stats.parks++;
    n = await poller.pollAsync(timeout);
    sliceStart = performance.now();
    host.setNow(sliceStart);
    if (n > 0) {
      lastBusy = sliceStart;
      host.dispatch(n);
      // Let promise continuations run before the next batch, as after every
      // other batch: e.g. `await connect()` must get to attach onData
      // before the new connection's first read is dispatched.
      await undefined;
    }
  }
}
