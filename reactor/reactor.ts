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
 * import { Reactor, Interest } from "./mod.ts";
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
import { Poller, type PollerOptions } from "./poller.ts";
import { Readiness } from "./readiness.ts";
import {
  type AnyRegistration,
  type ReadyCallback,
  Registration,
  type RegistryHooks,
} from "./registration.ts";
import { type Timer, TimerQueue } from "./timer_queue.ts";

/** Options for {@linkcode Reactor}. */
export interface ReactorOptions extends PollerOptions {
  /**
   * The longest the reactor runs synchronously while busy before it yields to
   * Deno's event loop (timers, I/O, signal listeners). Default 2 ms.
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
   * Called when a callback or timer throws. Without it, the error stops the
   * reactor and `run()` rejects with it.
   */
  onError?: (error: unknown, registration?: AnyRegistration) => void;
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

const WAKER_TOKEN = 0;

/**
 * An epoll reactor.
 *
 * @example
 * ```ts ignore
 * const reactor = new Reactor();
 * const reg = reactor.register(fd, Interest.READABLE, (ready, reg) => { ... });
 * const done = reactor.run();
 * // ... later
 * reactor.stop();
 * await done;
 * ```
 */
export class Reactor implements AsyncDisposable {
  #poller: Poller;
  #slots: (AnyRegistration | undefined)[] = [undefined];
  #freeTokens: number[] = [];
  #byFd = new Map<number, AnyRegistration>();
  #generation = 0;
  #timers = new TimerQueue();
  #wakerFd: number;
  #wakeBuf = new BigUint64Array([1n]);
  #wakeBytes = new Uint8Array(this.#wakeBuf.buffer);
  #drainBytes = new Uint8Array(8);
  #sliceMs: number;
  #busyWaitMs: number;
  #onError: ((error: unknown, registration?: AnyRegistration) => void) | undefined;
  #running: Promise<void> | undefined;
  #stopping = false;
  #failure: { error: unknown } | undefined;
  #closed = false;
  #signals: { signal: Deno.Signal; handler: () => void }[] = [];
  #hooks: RegistryHooks;
  #now = performance.now();
  readonly #stats: ReactorStats = {
    registrations: 0,
    events: 0,
    staleEvents: 0,
    polls: 0,
    parks: 0,
    wakeups: 0,
    timersFired: 0,
  };

