/**
 * The epoll set, as the kernel's `eventpoll.c` has it, in three types:
 *
 * - `Poller`: one epoll instance and its reusable events buffer. It is the
 *   only caller of `epoll_ctl` and `epoll_wait` in ffinet; the
 *   {@linkcode Reactor} owns one and nothing else touches it. Each fd is
 *   registered with `data` = (token, generation): 32 bits each, so an event
 *   can be matched to its registration, and an event that was queued for an
 *   fd that has since been deregistered, closed and reused is recognised by
 *   its old generation and dropped.
 * - `Readiness`: what the kernel reported for one fd, decoded. Instances are
 *   precomputed and immutable (one per combination of bits), so dispatching
 *   an event allocates nothing and a callback may keep the object.
 * - `Registration`: the epitem-style handle of one fd in a reactor,
 *   modelled on the kernel's `struct epitem` and muduo's `Channel`: the fd,
 *   its interest, a token and generation (what `epoll_event.data` carries),
 *   its state, and the callback that receives its readiness. A registration
 *   does **not** own its fd: deregister it, then close the fd. Closing first
 *   is caught: the next modify or deregister explains that the fd was closed
 *   while registered, instead of the kernel's silent auto-removal. States,
 *   as in muduo's poller: `"new"` (known, not in the epoll set), `"added"`
 *   (in the set), `"deleted"` (taken out of the set because its interest
 *   became empty, or deregistered for good; see
 *   {@linkcode Registration.registered}).
 *
 * @module
 */
import { EPOLL } from "../ffi/constants.ts";
import { EPOLL_EVENT } from "../ffi/epoll_event.ts";
import { EBADF, EEXIST, EINTR, EINVAL, ENOENT, ErrnoError } from "../ffi/errno.ts";
import * as sys from "../ffi/syscalls.ts";
import { formatInterest, hasEvents, validateInterest } from "./interest.ts";

/** Options for {@linkcode Poller}. */
export interface PollerOptions {
  /** Initial events buffer capacity (default 256). */
  initialCapacity?: number;
  /** The most events one wait can return; the buffer grows up to this (default 4096). */
  maxCapacity?: number;
}

/** `EPERM` from `epoll_ctl`: the fd kind cannot be polled (a regular file, a directory). */
const EPERM = 1;

/** The epoll_ctl operations, by name, for messages. */
type CtlOp = "add" | "modify" | "delete";

/**
 * An epoll instance with a growable, reused events buffer.
 *
 * @example
 * ```ts
 * import { Poller } from "./poller.ts";
 * const p = new Poller();
 * p.poll(0); // 0 events
 * p.close();
 * ```
 */
export class Poller {
  /** The epoll fd. */
  readonly epfd: number;
  #events: Uint8Array;
  #words: Uint32Array;
  #capacity: number;
  #maxCapacity: number;
  #ev = new Uint8Array(16);
  #evWords = new Uint32Array(this.#ev.buffer);
  #closed = false;
  #waitingAsync = false;
  /** Words per event in {@linkcode Poller.words}: 3 on x86_64, 4 on aarch64. */
  readonly stride: number = EPOLL_EVENT.size / 4;
  /** Word offset of the token within an event; the generation follows it. */
  readonly dataWord: number = EPOLL_EVENT.dataOffset / 4;

  /** Create the epoll instance (`epoll_create1(EPOLL_CLOEXEC)`). */
  constructor(options: PollerOptions = {}) {
    this.#capacity = Math.max(1, options.initialCapacity ?? 256);
    this.#maxCapacity = Math.max(this.#capacity, options.maxCapacity ?? 4096);
    const fd = sys.epoll_create1(EPOLL.CLOEXEC);
    if (fd < 0) throw new ErrnoError("epoll_create1", -fd);
    this.epfd = fd;
    this.#events = new Uint8Array(this.#capacity * EPOLL_EVENT.size);
    this.#words = new Uint32Array(this.#events.buffer);
  }

