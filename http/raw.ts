/**
 * `serveRaw()`: the low-level entry point, for C-level cost. The handler
 * gets the parser's request view (body collected whole, up to
 * `maxBodyBytes`) and a responder; no `Request`/`Response` objects are
 * made. It runs on the same connection lifecycle as `serve()` (`_conn.ts`):
 * responses leave in request order and the responses to one read's
 * pipelined requests leave in one write; `Connection: close`/HTTP/1.0 end
 * the connection; HEAD gets no body; reading stops above the high-water
 * mark; header, body and idle timeouts; graceful drain.
 *
 * The fast paths are opt-in: `repeatedHeadMemo: true` answers a head
 * byte-identical to the connection's previous one after one comparison, and
 * {@linkcode prebuilt} responses are serialized once (per second, for the
 * `date`).
 *
 * @module
 */
import { ServerCore } from "./_core.ts";
import { type Dispatcher, type Exchange, HttpConn, RUNNING } from "./_conn.ts";
import { resolveOptions } from "./_options.ts";
import { threadReactorRuns } from "./_reactor.ts";
import {
  bodiless,
  checkStatus,
  CLOSE,
  dateStamp,
  fieldLines,
  KEEP,
  KEEP_10,
  OutBuffer,
  plainResponse,
  refreshDate,
  utf8,
} from "./_wire.ts";
import type { HttpRequest } from "./parser/mod.ts";
import type { HttpServer, ServeOptions } from "./types.ts";

/**
 * Header fields for a raw response: a record or `[name, value]` pairs.
 *
 * @example
 * ```ts
 * import type { RawHeaders } from "@ffinet/ffinet/http";
 * const headers: RawHeaders = [["cache-control", "no-store"]];
 * ```
 */
export type RawHeaders =
  | Readonly<Record<string, string>>
  | ReadonlyArray<readonly [string, string]>;

/**
 * Writes the response to one request of {@linkcode RawHandler}. Exactly one
 * of `send`/`sendPrebuilt` must be called, now or later; responses leave in
 * request order whatever order they are given in.
 *
 * @example
 * ```ts
 * import type { RawResponder } from "@ffinet/ffinet/http";
 * function notFound(res: RawResponder): void {
 *   res.send(404, "no such page\n");
 * }
 * ```
 */
export interface RawResponder {
  /** Whether the connection stays open after this response. */
  readonly keepAlive: boolean;
  /**
   * Answer with `status`, `body` (a string goes out as UTF-8) and headers.
   * `Date`, `Content-Length` and `Connection` are added; a `HEAD` request
   * gets the head only.
   */
  send(
    status: number,
    body?: string | Uint8Array,
    options?: { contentType?: string; headers?: RawHeaders },
  ): void;
  /**
   * Answer with a response built once (see `prebuilt()`): its bytes are
   * reused as they are, with the `Date` of the current second.
   */
  sendPrebuilt(response: PrebuiltResponseLike): void;
}

/**
 * A response serialized ahead of time; made by {@linkcode prebuilt}.
 *
 * @example
 * ```ts
 * import type { PrebuiltResponseLike } from "@ffinet/ffinet/http";
 * function size(p: PrebuiltResponseLike): number {
 *   return p.bytes(true, "1.1").length;
 * }
 * ```
 */
export interface PrebuiltResponseLike {
  /** The whole response for a kept-alive (or closing) connection of that version. */
  bytes(keepAlive: boolean, version: "1.0" | "1.1"): Uint8Array;
}

/**
 * A low-level handler: a parsed request (body buffered in full, up to
 * `maxBodyBytes`) and its responder. It returns nothing; it may answer later.
 *
 * @example
 * ```ts
 * import type { RawHandler } from "@ffinet/ffinet/http";
 * const handler: RawHandler = (req, res) => res.send(200, `${req.method} ${req.target}\n`);
 * ```
 */
export type RawHandler = (request: HttpRequest, response: RawResponder) => void;

/**
 * Options of `serveRaw()`: those of `serve()` (except `onError`, `workers`)
 * and the opt-in fast paths.
 *
 * @example
 * ```ts
 * import type { RawServeOptions } from "@ffinet/ffinet/http";
 * const options: RawServeOptions = { port: 0, repeatedHeadMemo: true };
 * ```
 */
