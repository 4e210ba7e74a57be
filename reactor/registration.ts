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

/** @internal What a registration needs from its reactor. */
export interface RegistryHooks {
  readonly poller: Poller;
  release(registration: AnyRegistration): void;
}

/**
 * One fd registered with a reactor.
 *
 * @example Edge-triggered reads, drained until EAGAIN
 * ```ts ignore
 * const reg = reactor.register(fd, Interest.READABLE | Interest.EDGE, (ready) => {
 *   if (ready.readable) while (sock.read(buf) !== null) {}
 * });
 * reg.deregister();
 * sock.close();
 * ```
 */
export class Registration<T = unknown> {
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

  /** @internal Use {@linkcode Reactor.register}. */
  constructor(
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

  /** @internal Called by the reactor just before a ONESHOT callback runs. */
  _fired(): void {
    if ((this.#interest & EPOLL.ONESHOT) !== 0) this.#armed = false;
  }

  /** @internal Called by the reactor when the fd number was taken over by a new registration. */
  _markStale(reason: string): void {
    this.#staleReason = reason;
    this.#state = "deleted";
  }

  #assertUsable(action: string): void {
    if (!this.#registered) {
      throw new Error(`Cannot ${action} fd ${this.fd}: the registration was deregistered`);
    }
    if (this.#staleReason !== undefined) {
      throw new Error(`Cannot ${action} fd ${this.fd}: ${this.#staleReason}`);
    }
  }

  /** @internal Put the fd into the epoll set if its interest asks for events. */
  _attach(): void {
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
   * ```ts ignore
   * reg.modify(Interest.READABLE | Interest.WRITABLE); // start waiting for room to write
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
   * again (the seeds' rule: re-arm as soon as the worker has finished with
   * the fd).
   *
   * @example
   * ```ts ignore
   * reg.rearm();
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
   * ```ts ignore
   * reg.deregister();
   * sock.close();
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
}
