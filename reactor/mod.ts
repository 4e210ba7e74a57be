/**
 * The reactor: epoll instances with epitem-style registrations, timers and a
 * waker, running inside Deno's event loop; and on top of it stream
 * connections, listeners, `connect` and datagram sockets.
 *
 * @example
 * ```ts
 * import { Interest, Reactor } from "@ffinet/ffinet/reactor";
 * await using reactor = new Reactor();
 * console.log(Interest.READABLE | Interest.EDGE);
 * ```
 *
 * @module
 */
export {
  Reactor,
  type ReactorErrorHandler,
  type ReactorOptions,
  type ReactorStats,
  type RunOptions,
} from "./reactor.ts";
export { formatInterest, Interest, type InterestBits } from "./interest.ts";
export {
  type AnyRegistration,
  Readiness,
  type ReadyCallback,
  Registration,
  type RegistrationState,
} from "./poller.ts";
export { MAX_TIMER_MS, Timer } from "./timer_queue.ts";
export {
  Connection,
  type ConnectionOptions,
  type ConnectionState,
  type DataHandler,
  type FdsInfo,
} from "./connection.ts";
export {
  Listener,
  type ListenerErrorHandler,
  type ListenerStats,
  type ListenOptions,
  type ListenTarget,
} from "./listener.ts";
export { connect, type ConnectOptions, type ConnectTarget } from "./connect.ts";
export { type DatagramOptions, DatagramSocket, type DatagramStats } from "./datagram.ts";

// The ffi types the reactor's objects hand out: the socket each one wraps,
// its options and the addresses it reports.
export {
  type ConnectState,
  Socket,
  type SocketCreateOptions,
  type SocketFamily,
  type SocketType,
} from "../ffi/socket.ts";
export {
  type Linger,
  SOCKET_OPTIONS,
  type SocketOptionKinds,
  type SocketOptionName,
  type SocketOptionValue,
  type WritableSocketOptionName,
} from "../ffi/sockopt.ts";
export {
  formatAddress,
  type Inet6Address,
  type InetAddress,
  type SocketAddress,
  type UnixAddress,
} from "../ffi/sockaddr.ts";
export { ErrnoError, type ErrnoErrorOptions, errnoName } from "../ffi/errno.ts";

export type { ListenerSettings, ListenSocketOptions } from "./listen_options.ts";

// The PROXY protocol.
export type { ProxyGateStats, ProxyProtocolOptions } from "./proxy/gate.ts";
export {
  crc32c,
  parseProxyHeader,
  PP2_TYPE,
  type ProxyHeader,
  ProxyHeaderParser,
  type ProxyInfo,
  type ProxyParserOptions,
  ProxyProtocolError,
  type ProxyProtocolErrorKind,
  type ProxyProtocolVersion,
  type ProxySslInfo,
  type ProxyTlv,
} from "./proxy/protocol.ts";
