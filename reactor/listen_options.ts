/**
 * The options of `Listener.listen` (where to listen, the listening socket's
 * options, the PROXY protocol, the options of accepted connections) and
 * their checks, done before any socket is created.
 *
 * The listening socket's options are one table,
 * {@linkcode LISTEN_SOCKET_OPTIONS}: each row says how the option is
 * checked, which listeners take it and whether it is set before `bind(2)`
 * or after. A new socket option for listeners is a field of
 * {@linkcode ListenSocketOptions} and a row here, plus its entry in
 * `ffi/sockopt.ts`; `http`'s listener options follow from this type.
 *
 * @module
 */
import type { Socket } from "../ffi/socket.ts";
import type { WritableSocketOptionName } from "../ffi/sockopt.ts";
import type { Connection } from "./connection.ts";
import { type ConnectionOptions, resolveConnectionOptions } from "./connection_options.ts";
import { checkProxyProtocolOptions, type ProxyProtocolOptions } from "./proxy/gate.ts";
import { MAX_TIMER_MS } from "./timer_queue.ts";
import { booleanOption, finiteOption, integerOption, signalOption } from "../ffi/validate.ts";

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

/**
 * The options set on a listening socket, each checked before any socket is
 * made.
 *
 * - `deferAccept` (`TCP_DEFER_ACCEPT`): a connection is handed over only
 *   once the client has sent data. Guards against connections that
 *   handshake and then sit silent (port scanners, idle-connection floods):
 *   they cost a SYN-queue slot, never an fd or a callback.
 * - `fastOpen` (`TCP_FASTOPEN`): accept data carried in the SYN from
 *   clients holding a Fast Open cookie; saves a round trip per new
 *   connection (the kernel's `net.ipv4.tcp_fastopen` must enable the server
 *   side, bit 2).
 * - `incomingCpu` (`SO_INCOMING_CPU`): ties the listener to a CPU; in an
 *   `SO_REUSEPORT` group of per-CPU listeners (Linux 6.1+), the kernel
 *   prefers the one whose CPU handles the SYN, keeping a connection's
 *   packets and its process on one CPU's caches.
 *
 * @example
 * ```ts
 * import type { ListenSocketOptions } from "@ffinet/ffinet/reactor";
 * const edge: ListenSocketOptions = { reusePort: true, deferAccept: 5, fastOpen: 256 };
 * ```
 */
export interface ListenSocketOptions {
  /** `SO_REUSEADDR` (TCP). Default true. */
  reuseAddress?: boolean;
  /** `SO_REUSEPORT`: several listeners (processes, Workers) share the port. Default false. */
  reusePort?: boolean;
  /** `IPV6_V6ONLY` for an IPv6 host; false (the default) makes `::` dual-stack. */
  v6Only?: boolean;
  /** `TCP_DEFER_ACCEPT` in seconds, 0–3600 (0: off). TCP only. */
  deferAccept?: number;
  /** `TCP_FASTOPEN` queue length, 0–65535 (0: off). TCP only. */
  fastOpen?: number;
  /** `SO_INCOMING_CPU`: a CPU number, 0–8191. */
  incomingCpu?: number;
}

/**
 * How a listener behaves wherever it listens: its socket options, backlog,
 * PROXY protocol, `TCP_NODELAY` of accepted connections and the EMFILE
 * pause. A server passes these through to `Listener.listen` as they are.
 *
 * @example
 * ```ts
 * import type { ListenerSettings } from "@ffinet/ffinet/reactor";
 * const settings: ListenerSettings = { backlog: 1024, deferAccept: 5, noDelay: true };
 * ```
 */
export interface ListenerSettings extends ListenSocketOptions {
  /** `listen(2)` backlog: an integer >= 0. Default 511. */
  backlog?: number;
  /** Read a PROXY protocol header from trusted peers before handing connections over. */
  proxyProtocol?: ProxyProtocolOptions;
  /** `TCP_NODELAY` on accepted TCP connections. Default true. */
  noDelay?: boolean;
  /**
   * How long accepting pauses when no spare fd is left for the EMFILE trick.
   * Default 100 ms; a number of ms in 1 to 2^31 - 1.
   */
  emfileRetryMs?: number;
}

