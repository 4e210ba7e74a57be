/**
 * `serveRaw()`: the low-level entry point, for C-level cost. The handler
 * gets the parser's request view (body buffered, up to `maxBodyBytes`) and
 * a responder; no `Request`/`Response` objects are made. Responses are
 * serialized straight into the connection's batch and the responses to one
 * read's pipelined requests leave in one write.
 *
 * The fast paths are opt-in: `repeatedHeadMemo: true` answers a head
 * byte-identical to the connection's previous one after one comparison, and
 * {@linkcode prebuilt} responses are serialized once (per second, for the
 * `Date`).
 *
 * The same semantics as `serve()` hold: responses leave in request order,
 * `Connection: close`/HTTP/1.0 end the connection, HEAD gets no body,
 * reading stops above the high-water mark, header/idle timeouts, graceful
 * drain.
 *
 * @module
 */
import type { Connection } from "../reactor/connection.ts";
import { type CoreConn, ServerCore } from "./_core.ts";
import { resolveOptions } from "./_options.ts";
import { HttpParseError } from "./parse_error.ts";
import { HttpParser, type HttpRequest } from "./parser.ts";
import type {
  PrebuiltResponseLike,
  RawHandler,
  RawHeaders,
  RawResponder,
  RawServeOptions,
} from "./raw_types.ts";
import { errorResponse, httpDate, ResponseBuffer, writeResponse } from "./response.ts";
import type { HttpServer } from "./types.ts";

const MAX_PIPELINE = 64;
const LINGER_MS = 2000;
const CONTINUE = new TextEncoder().encode("HTTP/1.1 100 Continue\r\n\r\n");
const batch = new ResponseBuffer();

/** The current second, read once per batch of requests (not per response). */
let second = -1;
function tick(): void {
  second = Math.floor(Date.now() / 1000);
}

/** A response built once by {@linkcode prebuilt}. */
class Prebuilt implements PrebuiltResponseLike {
  readonly status: number;
  readonly body: string | Uint8Array;
  readonly options: { contentType?: string; headers?: RawHeaders };
  #second = -1;
  #cache: (Uint8Array | null)[] = [null, null, null];

  constructor(
    status: number,
    body: string | Uint8Array,
    options: { contentType?: string; headers?: RawHeaders },
  ) {
    this.status = status;
    this.body = body;
    this.options = options;
    writeResponse(status, body, options); // validate now
  }

  bytes(keepAlive: boolean, version: "1.0" | "1.1"): Uint8Array {
    if (second < 0) tick();
    if (second !== this.#second) {
      this.#second = second;
      this.#cache = [null, null, null];
      httpDate(second * 1000);
    }
    const i = !keepAlive ? 1 : version === "1.0" ? 2 : 0;
    return this.#cache[i] ??= writeResponse(this.status, this.body, {
      ...this.options,
      keepAlive,
      version,
    });
  }
}

/**
 * Build a response once, to send with `RawResponder.sendPrebuilt`: its
 * bytes are made once per second (when the `Date` changes) and per
 * connection mode, then reused as they are.
 *
 * @param status The status code.
 * @param body The body (a string goes out as UTF-8).
 * @param options The content type and other header fields.
 * @throws {TypeError} When a header is malformed or reserved.
 *
 * @example
 * ```ts
 * import { prebuilt } from "./raw.ts";
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
  /** Whether the connection goes on after this response (false once a drain begins before it is answered). */
  keepAlive: boolean;
  readonly #conn: RawConn;
  readonly #req: HttpRequest;
  /** Serialized bytes when answered out of turn. */
  bytes: Uint8Array | null = null;
  answered = false;

  constructor(conn: RawConn, req: HttpRequest, keepAlive: boolean) {
    this.#conn = conn;
    this.#req = req;
    this.keepAlive = keepAlive;
  }

  send(
    status: number,
    body?: string | Uint8Array,
    options?: { contentType?: string; headers?: RawHeaders },
  ): void {
    this.#answer(() => {
      const req = this.#req;
      const o = {
        keepAlive: this.keepAlive,
        version: req.version,
        omitBody: req.method === "HEAD",
        ...(options?.contentType !== undefined ? { contentType: options.contentType } : {}),
        ...(options?.headers !== undefined ? { headers: options.headers } : {}),
      };
      return [status, body ?? "", o] as const;
    }, null);
  }

  sendPrebuilt(response: PrebuiltResponseLike): void {
    const req = this.#req;
    if (req.method === "HEAD" && response instanceof Prebuilt) {
      this.send(response.status, response.body, response.options);
      return;
    }
    this.#answer(null, response.bytes(this.keepAlive, req.version));
  }

  #answer(
    make:
      | (() => readonly [number, string | Uint8Array, Parameters<typeof writeResponse>[2]])
      | null,
    bytes: Uint8Array | null,
  ): void {
    if (this.answered) throw new Error("Cannot respond: this request was already answered");
    this.answered = true;
    this.#conn.answered(this, make, bytes);
  }
}

