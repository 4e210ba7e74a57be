/**
 * `Interest`: what a registration wants to hear about, and how. The bits are
 * the kernel's own epoll bits, so an interest is passed to `epoll_ctl`
 * unchanged.
 *
 * Level-triggered (the default) reports a readable fd on every wait while
 * data is unread. Edge-triggered (`EDGE`, `EPOLLET`) reports it once per arrival: the
 * callback must then **drain until EAGAIN** (read, or accept, until the call
 * returns EAGAIN), or the rest waits until more data arrives and may never
 * be reported. `ONESHOT` disarms after one report until
 * {@linkcode Registration.rearm}; `EXCLUSIVE` (ADD only) wakes one of several
 * epoll instances watching the same fd, against the thundering herd.
 *
 * @module
 */
import { EPOLL } from "../ffi/constants.ts";

/**
 * Interest bits. Combine with `|`.
 *
 * @example
 * ```ts
 * import { Interest } from "@ffinet/ffinet/reactor";
 * const i = Interest.READABLE | Interest.READ_CLOSED | Interest.EDGE;
 * ```
 */
export const Interest = {
  /** `EPOLLIN` (`0x1`): data to read, a connection to accept, or EOF. */
  READABLE: EPOLL.IN,
  /** `EPOLLOUT` (`0x4`): room to write, or a non-blocking connect finished. */
  WRITABLE: EPOLL.OUT,
  /** `EPOLLPRI` (`0x2`): urgent (out-of-band) data or an exceptional condition. */
  PRIORITY: EPOLL.PRI,
  /**
   * `EPOLLRDHUP` (`0x2000`): the peer shut down its writing side (sent a FIN),
   * reported as {@linkcode Readiness.readClosed} without a read returning 0.
   */
  READ_CLOSED: EPOLL.RDHUP,
  /**
   * `EPOLLET` (`1 << 31`): edge-triggered; report each arrival once, so
   * the callback must drain until EAGAIN on every report. Without it the
   * registration is level-triggered (reported on every wait while ready).
   */
  EDGE: EPOLL.ET,
  /** `EPOLLONESHOT` (`1 << 30`): report once, then stay silent until re-armed. */
  ONESHOT: EPOLL.ONESHOT,
  /** `EPOLLEXCLUSIVE` (`1 << 28`): only valid when the fd is added, never on modify. */
  EXCLUSIVE: EPOLL.EXCLUSIVE,
} as const;

/** A set of {@linkcode Interest} bits. */
export type InterestBits = number;

const EVENT_BITS = EPOLL.IN | EPOLL.OUT | EPOLL.PRI | EPOLL.RDHUP;
const ALL_BITS = EVENT_BITS | EPOLL.ET | EPOLL.ONESHOT | EPOLL.EXCLUSIVE;

/**
 * Check an interest value and return it as a signed 32-bit number, as `|` makes it.
 * Throws `TypeError` for unknown bits.
 *
 * @example
 * ```ts
 * import { Interest } from "@ffinet/ffinet/reactor";
 * import { validateInterest } from "./interest.ts";
 * validateInterest(Interest.READABLE | Interest.EDGE);
 * ```
 */
export function validateInterest(interest: number, action = "register fd"): number {
  if (!Number.isInteger(interest) || (interest >>> 0 & ~ALL_BITS) !== 0) {
    throw new TypeError(
      `Cannot ${action}: interest 0x${
        (interest >>> 0).toString(16)
      } has bits that are not Interest flags`,
    );
  }
  return interest | 0;
}

/**
 * Whether an interest asks for any event at all (as opposed to only mode flags).
 *
 * @example
 * ```ts
 * import { Interest } from "@ffinet/ffinet/reactor";
 * import { hasEvents } from "./interest.ts";
 * hasEvents(Interest.EDGE); // false
 * ```
 */
export function hasEvents(interest: number): boolean {
  return (interest & EVENT_BITS) !== 0;
}

/**
 * Describe interest bits as text, e.g. `"READABLE|EDGE"`.
 *
 * @example
 * ```ts
 * import { formatInterest, Interest } from "@ffinet/ffinet/reactor";
 * formatInterest(Interest.READABLE | Interest.ONESHOT); // "READABLE|ONESHOT"
 * ```
 */
export function formatInterest(interest: number): string {
  const parts: string[] = [];
  for (const [name, bit] of Object.entries(Interest)) {
    if ((interest & bit) !== 0) parts.push(name);
  }
  return parts.length === 0 ? "NONE" : parts.join("|");
}
