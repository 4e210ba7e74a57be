/**
 * `serve()`: the `Deno.serve`-shaped entry point.
 *
 * @module
 */
import { ServerCore } from "./_core.ts";
import { resolveOptions } from "./_options.ts";
import { type ErrorHandler, ServeConn, type ServeContext } from "./_conn.ts";
import type {
  HttpServer,
  NetAddr,
  ServeHandler,
  ServeInit,
  ServeOptions,
  UnixAddr,
} from "./types.ts";
import { serveInWorker, serveSupervised, startWorkers } from "./_workers.ts";
import { isServeWorker } from "./workers.ts";
import {
  webSocketServe,
  type WebSocketServeInit,
  type WebSocketServer,
} from "./websocket/handlers.ts";
import { checkTlsServerOptions } from "../tls/listener.ts";

/** `Deno.serve` options that `serve()` does not implement: refused, never ignored. */
const UNSUPPORTED: readonly [string, string][] = [
  ["cid", "vsock"],
];

/**
 * Refuse the `Deno.serve` options `serve()` does not implement (an HTTPS
 * app must not silently serve plaintext), and map `tcpBacklog`.
 */
function denoOptions(options: ServeOptions): ServeOptions {
  const o = options as Readonly<Record<string, unknown>>;
  const refused = UNSUPPORTED.filter(([name]) => o[name] !== undefined);
  if (refused.length > 0) {
    const names = refused.map(([name]) => name).join(", ");
    const kinds = new Set(refused.map(([, kind]) => kind));
    throw new TypeError(
      `Cannot serve: ${names} ${refused.length === 1 ? "is" : "are"} not supported ` +
        `(serve() does not implement ${[...kinds].join(" and ")})`,
    );
  }
  if (o.automaticCompression === true) {
    throw new TypeError(
      "Cannot serve: automaticCompression is not supported (serve() sends bodies as given; " +
        "compress in the handler or in a proxy)",
    );
  }
  const transport = o.transport;
  if (transport !== undefined && transport !== "tcp" && transport !== "unix") {
    const name = JSON.stringify(transport);
    throw new TypeError(`Cannot serve: transport ${name} is not supported (only "tcp", "unix")`);
  }
  if (transport === "unix" && options.path === undefined) {
    throw new TypeError('Cannot serve: transport "unix" needs a path');
  }
  if (options.tcpBacklog === undefined) return options;
  if (options.listener?.backlog !== undefined && options.listener.backlog !== options.tcpBacklog) {
    throw new TypeError("Cannot serve: tcpBacklog and listener.backlog disagree");
  }
  return { ...options, listener: { ...options.listener, backlog: options.tcpBacklog } };
}

const defaultOnError: ErrorHandler = (error) => {
  console.error("ffinet http: the handler failed:", error);
  return new Response("Internal Server Error", {
    status: 500,
    headers: { "content-type": "text/plain;charset=UTF-8" },
  });
};

/**
 * Serve HTTP/1.1 with `handler`, as `Deno.serve`: every request is a web
 * `Request` (its body a stream with backpressure to the socket, its
 * `signal` aborted when the client goes away), every `Response` body is
 * accepted (a stream of unknown length goes out chunked, or until close
 * for HTTP/1.0). Pipelined requests are answered in order, and the
 * responses ready together leave in one write.
 *
 * Three forms: `serve(handler)`, `serve({ handler, ...options })` and
 * `serve(options, handler)`. The server runs on this thread's reactor
 * (shared by the servers of the thread; `server.reactor`, for timers and
 * raw sockets beside the server).
 *
 * - `workers: N` serves on N threads: see `workers.ts`.
 * - HTTPS with `cert` and `key` (PEM text, as `Deno.serve`), or with
 *   `certFile` and `keyFile` (re-read when the files change: a renewed
 *   certificate is served within a second, open connections keep the old
 *   one), plus certificates chosen by SNI, an encrypted key, ALPN and client
 *   certificates (see `ServeOptions`): `request.url` is `https://…`, and the
 *   handler's `info.tls` tells what was negotiated. With `workers`, every
 *   Worker shares the same session ticket keys (made and rotated in memory
 *   by the main thread), so a client resumes on any of them. Under
 *   ffinet's supervisor (`deno task serve`) the supervisor hands out and
 *   rotates the keys of every worker process (see `supervisor_channel.ts`).
 * - Socket activation: when `LISTEN_FDS` passes listening sockets to this
 *   process (systemd, ffinet's supervisor), a TCP server adopts one (by
 *   `listenFdName`, else the first free one) instead of binding.
 * - After listening, with `NOTIFY_SOCKET` set, `READY=1` is sent (and
 *   `WATCHDOG=1` at half of `WATCHDOG_USEC`).
 * - With `FFINET_WORKER_ID` set (a supervised worker) or
 *   `drainOnSignals: true`, SIGTERM/SIGINT drain the server and exit 0.
 *
 * @param handler The request handler (or the options, then the handler).
 * @returns The running server.
 * @throws {RangeError} For an option out of range (before anything is bound).
 * @throws {TypeError} For a `Deno.serve` option `serve()` does not implement
 * (`cid`: no vsock; `automaticCompression: true`), named in the message.
 * @throws {OpenSslError} For bad TLS input (a certificate that does not
 * parse or has expired, a key that does not match it, a wrong
 * passphrase), before anything is bound, with OpenSSL's error text.
 * @throws {ErrnoError} When binding fails: `instanceof` the matching
 * `Deno.errors` class, e.g. `Deno.errors.AddrInUse` for `EADDRINUSE`.
 *
 * @example
 * ```ts
 * import { serve } from "@ffinet/ffinet/http";
 *
 * const server = serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
 *   if (req.method === "POST") return Response.json(await req.json());
 *   return new Response("Hello, World!", { headers: { "content-type": "text/plain" } });
 * });
 * const res = await fetch(`http://127.0.0.1:${server.addr.port}/`, {
 *   method: "POST",
 *   body: '{"a":1}',
 * });
 * console.log(await res.json()); // { a: 1 }
 * await server.shutdown();
 * ```
 */