/** A `serveRaw()` connection. */
class RawConn implements CoreConn {
  readonly #conn: Connection;
  readonly #core: ServerCore;
  readonly #handler: RawHandler;
  readonly #onError: (error: unknown) => void;
  readonly #parser: HttpParser;
  /** Responders waiting for their turn (the first is the oldest unanswered). */
  readonly #queue: Responder[] = [];
  #stopReading = false;
  #ending = false;
  #endedAt = 0;
  #closed = false;
  #inData = false;
  #blocked = false;
  #peerEnded = false;
  #waitStart: number;
  #headStart = -1;
  /** When body bytes last arrived (the body timeout, while a body is buffered). */
  #bodyProgress = 0;
  #continued: HttpRequest | null = null;

  constructor(
    conn: Connection,
    core: ServerCore,
    handler: RawHandler,
    onError: (error: unknown) => void,
    memo: boolean,
  ) {
    this.#conn = conn;
    this.#core = core;
    this.#handler = handler;
    this.#onError = onError;
    const o = core.options;
    this.#parser = new HttpParser({
      maxHeaderBytes: o.maxHeaderBytes,
      maxBodyBytes: o.maxBodyBytes,
      maxTargetBytes: o.maxTargetBytes,
      memo,
    });
    this.#waitStart = core.reactor.now;
    conn.onData = (data) => this.#onData(data);
    conn.onEnd = () => {
      this.#peerEnded = true;
      this.#stopReading = true;
      if (this.#ending || this.#queue.length === 0) this.#end();
    };
    conn.onDrain = () => this.#onData(null);
    conn.onClose = () => {
      this.#closed = true;
      core.remove(this);
    };
  }

  #onData(data: Uint8Array | null): void {
    if (this.#ending || this.#closed) return;
    const parser = this.#parser;
    const conn = this.#conn;
    if (data !== null) {
      if (this.#stopReading) return;
      const now = this.#core.reactor.now;
      if (this.#headStart < 0) this.#headStart = now;
      this.#bodyProgress = now;
      parser.feed(data);
    }
    const hwm = this.#core.options.highWaterMark;
    tick();
    this.#inData = true;
    let blocked = false;
    try {
      while (!this.#stopReading) {
        if (this.#queue.length >= MAX_PIPELINE || conn.writableLength >= hwm) {
          blocked = true;
          break;
        }
        const req = parser.next();
        if (req === null) {
          const pending = parser.pendingHead;
          if (pending !== null && pending.expectContinue && this.#continued !== pending) {
            this.#continued = pending;
            if (this.#queue.length === 0) batch.append(CONTINUE);
          }
          break;
        }
        this.#headStart = parser.idle ? -1 : this.#core.reactor.now;
        const keepAlive = req.keepAlive && !this.#core.draining;
        if (!keepAlive) this.#stopReading = true;
        const r = new Responder(this, req, keepAlive);
        this.#queue.push(r);
        try {
          this.#handler(req, r);
        } catch (e) {
          this.#onError(e);
          if (!r.answered) r.send(500, "Internal Server Error\n");
        }
      }
    } catch (e) {
      if (!(e instanceof HttpParseError)) {
        batch.clear(); // a bug: drop this connection's output and cut it
        this.#inData = false;
        conn.abort();
        throw e;
      }
      this.#stopReading = true;
      const r = new Responder(this, null as unknown as HttpRequest, false);
      r.answered = true;
      r.bytes = writeResponse(e.status, `${e.status} ${e.reason}\n`, {
        keepAlive: false,
        omitBody: e.method === "HEAD",
      });
      this.#queue.push(r);
      this.#advance();
    } finally {
      this.#inData = false;
    }
    if (this.#closed) return;
    parser.retain();
    this.#blocked = blocked;
    this.#flush();
    if (!this.#ending && !this.#closed) {
      if (blocked || this.#stopReading) conn.pause();
      else conn.resume();
    }
  }

  answered(
    r: Responder,
    make:
      | (() => readonly [number, string | Uint8Array, Parameters<typeof writeResponse>[2]])
      | null,
    bytes: Uint8Array | null,
  ): void {
    if (this.#closed) return;
    if (!this.#inData) tick();
    if (this.#queue[0] === r) {
      if (bytes !== null) batch.append(bytes);
      else {
        const [status, body, options] = make!();
        batch.write(status, body, options);
      }
      this.#queue.shift();
      if (!r.keepAlive) {
        this.#end();
        return;
      }
      this.#advance();
    } else {
      if (bytes === null) {
        const [status, body, options] = make!();
        bytes = writeResponse(status, body, options);
      }
      r.bytes = bytes;
    }
    if (!this.#inData) {
      this.#flush();
      if (!this.#ending && !this.#closed && this.#blocked) this.#onData(null);
    }
  }

  #advance(): void {
    for (;;) {
      const r = this.#queue[0];
      if (r === undefined) {
        this.#waitStart = this.#core.reactor.now;
        // Draining: an idle connection gets the grace (`drainCheck`).
        if (this.#stopReading || this.#core.draining && this.#core.options.drainIdleMs === 0) {
          this.#end();
        }
        return;
      }
      if (r.bytes === null) return;
      batch.append(r.bytes);
      r.bytes = null;
      this.#queue.shift();
      if (!r.keepAlive) {
        this.#end();
        return;
      }
    }
  }

  #flush(): void {
    if (batch.length === 0) return;
    if (!this.#closed && this.#conn.state === "open") this.#conn.write(batch.bytes());
    batch.clear();
  }

  #end(): void {
    if (this.#ending || this.#closed) return;
    this.#ending = true;
    this.#endedAt = this.#core.reactor.now;
    this.#flush();
    if (this.#peerEnded || this.#core.draining) this.#conn.close();
    else {
      this.#conn.end();
      this.#conn.resume();
    }
  }

  sweep(now: number): void {
    if (this.#closed) return;
    const o = this.#core.options;
    if (this.#ending) {
      if (now - this.#endedAt > LINGER_MS) this.#conn.close();
      return;
    }
    if (this.#blocked) {
      if (this.#headStart >= 0) this.#headStart = now;
      this.#bodyProgress = now;
      return;
    }
    if (this.#queue.length > 0 || this.#stopReading) return;
    if (this.#parser.pendingHead !== null) {
      // A body is arriving: its own, progress-based timeout (not the header one).
      if (o.bodyTimeoutMs > 0 && now - this.#bodyProgress > o.bodyTimeoutMs) this.#timeout();
    } else if (this.#headStart >= 0) {
      if (o.headerTimeoutMs > 0 && now - this.#headStart > o.headerTimeoutMs) this.#timeout();
    } else if (o.idleTimeoutMs > 0 && now - this.#waitStart > o.idleTimeoutMs) {
      this.#end();
    }
  }

  #timeout(): void {
    this.#stopReading = true;
    batch.append(errorResponse(408));
    this.#end();
  }

  drain(): void {
    if (this.#closed) return;
    if (this.#ending) {
      this.#conn.close();
      return;
    }
    const last = this.#queue[this.#queue.length - 1];
    if (last === undefined) {
      // Between requests: reading goes on (a request that arrives gets
      // `connection: close`); an idle one closes after the grace
      // (`drainCheck`), at once when it is idle that long already.
      this.drainCheck(this.#core.reactor.now);
    } else if (!last.answered) {
      // Its response is still to be made: it says `connection: close` and ends the connection.
      last.keepAlive = false;
      this.#stopReading = true;
    }
    // Otherwise that response was made with keep-alive: after it the
    // connection idles with the grace, as above.
  }

  drainCheck(now: number): void {
    if (
      this.#closed || this.#ending || this.#stopReading || this.#queue.length > 0 ||
      this.#headStart >= 0 || this.#parser.pendingHead !== null
    ) return;
    if (now - this.#waitStart >= this.#core.options.drainIdleMs) this.#end();
  }

  abort(): void {
    if (!this.#closed) this.#conn.abort();
  }
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
 * import { prebuilt, serveRaw } from "./raw.ts";
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
  // A dedicated server (the reactor is the thread's, so the first server's
  // options win): busy-wait for the next event while traffic flows
  // (as the C reference does), unless told otherwise.
  const resolved = resolveOptions({ ...rest, reactor: { busyWaitMs: 10, ...rest.reactor } }, true);
  const onError = rawOnError ??
    ((e: unknown) => console.error("ffinet http: the handler failed:", e));
  const memo = repeatedHeadMemo === true;
  return new ServerCore(
    resolved,
    (conn, core) => new RawConn(conn, core, handler, onError, memo),
    true,
  );
}
