/**
 * The public types of ffinet's HTTP server: the options of
 * {@linkcode ServeOptions | serve()}, its handler and the server it returns.
 * They follow `Deno.serve`'s shapes, so code written for `Deno.serve` moves
 * by changing the import.
 *
 * @module
 */
import type { ListenerSettings } from "../reactor/listen_options.ts";
import type { ProxyInfo } from "../reactor/proxy/protocol.ts";
import type { Reactor } from "../reactor/reactor.ts";
import type { TlsServerOptions } from "../tls/options.ts";
import type { TlsInfo } from "../tls/tls_connection.ts";

/**
 * A TCP peer or local address, shaped as `Deno.NetAddr`.
 *
 * @example
 * ```ts
 * import type { NetAddr } from "@ffinet/ffinet/http";
 * const addr: NetAddr = { transport: "tcp", hostname: "127.0.0.1", port: 8000 };
 * ```
 */
export interface NetAddr {
  /** Always `"tcp"`. */
  transport: "tcp";
  /** The IP address, e.g. `"127.0.0.1"` or `"::1"`. */
  hostname: string;
  /** The port. */
  port: number;
}

/**
 * A Unix socket address, shaped as `Deno.UnixAddr`.
 *
 * @example
 * ```ts
 * import type { UnixAddr } from "@ffinet/ffinet/http";
 * const addr: UnixAddr = { transport: "unix", path: "/run/app.sock" };
 * ```
 */
export interface UnixAddr {
  /** Always `"unix"`. */
  transport: "unix";
  /** The socket path (empty for an unnamed peer; starts with NUL for an abstract name). */
  path: string;
}

/**
 * What a handler learns besides the request, as `Deno.ServeHandlerInfo`.
 *
 * @example
 * ```ts
 * import type { ServeHandlerInfo } from "@ffinet/ffinet/http";
 * function who(info: ServeHandlerInfo): string {
 *   return info.remoteAddr.transport === "tcp" ? info.remoteAddr.hostname : "unix";
 * }
 * ```
 */
export interface ServeHandlerInfo {
  /** The peer's address. */
  readonly remoteAddr: NetAddr | UnixAddr;
  /**
   * The connection's PROXY protocol header, when the listener reads one
   * (`listener: { proxyProtocol }`): TLS details, ALPN, the proxy's own
   * address. `remoteAddr` is then the client's address from the header.
   */
  readonly proxy?: ProxyInfo | undefined;
  /**
   * Settles when the response has been handed to the kernel in full (or the
   * connection failed before that; it then still resolves).
   */
  readonly completed: Promise<void>;
  /**
   * What the TLS handshake negotiated, for a server with `cert`/`key`
   * (undefined over plaintext): `protocol` ("TLSv1.3"), `cipher`,
   * `alpnProtocol`, `serverName` (the SNI name the client asked for),
   * `sessionReused`, and `peerCertificate` with `authorized` for client
   * certificates (`requestCert`). Not in `Deno.ServeHandlerInfo`.
   */
  readonly tls?: TlsInfo | undefined;
}

/**
 * A request handler: a web `Request` in, a `Response` (or a promise of one)
 * out.
 *
 * @example
 * ```ts
 * import type { ServeHandler } from "@ffinet/ffinet/http";
 * const handler: ServeHandler = (req) => new Response(`you asked for ${new URL(req.url).pathname}`);
 * ```
 */
export type ServeHandler = (
  request: Request,
  info: ServeHandlerInfo,
) => Response | Promise<Response>;

/**
 * Listener options passed through to `Listener.listen` as they are: the
 * reactor's `ListenerSettings` (backlog, the listening socket's options,
 * `TCP_NODELAY`, PROXY protocol, the EMFILE pause) but `reusePort`, which is
 * `ServeOptions.reusePort`. A socket option added to listeners is here too.
 *
 * @example
 * ```ts
 * import type { ListenerPassthrough } from "@ffinet/ffinet/http";
 * const extra: ListenerPassthrough = { backlog: 1024, noDelay: true };
 * ```
 */
export type ListenerPassthrough = Omit<ListenerSettings, "reusePort">;

