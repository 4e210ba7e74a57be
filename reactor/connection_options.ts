/**
 * The options of a `Connection` (also accepted by listeners, for
 * every accepted connection, and by `connect`), and their checks.
 *
 * @module
 */
import { SCM_MAX_FD } from "../ffi/fd_passing.ts";
import { MAX_TIMER_MS } from "./timer_queue.ts";
import { booleanOption, finiteOption, integerOption } from "../ffi/validate.ts";

/** Options for connections (also accepted by listeners and `connect`). */
export interface ConnectionOptions {
  /**
   * Queued bytes at which `write()` starts returning false. Default 1 MiB;
   * an integer in 0 to 2^53 - 1.
   */
  highWaterMark?: number;
  /**
   * Close the connection (gracefully, with a FIN) after this long without
   * reads or writes; `onClose` then receives a `Deno.errors.TimedOut`.
   * Default 0: never. A number of ms in 0 to 2^31 - 1.
   */
  idleTimeoutMs?: number;
  /** Keep the write side open after the peer's EOF. Default false. */
  allowHalfOpen?: boolean;
  /**
   * Unix sockets: receive up to this many fds per read (`SCM_RIGHTS`, via
   * `recvmsg`) and hand them to `onFds`. Default 0: plain reads (fds sent by
   * the peer are then closed by the kernel). An integer in 0 to 253.
   */
  receiveFds?: number;
}

/** What `Connection.onFds` learns besides the fds. */
export interface FdsInfo {
  /**
   * The peer sent more fds than `receiveFds` (or than the kernel passed on):
   * all of them were closed and `fds` is empty.
   */
  truncated: boolean;
}

/** Validated connection options (internal). */
export interface ResolvedConnectionOptions {
  highWaterMark: number;
  idleTimeoutMs: number;
  allowHalfOpen: boolean;
  receiveFds: number;
}

/**
 * Check connection options (a `RangeError` naming the option) before any
 * resource is taken. Internal: used by `Listener.listen` and `connect` too.
 *
 * @example
 * ```ts
 * import { resolveConnectionOptions } from "./connection_options.ts";
 * resolveConnectionOptions("connect", { highWaterMark: 65536 });
 * ```
 */
export function resolveConnectionOptions(
  action: string,
  options: ConnectionOptions = {},
): ResolvedConnectionOptions {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`Cannot ${action}: connection options must be an object`);
  }
  return {
    highWaterMark: integerOption(
      action,
      "highWaterMark",
      options.highWaterMark,
      1024 * 1024,
      0,
      Number.MAX_SAFE_INTEGER,
    ),
    idleTimeoutMs: finiteOption(action, "idleTimeoutMs", options.idleTimeoutMs, 0, {
      min: 0,
      max: MAX_TIMER_MS,
    }),
    allowHalfOpen: booleanOption(action, "allowHalfOpen", options.allowHalfOpen, false),
    receiveFds: integerOption(action, "receiveFds", options.receiveFds, 0, 0, SCM_MAX_FD),
  };
}
