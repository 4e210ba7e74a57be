/**
 * A `Deno.serve`-compatible HTTP/1.1 server on ffinet's reactor.
 *
 * - {@linkcode serve}: web `Request` in, `Response` out, the shape of
 *   `Deno.serve` (code written for it moves by changing the import; a Hono
 *   app runs with `serve(app.fetch)`). Request bodies stream with
 *   backpressure to the socket, any `Response` body goes out (a stream of
 *   unknown length chunked), pipelined responses leave in order and in one
 *   write, HEAD never has a body, timeouts cannot be dodged, closes are FINs.
 * - {@linkcode upgradeConnection}: take over the connection after `101`
 *   (WebSocket and other protocols on top of `serve()`).
 * - WebSocket (RFC 6455, permessage-deflate): {@linkcode upgradeWebSocket}
 *   has the shape of `Deno.upgradeWebSocket`, and loading this module makes
 *   the global `Deno.upgradeWebSocket` take `serve()`'s requests too (a Hono
 *   app using `hono/deno` runs unchanged); Bun's shape is
 *   `serve({ websocket: { open, message, close, drain }, handler })` with
 *   `server.upgrade(request, { data })` (or {@linkcode upgradeWithHandlers}),
 *   topics with `subscribe` and {@linkcode publish}. `shutdown()` closes
 *   WebSockets with 1001 (going away) and waits for them.
 * - `shutdown()` drains gracefully; SIGTERM does it for a supervised worker.
 *   The listening socket closes at once; requests in flight and requests
 *   that still arrive on kept-alive connections within `drainIdleMs` are
 *   answered with `connection: close`, so a rolling restart loses none.
 *   Socket activation (`LISTEN_FDS`) and `READY=1`/`WATCHDOG=1` on
 *   `NOTIFY_SOCKET` work without options.
 * - `workers: N` serves on N threads, one reactor each, on one port
 *   ({@linkcode isServeWorker}).
 * - {@linkcode serveRaw}: the low-level entry point, a parsed request view
 *   and a response writer, for C-level cost ({@linkcode prebuilt} responses
 *   and the repeated-head memo are its opt-in fast paths).
 *
 * All servers of a thread share that thread's reactor, `server.reactor`:
 * timers, raw sockets and listeners can run on it beside them.
 *
 * @example
 * ```ts
 * import { serve } from "@ffinet/ffinet/http";
 *
 * const server = serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () =>
 *   new Response("Hello, World!"));
 * const { port } = server.addr as { port: number };
 * console.log(await (await fetch(`http://127.0.0.1:${port}/`)).text());
 * await server.shutdown();
 * ```
 *
 * @module
 */
export type {
  HttpServer,
  ListenerPassthrough,
  NetAddr,
  ServeHandler,
  ServeHandlerInfo,
  ServeInit,
  ServeLimits,
  ServeOptions,
  UnixAddr,
} from "./types.ts";
export type {
  PrebuiltResponseLike,
  RawHandler,
  RawHeaders,
  RawResponder,
  RawServeOptions,
} from "./raw.ts";
export { serve } from "./serve.ts";
export { prebuilt, serveRaw } from "./raw.ts";
export {
  type RawConnection,
  upgradeConnection,
  type UpgradedConnection,
  type UpgradeOptions,
} from "./upgrade.ts";
export type {
  TlsInfo,
  TlsKeyPair,
  TlsNamedKeyPair,
  TlsPeerCertificate,
  TlsServerOptions,
} from "../tls/mod.ts";
export type {
  ProxyHeader,
  ProxyInfo,
  ProxyProtocolVersion,
  ProxySslInfo,
  ProxyTlv,
} from "../reactor/proxy/protocol.ts";
export type { ProxyProtocolOptions } from "../reactor/proxy/gate.ts";
export type { ListenerSettings, ListenSocketOptions } from "../reactor/listen_options.ts";
export type { ProxyParserOptions } from "../reactor/proxy/protocol.ts";
export type { Inet6Address, InetAddress, SocketAddress, UnixAddress } from "../ffi/sockaddr.ts";
export {
  HttpHeaders,
  HttpParseError,
  HttpParser,
  type HttpParserOptions,
  type HttpRequest,
  type HttpVersion,
} from "./parser/mod.ts";
export { isServeWorker } from "./workers.ts";
export { isServeRequest } from "./upgrade.ts";
// WebSocket: Deno's shape (loading this module makes the global
// `Deno.upgradeWebSocket` take serve()'s requests too) and Bun's shape.
export { upgradeWebSocket, type UpgradeWebSocketOptions } from "./websocket/upgrade.ts";
export { ServerWebSocket, type WebSocketEventHandler } from "./websocket/websocket.ts";
export {
  HandlerWebSocket,
  publish,
  upgradeWithHandlers,
  type WebSocketHandlers,
  type WebSocketServeInit,
  type WebSocketServer,
} from "./websocket/handlers.ts";
export type { WebSocketLimits } from "./websocket/limits.ts";
export type { PerMessageDeflateOptions } from "./websocket/permessage_deflate.ts";
// `server.reactor`'s type, with the types its members name.
export type { Reactor } from "../reactor/reactor.ts";
export type { ReactorErrorHandler, ReactorStats, RunOptions } from "../reactor/reactor_options.ts";
export type {
  Readiness,
  ReadyCallback,
  Registration,
  RegistrationState,
} from "../reactor/poller.ts";
export type { Timer } from "../reactor/timer_queue.ts";