/**
 * Limits and timeouts of a server (all optional; the defaults suit a public
 * server). Every value is validated before anything is bound: a value out
 * of range is a `RangeError` naming the option.
 *
 * @example
 * ```ts
 * import type { ServeLimits } from "@ffinet/ffinet/http";
 * const limits: ServeLimits = { maxHeaderBytes: 16384, idleTimeoutMs: 30_000 };
 * ```
 */
export interface ServeLimits {
  /** The largest request head (request line and headers); larger → 431. Default 16384. */
  maxHeaderBytes?: number;
  /** The most header fields in a request head; more → 431. Default 100. */
  maxHeaderCount?: number;
  /** The largest request body; larger → 413. Default: no limit for `serve`, 1 MiB for `serveRaw`. */
  maxBodyBytes?: number;
  /** The longest request target; longer → 414. Default 8192. */
  maxTargetBytes?: number;
  /**
   * How long a request head may take from its first byte (or from the end
   * of the previous response on a kept-alive connection, blank lines
   * included) → 408 and close. Default 10 000 ms; 0 disables.
   */
  headerTimeoutMs?: number;
  /**
   * How long a request body may go without progress (no byte received while
   * the handler is waiting for more) → the connection is closed. Default
   * 30 000 ms; 0 disables.
   */
  bodyTimeoutMs?: number;
  /**
   * How long a kept-alive connection may stay idle between requests (nothing
   * received, nothing pending) before it is closed (with a FIN). Default
   * 60 000 ms; 0 disables.
   */
  idleTimeoutMs?: number;
  /**
   * Unsent output bytes on a connection above which the server stops reading
   * from it (and stops pulling a streamed response body) until the kernel
   * has taken them. Default 256 KiB.
   */
  highWaterMark?: number;
  /**
   * How long `shutdown()` lets in-flight requests finish before the
   * remaining connections are cut. Default 10 000 ms.
   */
  drainTimeoutMs?: number;
  /**
   * The drain's grace for kept-alive connections between requests. While
   * the server drains, such a connection is still read for this long (from
   * its last response): a request that arrives is answered with
   * `connection: close` and the connection closes after that response; a
   * connection that stays idle this long is closed with a FIN. One that was
   * already idle longer when the drain began is closed at once. This closes
   * the race of a client whose next request is already on its way when a
   * busy kept-alive connection is closed. What remains is a request sent at
   * the very moment of the close (HTTP clients retry an idempotent request
   * on a reused connection that closes without a response). 0 closes idle
   * connections at once. Default 500 ms (or `drainTimeoutMs` if smaller);
   * at most `drainTimeoutMs`.
   */
  drainIdleMs?: number;
}

/**
 * Options of {@linkcode ServeOptions | serve()}, shaped as `Deno.serve`'s.
 *
 * @example
 * ```ts
 * import type { ServeOptions } from "@ffinet/ffinet/http";
 * const options: ServeOptions = {
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   onListen: (addr) => console.log(addr),
 * };
 * ```
 */
