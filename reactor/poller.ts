/**
 * `Poller`: one epoll instance and its reusable events buffer. It is the only
 * caller of `epoll_ctl` and `epoll_wait` in ffinet; the {@linkcode Reactor}
 * owns one and nothing else touches it.
 *
 * Each fd is registered with `data` = (token, generation): 32 bits each, so
 * an event can be matched to its registration, and an event that was
 * queued for an fd that has since been deregistered, closed and reused is
 * recognised by its old generation and dropped.
 *
 * @module
 */
import { EPOLL } from "../ffi/constants.ts";
import { EPOLL_EVENT } from "../ffi/epoll_event.ts";
import { EBADF, EEXIST, EINTR, EINVAL, ENOENT, ErrnoError } from "../ffi/errno.ts";
import * as sys from "../ffi/syscalls.ts";
import { formatInterest } from "./interest.ts";

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
