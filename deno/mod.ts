/**
 * Adapters with the shape of `Deno.listen()` and `Deno.connect()`, so code
 * written for them moves to ffinet by changing one import:
 *
 * ```ts
 * // Before: const listener = Deno.listen({ port: 8080 });
 * import { listen } from "@ffinet/ffinet/deno";
 *
 * const listener = listen({ port: 8080 });
 * for await (const conn of listener) conn.readable.pipeTo(conn.writable);
 * ```
 *
 * {@linkcode listen} returns an {@linkcode FfiListener} (a `Deno.Listener`)
 * and {@linkcode connect} resolves to an {@linkcode FfiConn} (a `Deno.Conn`;
 * a `Deno.TcpConn` for TCP). Errors are Deno's error classes
 * (`Deno.errors.ConnectionRefused`, `AddrInUse`, `ConnectionReset`, ...)
 * with the ffinet `ErrnoError` as `cause` and its errno name as `code`.
 *
 * They run on a shared default reactor that starts when the first adapter
 * object opens and stops, closing its fds and letting the process exit,
 * when the last one closes ({@linkcode defaultReactorIdle} resolves then).
 * An open object keeps the process alive unless you `unref()` it, as in
 * Deno. Pass `reactor` in the options to use your own instead: you run it,
 * and it is never stopped or closed for you.
 *
 * The lifetime of a connection, and how it differs from Deno's, always on
 * the side of not losing data and not leaking:
 *
 * - `write()` resolves as soon as the bytes are queued below the
 *   connection's high-water mark (at once, usually), and later once the
 *   queue drains: that is the backpressure. It always takes the whole
 *   buffer (the result is `p.byteLength`).
 * - `close()` flushes what is still queued before closing the socket
 *   (bounded by `closeTimeoutMs`, then the connection is reset).
 * - Once the peer has ended and the program has read everything (`read()`
 *   gave `null`, or `readable` ended), the connection sends what is queued
 *   and closes itself, so a program that never calls `close()` leaks no
 *   socket (Deno closes at the end of `readable` too, but keeps the socket
 *   after `read()` gave `null` until `close()`). Pass `allowHalfOpen: true`
 *   to keep writing after the peer's EOF; then `close()` is yours to call.
 * - `closeWrite()` (or closing `writable`) half-closes: reading goes on and
 *   the connection closes at the peer's EOF.
 * - `connect` resolves a host name as `Deno.connect` does (`getaddrinfo`);
 *   `listen` takes an IP literal or `"localhost"`.
 *
 * TLS: {@linkcode listenTls}, {@linkcode connectTls} and
 * {@linkcode startTls} have the shapes of `Deno.listenTls`,
 * `Deno.connectTls` and `Deno.startTls` and give {@linkcode FfiTlsConn}s
 * (`Deno.TlsConn`: the same connection plus `handshake()`), through
 * OpenSSL. `listenTls` also takes `certFile`/`keyFile`, re-read when the
 * files change (a renewed certificate is served within a second; open
 * connections keep theirs). `accept()` hands a connection over once its
 * handshake has completed, and a certificate that does not verify rejects
 * `connectTls` with `Deno.errors.InvalidData`, as Deno's does.
 *
 * @module
 */
export type {
  FfiAdapterOptions,
  FfiAddr,
  FfiConnOptions,
  FfiTcpConnectOptions,
  FfiTcpListenOptions,
  FfiUnixConnectOptions,
  FfiUnixListenOptions,
} from "./options.ts";
export { defaultReactorIdle } from "./shared_reactor.ts";
export { FfiConn, type StreamConnection } from "./conn.ts";
export { FfiListener, listen } from "./listener.ts";
export { connect } from "./connect.ts";
export { connectTls, type FfiTlsListener, listenTls, startTls } from "./tls.ts";
export { FfiTlsConn } from "./tls_conn.ts";
export type {
  FfiStartTlsOptions,
  FfiTlsConnectOptions,
  FfiTlsListenOptions,
} from "./tls_options.ts";
// The TLS objects `FfiTlsConn.connection`, `FfiTlsConn.tlsInfo` and
// `FfiListener.tlsListener` hand out.
export {
  type HandshakeHooks,
  OpenSslError,
  type TlsClientOptions,
  type TlsConnection,
  type TlsConnectionState,
  type TlsDataHandler,
  type TlsInfo,
  type TlsKeyPair,
  TlsListener,
  type TlsListenerStats,
  type TlsNamedKeyPair,
  type TlsPeerCertificate,
  type TlsServerOptions,
} from "../tls/mod.ts";

// The reactor objects the adapters hand out (`FfiConn.connection`,
// `FfiListener.listener`, the `reactor` option) and the types they use.
export {
  Connection,
  type ConnectionState,
  type ConnectState,
  type DataHandler,
  type FdsInfo,
  type Inet6Address,
  type InetAddress,
  type Linger,
  Listener,
  type ListenerErrorHandler,
  type ListenerStats,
  type ProxyGateStats,
  type ProxyHeader,
  type ProxyInfo,
  ProxyProtocolError,
  type ProxyProtocolErrorKind,
  type ProxySslInfo,
  type ProxyTlv,
  Reactor,
  type ReactorErrorHandler,
  type ReactorStats,
  Readiness,
  type ReadyCallback,
  Registration,
  type RegistrationState,
  type RunOptions,
  Socket,
  SOCKET_OPTIONS,
  type SocketAddress,
  type SocketOptionKinds,
  type SocketOptionName,
  type SocketOptionValue,
  Timer,
  type UnixAddress,
  type WritableSocketOptionName,
} from "../reactor/mod.ts";
