/**
 * ffinet: Linux networking for Deno through FFI.
 *
 * Start with {@linkcode serve}: a `Deno.serve`-shaped HTTP/1.1 server (move
 * an app by changing its import; a Hono app runs with `serve(app.fetch)`),
 * which `deno task serve APP` runs as supervised worker processes on one
 * shared socket. Under it: an epoll reactor you control, TCP/Unix listeners
 * and connections, datagram sockets, the PROXY protocol and systemd's
 * notify/socket-activation protocol.
 *
 * This module is the curated surface. Raw access (`sys`, `libc`, struct
 * codecs, errno cells, constants) lives in `@ffinet/ffinet/ffi`: those calls
 * pass pointers and lengths to libc and can corrupt memory when misused.
 *
 * @example A Deno.serve app, moved by changing its import
 * ```ts
 * import { serve } from "@ffinet/ffinet";
 * const server = serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => new Response("Hello"));
 * await server.shutdown();
 * ```
 *
 * @example An echo server on the reactor
 * ```ts
 * import { Listener, Reactor } from "@ffinet/ffinet";
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
  // The PROXY protocol; the listening socket's options.
  type FdsInfo,
  Interest,
  type InterestBits,
  Listener,
  type ListenerErrorHandler,
  type ListenerSettings,
  type ListenerStats,
  type ListenOptions,
  type ListenSocketOptions,
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
  type HttpHeaders,
  type HttpRequest,
  type HttpServer,
  type HttpVersion,
  type ListenerPassthrough,
  type NetAddr,
  prebuilt,
  type PrebuiltResponseLike,
  type RawConnection,
  type RawHandler,
  type RawHeaders,
  type RawResponder,
  type RawServeOptions,
  serve,
  type ServeHandler,
  type ServeHandlerInfo,
  type ServeInit,
  type ServeLimits,
  type ServeOptions,
  serveRaw,
  type UnixAddr,
  upgradeConnection,
  type UpgradedConnection,
  type UpgradeOptions,
  upgradeWebSocket,
  type UpgradeWebSocketOptions,
} from "./http/mod.ts";
// WebSocket: the types `upgradeWebSocket` and `serve({ websocket })` name
// (the rest is in "@ffinet/ffinet/http").
export type {
  HandlerWebSocket,
  PerMessageDeflateOptions,
  ServerWebSocket,
  WebSocketEventHandler,
  WebSocketHandlers,
  WebSocketLimits,
  WebSocketServeInit,
  WebSocketServer,
} from "./http/mod.ts";
// TLS: what `serve({ cert, key })` takes and reports (listeners and clients
// are in "@ffinet/ffinet/tls").
export type {
  TlsInfo,
  TlsKeyPair,
  TlsNamedKeyPair,
  TlsPeerCertificate,
  TlsServerOptions,
} from "./http/mod.ts";
