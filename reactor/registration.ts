/**
 * `Registration`: the epitem-style handle of one fd in a {@linkcode Reactor},
 * modelled on the kernel's `struct epitem` and muduo's `Channel`: the fd, its
 * interest, a token and generation (what `epoll_event.data` carries), its
 * state, and the callback that receives its readiness.
 *
 * A registration does **not** own its fd: deregister it, then close the fd.
 * Closing first is caught: the next modify or deregister explains that the
 * fd was closed while registered, instead of the kernel's silent auto-removal.
 *
 * States, as in muduo's poller: `"new"` (known, not in the epoll set),
 * `"added"` (in the set), `"deleted"` (taken out of the set because its
 * interest became empty, or deregistered for good; see
 * {@linkcode Registration.registered}).
 *
 * @module
 */
import { EPOLL } from "../ffi/constants.ts";
import { hasEvents, validateInterest } from "./interest.ts";
import type { Poller } from "./poller.ts";
import type { Readiness } from "./readiness.ts";

/** The state of a registration in its epoll instance. */
export type RegistrationState = "new" | "added" | "deleted";

/** What a registration calls with each readiness report. */
export type ReadyCallback<T = unknown> = (ready: Readiness, registration: Registration<T>) => void;

/** A registration of any data type (the reactor's view of its registrations). */
// deno-lint-ignore no-explicit-any
export type AnyRegistration = Registration<any>;

/** What a registration needs from its reactor (internal; not exported by `mod.ts`). */
export interface RegistryHooks {
  /** The reactor's epoll instance. */
  readonly poller: Poller;
  /** Free the registration's token. */
  release(registration: AnyRegistration): void;
}

/**
 * The reactor's side of a registration: create one, put it in the epoll
 * set, note a ONESHOT report, mark it stale. Internal to the reactor (not
 * exported by `mod.ts` or `reactor/mod.ts`); filled in by the class below.
 */
export const registrationControl = {} as {
  create<T>(
    hooks: RegistryHooks,
    fd: number,
    interest: number,
    token: number,
    generation: number,
    callback: ReadyCallback<T>,
    data: T,
  ): Registration<T>;
  attach(reg: AnyRegistration): void;
  fired(reg: AnyRegistration): void;
  markStale(reg: AnyRegistration, reason: string): void;
};

/**
 * One fd registered with a reactor.
 *
 * @example Edge-triggered reads, drained until EAGAIN
 * ```ts
 * import { Interest, Reactor } from "@ffinet/ffinet/reactor";
 * import { Socket } from "@ffinet/ffinet/ffi";
 * await using reactor = new Reactor();
 * const [sock, peer] = Socket.pair();
 * const buf = new Uint8Array(4096);
 * const reg = reactor.register(sock.fd, Interest.READABLE | Interest.EDGE, (ready) => {
 *   if (ready.readable) while (sock.read(buf) !== null) console.log(buf[0]);
 * });
 * reg.deregister();
 * sock.close();
 * peer.close();
 * ```
 */
export class Registration<T = unknown> implements Disposable {
  /** The fd (not owned). */
  readonly fd: number;
  /** The slot of this registration in its reactor. */
  readonly token: number;
  /** Distinguishes this registration from earlier ones that used the same token. */
  readonly generation: number;
  /** Called with each readiness report. */
  callback: ReadyCallback<T>;
  /** Anything the owner wants to keep with the registration. */
  data: T;
  #hooks: RegistryHooks;
  #interest: number;
  #state: RegistrationState = "new";
  #registered = true;
  #armed = false;
  #staleReason: string | undefined;

  /** @ignore Internal: see the static factory. */
  private constructor(
    hooks: RegistryHooks,
    fd: number,
    interest: number,
    token: number,
    generation: number,
    callback: ReadyCallback<T>,
    data: T,
  ) {
    this.#hooks = hooks;
    this.fd = fd;
    this.#interest = interest;
    this.token = token;
    this.generation = generation;
    this.callback = callback;
    this.data = data;
  }

  /** The current interest bits. */
  get interest(): number {
    return this.#interest;
  }

  /** `"new"`, `"added"` or `"deleted"`. */
  get state(): RegistrationState {
    return this.#state;
  }

  /** False once {@linkcode Registration.deregister} has run. */
  get registered(): boolean {
    return this.#registered;
  }

  /** For `ONESHOT`: whether the registration will report again without a re-arm. */
  get armed(): boolean {
    return this.#armed;
  }

