/**
 * The reactor's table of registrations: tokens (what `epoll_event.data`
 * carries, with a generation), free-token reuse, and the fd → registration
 * map that catches an fd closed while registered and its number reused.
 * Internal to the reactor (not exported by `mod.ts` or `reactor/mod.ts`).
 *
 * @module
 */
import {
  type AnyRegistration,
  type Poller,
  type ReadyCallback,
  type Registration,
  registrationControl,
  type RegistryHooks,
} from "./poller.ts";

/** Slot 0 is the reactor's own waker; registrations start at 1. */
export const WAKER_TOKEN = 0;

/** Registrations by token and by fd. */
export class RegistrationTable {
  /** Registrations by token (slot 0: the waker, always empty here). */
  slots: (AnyRegistration | undefined)[] = [undefined];
  #freeTokens: number[] = [];
  #byFd = new Map<number, AnyRegistration>();
  #generation = 0;
  #count = 0;
  readonly #hooks: RegistryHooks;

  constructor(poller: Poller) {
    this.#hooks = { poller, release: (reg) => this.#release(reg) };
  }

  /** Live registrations. */
  get count(): number {
    return this.#count;
  }

  /** The live registration of `fd`, if any. */
  byFd(fd: number): AnyRegistration | undefined {
    return this.#byFd.get(fd);
  }

  /**
   * Create a registration and put it in the epoll set. When the kernel
   * accepted it for an fd number that still had a registration here, the old
   * one is marked stale and returned as `replaced` (its fd was closed while
   * registered).
   */
  add<T>(
    fd: number,
    interest: number,
    callback: ReadyCallback<T>,
    data: T,
  ): { reg: Registration<T>; replaced: AnyRegistration | undefined } {
    const previous = this.#byFd.get(fd);
    if (previous !== undefined && previous.state !== "added") {
      throw new Error(
        `Cannot register fd ${fd}: it already has a registration (token ${previous.token}); ` +
          "deregister it first",
      );
    }
    const token = this.#freeTokens.pop() ?? this.slots.length;
    this.#generation = (this.#generation + 1) >>> 0 || 1;
    const reg = registrationControl.create<T>(
      this.#hooks,
      fd,
      interest,
      token,
      this.#generation,
      callback,
      data,
    );
    try {
      registrationControl.attach(reg);
    } catch (e) {
      this.#freeTokens.push(token);
      throw e;
    }
    if (previous !== undefined) {
      // The kernel accepted an ADD for an fd number we still had registered:
      // the old fd was closed without being deregistered and the number reused.
      registrationControl.markStale(
        previous,
        `fd ${fd} was closed while still registered (token ${previous.token}), and its number ` +
          `now belongs to a new registration (token ${token}); deregister before closing`,
      );
      this.slots[previous.token] = undefined;
      this.#freeTokens.push(previous.token);
      this.#count--;
    }
    this.slots[token] = reg;
    this.#byFd.set(fd, reg);
    this.#count++;
    return { reg, replaced: previous };
  }

  #release(reg: AnyRegistration): void {
    if (this.slots[reg.token] !== reg) return;
    this.slots[reg.token] = undefined;
    this.#freeTokens.push(reg.token);
    if (this.#byFd.get(reg.fd) === reg) this.#byFd.delete(reg.fd);
    this.#count--;
  }

  /** Mark every registration stale (the reactor closed) and forget them. */
  clear(reason: string): void {
    for (const reg of this.slots) if (reg !== undefined) registrationControl.markStale(reg, reason);
    this.slots = [undefined];
    this.#freeTokens = [];
    this.#byFd.clear();
    this.#count = 0;
  }
}

/** How a registration is named in reports: `fd 7 (token 3, READABLE)`. */
export function describeRegistration(reg: AnyRegistration | undefined): string {
  return reg === undefined ? "a timer or signal listener" : `fd ${reg.fd} (token ${reg.token})`;
}