export interface RawServeOptions extends Omit<ServeOptions, "onError" | "workers"> {
  /**
   * Answer a request head byte-identical to the connection's previous one
   * after a single comparison, reusing the parsed request (benchmarks,
   * pollers). Default false.
   */
  repeatedHeadMemo?: boolean;
  /** Called when a handler throws (the request gets a 500). Default: logs it. */
  onError?: (error: unknown) => void;
}

const EMPTY = new Uint8Array(0);

/** The body of a raw response as bytes. */
function bodyBytes(body: unknown): Uint8Array {
  if (body === undefined) return EMPTY;
  if (typeof body === "string") return utf8(body);
  if (body instanceof Uint8Array) return body;
  throw new TypeError("Cannot write response: the body must be a string or a Uint8Array");
}

/** A response built once by {@linkcode prebuilt}. */
class Prebuilt implements PrebuiltResponseLike {
  readonly #status: number;
  readonly #body: Uint8Array;
  readonly #lines: string;
  #second = -1;
  #cache: (Uint8Array | null)[] = [null, null, null];

  constructor(
    status: number,
    body: string | Uint8Array,
    options: { contentType?: string; headers?: RawHeaders },
  ) {
    checkStatus(status);
    const bytes = bodyBytes(body);
    if (bodiless(status) && bytes.length !== 0) {
      throw new TypeError(`Cannot write response: status ${status} cannot have a body`);
    }
    this.#status = status;
    this.#body = bytes.slice();
    this.#lines = fieldLines(options.headers, options.contentType, bytes.length !== 0);
  }

  bytes(keepAlive: boolean, version: "1.0" | "1.1"): Uint8Array {
    refreshDate();
    return this.forMode(!keepAlive ? CLOSE : version === "1.0" ? KEEP_10 : KEEP);
  }

