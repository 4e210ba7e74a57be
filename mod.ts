/**
 * ffinet: Linux networking for Deno through FFI — an epoll reactor you
 * control, TCP/Unix listeners and connections, datagram sockets, and
 * servers that run as real Unix daemons.
 *
 * This module is the curated surface. Raw access (`sys`, `libc`, struct
 * codecs, errno cells, constants) lives in `./ffi`: those calls pass
 * pointers and lengths to libc and can corrupt memory when misused.
 *
 * @example An echo server
 * ```ts
 * import { Listener, Reactor } from "./mod.ts";
 * await using reactor = new Reactor();
 * using _listener = Listener.listen(reactor, { host: "127.0.0.1", port: 0 }, (conn) => {
 *   conn.onData = (data) => conn.write(data);
 * });
 * await reactor.run({ signal: AbortSignal.timeout(10) });
 * ```
 *
 * @module
 */

// The reactor, its registrations, streams, datagrams and the PROXY protocol
// (`reactor/mod.ts` names the module that defines each).
export {
  type AnyRegistration,
  connect,
  // Streams: listeners, connections, connect.
  Connection,
  type ConnectionOptions,
  type ConnectionState,
  type ConnectOptions,
  type ConnectTarget,
  // Datagrams.
  type DatagramOptions,
  DatagramSocket,
  type DatagramStats,
  type DataHandler,
  // PROXY protocol and edge options of listeners (helper "proxy" owns these modules).
  type EdgeListenOptions,
  type FdsInfo,
  Interest,
  type InterestBits,
  Listener,
  type ListenerErrorHandler,
  type ListenerStats,
  type ListenOptions,
  type ListenTarget,
  type ProxyGateStats,
  type ProxyHeader,
  type ProxyInfo,
  type ProxyParserOptions,
  ProxyProtocolError,
  type ProxyProtocolErrorKind,
  type ProxyProtocolOptions,
  type ProxyProtocolVersion,
  type ProxySslInfo,
  type ProxyTlv,
  // The reactor and its registrations.
  Reactor,
  type ReactorErrorHandler,
  type ReactorOptions,
  type ReactorStats,
  Readiness,
  type ReadyCallback,
  Registration,
  type RegistrationState,
  type RunOptions,
  Timer,
} from "./reactor/mod.ts";

// Sockets and addresses.
export {
  type ConnectState,
  Socket,
  type SocketCreateOptions,
  type SocketFamily,
  type SocketType,
} from "./ffi/socket.ts";
export {
  type Linger,
  SOCKET_OPTIONS,
  type SocketOptionKinds,
  type SocketOptionName,
  type SocketOptionValue,
  type WritableSocketOptionName,
} from "./ffi/sockopt.ts";
export {
  formatAddress,
  type Inet6Address,
  type InetAddress,
  type SocketAddress,
  type UnixAddress,
} from "./ffi/sockaddr.ts";

// Errors.
export { ErrnoError, type ErrnoErrorOptions, errnoName } from "./ffi/errno.ts";
export { AddressLookupError } from "./ffi/dns.ts";

// systemd: readiness notification, watchdog, socket activation.
export {
  type ListenFd,
  listenFds,
  type ListenFdsOptions,
  notify,
  type NotifyOptions,
  type NotifyState,
  watchdogInterval,
} from "./reactor/sd_notify.ts";

// HTTP: a Deno.serve-shaped HTTP/1.1 server, and its low-level entry point.
export {
  type HttpServer,
  type NetAddr,
  prebuilt,
  type RawHandler,
  type RawResponder,
  type RawServeOptions,
  serve,
  type ServeHandler,
  type ServeHandlerInfo,
  type ServeInit,
  type ServeOptions,
  serveRaw,
  type UnixAddr,
  upgradeConnection,
  type UpgradedConnection,
} from "./http/mod.ts";
