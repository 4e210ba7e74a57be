/**
 * The options of `Listener.listen` (where to listen, socket
 * options, the options of accepted connections) and their checks, done
 * before any socket is created.
 *
 * @module
 */
import type { Connection } from "./connection.ts";
import { type ConnectionOptions, resolveConnectionOptions } from "./connection_options.ts";
import type { EdgeListenOptions } from "./proxy_edge.ts";
import { MAX_TIMER_MS } from "./timer_queue.ts";
import { booleanOption, finiteOption, integerOption, signalOption } from "./_validate.ts";

/** The largest `listen(2)` backlog the kernel takes (`int`); it caps it at somaxconn anyway. */
const MAX_BACKLOG = 0x7fffffff;

/**
 * Where to listen: a TCP host and port, a Unix path (or `"\0name"` for the
 * Linux abstract namespace), or an inherited fd.
 *
 * `mode` sets the permission bits of a Unix socket file (e.g. `0o660`: only
 * the owner and group may connect). An abstract name has no file and no
 * permissions: **any local user can connect to it**, so `mode` is refused
 * there.
 */
export type ListenTarget =
  | { host?: string; port: number }
  | { path: string; mode?: number }
  | { fd: number };

/** Options for `Listener.listen`. */
export type ListenOptions = ListenTarget & EdgeListenOptions & {
  /** `listen(2)` backlog: an integer >= 0. Default 511. */
  backlog?: number;
  /** `SO_REUSEADDR` (TCP). Default true. */
  reuseAddress?: boolean;
  /** `SO_REUSEPORT`: several listeners (processes, Workers) share the port. Default false. */
  reusePort?: boolean;
  /** `IPV6_V6ONLY` for an IPv6 host; false (the default) makes `::` dual-stack. */
  v6Only?: boolean;
  /** `TCP_NODELAY` on accepted TCP connections. Default true. */
  noDelay?: boolean;
  /** Options for each accepted connection. */
  connection?: ConnectionOptions;
  /**
   * How long accepting pauses when no spare fd is left for the EMFILE trick.
   * Default 100 ms; a number of ms in 1 to 2^31 - 1.
   */
  emfileRetryMs?: number;
  /** Close the listener when this signal aborts; an aborted signal throws at once. */
  signal?: AbortSignal;
  /**
   * Where errors go: failures to accept, and errors thrown by
   * `onConnection` or by an accepted connection's handlers (that connection
   * is then closed). Default: the reactor's `onError`.
   */
  onError?: ListenerErrorHandler;
};

/** Handles a listener's errors; `conn` is the connection at fault, if any. */
export type ListenerErrorHandler = (error: unknown, conn?: Connection) => void;

/** Listen options after their checks (internal). */
export interface CheckedListen {
  backlog: number;
  reuseAddress: boolean;
  reusePort: boolean;
  v6Only: boolean;
  noDelay: boolean;
  emfileRetryMs: number;
  mode: number | undefined;
  connection: ConnectionOptions;
  signal: AbortSignal | undefined;
  onError: ListenerErrorHandler | undefined;
}

export function checkListenOptions(options: ListenOptions): CheckedListen {
  const action = "listen";
  if (typeof options !== "object" || options === null) {
    throw new TypeError("Cannot listen: options must be an object");
  }
  const kinds = ["fd", "path", "port"].filter((k) => k in options);
  if (kinds.length !== 1) {
    throw new TypeError(
      `Cannot listen: give exactly one of port, path or fd (got ${kinds.join(", ") || "none"})`,
    );
  }
  let mode: number | undefined;
  if ("path" in options) {
    if (typeof options.path !== "string" || options.path === "" || options.path === "\0") {
      throw new TypeError(`Cannot listen: path ${String(options.path)} is not a socket path`);
    }
    mode = integerOption(action, "mode", options.mode, -1, 0, 0o777);
    if (mode === -1) mode = undefined;
    else if (options.path.startsWith("\0")) {
      throw new TypeError(
        "Cannot listen: mode cannot apply to an abstract socket name (it has no file); " +
          "any local user can connect to an abstract socket, so use a path to restrict access",
      );
    }
  }
  if ("port" in options) {
    integerOption(action, "port", options.port, 0, 0, 65535);
    if (options.host !== undefined && typeof options.host !== "string") {
      throw new TypeError(`Cannot listen: host ${String(options.host)} is not a string`);
    }
  }
  if ("fd" in options) integerOption(action, "fd", options.fd, 0, 0, 0x7fffffff);
  const connection = options.connection ?? {};
  resolveConnectionOptions(action, connection);
  if (options.onError !== undefined && typeof options.onError !== "function") {
    throw new TypeError("Cannot listen: onError is not a function");
  }
  const checked: CheckedListen = {
    backlog: integerOption(action, "backlog", options.backlog, 511, 0, MAX_BACKLOG),
    reuseAddress: booleanOption(action, "reuseAddress", options.reuseAddress, true),
    reusePort: booleanOption(action, "reusePort", options.reusePort, false),
    v6Only: booleanOption(action, "v6Only", options.v6Only, false),
    noDelay: booleanOption(action, "noDelay", options.noDelay, true),
    emfileRetryMs: finiteOption(action, "emfileRetryMs", options.emfileRetryMs, 100, {
      min: 1,
      max: MAX_TIMER_MS,
    }),
    mode,
    connection,
    signal: undefined,
    onError: options.onError,
  };
  // Last: an already-aborted signal throws before any resource is taken.
  checked.signal = signalOption(action, options.signal);
  return checked;
}
