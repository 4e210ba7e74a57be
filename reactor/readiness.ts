/**
 * `Readiness`: what the kernel reported for one fd, decoded. Instances are
 * precomputed and immutable (one per combination of bits), so dispatching
 * an event allocates nothing and a callback may keep the object.
 *
 * @module
 */
import { EPOLL } from "../ffi/constants.ts";

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