  /** The events of the last wait as 32-bit words (bits, token, generation per event). */
  get words(): Uint32Array {
    return this.#words;
  }

  /** How many events one wait can return now. */
  get capacity(): number {
    return this.#capacity;
  }

  /** Whether an asynchronous wait is parked on a pool thread. */
  get waiting(): boolean {
    return this.#waitingAsync;
  }

  #ctl(op: CtlOp, fd: number, interest: number, token: number, generation: number): void {
    if (this.#closed) throw new Error(`Cannot ${op} fd ${fd}: the poller is closed`);
    const code = op === "add" ? EPOLL.CTL_ADD : op === "modify" ? EPOLL.CTL_MOD : EPOLL.CTL_DEL;
    const w = this.#evWords;
    w.fill(0);
    w[0] = interest >>> 0;
    w[EPOLL_EVENT.dataOffset / 4] = token >>> 0;
    w[EPOLL_EVENT.dataOffset / 4 + 1] = generation >>> 0;
    const r = sys.epoll_ctl(this.epfd, code, fd, this.#ev);
    if (r >= 0) return;
    const errno = -r;
    throw new ErrnoError(`epoll_ctl(${op})`, errno, { detail: explain(op, fd, interest, errno) });
  }

  /**
   * `EPOLL_CTL_ADD`.
   *
   * @example
   * ```ts
   * import { Poller } from "./poller.ts";
   * import { Interest } from "@ffinet/ffinet/reactor";
   * import { closeFd, eventfd } from "@ffinet/ffinet/ffi";
   * const poller = new Poller();
   * const fd = eventfd();
   * poller.add(fd, Interest.READABLE, 1, 1); // token 1, generation 1
   * closeFd(fd);
   * poller.close();
   * ```
   */
  add(fd: number, interest: number, token: number, generation: number): void {
    this.#ctl("add", fd, interest, token, generation);
  }

  /**
   * `EPOLL_CTL_MOD`; also re-arms an `EPOLLONESHOT` registration.
   *
   * @example
   * ```ts
   * import { Poller } from "./poller.ts";
   * import { Interest } from "@ffinet/ffinet/reactor";
   * import { closeFd, eventfd } from "@ffinet/ffinet/ffi";
   * const poller = new Poller();
   * const fd = eventfd();
   * poller.add(fd, Interest.READABLE, 1, 1);
   * poller.modify(fd, Interest.READABLE | Interest.WRITABLE, 1, 1);
   * closeFd(fd);
   * poller.close();
   * ```
   */
  modify(fd: number, interest: number, token: number, generation: number): void {
    this.#ctl("modify", fd, interest, token, generation);
  }

  /**
   * `EPOLL_CTL_DEL`.
   *
   * @example
   * ```ts
   * import { Poller } from "./poller.ts";
   * import { Interest } from "@ffinet/ffinet/reactor";
   * import { closeFd, eventfd } from "@ffinet/ffinet/ffi";
   * const poller = new Poller();
   * const fd = eventfd();
   * poller.add(fd, Interest.READABLE, 1, 1);
   * poller.delete(fd);
   * closeFd(fd);
   * poller.close();
   * ```
   */
  delete(fd: number): void {
    this.#ctl("delete", fd, 0, 0, 0);
  }

  /**
   * Wait on this thread. `timeoutMs` 0 never blocks. Returns the number of
   * events (0 on timeout or EINTR); the buffer doubles when a wait fills it.
   *
   * @example
   * ```ts
   * import { Poller } from "./poller.ts";
   * const poller = new Poller();
   * const n = poller.poll(0); // 0: nothing registered
   * poller.close();
   * ```
   */
  poll(timeoutMs: number): number {
    const n = sys.epoll_wait(this.epfd, this.#events, this.#capacity, timeoutMs);
    if (n < 0) {
      if (n === -EINTR) return 0;
      throw new ErrnoError("epoll_wait", -n);
    }
    return n;
  }

  /**
   * Wait on a pool thread, leaving this thread's event loop free. Resolves
   * to the number of events (0 when the call failed: errno is not readable
   * off-thread, and the only expected failure is EINTR). `timeoutMs` -1
   * waits until an event (the reactor's waker ends such a wait).
   *
   * @example
   * ```ts
   * import { Poller } from "./poller.ts";
   * const poller = new Poller();
   * const n = await poller.pollAsync(5); // 0 after 5 ms: nothing registered
   * poller.close();
   * ```
   */
  async pollAsync(timeoutMs: number): Promise<number> {
    if (this.#waitingAsync) throw new Error("Cannot wait: an asynchronous wait is already parked");
    this.#waitingAsync = true;
    try {
      const n = await sys.epollWaitAsync(this.epfd, this.#events, this.#capacity, timeoutMs);
      return n < 0 ? 0 : n;
    } finally {
      this.#waitingAsync = false;
    }
  }

  /**
   * Grow the buffer (doubling, up to the maximum) after a wait returned as
   * many events as it could hold. Never called while a wait is parked.
   *
   * @example
   * ```ts
   * import { Poller } from "./poller.ts";
   * const poller = new Poller({ initialCapacity: 1 });
   * const n = poller.poll(0);
   * if (n === poller.capacity) poller.grow();
   * poller.close();
   * ```
   */
  grow(): void {
    if (this.#waitingAsync || this.#capacity >= this.#maxCapacity) return;
    this.#capacity = Math.min(this.#capacity * 2, this.#maxCapacity);
    this.#events = new Uint8Array(this.#capacity * EPOLL_EVENT.size);
    this.#words = new Uint32Array(this.#events.buffer);
  }

  /**
   * Close the epoll fd. Refused while an asynchronous wait is parked on it
   * (that wait would keep running on a closed, possibly reused, fd).
   *
   * @example
   * ```ts
   * import { Poller } from "./poller.ts";
   * const poller = new Poller();
   * poller.close();
   * ```
   */
  close(): void {
    if (this.#closed) return;
    if (this.#waitingAsync) {
      throw new Error("Cannot close poller: a wait is parked on it; stop the reactor first");
    }
    this.#closed = true;
    sys.close(this.epfd);
  }
}

function explain(op: CtlOp, fd: number, interest: number, errno: number): string {
  const what = `fd ${fd}, interest ${formatInterest(interest)}`;
  if (errno === EBADF) {
    return `${what}: fd is not open; if it was registered, it was closed before being deregistered ` +
      "(deregister first, then close)";
  }
  if (errno === EEXIST) return `${what}: fd is already registered with this reactor`;
  if (errno === ENOENT) {
    return `${what}: the kernel has no registration for this fd; it was closed while registered ` +
      "(the kernel dropped it silently) or never added";
  }
  if (errno === EINVAL && op === "modify") {
    return `${what}: EPOLLEXCLUSIVE registrations cannot be modified; deregister and register again`;
  }
  if (errno === EPERM) {
    return `${what}: this kind of fd cannot be polled (regular files and directories cannot)`;
  }
  return what;
}

// ---------------------------------------------------------------------------
// Readiness: one event, decoded.

/** The low event bits decoded as they are: IN, PRI, OUT, ERR, HUP (`0x1f`). */
const LOW_BITS = EPOLL.IN | EPOLL.PRI | EPOLL.OUT | EPOLL.ERR | EPOLL.HUP;
/** `EPOLLRDHUP` (`0x2000`) is moved down to the table index bit just above them (`0x20`). */
const RDHUP_SHIFT = 8;
/** The table index bit that stands for `EPOLLRDHUP`. */
const RDHUP_INDEX = EPOLL.RDHUP >>> RDHUP_SHIFT;
/** One precomputed `Readiness` per combination of the six bits. */
const TABLE_SIZE = (LOW_BITS | RDHUP_INDEX) + 1;

/**
 * Decoded epoll event bits.
 *
 * @example
 * ```ts
 * import { Readiness } from "@ffinet/ffinet/reactor";
 * const r = Readiness.of(0x1 | 0x2000); // EPOLLIN | EPOLLRDHUP
 * r.readable; // true
 * r.readClosed; // true
 * ```
 */
export class Readiness {
  /** The raw `epoll_event.events` bits this was decoded from (the known subset). */
  readonly bits: number;
  /** `EPOLLIN`: read, accept, or EOF waits. */
  readonly readable: boolean;
  /** `EPOLLOUT`: a write will make progress. */
  readonly writable: boolean;
  /** `EPOLLPRI`: urgent data or an exceptional condition. */
  readonly priority: boolean;
  /** `EPOLLERR`: an error is pending (read it with `SO_ERROR`). */
  readonly error: boolean;
  /** `EPOLLRDHUP` or `EPOLLHUP`: the peer will send nothing more. */
  readonly readClosed: boolean;
  /** `EPOLLHUP`, or `EPOLLERR` with `EPOLLOUT`: writing can no longer succeed. */
  readonly writeClosed: boolean;
  /** `EPOLLHUP`: both directions are closed. */
  readonly hangup: boolean;

  private constructor(bits: number) {
    this.bits = bits;
    this.readable = (bits & EPOLL.IN) !== 0;
    this.writable = (bits & EPOLL.OUT) !== 0;
    this.priority = (bits & EPOLL.PRI) !== 0;
    this.error = (bits & EPOLL.ERR) !== 0;
    this.hangup = (bits & EPOLL.HUP) !== 0;
    this.readClosed = (bits & (EPOLL.RDHUP | EPOLL.HUP)) !== 0;
    this.writeClosed = this.hangup || (this.error && this.writable);
    Object.freeze(this);
  }

  static #table: Readiness[] = [];

  /**
   * The `Readiness` for raw event bits (bits other than IN, PRI, OUT, ERR,
   * HUP and RDHUP are ignored).
   *
   * @example
   * ```ts
   * import { Readiness } from "@ffinet/ffinet/reactor";
   * Readiness.of(0x4).writable; // true
   * ```
   */
  static of(bits: number): Readiness {
    return Readiness.#table[(bits & LOW_BITS) | ((bits & EPOLL.RDHUP) >>> RDHUP_SHIFT)]!;
  }

  static {
    for (let i = 0; i < TABLE_SIZE; i++) {
      Readiness.#table.push(new Readiness((i & LOW_BITS) | ((i & RDHUP_INDEX) << RDHUP_SHIFT)));
    }
  }

  /**
   * Names of the set conditions, e.g. `"readable|readClosed"`.
   *
   * @example
   * ```ts
   * import { Readiness } from "@ffinet/ffinet/reactor";
   * Readiness.of(0x1).toString(); // "readable"
   * ```
   */
  toString(): string {
    const names = [
      "readable",
      "writable",
      "priority",
      "error",
      "readClosed",
      "writeClosed",
    ] as const;
    const set = names.filter((n) => this[n]);
    return set.length === 0 ? "none" : set.join("|");
  }
}

// ---------------------------------------------------------------------------
// Registration: one fd in the set.

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
  closing(reg: AnyRegistration): void;
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
    // Deregister an fd its owner closes next and that no other descriptor
    // shares: close() takes it out of the epoll set (the kernel removes an
    // epitem when the last reference to its file goes), so no EPOLL_CTL_DEL.
    registrationControl.closing = (reg) => {
      if (!reg.#registered) return;
      reg.#registered = false;
      reg.#state = "deleted";
      reg.#armed = false;
      reg.#hooks.release(reg);
      if (reg.#staleReason !== undefined) {
        throw new Error(`Cannot deregister fd ${reg.fd}: ${reg.#staleReason}`);
      }
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