export interface ServeOptions extends ServeLimits, TlsServerOptions {
  /** The address to bind. Default `"0.0.0.0"` (as `Deno.serve`). */
  hostname?: string;
  /** The TCP port; 0 picks a free one. Default 8000. */
  port?: number;
  /** Listen on this Unix socket path instead of TCP (`"\0name"`: abstract). */
  path?: string;
  /** `SO_REUSEPORT`, so several servers (processes, Workers) share the port. Default false. */
  reusePort?: boolean;
  /** Aborting it shuts the server down gracefully, as `shutdown()`. */
  signal?: AbortSignal;
  /** Called once the server accepts connections. Default: logs `Listening on http://HOST:PORT/` (`https://` with `cert`). */
  onListen?: (localAddr: NetAddr | UnixAddr) => void;
  /**
   * Makes the response for a handler that threw or rejected. Default: 500
   * `Internal Server Error` (and the error logged).
   */
  onError?: (error: unknown) => Response | Promise<Response>;
  /**
   * Serve on this many threads: the main module is started again in
   * `workers` Deno Workers, each with its own reactor, listening on the same
   * port with `SO_REUSEPORT`; the `serve()` call in each Worker serves there
   * (and calls `onListen` there). The main thread only reserves the port.
   * Default 1: this thread serves. See `workers.ts` for the details.
   */
  workers?: number;
  /**
   * Socket activation: when this process inherited listening sockets
   * (`LISTEN_FDS`/`LISTEN_PID`, from systemd or ffinet's supervisor), a TCP
   * server adopts one instead of binding `hostname`/`port`: the one named so
   * in `LISTEN_FDNAMES`, else the first not taken by another server of the
   * process. Naming a socket that was not passed is an error. (A `path`
   * server always binds its path; serve Workers never adopt.)
   */
  listenFdName?: string;
  /**
   * SIGTERM and SIGINT call `shutdown()` and the process exits 0 when
   * drained. Default: true when `FFINET_WORKER_ID` is set (a supervised
   * worker), false otherwise.
   */
  drainOnSignals?: boolean;
  /**
   * Reactor tuning for the thread's reactor (see `ReactorOptions`). All
   * servers of a thread share one reactor, made by the first of them: a
   * later server that asks for other values while it runs gets a
   * `RangeError` (its values could not apply).
   */
  reactor?: { sliceMs?: number; busyWaitMs?: number };
  /** `listen(2)` backlog, as `Deno.serve`'s `tcpBacklog` (same as `listener.backlog`). */
  tcpBacklog?: number;
  /** Listener options passed through as they are. */
  listener?: ListenerPassthrough;
  /**
   * As `Deno.serve`: the format of `key`; only `"pem"` (the default). With
   * `cert` and `key` (PEM text) the server speaks HTTPS: TLS 1.2 and 1.3
   * through OpenSSL, session tickets on (shared by all `workers`, rotated
   * every `ticketKeyRotationMs`). The other TLS options (`certificates`
   * chosen by SNI, `passphrase`, `alpnProtocols`, client certificates with
   * `ca`/`requestCert`/`rejectUnauthorized`, `handshakeTimeoutMs`) are
   * ffinet's. Bad TLS input throws before anything is bound, with
   * OpenSSL's error text. `certFile` and `keyFile` (instead of `cert` and
   * `key`) name PEM files that are read again when they change, so a
   * renewed certificate is served within a second without a restart (in
   * every `workers` Worker too); open connections keep the old one.
   */
  keyFormat?: "pem";
}

/**
 * Options of `serve()` with the handler inside, as `Deno.serve({ handler })`.
 *
 * @example
 * ```ts
 * import type { ServeInit } from "@ffinet/ffinet/http";
 * const init: ServeInit = { port: 0, handler: () => new Response("hi") };
 * ```
 */
export interface ServeInit extends ServeOptions {
  /** The request handler. */
  handler: ServeHandler;
}

/**
 * A running server, as `Deno.HttpServer`: `HttpServer<NetAddr>` for TCP,
 * `HttpServer<UnixAddr>` for a Unix socket `path`.
 *
 * @example
 * ```ts
 * import type { HttpServer } from "@ffinet/ffinet/http";
 * async function stop(server: HttpServer): Promise<void> {
 *   await server.shutdown();
 *   await server.finished;
 * }
 * ```
 */
export interface HttpServer<A extends NetAddr | UnixAddr = NetAddr | UnixAddr>
  extends AsyncDisposable {
  /** The bound address (with the real port when 0 was asked). */
  readonly addr: A;
  /** Resolves when the server has stopped and released everything. */
  readonly finished: Promise<void>;
  /**
   * Graceful drain: stop accepting (the listening socket is closed at
   * once), let in-flight requests finish (up to `drainTimeoutMs`) and answer
   * them with `connection: close`, close kept-alive connections between
   * requests once they stayed idle for `drainIdleMs`, then resolve (with
   * `finished`).
   */
  shutdown(): Promise<void>;
  /**
   * The reactor this server runs on: the thread's reactor, shared by the
   * servers of the thread. Timers, raw sockets and listeners put on it run
   * on the same loop as the server (no second `epoll_wait`). It runs while
   * a server of the thread runs: once the last one has finished it is
   * stopped and closed. `null` for a `workers: N` server, which serves in
   * Workers, each with its own reactor.
   */
  readonly reactor: Reactor | null;
  /** Keep the process alive while the server runs (the default; undoes `unref()`), as `Deno.HttpServer.ref()`. */
  ref(): void;
  /**
   * Let the process exit while this server runs, as `Deno.HttpServer.unref()`:
   * once nothing else keeps it alive (another ref'd server of the thread,
   * timers, other I/O), the process exits. A `shutdown()` under way holds
   * the process until it has finished.
   */
  unref(): void;
}
