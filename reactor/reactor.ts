/**
 * `Reactor`: one epoll instance driven from inside Deno's event loop.
 *
 * Blocking the main thread in `epoll_wait` would freeze Deno (timers,
 * promises, signal listeners, fetch). So the reactor:
 *
 * - parks one **off-thread** `epoll_wait` (a `nonblocking: true` FFI call)
 *   when nothing is ready; its own eventfd (the waker) ends the wait for
 *   `stop()`, a signal, or another thread;
 * - handles ready events with **synchronous** calls on the main thread, and
 *   under load keeps draining with `epoll_wait(…, 0)` instead of parking
 *   (~14 µs per round trip); with `busyWaitMs`, a server with steady
 *   traffic waits for its next event on the main thread (one `epoll_wait`
 *   per wake-up, as a C event loop does);
 * - lets promise continuations run after every batch (a microtask
 *   checkpoint) and yields to Deno's macrotasks (timers, I/O, signals) at
 *   least every `sliceMs` milliseconds while busy.
 *
 * @example An eventfd made readable by a timer
 * ```ts
 * import { Interest, Reactor } from "@ffinet/ffinet/reactor";
 * import * as fd from "../ffi/fd.ts";
 *
 * const reactor = new Reactor();
 * const efd = fd.eventfd();
 * const reg = reactor.register(efd, Interest.READABLE, () => {
 *   fd.eventfdRead(efd);
 *   reactor.stop();
 * });
 * reactor.setTimeout(() => fd.eventfdWrite(efd), 10);
 * await reactor.run();
 * reg.deregister();
 * fd.closeFd(efd);
 * reactor.close();
 * ```
 *
 * @module
 */
import { EFD } from "../ffi/constants.ts";
import { ErrnoError } from "../ffi/errno.ts";
import * as sys from "../ffi/syscalls.ts";
import { Interest, validateInterest } from "./interest.ts";
import {
  type AnyRegistration,
  Poller,
  Readiness,
  type ReadyCallback,
  type Registration,
  registrationControl,
} from "./poller.ts";
import { describeRegistration, RegistrationTable, WAKER_TOKEN } from "./_registry.ts";
import { MAX_TIMER_MS, type Timer, TimerQueue } from "./timer_queue.ts";
import { finiteOption, integerOption } from "../ffi/validate.ts";
import type {
  ReactorErrorHandler,
  ReactorOptions,
  ReactorStats,
  RunOptions,
} from "./reactor_options.ts";

export type {
  ReactorErrorHandler,
  ReactorOptions,
  ReactorStats,
  RunOptions,
} from "./reactor_options.ts";

/**
 * Module-private access to a reactor's error reporting (for connections and
 * listeners; not exported by `mod.ts`).
 */
export const reactorControl = {} as {
  report(reactor: Reactor, error: unknown, registration: AnyRegistration | undefined): void;
};

/**
 * An epoll reactor.
 *
 * @example Stop on a signal and close with `await using`
 * ```ts
 * import { Reactor } from "@ffinet/ffinet/reactor";
 * await using reactor = new Reactor({ onError: (e) => console.error("callback failed:", e) });
 * reactor.addSignalListener("SIGTERM", () => reactor.stop());
 * reactor.setTimeout(() => reactor.stop(), 10);
 * await reactor.run();
 * ```
 */
