/**
 * TLS on the reactor through OpenSSL 3 (`libssl.so.3`, loaded on first
 * use): servers with several certificates chosen by SNI, ALPN, client
 * certificates and certificates that change while serving
 * (`TlsListener`), clients that verify the server against the system's
 * authorities or given ones (`connectTls`), and the connection both hand
 * out (`TlsConnection`), which keeps the reactor `Connection`'s contract.
 *
 * Policy: TLS 1.2 and 1.3 only, OpenSSL's default security level and
 * ciphers, no renegotiation, no compression, session tickets on.
 *
 * @example A TLS echo server
 * ```ts
 * import { TlsListener } from "@ffinet/ffinet/tls";
 * import { Reactor } from "@ffinet/ffinet/reactor";
 * await using reactor = new Reactor();
 * using server = TlsListener.listen(reactor, {
 *   port: 8443,
 *   tls: { cert: Deno.readTextFileSync("cert.pem"), key: Deno.readTextFileSync("key.pem") },
 * }, (conn) => {
 *   conn.onData = (data) => conn.write(data);
 * });
 * ```
 *
 * @module
 */
export {
  type HandshakeHooks,
  TlsConnection,
  type TlsConnectionState,
  type TlsDataHandler,
  type TlsInfo,
  type TlsPeerCertificate,
} from "./tls_connection.ts";
export { TlsListener, type TlsListenerStats, type TlsListenOptions } from "./listener.ts";
export { connectTls, startTls, type TlsConnectOptions, type TlsStartOptions } from "./connect.ts";
export type { TlsClientOptions, TlsKeyPair, TlsNamedKeyPair, TlsServerOptions } from "./options.ts";
export { OpenSslError } from "../ffi/openssl_error.ts";
// The reactor types the TLS classes hand out or take.
export type {
  Connection,
  ConnectionOptions,
  ConnectionState,
  ConnectOptions,
  ConnectState,
  ConnectTarget,
  DataHandler,
  FdsInfo,
  Inet6Address,
  InetAddress,
  Linger,
  Listener,
  ListenerErrorHandler,
  ListenerSettings,
  ListenerStats,
  ListenOptions,
  ListenSocketOptions,
  ListenTarget,
  ProxyGateStats,
  ProxyHeader,
  ProxyInfo,
  ProxyParserOptions,
  ProxyProtocolError,
  ProxyProtocolErrorKind,
  ProxyProtocolOptions,
  ProxyProtocolVersion,
  ProxySslInfo,
  ProxyTlv,
  Reactor,
  ReactorErrorHandler,
  ReactorStats,
  Readiness,
  ReadyCallback,
  Registration,
  RegistrationState,
  RunOptions,
  Socket,
  SOCKET_OPTIONS,
  SocketAddress,
  SocketOptionKinds,
  SocketOptionName,
  SocketOptionValue,
  Timer,
  UnixAddress,
  WritableSocketOptionName,
} from "../reactor/mod.ts";