  static {
    registrationControl.create = (hooks, fd, interest, token, generation, callback, data) =>
      new Registration(hooks, fd, interest, token, generation, callback, data);
    registrationControl.attach = (reg) => reg.#attach();
    // Called by the reactor just before a ONESHOT callback runs.
    registrationControl.fired = (reg) => {
      if ((reg.#interest & EPOLL.ONESHOT) !== 0) reg.#armed = false;
    };
    // Called when the fd number was taken over by a new registration, or the reactor closed.
    registrationControl.markStale = (reg, reason) => {
      reg.#staleReason = reason;
      reg.#state = "deleted";
    };
  }

  #assertUsable(action: string): void {
    if (!this.#registered) {
      throw new Error(`Cannot ${action} fd ${this.fd}: the registration was deregistered`);
    }
    if (this.#staleReason !== undefined) {
      throw new Error(`Cannot ${action} fd ${this.fd}: ${this.#staleReason}`);
    }
  }

  /** Put the fd into the epoll set if its interest asks for events. */
  #attach(): void {
    if (!hasEvents(this.#interest)) return;
    this.#hooks.poller.add(this.fd, this.#interest, this.token, this.generation);
    this.#state = "added";
    this.#armed = true;
  }

  /**
   * Change the interest (events, level/edge, oneshot). An empty interest takes
   * the fd out of the epoll set (state `"deleted"`), a non-empty one puts it
   * back. `EXCLUSIVE` is refused: the kernel only accepts it when adding.
   *
   * @example
   * ```ts
   * import { Interest, Reactor } from "@ffinet/ffinet/reactor";
   * import { closeFd, eventfd } from "@ffinet/ffinet/ffi";
   * await using reactor = new Reactor();
   * const fd = eventfd();
   * const reg = reactor.register(fd, Interest.READABLE, () => {});
   * reg.modify(Interest.READABLE | Interest.WRITABLE); // start waiting for room to write
   * reg.deregister();
   * closeFd(fd);
   * ```
   */
  modify(interest: number): void {
    this.#assertUsable("modify registration of");
    const next = validateInterest(interest, `modify registration of fd ${this.fd}`);
    if ((next & EPOLL.EXCLUSIVE) !== 0) {
      throw new TypeError(
        `Cannot modify registration of fd ${this.fd}: EPOLLEXCLUSIVE is only valid when the fd ` +
          "is added (epoll_ctl ADD), never on modify; deregister and register again",
      );
    }
    if ((this.#interest & EPOLL.EXCLUSIVE) !== 0 && this.#state === "added") {
      throw new TypeError(
        `Cannot modify registration of fd ${this.fd}: it was added with EPOLLEXCLUSIVE, which ` +
          "the kernel never lets you modify; deregister and register again",
      );
    }
    const poller = this.#hooks.poller;
    if (!hasEvents(next)) {
      if (this.#state === "added") poller.delete(this.fd);
      this.#interest = next;
      if (this.#state !== "new") this.#state = "deleted";
      this.#armed = false;
      return;
    }
    if (this.#state === "added") {
      poller.modify(this.fd, next, this.token, this.generation);
    } else {
      poller.add(this.fd, next, this.token, this.generation);
      this.#state = "added";
    }
    this.#interest = next;
    this.#armed = true;
  }

  /**
   * Re-arm an `ONESHOT` registration with its current interest, so it reports
   * again. Re-arm as soon as you have finished with the fd (e.g. a worker
   * has drained it); until then no other report comes.
   *
   * @example
   * ```ts
   * import { Interest, Reactor } from "@ffinet/ffinet/reactor";
   * import { closeFd, eventfd } from "@ffinet/ffinet/ffi";
   * await using reactor = new Reactor();
   * const fd = eventfd();
   * const reg = reactor.register(fd, Interest.READABLE | Interest.ONESHOT, () => {});
   * reg.rearm(); // report again after the next event
   * reg.deregister();
   * closeFd(fd);
   * ```
   */
  rearm(): void {
    this.#assertUsable("re-arm registration of");
    if (this.#state !== "added") {
      throw new Error(
        `Cannot re-arm registration of fd ${this.fd}: it is not in the epoll set (state ${this.#state})`,
      );
    }
    this.#hooks.poller.modify(this.fd, this.#interest, this.token, this.generation);
    this.#armed = true;
  }

  /**
   * Take the fd out of the reactor for good and free its token. Call this
   * before closing the fd. Idempotent. If the fd was closed first, throws
   * an `ErrnoError` explaining that (the registration is released anyway).
   *
   * @example
   * ```ts
   * import { Interest, Reactor } from "@ffinet/ffinet/reactor";
   * import { closeFd, eventfd } from "@ffinet/ffinet/ffi";
   * await using reactor = new Reactor();
   * const fd = eventfd();
   * const reg = reactor.register(fd, Interest.READABLE, () => {});
   * reg.deregister(); // first deregister,
   * closeFd(fd); // then close
   * ```
   */
  deregister(): void {
    if (!this.#registered) return;
    this.#registered = false;
    const wasAdded = this.#state === "added";
    this.#state = "deleted";
    this.#armed = false;
    this.#hooks.release(this);
    if (this.#staleReason !== undefined) {
      throw new Error(`Cannot deregister fd ${this.fd}: ${this.#staleReason}`);
    }
    if (wasAdded) this.#hooks.poller.delete(this.fd);
  }

  /** Deregister (for `using`); the fd stays open. */
  [Symbol.dispose](): void {
    this.deregister();
  }
}