/** Options for `Listener.listen`. */
export type ListenOptions = ListenTarget & ListenerSettings & {
  /** Options for each accepted connection. */
  connection?: ConnectionOptions;
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

/** Which listeners a socket option applies to. */
type ListenerKind = "tcp" | "inet6" | "unix" | "fd";

/** How one listening-socket option is checked and set. */
interface SocketOptionRule {
  /** Set before `bind(2)` (address reuse) or once bound, before `listen(2)`. */
  stage: "bind" | "listen";
  /** The listeners that take it; on others it is skipped. */
  on: readonly ListenerKind[];
  /** Refuse it (a `TypeError`) when given for a Unix path, where it makes no sense. */
  tcpOnly?: boolean;
  /** The value to set, checked; `undefined` leaves the kernel's default. */
  check(value: unknown): boolean | number | undefined;
}

const TCP: readonly ListenerKind[] = ["tcp", "inet6"];

/**
 * The listening socket's options, by name: the names are those of
 * `ffi/sockopt.ts` too. Checked in `checkListenOptions`, set by
 * {@linkcode applyListenSocketOptions}.
 */
const LISTEN_SOCKET_OPTIONS: {
  readonly [K in keyof ListenSocketOptions & WritableSocketOptionName]-?: SocketOptionRule;
} = {
  reuseAddress: {
    stage: "bind",
    on: TCP,
    check: (v) => booleanOption("listen", "reuseAddress", v, true) || undefined,
  },
  reusePort: {
    stage: "bind",
    on: TCP,
    check: (v) => booleanOption("listen", "reusePort", v, false) || undefined,
  },
  v6Only: {
    stage: "bind",
    on: ["inet6"],
    check: (v) => booleanOption("listen", "v6Only", v, false),
  },
  deferAccept: {
    stage: "listen",
    on: [...TCP, "fd"],
    tcpOnly: true,
    check: (v) => optionalInteger("deferAccept", v, 3600),
  },
  fastOpen: {
    stage: "listen",
    on: [...TCP, "fd"],
    tcpOnly: true,
    check: (v) => optionalInteger("fastOpen", v, 65535),
  },
  incomingCpu: {
    stage: "listen",
    on: [...TCP, "unix", "fd"],
    check: (v) => optionalInteger("incomingCpu", v, 8191),
  },
};

/** The names of the listening socket's options. */
type SocketOptionName = keyof typeof LISTEN_SOCKET_OPTIONS;

/** An integer option from 0 to `max`, or `undefined` when not given. */
function optionalInteger(name: string, value: unknown, max: number): number | undefined {
  const n = integerOption("listen", name, value, -1, 0, max);
  return n === -1 ? undefined : n;
}

/** Listen options after their checks (internal). */
export interface CheckedListen {
  backlog: number;
  /** The listening socket's options to set, checked (`undefined`: not set). */
  socketOptions: { -readonly [K in SocketOptionName]: boolean | number | undefined };
  proxyProtocol: ProxyProtocolOptions | undefined;
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
  const socketOptions = {} as CheckedListen["socketOptions"];
  for (const [name, rule] of Object.entries(LISTEN_SOCKET_OPTIONS)) {
    const key = name as SocketOptionName;
    const given = options[key];
    socketOptions[key] = rule.check(given);
    if (rule.tcpOnly && given !== undefined && "path" in options) {
      throw new TypeError(`Cannot listen: ${name} applies to TCP listeners only`);
    }
  }
  if (options.proxyProtocol !== undefined) checkProxyProtocolOptions(options.proxyProtocol);
  const checked: CheckedListen = {
    backlog: integerOption(action, "backlog", options.backlog, 511, 0, MAX_BACKLOG),
    socketOptions,
    proxyProtocol: options.proxyProtocol,
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

/**
 * Set the checked socket options of `stage` that apply to a `kind` of
 * listener on `socket` (internal: `Listener.listen` calls it before `bind`
 * and before `listen`).
 */
export function applyListenSocketOptions(
  socket: Socket,
  checked: CheckedListen,
  stage: "bind" | "listen",
  kind: ListenerKind,
): void {
  for (const [name, rule] of Object.entries(LISTEN_SOCKET_OPTIONS)) {
    const key = name as SocketOptionName;
    const value = checked.socketOptions[key];
    if (rule.stage !== stage || value === undefined || !rule.on.includes(kind)) continue;
    socket.setOption(key, value as never);
  }
}
