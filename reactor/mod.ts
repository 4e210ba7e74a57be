/**
 * The reactor: epoll instances with epitem-style registrations, timers and a
 * waker, running inside Deno's event loop; and on top of it stream
 * connections, listeners, `connect` and datagram sockets.
 *
 * @example
 * ```ts
 * import { Interest, Reactor } from "./mod.ts";
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
export { Readiness } from "./readiness.ts";
export {
  type AnyRegistration,
  type ReadyCallback,
  Registration,
  type RegistrationState,
} from "./registration.ts";
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

// PROXY protocol and edge options of listeners (helper "proxy" owns these modules).
export type { EdgeListenOptions } from "./proxy_edge.ts";
export type { ProxyGateStats, ProxyProtocolOptions } from "./proxy_gate.ts";
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
} from "./proxy_protocol.ts";