export function serve(handler: ServeHandler): HttpServer<NetAddr>;
/**
 * Serve with Bun's WebSocket shape: `websocket` handlers (`open`, `message`,
 * `close`, `drain`) for every socket, and a handler that calls
 * `server.upgrade(request, { data })` and returns nothing when it is true.
 * `shutdown()` closes the sockets with 1001 (going away) and waits for
 * them, up to `drainTimeoutMs`.
 *
 * @param init The options, `websocket` and the handler.
 * @returns The running server, with `upgrade()`.
 *
 * @example A chat room
 * ```ts
 * import { serve } from "@ffinet/ffinet/http";
 *
 * const server = serve<{ name: string }>({
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   onListen() {},
 *   websocket: {
 *     open: (ws) => ws.subscribe("room"),
 *     message: (ws, m) => ws.publish("room", `${ws.data.name}: ${m}`),
 *   },
 *   handler: (req) => {
 *     const name = new URL(req.url).searchParams.get("name") ?? "anonymous";
 *     if (server.upgrade(req, { data: { name } })) return;
 *     return new Response("a chat room: connect with WebSocket");
 *   },
 * });
 * await server.shutdown();
 * ```
 */
export function serve<T>(init: WebSocketServeInit<T>): WebSocketServer<T>;
/**
 * Serve on a Unix socket with the handler in the options.
 *
 * @param init The options (with `path`) and the handler.
 * @returns The running server.
 *
 * @example
 * ```ts
 * import { serve } from "@ffinet/ffinet/http";
 * const dir = await Deno.makeTempDir();
 * const server = serve({ path: `${dir}/s.sock`, onListen() {}, handler: () => new Response("hi") });
 * console.log(server.addr.path);
 * await server.shutdown();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function serve(init: ServeInit & { path: string }): HttpServer<UnixAddr>;
/**
 * Serve over TCP with the handler in the options, as `Deno.serve({ handler, ...options })`.
 *
 * @param init The options and the handler.
 * @returns The running server.
 *
 * @example
 * ```ts
 * import { serve } from "@ffinet/ffinet/http";
 * const server = serve({ hostname: "127.0.0.1", port: 0, onListen() {}, handler: () => new Response("hi") });
 * console.log(server.addr.port);
 * await server.shutdown();
 * ```
 */
export function serve(init: ServeInit): HttpServer<NetAddr>;
/**
 * Serve on a Unix socket with `options` (with `path`) and `handler`.
 *
 * @param options Where to listen, limits, timeouts.
 * @param handler The request handler.
 * @returns The running server.
 *
 * @example
 * ```ts
 * import { serve } from "@ffinet/ffinet/http";
 * const dir = await Deno.makeTempDir();
 * const server = serve({ path: `${dir}/s.sock`, onListen() {} }, () => new Response("hi"));
 * console.log(server.addr.path);
 * await server.shutdown();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function serve(
  options: ServeOptions & { path: string },
  handler: ServeHandler,
): HttpServer<UnixAddr>;
/**
 * Serve over TCP with `options` and `handler`, as `Deno.serve(options, handler)`.
 *
 * @param options Where to listen, limits, timeouts, workers.
 * @param handler The request handler.
 * @returns The running server.
 *
 * @example
 * ```ts
 * import { serve } from "@ffinet/ffinet/http";
 * const server = serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => new Response("hi"));
 * console.log(server.addr.port);
 * await server.shutdown();
 * ```
 */
export function serve(options: ServeOptions, handler: ServeHandler): HttpServer<NetAddr>;
export function serve(
  a: ServeHandler | ServeInit | ServeOptions,
  b?: ServeHandler,
): HttpServer {
  let options: ServeOptions;
  let handler: ServeHandler;
  if (typeof a === "function") {
    options = {};
    handler = a;
  } else if (typeof b === "function") {
    options = a;
    handler = b;
  } else if (
    a !== null && typeof a === "object" && typeof (a as ServeInit).handler === "function"
  ) {
    options = a;
    handler = (a as ServeInit).handler;
  } else {
    throw new TypeError("Cannot serve: no handler function was given");
  }
  const ws = (options as Partial<WebSocketServeInit<unknown>>).websocket !== undefined
    ? webSocketServe(options as WebSocketServeInit<unknown>, handler)
    : undefined;
  if (ws !== undefined) handler = ws.handler;
  options = denoOptions(options);
  const resolved = resolveOptions(options, false);
  const ctx: ServeContext = { handler, onError: options.onError ?? defaultOnError };
  const factory = (conn: ConstructorParameters<typeof ServeConn>[0], core: ServerCore) =>
    new ServeConn(conn, core, ctx);
  let server: HttpServer;
  if (isServeWorker()) server = serveInWorker(resolved, factory);
  else if (resolved.workers > 1) {
    // The Workers load the certificates again; bad ones fail here first.
    if (resolved.tls !== undefined) checkTlsServerOptions(resolved.tls);
    server = startWorkers(resolved, factory);
  } else server = serveSupervised(resolved, (o) => new ServerCore(o, factory, true));
  return ws !== undefined ? ws.attach(server as HttpServer<NetAddr>) : server;
}
