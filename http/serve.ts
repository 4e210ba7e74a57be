/**
 * `serve()`: the `Deno.serve`-shaped entry point.
 *
 * @module
 */
import { ServerCore } from "./_core.ts";
import { resolveOptions } from "./_options.ts";
import { type ErrorHandler, ServeConn, type ServeContext } from "./_serve_conn.ts";
import type {
  HttpServer,
  NetAddr,
  ServeHandler,
  ServeInit,
  ServeOptions,
  UnixAddr,
} from "./types.ts";
import { serveInWorker, startWorkers } from "./_workers.ts";
import { isServeWorker } from "./workers.ts";

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
 * (shared by the servers of the thread).
 *
 * - `workers: N` serves on N threads: see `workers.ts`.
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
 * @throws {ErrnoError} When binding fails, e.g. `EADDRINUSE`.
 *
 * @example
 * ```ts
 * import { serve } from "./serve.ts";
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
 * Serve on a Unix socket with the handler in the options.
 *
 * @param init The options (with `path`) and the handler.
 * @returns The running server.
 *
 * @example
 * ```ts
 * import { serve } from "./serve.ts";
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
 * import { serve } from "./serve.ts";
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
 * import { serve } from "./serve.ts";
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
 * import { serve } from "./serve.ts";
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
  const resolved = resolveOptions(options, false);
  const ctx: ServeContext = { handler, onError: options.onError ?? defaultOnError };
  const factory = (conn: ConstructorParameters<typeof ServeConn>[0], core: ServerCore) =>
    new ServeConn(conn, core, ctx);
  if (isServeWorker()) return serveInWorker(resolved, factory);
  if (resolved.workers > 1) return startWorkers(resolved, factory);
  return new ServerCore(resolved, factory, true);
}