  /** Create the epoll instance and its eventfd waker. */
  constructor(options: ReactorOptions = {}) {
    this.#sliceMs = options.sliceMs ?? 2;
    this.#busyWaitMs = options.busyWaitMs ?? 0;
    if (!(this.#sliceMs > 0 && Number.isFinite(this.#sliceMs))) {
      throw new RangeError(
        `Cannot create reactor: sliceMs ${this.#sliceMs} is not a positive number of milliseconds`,
      );
    }
    if (!(this.#busyWaitMs >= 0 && Number.isFinite(this.#busyWaitMs))) {
      throw new RangeError(
        `Cannot create reactor: busyWaitMs ${this.#busyWaitMs} is not a number of milliseconds >= 0`,
      );
    }
    this.#onError = options.onError;
    this.#poller = new Poller(options);
    const efd = sys.eventfd(0, EFD.NONBLOCK | EFD.CLOEXEC);
    if (efd < 0) {
      this.#poller.close();
      throw new ErrnoError("eventfd", -efd);
    }
    this.#wakerFd = efd;
    this.#poller.add(efd, Interest.READABLE, WAKER_TOKEN, 0);
    const poller = this.#poller;
    this.#hooks = {
      poller,
      release: (reg) => this.#release(reg),
    };
  }

  /** The counters. @example `reactor.stats.events` */
  get stats(): Readonly<ReactorStats> {
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
   * Register an fd. The callback receives a {@linkcode Readiness} and the
   * registration. The registration does not own the fd: deregister it before
   * closing the fd.
   *
   * @example
   * ```ts ignore
   * const reg = reactor.register(sock.fd, Interest.READABLE | Interest.READ_CLOSED, onReady);
   * ```
   */
  register<T = undefined>(
    fd: number,
    interest: number,
    callback: ReadyCallback<T>,
    data?: T,
  ): Registration<T> {
    if (this.#closed) throw new Error(`Cannot register fd ${fd}: the reactor is closed`);
    if (!Number.isInteger(fd) || fd < 0) {
      throw new RangeError(`Cannot register fd ${fd}: not a valid file descriptor`);
    }
    if (typeof callback !== "function") {
      throw new TypeError(`Cannot register fd ${fd}: the callback is not a function`);
    }
    const bits = validateInterest(interest, `register fd ${fd}`);
    if (fd === this.#wakerFd || fd === this.#poller.epfd) {
      throw new Error(`Cannot register fd ${fd}: it belongs to the reactor itself`);
    }
    const previous = this.#byFd.get(fd);
    if (previous !== undefined && previous.state !== "added") {
      throw new Error(
        `Cannot register fd ${fd}: it already has a registration (token ${previous.token}); ` +
          "deregister it first",
      );
    }
    const token = this.#freeTokens.pop() ?? this.#slots.length;
    this.#generation = (this.#generation + 1) >>> 0 || 1;
    const reg = new Registration<T>(
      this.#hooks,
      fd,
      bits,
      token,
      this.#generation,
      callback,
      data as T,
    );
    try {
      reg._attach();
    } catch (e) {
      this.#freeTokens.push(token);
      throw e;
    }
    if (previous !== undefined) {
      // The kernel accepted an ADD for an fd number we still had registered:
      // the old fd was closed without being deregistered and the number reused.
      previous._markStale(
        `fd ${fd} was closed while still registered (token ${previous.token}), and its number ` +
          `now belongs to a new registration (token ${token}); deregister before closing`,
      );
      this.#slots[previous.token] = undefined;
      this.#freeTokens.push(previous.token);
      this.#stats.registrations--;
      this.#report(
        new Error(
          `Reactor: fd ${fd} was closed while registered (token ${previous.token}); its events ` +
            "were dropped and its number was reused",
        ),
        previous,
        false,
      );
    }
    this.#slots[token] = reg;
    this.#byFd.set(fd, reg);
    this.#stats.registrations++;
    return reg;
  }

  #release(reg: AnyRegistration): void {
    if (this.#slots[reg.token] !== reg) return;
    this.#slots[reg.token] = undefined;
    this.#freeTokens.push(reg.token);
    if (this.#byFd.get(reg.fd) === reg) this.#byFd.delete(reg.fd);
    this.#stats.registrations--;
  }

  /**
   * The registration for an fd number, if any.
   *
   * @example
   * ```ts ignore
   * reactor.registrationOf(fd)?.deregister();
   * ```
   */
  registrationOf(fd: number): Registration<unknown> | undefined {
    return this.#byFd.get(fd) as Registration<unknown> | undefined;
  }

  /**
   * Run `callback` once after `delayMs` on the reactor.
   *
   * @example
   * ```ts ignore
   * const t = reactor.setTimeout(() => conn.close(), 30_000);
   * ```
   */
  setTimeout(callback: () => void, delayMs: number): Timer {
    const t = this.#timers.schedule(delayMs, 0, callback);
    if (this.#poller.waiting) this.wake();
    return t;
  }

  /**
   * Run `callback` every `intervalMs` on the reactor until cancelled.
   *
   * @example
   * ```ts ignore
   * const t = reactor.setInterval(() => console.log(reactor.stats), 1000);
   * ```
   */
  setInterval(callback: () => void, intervalMs: number): Timer {
    if (!(intervalMs > 0)) {
      throw new RangeError(`Cannot schedule interval: ${intervalMs} ms is not > 0`);
    }
    const t = this.#timers.schedule(intervalMs, intervalMs, callback);
    if (this.#poller.waiting) this.wake();
    return t;
  }

  /**
   * End a parked wait (no-op cost when none is parked beyond one write).
   *
   * @example
   * ```ts ignore
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
   * state the callback changed. Removed by `close()`.
   *
   * @example
   * ```ts ignore
   * reactor.addSignalListener("SIGTERM", () => reactor.stop());
   * ```
   */
  addSignalListener(signal: Deno.Signal, callback: () => void): void {
    const handler = () => {
      try {
        callback();
      } catch (e) {
        this.#report(e, undefined, true);
      }
      this.wake();
    };
    Deno.addSignalListener(signal, handler);
    this.#signals.push({ signal, handler });
  }

  /**
   * Ask `run()` to return after the current batch. Safe to call from a
   * callback, a timer, a signal listener or any other task.
   *
   * @example
   * ```ts ignore
   * reactor.stop();
   * ```
   */
  stop(): void {
    this.#stopping = true;
    this.wake();
  }

  #report(error: unknown, reg: AnyRegistration | undefined, fatal: boolean): void {
    if (this.#onError !== undefined) {
      this.#onError(error, reg);
      return;
    }
    if (!fatal) {
      console.warn(error instanceof Error ? error.message : error);
      return;
    }
    if (this.#failure === undefined) this.#failure = { error };
    this.#stopping = true;
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
    const slots = this.#slots;
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
      reg._fired();
      try {
        reg.callback(Readiness.of(words[base]!), reg);
      } catch (e) {
        this.#report(e, reg, true);
      }
    }
    this.#stats.events += n - stale;
    this.#stats.staleEvents += stale;
    if (n === poller.capacity) poller.grow();
  }

  #runTimers(now: number): void {
    if (this.#timers.size === 0) return;
    this.#stats.timersFired += this.#timers.runDue(now, (e) => this.#report(e, undefined, true));
  }

  /**
   * Run the loop until `stop()`. Resolves when stopped; rejects with the
   * first error a callback threw when no `onError` was given.
   *
   * @example
   * ```ts ignore
   * const done = reactor.run();
   * reactor.stop();
   * await done;
   * ```
   */
  run(): Promise<void> {
    if (this.#closed) return Promise.reject(new Error("Cannot run reactor: it is closed"));
    if (this.#running !== undefined) {
      return Promise.reject(new Error("Cannot run reactor: it is already running"));
    }
    this.#stopping = false;
    this.#failure = undefined;
    const p = this.#loop().finally(() => {
      this.#running = undefined;
    });
    this.#running = p;
    return p;
  }

  async #loop(): Promise<void> {
    const poller = this.#poller;
    const stats = this.#stats;
    let sliceStart = performance.now();
    let lastBusy = -Infinity;
    while (!this.#stopping) {
      let now = this.#now = performance.now();
      const used = now - sliceStart;
      if (used >= this.#sliceMs) {
        // This thread has been ours for a whole slice: let Deno's macrotasks
        // (timers, I/O, signal listeners) run, then carry on.
        stats.parks++;
        const n = await poller.pollAsync(0);
        sliceStart = now = this.#now = performance.now();
        if (n > 0) {
          lastBusy = now;
          this.#dispatch(n);
        }
        this.#runTimers(now);
        await undefined; // promise continuations run before the next batch
        continue;
      }
      const timeout = this.#timers.nextTimeout(now);
      // Block this thread only when recently busy (busyWaitMs), and never
      // past the slice or the next timer; otherwise just look.
      let wait = 0;
      if (this.#busyWaitMs > 0) {
        const left = Math.min(this.#sliceMs - used, this.#busyWaitMs - (now - lastBusy));
        if (left >= 1) wait = Math.floor(left);
        if (timeout >= 0 && timeout < wait) wait = timeout;
      }
      let n = poller.poll(wait);
      stats.polls++;
      if (wait > 0) now = this.#now = performance.now();
      if (n > 0) {
        lastBusy = now;
        this.#dispatch(n);
      }
      this.#runTimers(now);
      if (this.#stopping) break;
      if (n > 0) {
        await undefined; // let promise continuations run
        continue;
      }
      if (wait > 0 || timeout === 0) continue; // look again (maybe yield or park)
      // Idle: park off-thread; Deno's event loop runs meanwhile.
      stats.parks++;
      n = await poller.pollAsync(timeout);
      sliceStart = this.#now = performance.now();
      if (n > 0) {
        lastBusy = sliceStart;
        this.#dispatch(n);
        // Let promise continuations run before the next batch, as after every
        // other batch: e.g. `await connect()` must get to attach onData
        // before the new connection's first read is dispatched.
        await undefined;
      }
    }
    if (this.#failure !== undefined) throw this.#failure.error;
  }

  /**
   * Close the epoll fd and the waker, and remove signal listeners. Refused
   * while `run()` is in progress: `stop()` and await it first (or use
   * `await using`). Registrations left behind are dropped; their fds are
   * not closed (the reactor never owns them).
   *
   * @example
   * ```ts ignore
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
    for (const reg of this.#slots) reg?._markStale("the reactor was closed");
    this.#slots = [undefined];
    this.#byFd.clear();
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
