/**
 * The shared default reactor of the Deno-shaped adapters: it starts when
 * the first adapter object opens and stops, closing its fds, when the last
 * one closes. Objects are counted as Deno counts its resources: a `ref`'d
 * object keeps the process alive, an `unref`'d one does not (the reactor
 * then only looks for events between Deno's other tasks, on an unref'd
 * timer, and the process exits when nothing else keeps it up).
 *
 * @module
 */
import { Reactor } from "../reactor/reactor.ts";

/** One adapter object's hold on a reactor. */
export interface Lease {
  /** The reactor to run on. */
  readonly reactor: Reactor;
  /** Keep the process alive while held (the default). */
  ref(): void;
  /** Do not keep the process alive. */
  unref(): void;
  /** Give the reactor back (idempotent). */
  release(): void;
}

/** Longest wait between two looks at the reactor while only unref'd objects hold it. */
const UNREF_MAX_DELAY_MS = 50;

class SharedReactor {
  #reactor: Reactor | undefined;
  #users = 0;
  #refs = 0;
  #loop: Promise<void> | undefined;
  #wakeUnref: (() => void) | undefined;
  #unrefDelay = 0;

  acquire(): Lease {
    // No onError: a callback's error is logged once, naming its registration,
    // by the reactor's default, and only that connection is closed.
    const reactor = this.#reactor ??= new Reactor();
    this.#users++;
    this.#refs++;
    if (this.#loop === undefined) this.#loop = this.#drive(reactor);
    else this.#changed(); // leave the unref'd ticks at once
    let held = true;
    let refd = true;
    return {
      reactor,
      ref: () => {
        if (!held || refd) return;
        refd = true;
        this.#refs++;
        this.#changed();
      },
      unref: () => {
        if (!held || !refd) return;
        refd = false;
        this.#refs--;
        this.#changed();
      },
      release: () => {
        if (!held) return;
        held = false;
        if (refd) this.#refs--;
        this.#users--;
        this.#changed();
      },
    };
  }

  /** Leave the current mode (run or unref'd ticks) for the drive loop to pick the right one. */
  #changed(): void {
    if (this.#users === 0 || this.#refs === 0) this.#reactor?.stop();
    if (this.#users === 0 || this.#refs > 0) this.#wakeUnref?.();
  }

  async idle(): Promise<void> {
    while (this.#loop !== undefined) await this.#loop;
  }

  async #drive(reactor: Reactor): Promise<void> {
    try {
      // A stop() may race with a new acquire() or ref(): loop while anyone is left.
      while (this.#users > 0) {
        if (this.#refs > 0) await reactor.run();
        else await this.#unrefTick(reactor);
      }
    } catch (e) {
      console.error(e);
    } finally {
      this.#loop = undefined;
      if (this.#reactor === reactor) this.#reactor = undefined;
      reactor.close();
    }
  }

  /**
   * One batch of events and timers without holding the process, then an
   * unref'd wait: 0 ms after work, growing to {@linkcode UNREF_MAX_DELAY_MS}
   * while idle.
   */
  async #unrefTick(reactor: Reactor): Promise<void> {
    const before = reactor.stats.events - reactor.stats.wakeups + reactor.stats.timersFired;
    const pass = reactor.run();
    reactor.stop();
    await pass;
    const after = reactor.stats.events - reactor.stats.wakeups + reactor.stats.timersFired;
    this.#unrefDelay = after > before
      ? 0
      : Math.min(UNREF_MAX_DELAY_MS, Math.max(1, this.#unrefDelay * 2));
    if (this.#users === 0 || this.#refs > 0) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        this.#wakeUnref = undefined;
        resolve();
      };
      const id = setTimeout(done, this.#unrefDelay);
      Deno.unrefTimer(id);
      this.#wakeUnref = () => {
        clearTimeout(id);
        done();
      };
    });
  }
}

const shared = new SharedReactor();

/**
 * A lease on `reactor`, or on the shared default reactor when it is
 * undefined (a reactor of your own is never stopped for you; `ref()` and
 * `unref()` do nothing on it).
 */
export function acquire(reactor: Reactor | undefined): Lease {
  if (reactor !== undefined) return { reactor, ref() {}, unref() {}, release() {} };
  return shared.acquire();
}

/**
 * Resolves once every adapter object on the shared default reactor is
 * closed and the reactor has stopped and closed its fds (at once when it is
 * not running). Test code awaits it to leave no pending op or fd behind.
 *
 * @example
 * ```ts
 * import { defaultReactorIdle, listen } from "@ffinet/ffinet/deno";
 *
 * const listener = listen({ hostname: "127.0.0.1", port: 0 });
 * listener.close();
 * await defaultReactorIdle();
 * ```
 */
export function defaultReactorIdle(): Promise<void> {
  return shared.idle();
}