export class Reactor implements AsyncDisposable {
  /**
   * Called when a callback, timer or signal listener throws (see
   * {@linkcode ReactorOptions.onError}). Without one, the error is logged
   * once with `console.error`.
   */
  onError: ReactorErrorHandler | undefined;
  #poller: Poller;
  #table: RegistrationTable;
  #timers = new TimerQueue();
  #wakerFd: number;
  #wakeBuf = new BigUint64Array([1n]);
  #wakeBytes = new Uint8Array(this.#wakeBuf.buffer);
  #drainBytes = new Uint8Array(8);
  #sliceMs: number;
  #busyWaitMs: number;
  #running: Promise<void> | undefined;
  #stopping = false;
  #closed = false;
  #refed = true;
  #signals: { signal: Deno.Signal; callback: () => void; handler: () => void }[] = [];
  #now = performance.now();
  #loopHost: LoopHost;
  readonly #stats: ReactorStats = {
    registrations: 0,
    events: 0,
    staleEvents: 0,
    polls: 0,
    parks: 0,
    turns: 0,
    wakeups: 0,
    timersFired: 0,
  };

  /**
   * Create the epoll instance and its eventfd waker. Options are checked
   * first (a `RangeError` naming the option).
   */
  constructor(options: ReactorOptions = {}) {
    const action = "create reactor";
    this.#sliceMs = finiteOption(action, "sliceMs", options.sliceMs, 2, { above: 0, max: 60_000 });
    this.#busyWaitMs = finiteOption(action, "busyWaitMs", options.busyWaitMs, 0, {
      min: 0,
      max: 60_000,
    });
    const initialCapacity = integerOption(
      action,
      "initialCapacity",
      options.initialCapacity,
      256,
      1,
      65536,
    );
    const maxCapacity = integerOption(action, "maxCapacity", options.maxCapacity, 4096, 1, 65536);
    if (options.onError !== undefined && typeof options.onError !== "function") {
      throw new TypeError(`Cannot ${action}: onError is not a function`);
    }
    this.onError = options.onError;
    this.#poller = new Poller({ initialCapacity, maxCapacity });
    const efd = sys.eventfd(0, EFD.NONBLOCK | EFD.CLOEXEC);
    if (efd < 0) {
      this.#poller.close();
      throw new ErrnoError("eventfd", -efd);
    }
    this.#wakerFd = efd;
    this.#poller.add(efd, Interest.READABLE, WAKER_TOKEN, 0);
    this.#table = new RegistrationTable(this.#poller);
    this.#loopHost = {
      poller: this.#poller,
      timers: this.#timers,
      stats: this.#stats,
      sliceMs: this.#sliceMs,
      busyWaitMs: this.#busyWaitMs,
      stopping: () => this.#stopping,
      refed: () => this.#refed,
      setNow: (now) => {
        this.#now = now;
      },
      dispatch: (n) => this.#dispatch(n),
      runTimers: (now) => this.#runTimers(now),
    };
  }

  /** The counters. @example `reactor.stats.events` */
  get stats(): Readonly<ReactorStats> {
    this.#stats.registrations = this.#table.count;
    return this.#stats;
  }

  /**
   * The loop's clock: `performance.now()` as of the last wait, refreshed once
   * per batch, so callbacks can stamp activity without a clock call each.
   */
  get now(): number {
    return this.#now;
  }

  /** The epoll fd (for inspection; do not `epoll_ctl` it yourself). */
  get epfd(): number {
    return this.#poller.epfd;
  }

  /**
   * The waker's eventfd. Writing an 8-byte 1 to it from any thread of this
   * process (fds are process-wide) ends a parked wait.
   */
  get wakerFd(): number {
    return this.#wakerFd;
  }

  /** Whether `run()` is in progress. */
  get running(): boolean {
    return this.#running !== undefined;
  }

  /**
   * Let the process exit while this reactor is idle, as `Deno.Listener.unref()`:
   * when nothing else keeps Deno's event loop alive, the process exits
   * (within about 100 ms) even though `run()` is in progress. While events
   * keep arriving the loop runs as usual. `ref()` undoes it.
   *
   * @example
   * ```ts
   * import { Reactor } from "@ffinet/ffinet/reactor";
   * const reactor = new Reactor();
   * reactor.unref();
   * void reactor.run(); // does not hold the process open once idle
   * ```
   */
  unref(): void {
    this.#refed = false;
  }

  /**
   * Keep the process alive while `run()` is in progress (the default; undoes
   * {@linkcode Reactor.unref}).
   *
   * @example
   * ```ts
   * import { Reactor } from "@ffinet/ffinet/reactor";
   * const reactor = new Reactor();
   * reactor.unref();
   * reactor.ref();
   * console.log(reactor.refed); // true
   * ```
   */
  ref(): void {
    this.#refed = true;
  }

  /** Whether a running reactor keeps the process alive (see {@linkcode Reactor.unref}). */
  get refed(): boolean {
    return this.#refed;
  }

  /**
   * Register an fd. The callback receives a {@linkcode Readiness} and the
   * registration. The registration does not own the fd: deregister it before
   * closing the fd (`using reg = …` deregisters at the end of the block).
   *
   * @example
   * ```ts
   * import { Interest, Reactor } from "@ffinet/ffinet/reactor";
   * import { eventfd, eventfdRead, eventfdWrite } from "@ffinet/ffinet/ffi";
   * await using reactor = new Reactor();
   * const efd = eventfd();
   * {
   *   using reg = reactor.register(efd, Interest.READABLE, (ready) => {
   *     if (ready.readable) eventfdRead(efd);
   *   });
   *   eventfdWrite(efd);
   *   console.log(reg.registered); // true
   * }
   * ```
   */
  register<T = undefined>(
    fd: number,
    interest: number,
    callback: ReadyCallback<T>,
    data?: T,
  ): Registration<T> {
    if (this.#closed) throw new Error(`Cannot register fd ${fd}: the reactor is closed`);
    if (!Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff) {
      throw new RangeError(`Cannot register fd ${fd}: not a valid file descriptor`);
    }
    if (typeof callback !== "function") {
      throw new TypeError(`Cannot register fd ${fd}: the callback is not a function`);
    }
    const bits = validateInterest(interest, `register fd ${fd}`);
    if (fd === this.#wakerFd || fd === this.#poller.epfd) {
      throw new Error(`Cannot register fd ${fd}: it belongs to the reactor itself`);
    }
    const { reg, replaced } = this.#table.add<T>(fd, bits, callback, data as T);
    if (replaced !== undefined) {
      this.#report(
        new Error(
          `Reactor: fd ${fd} was closed while registered (token ${replaced.token}); its events ` +
            "were dropped and its number was reused",
        ),
        replaced,
      );
    }
    return reg;
  }

  /**
   * The registration for an fd number, if any.
   *
   * @example
   * ```ts
   * import { Reactor } from "@ffinet/ffinet/reactor";
   * await using reactor = new Reactor();
   * reactor.registrationOf(0)?.deregister(); // nothing registered: no-op
   * ```
   */
  registrationOf(fd: number): Registration<unknown> | undefined {
    return this.#table.byFd(fd) as Registration<unknown> | undefined;
  }

  /**
   * Run `callback` once after `delayMs` (a number of ms in 0 to 2^31 - 1) on
   * the reactor. An error it throws goes to {@linkcode Reactor.onError}.
   *
   * @example
   * ```ts
   * import { Reactor } from "@ffinet/ffinet/reactor";
   * await using reactor = new Reactor();
   * const t = reactor.setTimeout(() => reactor.stop(), 30_000);
   * t.cancel();
   * ```
   */
  setTimeout(callback: () => void, delayMs: number): Timer {
    const t = this.#timers.schedule(delayMs, 0, callback);
    if (this.#poller.waiting) this.wake();
    return t;
  }

  /**
   * Run `callback` every `intervalMs` (a number of ms in 1 to 2^31 - 1) on
   * the reactor until cancelled.
   *
   * @example
   * ```ts
   * import { Reactor } from "@ffinet/ffinet/reactor";
   * await using reactor = new Reactor();
   * using _t = reactor.setInterval(() => console.log(reactor.stats), 1000);
   * ```
   */
  setInterval(callback: () => void, intervalMs: number): Timer {
    if (typeof intervalMs !== "number" || !(intervalMs >= 1 && intervalMs <= MAX_TIMER_MS)) {
      throw new RangeError(
        `Cannot schedule interval: intervalMs ${intervalMs} is not a number of milliseconds ` +
          `in 1-${MAX_TIMER_MS}`,
      );
    }
    const t = this.#timers.schedule(intervalMs, intervalMs, callback);
    if (this.#poller.waiting) this.wake();
    return t;
  }

  /**
   * End a parked wait (costs one write when none is parked).
   *
   * @example
   * ```ts
   * import { Reactor } from "@ffinet/ffinet/reactor";
   * await using reactor = new Reactor();
   * reactor.wake();
   * ```
   */
  wake(): void {
    if (this.#closed) return;
    sys.write(this.#wakerFd, this.#wakeBytes, 8);
  }

  /**
   * Listen for a signal through Deno (signalfd does not work in Deno) and run
   * `callback` on the reactor's thread, then wake the reactor so it sees any
   * state the callback changed. Undone by
   * {@linkcode Reactor.removeSignalListener} or `close()`.
   *
   * @example
   * ```ts
   * import { Reactor } from "@ffinet/ffinet/reactor";
   * await using reactor = new Reactor();
   * const stop = () => reactor.stop();
   * reactor.addSignalListener("SIGTERM", stop);
   * reactor.removeSignalListener("SIGTERM", stop);
   * ```
   */
  addSignalListener(signal: Deno.Signal, callback: () => void): void {
    if (this.#closed) throw new Error(`Cannot listen for ${signal}: the reactor is closed`);
    if (typeof callback !== "function") {
      throw new TypeError(`Cannot listen for ${signal}: the callback is not a function`);
    }
    const handler = () => {
      try {
        callback();
      } catch (e) {
        this.#report(e, undefined);
      }
      this.wake();
    };
    Deno.addSignalListener(signal, handler);
    this.#signals.push({ signal, callback, handler });
  }

  /**
   * Remove a listener added with {@linkcode Reactor.addSignalListener} (the
   * same signal and callback). Returns false when there was none.
   *
   * @example
   * ```ts
   * import { Reactor } from "@ffinet/ffinet/reactor";
   * await using reactor = new Reactor();
   * console.log(reactor.removeSignalListener("SIGINT", () => {})); // false
   * ```
   */
  removeSignalListener(signal: Deno.Signal, callback: () => void): boolean {
    const i = this.#signals.findIndex((s) => s.signal === signal && s.callback === callback);
    if (i < 0) return false;
    const [entry] = this.#signals.splice(i, 1);
    Deno.removeSignalListener(signal, entry!.handler);
    return true;
  }

  /**
   * Ask `run()` to return after the current batch. Safe to call from a
   * callback, a timer, a signal listener or any other task.
   *
   * @example
   * ```ts
   * import { Reactor } from "@ffinet/ffinet/reactor";
   * await using reactor = new Reactor();
   * const done = reactor.run();
   * reactor.stop();
   * await done;
   * ```
   */
  stop(): void {
    this.#stopping = true;
    this.wake();
  }

  static {
    reactorControl.report = (reactor, error, reg) => reactor.#report(error, reg);
  }

  #report(error: unknown, reg: AnyRegistration | undefined): void {
    const handler = this.onError;
    if (handler !== undefined) {
      try {
        handler(error, reg);
        return;
      } catch (e) {
        error = new Error(`Reactor: onError threw while handling an error`, { cause: [error, e] });
      }
    }
    // The one place ffinet writes to the console: an error nobody handles.
    console.error(`ffinet: uncaught error in a callback for ${describeRegistration(reg)}:`, error);
  }

  #drainWaker(): void {
    while (sys.read(this.#wakerFd, this.#drainBytes, 8) > 0) { /* eventfd reads reset it */ }
    this.#stats.wakeups++;
  }

  #dispatch(n: number): void {
    const poller = this.#poller;
    const words = poller.words;
    const stride = poller.stride;
    const dw = poller.dataWord;
    const slots = this.#table.slots;
    let stale = 0;
    for (let i = 0, base = 0; i < n; i++, base += stride) {
      const token = words[base + dw]!;
      if (token === WAKER_TOKEN) {
        this.#drainWaker();
        continue;
      }
      const reg = slots[token];
      if (reg === undefined || reg.generation !== words[base + dw + 1] || reg.state !== "added") {
        stale++;
        continue;
      }
      registrationControl.fired(reg);
      try {
        reg.callback(Readiness.of(words[base]!), reg);
      } catch (e) {
        this.#report(e, reg);
      }
    }
    this.#stats.events += n - stale;
    this.#stats.staleEvents += stale;
    if (n === poller.capacity) poller.grow();
  }

  #runTimers(now: number): number {
    if (this.#timers.size === 0) return 0;
    const fired = this.#timers.runDue(now, (e) => this.#report(e, undefined));
    this.#stats.timersFired += fired;
    return fired;
  }

  /**
   * Run the loop until `stop()` (or until `options.signal` aborts). Errors
   * thrown by callbacks never end it: they go to
   * {@linkcode Reactor.onError}. An already-aborted signal rejects at once.
   *
   * @example
   * ```ts
   * import { Reactor } from "@ffinet/ffinet/reactor";
   * await using reactor = new Reactor();
   * await reactor.run({ signal: AbortSignal.timeout(10) });
   * ```
   */
  run(options: RunOptions = {}): Promise<void> {
    if (this.#closed) return Promise.reject(new Error("Cannot run reactor: it is closed"));
    if (this.#running !== undefined) {
      return Promise.reject(new Error("Cannot run reactor: it is already running"));
    }
    const signal = options.signal;
    if (signal !== undefined && !(signal instanceof AbortSignal)) {
      return Promise.reject(new TypeError("Cannot run reactor: signal is not an AbortSignal"));
    }
    if (signal?.aborted) return Promise.reject(signal.reason);
    this.#stopping = false;
    const onAbort = () => this.stop();
    signal?.addEventListener("abort", onAbort, { once: true });
    const p = runLoop(this.#loopHost).finally(() => {
      signal?.removeEventListener("abort", onAbort);
      this.#running = undefined;
    });
    this.#running = p;
    return p;
  }

  /**
   * Close the epoll fd and the waker, and remove signal listeners. Refused
   * while `run()` is in progress: `stop()` and await it first (or use
   * `await using`). Registrations left behind are dropped; their fds are
   * not closed (the reactor never owns them).
   *
   * @example
   * ```ts
   * import { Reactor } from "@ffinet/ffinet/reactor";
   * const reactor = new Reactor();
   * reactor.close();
   * ```
   */
  close(): void {
    if (this.#closed) return;
    if (this.#running !== undefined) {
      throw new Error("Cannot close reactor: it is running; call stop() and await run() first");
    }
    this.#closed = true;
    for (const { signal, handler } of this.#signals) Deno.removeSignalListener(signal, handler);
    this.#signals = [];
    this.#table.clear("the reactor was closed");
    this.#poller.close();
    sys.close(this.#wakerFd);
  }

  /** Stop, wait for `run()` to settle, and close. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#running !== undefined) {
      this.stop();
      try {
        await this.#running;
      } catch { /* the error was the caller's to take from run() */ }
    }
    this.close();
  }
}

// ---------------------------------------------------------------------------
// The run loop: how the reactor shares the main thread with Deno.
//
// Blocking the main thread in `epoll_wait` would freeze Deno (timers,
// promises, signal listeners, fetch). So the loop:
//
// - handles ready events with **synchronous** calls on the main thread
//   (`epoll_wait(…, 0)`, then the callbacks), batch after batch while
//   events keep coming, letting the first step of what each batch started
//   run in between (`await undefined`);
// - gives Deno's event loop one full turn (`setImmediate`, a few µs) at
//   least every `sliceMs` while busy, and always before it waits on this
//   thread: a turn runs every pending promise continuation to its end (a
//   handler's whole promise chain: a body read, a JSON parse) and Deno's
//   own timers, I/O and signal listeners. So a wait on this thread never
//   holds up a promise chain the reactor started;
// - with `busyWaitMs`, after that turn, may wait for the next event on the
//   main thread (saving the thread round trip of a park). A wait that ends
//   empty means the app waits for something else (a Deno op: a file read, a
//   fetch), which such a wait would hold up: none follows for
//   `HOLD_BACKOFF_MS`;
// - parks one **off-thread** `epoll_wait` (a `nonblocking: true` FFI call)
//   when idle; the reactor's waker eventfd ends the wait.
// - Writes a connection makes after its first one in a turn are corked
//   (`deferFlush` below): a `setImmediate` sends them once the turn's
//   continuations have run, and the loop sends them before it looks again.

/** What the loop drives: the reactor's poller, timers, counters and callbacks. */
interface LoopHost {
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
async function runLoop(host: LoopHost): Promise<void> {
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

// ---------------------------------------------------------------------------
// Write turns: a connection's second and later writes of one turn of the
// loop are corked, and sent together once the turn's continuations have run.

/**
 * The write turns of this thread: `epoch` counts flushes of corked writes
 * (at the end of each turn of Deno's event loop that corked any, and after
 * each batch of a reactor's loop); `writes` counts `write()` calls (the run
 * loop tells by it whether the app wrote while it was parked).
 */
export const writeTurns = { epoch: 0, writes: 0 };

type Flusher<T> = (owner: T) => void;
const corkedOwners: unknown[] = [];
const corkedFlushers: Flusher<never>[] = [];
let flushScheduled = false;

/**
 * Have `flush(owner)` called once this turn's microtasks have run: by a
 * `setImmediate`, or sooner by a reactor's run loop at the end of its batch
 * (before it waits).
 */
export function deferFlush<T>(owner: T, flush: Flusher<T>): void {
  corkedOwners.push(owner);
  corkedFlushers.push(flush as Flusher<never>);
  if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(flushScheduledCorked);
  }
}

/** Flush every corked connection; a new write turn starts. */
function flushCorked(): void {
  writeTurns.epoch++;
  if (corkedOwners.length === 0) return;
  // A flush may cork again (an onDrain that writes twice): those join this pass.
  for (let i = 0; i < corkedOwners.length; i++) {
    (corkedFlushers[i] as Flusher<unknown>)(corkedOwners[i]);
  }
  corkedOwners.length = 0;
  corkedFlushers.length = 0;
}

/** The scheduled flush (it may find the loop has flushed already). */
function flushScheduledCorked(): void {
  flushScheduled = false;
  flushCorked();
}

/** Whether {@linkcode beginLoopTurn} started a write turn in this turn of Deno's loop. */
let loopTurn = false;
const endLoopTurn = () => {
  loopTurn = false;
  writeTurns.epoch++;
};

/**
 * Start a write turn for writes made by an event of Deno's loop outside any
 * reactor batch (a message from another Worker). The turn otherwise moves on
 * only after a batch or a flush of corked writes, so each connection written
 * to in the last turn would take its next write as a second one and cork it
 * (a buffer and a copy per connection, sent later). The first call in a turn
 * of Deno's loop starts a new write turn, so each connection's first write
 * is sent at once; later writes in that turn (a burst) cork behind it and go
 * out together; and the turn ends with that turn of Deno's loop, so the next
 * reactor batch sends directly too.
 */
export function beginLoopTurn(): void {
  if (loopTurn) return;
  loopTurn = true;
  writeTurns.epoch++;
  setImmediate(endLoopTurn);
}
