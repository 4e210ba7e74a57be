/**
 * `Readiness`: what the kernel reported for one fd, decoded. Instances are
 * precomputed and immutable (one per combination of bits), so dispatching
 * an event allocates nothing and a callback may keep the object.
 *
 * @module
 */
import { EPOLL } from "../ffi/constants.ts";

/**
 * Decoded epoll event bits.
 *
 * @example
 * ```ts
 * import { Readiness } from "./readiness.ts";
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
   * import { Readiness } from "./readiness.ts";
   * Readiness.of(0x4).writable; // true
   * ```
   */
  static of(bits: number): Readiness {
    return Readiness.#table[(bits & 0x1f) | ((bits & EPOLL.RDHUP) >>> 8)]!;
  }

  static {
    for (let i = 0; i < 64; i++) {
      Readiness.#table.push(new Readiness((i & 0x1f) | ((i & 0x20) << 8)));
    }
  }

  /**
   * Names of the set conditions, e.g. `"readable|readClosed"`.
   *
   * @example
   * ```ts
   * import { Readiness } from "./readiness.ts";
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