  /** The whole response for a connection mode, as of the current `date`. */
  forMode(mode: number): Uint8Array {
    const second = dateStamp();
    if (second !== this.#second) {
      this.#second = second;
      this.#cache = [null, null, null];
    }
    let bytes = this.#cache[mode];
    if (bytes === undefined || bytes === null) {
      const out = new OutBuffer(256 + this.#body.length);
      plainResponse(out, this.#status, this.#body, this.#lines, mode, false);
      bytes = this.#cache[mode] = out.take();
    }
    return bytes;
  }

  /** The head alone (for HEAD): the response without its body. */
  headForMode(mode: number): Uint8Array {
    const whole = this.forMode(mode);
    return whole.subarray(0, whole.length - this.#body.length);
  }
}

/**
 * Build a response once, to send with `RawResponder.sendPrebuilt`: its
 * bytes are made once per second (when the `date` changes) and per
 * connection mode, then reused as they are.
 *
 * @param status The status code.
 * @param body The body (a string goes out as UTF-8).
 * @param options The content type and other header fields.
 * @throws {TypeError} When a header is malformed or reserved.
 *
 * @example
 * ```ts
 * import { prebuilt } from "@ffinet/ffinet/http";
 * const hello = prebuilt(200, "Hello, World!", { contentType: "text/plain" });
 * console.log(hello.bytes(true, "1.1").length > 0);
 * ```
 */
export function prebuilt(
  status: number,
  body: string | Uint8Array,
  options: { contentType?: string; headers?: RawHeaders } = {},
): PrebuiltResponseLike {
  return new Prebuilt(status, body, options);
}

/** One request's responder. */
class Responder implements RawResponder {
  readonly #conn: HttpConn;
  readonly #ex: Exchange;
  readonly #head: boolean;
  readonly #version: "1.0" | "1.1";
  #answered = false;

  constructor(conn: HttpConn, ex: Exchange, req: HttpRequest) {
    this.#conn = conn;
    this.#ex = ex;
    this.#head = req.method === "HEAD";
    this.#version = req.version;
  }

  /** Whether the connection goes on after this response (false once a drain began before it). */
  get keepAlive(): boolean {
    return this.#conn.keepsAlive(this.#ex);
  }

  send(
    status: number,
    body?: string | Uint8Array,
    options?: { contentType?: string; headers?: RawHeaders },
  ): void {
    this.#claim();
    let bytes: Uint8Array;
    let lines: string;
    try {
      checkStatus(status);
      bytes = bodyBytes(body);
      lines = fieldLines(options?.headers, options?.contentType, bytes.length !== 0);
      if (bodiless(status) && bytes.length !== 0) {
        throw new TypeError(`Cannot write response: status ${status} cannot have a body`);
      }
    } catch (e) {
      // The request is answered all the same: the connection never waits on it.
      this.#conn.respondError(this.#ex, 500);
      throw e;
    }
    const omit = this.#head;
    this.#conn.respondWith(
      this.#ex,
      (out, mode) => plainResponse(out, status, bytes, lines, mode, omit),
    );
  }

  sendPrebuilt(response: PrebuiltResponseLike): void {
    this.#claim();
    if (response instanceof Prebuilt) {
      const head = this.#head;
      this.#conn.respondWith(
        this.#ex,
        (out, mode) => out.bytes(head ? response.headForMode(mode) : response.forMode(mode)),
      );
      return;
    }
    let bytes: Uint8Array;
    try {
      bytes = response.bytes(this.keepAlive, this.#version);
      if (!(bytes instanceof Uint8Array)) {
        throw new TypeError(
          "Cannot write response: a prebuilt response's bytes are not a Uint8Array",
        );
      }
    } catch (e) {
      this.#conn.respondError(this.#ex, 500);
      throw e;
    }
    this.#conn.respondWith(this.#ex, (out) => out.bytes(bytes));
  }

  #claim(): void {
    if (this.#answered) throw new Error("Cannot respond: this request was already answered");
    this.#answered = true;
  }
}

/** `serveRaw()`'s handling: the parsed request, its body collected, and a responder. */
function rawDispatcher(
  handler: RawHandler,
  onError: (error: unknown) => void,
  memo: boolean,
): Dispatcher {
  return {
    collect: true,
    memo,
    onError(error: unknown): void {
      onError(error);
    },
    dispatch(conn: HttpConn, ex: Exchange, request: HttpRequest): void {
      try {
        handler(request, new Responder(conn, ex, request));
      } catch (e) {
        // Unanswered: onError, then a 500. Answered already: onError is told.
        if (ex.state === RUNNING) conn.handlerFailed(ex, e);
        else onError(e);
      }
    },
  };
}

/**
 * Serve with a low-level handler: `(request, responder) => void`. See the
 * module documentation for what it does and does not do.
 *
 * @param options As `serve()`'s (hostname, port, path, limits, timeouts, …),
 * plus `repeatedHeadMemo`. The thread's reactor defaults to `busyWaitMs: 10`
 * here (it waits for the next event on the thread while traffic flows, as a
 * C event loop does), when this server is the first on the thread.
 * @param handler Called with each request; answer now or later through the responder.
 * @returns The running server.
 *
 * @example
 * ```ts
 * import { prebuilt, serveRaw } from "@ffinet/ffinet/http";
 *
 * const hello = prebuilt(200, "Hello, World!", { contentType: "text/plain" });
 * const server = serveRaw(
 *   { hostname: "127.0.0.1", port: 0, repeatedHeadMemo: true, onListen() {} },
 *   (req, res) => {
 *     if (req.target === "/") res.sendPrebuilt(hello);
 *     else res.send(404, "Not Found\n");
 *   },
 * );
 * const { port } = server.addr as { port: number };
 * console.log(await (await fetch(`http://127.0.0.1:${port}/`)).text()); // "Hello, World!"
 * await server.shutdown();
 * ```
 */
export function serveRaw(options: RawServeOptions, handler: RawHandler): HttpServer {
  const { onError: rawOnError, repeatedHeadMemo, ...rest } = options;
  // The first server of the thread tunes its reactor: serveRaw() busy-waits
  // for the next event while traffic flows (as a C epoll server does),
  // unless told otherwise; beside a running server it takes the reactor as it is.
  const reactor = threadReactorRuns() ? rest.reactor : { busyWaitMs: 10, ...rest.reactor };
  const resolved = resolveOptions({ ...rest, ...(reactor ? { reactor } : {}) }, true);
  const onError = rawOnError ??
    ((e: unknown) => console.error("ffinet http: the handler failed:", e));
  const dispatcher = rawDispatcher(handler, onError, repeatedHeadMemo === true);
  return new ServerCore(resolved, (conn, core) => new HttpConn(conn, core, dispatcher), true);
}
