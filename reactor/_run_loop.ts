/**
 * The reactor's run loop: how it shares the main thread with Deno.
 *
 * Blocking the main thread in `epoll_wait` would freeze Deno (timers,
 * promises, signal listeners, fetch). So the loop:
 *
 * - handles ready events with **synchronous** calls on the main thread
 *   (`epoll_wait(…, 0)`, then the callbacks), batch after batch while
 *   events keep coming, letting the first step of what each batch started
 *   run in between (`await undefined`);
 * - gives Deno's event loop one full turn (`setImmediate`, a few µs) at
 *   least every `sliceMs` while busy, and always before it waits on this
 *   thread: a turn runs every pending promise continuation to its end (a
 *   handler's whole promise chain: a body read, a JSON parse) and Deno's
 *   own timers, I/O and signal listeners. So a wait on this thread never
 *   holds up a promise chain the reactor started;
 * - with `busyWaitMs`, after that turn, may wait for the next event on the
 *   main thread (saving the thread round trip of a park). A wait that ends
 *   empty means the app waits for something else (a Deno op: a file read, a
 *   fetch), which such a wait would hold up: none follows for
 *   `HOLD_BACKOFF_MS`;
 * - parks one **off-thread** `epoll_wait` (a `nonblocking: true` FFI call)
 *   when idle; the reactor's waker eventfd ends the wait.
 * - Writes a connection makes after its first one in a turn are corked
 *   (`_output_queue.ts`): a `setImmediate` sends them once the turn's
 *   continuations have run, and the loop sends them before it looks again.
 *
 * Internal to the reactor (not exported by `mod.ts`).
 *
 * @module
 */
import type { Poller } from "./poller.ts";
import type { ReactorStats } from "./reactor_options.ts";
import type { TimerQueue } from "./timer_queue.ts";
import { flushCorked, writeTurns } from "./_output_queue.ts";

/** What the loop drives: the reactor's poller, timers, counters and callbacks. */
export interface LoopHost {
  readonly poller: Poller;
  readonly timers: TimerQueue;
  readonly stats: ReactorStats;
  readonly sliceMs: number;
  readonly busyWaitMs: number;
  /** Whether `stop()` was asked. */
  stopping(): boolean;
  /** Whether the parked loop keeps the process alive (false after `unref()`). */
  refed(): boolean;
  /** Publish the loop's clock (`Reactor.now`). */
  setNow(now: number): void;
  /** Run the callbacks of the `n` events the last wait returned. */
  dispatch(n: number): void;
  /** Fire the timers due at `now`; returns how many ran. */
  runTimers(now: number): number;
}

/**
 * One turn of Deno's event loop. A macrotask: it runs after every pending
 * microtask, and Deno polls its timers and I/O on the way (unlike an op that
 * has already completed, which Deno may resolve without turning them).
 */
function turn(): Promise<void> {
  return new Promise<void>((resolve) => setImmediate(resolve));
}

/** The longest off-thread wait of an unref'd reactor: how late the process may exit. */
const UNREF_PARK_MS = 100;

/**
 * Park an unref'd reactor: a pending off-thread wait holds Deno's event loop
 * open, so the wait is bounded, and an empty one is followed by an
 * unref'd timer: when nothing else keeps Deno's loop alive, the process
 * exits there.
 */
async function parkUnrefed(poller: Poller, timeout: number): Promise<number> {
  const n = await poller.pollAsync(
    timeout < 0 || timeout > UNREF_PARK_MS ? UNREF_PARK_MS : timeout,
  );
  if (n === 0) {
    await new Promise<void>((resolve) => Deno.unrefTimer(setTimeout(resolve, 0)));
  }
  return n;
}

/**
 * How long the loop does not wait on this thread after such a wait ended
 * empty: what the app waits for may be elsewhere (a Deno op: a file read,
 * a fetch, a database), and a wait here would hold it up. A park that ends
 * with events while the app wrote nothing ends the pause.
 */
const HOLD_BACKOFF_MS = 50;

/** Run until `host.stopping()`. */
export async function runLoop(host: LoopHost): Promise<void> {
  const poller = host.poller;
  const stats = host.stats;
  // The longest one wait may hold the main thread (it is never held longer
  // than a slice).
  const hold = Math.min(host.busyWaitMs, host.sliceMs);
  let sliceStart = performance.now();
  let lastBusy = -Infinity;
  // Whether every promise continuation started by the last batch has run
  // (a turn of Deno's loop came after it): only then may this thread wait.
  let settled = true;
  // After a wait that ended empty, none until this time (see HOLD_BACKOFF_MS).
  let holdOff = -Infinity;
  while (!host.stopping()) {
    let now = performance.now();
    host.setNow(now);
    const timeout = host.timers.nextTimeout(now);
    let wait = 0;
    let forTimer = false;
    if (hold > 0 && settled && now >= holdOff) {
      const left = Math.min(hold - (now - lastBusy), host.sliceMs - (now - sliceStart));
      if (left >= 1) wait = Math.floor(left);
      if (timeout >= 0 && timeout < wait) {
        wait = timeout;
        forTimer = true;
      }
    }
    let n = poller.poll(wait);
    stats.polls++;
    if (wait > 0) {
      now = performance.now();
      host.setNow(now);
      if (n === 0 && !forTimer) holdOff = now + HOLD_BACKOFF_MS;
    }
    if (n > 0) {
      lastBusy = now;
      host.dispatch(n);
    }
    const fired = host.runTimers(now);
    if (host.stopping()) break;
    if (n > 0 || fired > 0) {
      settled = false;
      if (now - sliceStart >= host.sliceMs) {
        // A whole slice without a turn: Deno's timers, I/O and signal
        // listeners run now, and so does everything the batches started.
        sliceStart = now;
        stats.turns++;
        await turn();
        settled = true;
      } else {
        await undefined; // the first step of what the batch started runs
      }
      flushCorked();
      continue;
    }
    if (timeout === 0) continue;
    if (!settled && hold > 0) {
      // Nothing is ready, and what the last batches started may still be
      // running: let it all run before this thread waits.
      stats.turns++;
      await turn();
      sliceStart = performance.now();
      settled = true;
      flushCorked();
      continue;
    }
    if (wait > 0) continue; // the wait ended empty: look once more, then park
    // Idle: park off-thread; Deno's event loop runs meanwhile (and with it
    // whatever the last batch started).
    stats.parks++;
    const writes = writeTurns.writes;
    n = host.refed() ? await poller.pollAsync(timeout) : await parkUnrefed(poller, timeout);
    // Events came and the app wrote nothing meanwhile: the wait that ended
    // empty only met a slow peer, not an app waiting on Deno; wait again.
    if (n > 0 && writeTurns.writes === writes) holdOff = -Infinity;
    sliceStart = now = performance.now();
    host.setNow(now);
    settled = true;
    if (n > 0) {
      lastBusy = now;
      host.dispatch(n);
      settled = false;
      // What the batch started runs before the next look (e.g. `await
      // connect()` attaches onData before the first read is dispatched).
      await undefined;
      flushCorked();
    }
  }
}
