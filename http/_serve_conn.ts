/**
 * One connection of `serve()` (private), its input side: parses requests
 * (bodies streamed with backpressure), runs the handler for each, enforces
 * the timeouts. The responses go through the output side it extends
 * (`_serve_out.ts`): in request order, batched into one write.
 *
 * Reading stops while: the unsent output is above the high-water mark; the
 * handler has not taken the request body it was given; 64 responses are
 * pending; or the connection is to end after the responses in flight
 * (`Connection: close`, HTTP/1.0, an error, an upgrade, a drain).
 *
 * @module
 */
import type { Connection } from "../reactor/connection.ts";
import type { ProxyInfo } from "../reactor/proxy_protocol.ts";
import type { CoreConn, ServerCore } from "./_core.ts";
import { toAddr } from "./_core.ts";
import { refreshDate } from "./_out.ts";
import { HttpParseError } from "./parse_error.ts";
import type { HttpRequest } from "./parser.ts";
import type { NetAddr, UnixAddr } from "./types.ts";
import { ServerRequest } from "./_request.ts";
import { DONE, Exchange, type ExchangeOwner, Info, RUNNING } from "./_exchange.ts";
import {
  batch,
  CONTINUE,
  LINGER_MS,
  MAX_PIPELINE,
  type ServeContext,
  ServeOutput,
  TIME_ORIGIN,
} from "./_serve_out.ts";

export type { ErrorHandler, ServeContext } from "./_serve_out.ts";

/** A `serve()` connection. */
export class ServeConn extends ServeOutput implements CoreConn, ExchangeOwner {
  constructor(conn: Connection, core: ServerCore, ctx: ServeContext) {
    super(conn, core, ctx);
    conn.onData = (data) => this._onData(data);
    conn.onEnd = () => this._onEnd();
    conn.onDrain = () => this._onDrain();
    conn.onClose = () => this._onClose();
  }

  /** The PROXY protocol header the connection arrived with, if any. */
  proxyInfo(): ProxyInfo | undefined {
    return this._conn.proxyInfo;
  }

  remoteAddr(): NetAddr | UnixAddr {
    if (this._remote === null) {
      try {
        this._remote = toAddr(this._conn.remoteAddress());
      } catch {
        this._remote = { transport: "tcp", hostname: "", port: 0 };
      }
    }
    return this._remote;
  }

  // -------------------------------------------------------------------------
  // Input

  _onData(data: Uint8Array): void {
    if (this._ending || this._stopReading && this._bodyEx === null) return; // lingering: drop
    if (this._headStart < 0 && this._bodyEx === null) this._headStart = this._core.reactor.now;
    this._parser.feed(data);
    this._pump();
  }

  _onEnd(): void {
    this._peerEnded = true;
    this._gone = true;
    // As Go's net/http: the client's EOF cancels the requests in progress
    // (their responses are still sent, for clients that only half-closed).
    const gone = new Error("The client closed the connection");
    for (const ex of this._queue) if (ex.state !== DONE) ex.controller?.abort(gone);
    if (this._ending) {
      this._conn.close();
      return;
    }
    const bodyEx = this._bodyEx;
    if (bodyEx !== null) {
      // The body was cut short.
      this._endBody(bodyEx, new Error("Cannot read the request body: the client closed early"));
    }
    this._stopReading = true;
    this._maybeClose();
  }

  _onDrain(): void {
    const waiters = this._drainWaiters;
    this._drainWaiters = [];
    for (const w of waiters) w();
    this._pump();
  }

  _onClose(): void {
    this._closed = true;
    this._gone = true;
    const gone = new Error("Cannot respond: the client closed the connection");
    for (const ex of this._queue) {
      if (ex.state !== DONE) {
        ex.controller?.abort(gone);
        if (ex.body !== null) this._endBody(ex, gone);
        ex.stream?.cancel(gone).catch(() => {});
        ex.upgrade?.reject(gone);
        ex.finish();
      }
    }
    this._queue.length = 0;
    const waiters = this._drainWaiters;
    this._drainWaiters = [];
    for (const w of waiters) w();
    this._core.remove(this);
  }

  /** Parse and dispatch what can be, then send what is ready. */
  _pump(): void {
    if (this._pumping || this._closed) return;
    this._pumping = true;
    // The reactor's clock (read once per batch) as wall time: no clock call here.
    refreshDate(TIME_ORIGIN + this._core.reactor.now);
    const parser = this._parser;
    const conn = this._conn;
    const hwm = this._core.options.highWaterMark;
    let blocked = false;
    try {
      for (;;) {
        if (this._closed || this._ending) break;
        const bodyEx = this._bodyEx;
        if (bodyEx !== null) {
          const ctrl = bodyEx.body;
          if (!bodyEx.discard && (ctrl === null || (ctrl.desiredSize ?? 1) <= 0)) {
            blocked = true; // the handler has not taken what it was given
            break;
          }
          const chunk = parser.readBody();
          if (chunk !== null) {
            this._bodyProgress = this._core.reactor.now;
            if (!bodyEx.discard) ctrl!.enqueue(chunk.slice());
            continue;
          }
          if (!parser.inBody) {
            this._endBody(bodyEx, null);
            continue;
          }
          break; // more body bytes needed
        }
        if (this._stopReading) break;
        if (
          this._upgradePending || // nothing more is read until the upgrade is decided
          this._queue.length >= MAX_PIPELINE || conn.writableLength >= hwm ||
          (this._core.draining && this._queue.length > 0)
        ) {
          blocked = true;
          break;
        }
        const head = parser.nextHead();
        if (head === null) break;
        this._headStart = parser.idle ? -1 : this._core.reactor.now;
        this._start(head);
      }
    } catch (e) {
      if (!(e instanceof HttpParseError)) {
        // A bug: drop what this pump serialized and cut the connection.
        batch.len = 0;
        this._pumping = false;
        this._conn.abort();
        throw e;
      }
      this._parseFailed(e);
    } finally {
      this._pumping = false;
    }
    if (!this._closed) {
      parser.retain();
      this._flush();
      if (!this._closed && !this._ending) {
        this._blocked = blocked;
        if (blocked || this._stopReading && this._bodyEx === null) conn.pause();
        else conn.resume();
      }
    }
  }

  _parseFailed(e: HttpParseError): void {
    this._stopReading = true;
    const bodyEx = this._bodyEx;
    if (bodyEx !== null) {
      this._endBody(bodyEx, e);
      if (bodyEx.state === RUNNING) {
        // Its handler has not answered: the error is the answer.
        bodyEx.close = true;
        this._respondError(bodyEx, e.status);
        return;
      }
    }
    const ex = new Exchange(null, null);
    ex.close = true;
    ex.isHead = e.method === "HEAD";
    this._queue.push(ex);
    this._respondError(ex, e.status);
  }

  // -------------------------------------------------------------------------
  // Requests

  _start(head: HttpRequest): void {
    const ex = new Exchange(head, this);
    const core = this._core;
    if (!head.keepAlive || core.draining) {
      ex.close = true;
      this._stopReading = true;
    }
    this._queue.push(ex);
    if (head.bodyLength !== 0) {
      ex.bodyDone = false;
      ex.wantsContinue = head.expectContinue;
      this._bodyEx = ex;
      this._bodyProgress = core.reactor.now;
      // A Request cannot carry a GET or HEAD body: it is read and dropped.
      if (head.method === "GET" || head.method === "HEAD") ex.discard = true;
    }
    if (head.upgrade) this._upgradePending = true;
    if (head.target.charCodeAt(0) !== 47 && !this._validTarget(head)) {
      ex.close = true;
      this._stopReading = true;
      this._respondError(ex, 400);
      return;
    }
    const request = new ServerRequest(head, ex) as unknown as Request;
    let result: Response | Promise<Response>;
    try {
      result = this._ctx.handler(request, new Info(this, ex));
    } catch (e) {
      this._handlerFailed(ex, e);
      return;
    }
    if (result instanceof Response) {
      this._respond(ex, result);
    } else {
      Promise.resolve(result).then(
        (res) => this._respond(ex, res),
        (e) => this._handlerFailed(ex, e),
      );
    }
  }

  /** Whether a target other than origin-form makes a URL. */
  _validTarget(head: HttpRequest): boolean {
    const t = head.target;
    if (t === "*") return head.method === "OPTIONS";
    if (/^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(t)) return URL.canParse(t);
    return head.method === "CONNECT" && URL.canParse(`http://${t}/`);
  }

  /** The stream of `ex`'s request body (made when the handler first wants it). */
  bodyStream(ex: Exchange): ReadableStream<Uint8Array> {
    return new ReadableStream<Uint8Array>({
      start: (c) => {
        ex.body = c;
      },
      pull: () => this._pull(ex),
      cancel: () => {
        ex.discard = true;
        ex.body = null;
        this._pump();
      },
    }, { highWaterMark: 64 * 1024, size: (c) => c.byteLength });
  }

  /** The client has gone (EOF or closed). */
  get gone(): boolean {
    return this._gone;
  }

  localHost(): string {
    return this._localHost();
  }

  _localHost(): string {
    const a = toAddr(this._conn.localAddress());
    if (a.transport === "unix") return "localhost";
    return a.hostname.includes(":") ? `[${a.hostname}]:${a.port}` : `${a.hostname}:${a.port}`;
  }

  /** The handler wants (more of) the request body. */
  _pull(ex: Exchange): void {
    if (ex.wantsContinue && !ex.continueSent && this._queue[0] === ex && !this._closed) {
      ex.continueSent = true;
      // Responses of this pump may still be in the batch: the 100 goes after them.
      if (this._pumping) batch.bytes(CONTINUE);
      else if (this._conn.state === "open") this._conn.write(CONTINUE);
    }
    if (!this._pumping) queueMicrotask(() => this._pump());
  }

  _endBody(ex: Exchange, error: Error | null): void {
    if (this._bodyEx === ex) this._bodyEx = null;
    ex.bodyDone = true;
    const c = ex.body;
    ex.body = null;
    if (c === null) return;
    try {
      if (error === null) c.close();
      else c.error(error);
    } catch { /* the handler cancelled it */ }
  }

  sweep(now: number): void {
    if (this._closed) return;
    const o = this._core.options;
    const conn = this._conn;
    if (conn.writableLength > 0) {
      // A client that does not read what it asked for: cut it after the idle timeout.
      if (conn.bytesWritten !== this._lastWritten) {
        this._lastWritten = conn.bytesWritten;
        this._writeProgress = now;
      } else if (o.idleTimeoutMs > 0 && now - this._writeProgress > o.idleTimeoutMs) {
        conn.abort();
        return;
      }
    } else {
      this._writeProgress = now;
    }
    if (this._ending) {
      if (now - this._endedAt > LINGER_MS) conn.close();
      return;
    }
    if (this._blocked) {
      // Waiting on our side: the client's clocks do not run.
      if (this._headStart >= 0) this._headStart = now;
      this._bodyProgress = now;
      return;
    }
    if (this._bodyEx !== null) {
      const ex = this._bodyEx;
      const waiting = ex.discard || ex.body === null || (ex.body.desiredSize ?? 1) > 0;
      if (
        o.bodyTimeoutMs > 0 && waiting && !(ex.wantsContinue && !ex.continueSent) &&
        now - this._bodyProgress > o.bodyTimeoutMs
      ) {
        const error = new Error("Cannot read the request body: timed out");
        this._endBody(ex, error);
        this._stopReading = true;
        if (ex.state === RUNNING) {
          ex.close = true;
          this._respondError(ex, 408);
          this._flush();
        } else if (this._queue.length === 0) {
          this._end();
        }
      }
      return;
    }
    if (this._queue.length > 0 || this._stopReading) return;
    if (this._headStart >= 0) {
      if (o.headerTimeoutMs > 0 && now - this._headStart > o.headerTimeoutMs) {
        this._timeout408();
      }
    } else if (o.idleTimeoutMs > 0 && now - this._waitStart > o.idleTimeoutMs) {
      this._end();
    }
  }

  _timeout408(): void {
    this._stopReading = true;
    const ex = new Exchange(null, null);
    ex.close = true;
    this._queue.push(ex);
    this._respondError(ex, 408);
    this._flush();
  }

  drain(): void {
    if (this._closed) return;
    if (this._ending) {
      this._conn.close(); // do not linger for the client's EOF: flush, then close
      return;
    }
    const last = this._queue[this._queue.length - 1];
    if (last === undefined) {
      // Between requests: reading goes on (a request that arrives gets
      // `connection: close`); an idle one closes after the grace
      // (`drainCheck`), at once when it is idle that long already.
      if (this._bodyEx === null) this.drainCheck(this._core.reactor.now);
      return;
    }
    if (last.state === RUNNING) {
      // Its response is still to be made: it says `connection: close` and ends the connection.
      last.close = true;
      this._stopReading = true;
    }
    // Otherwise that response's head went out already (keep-alive): after
    // it the connection idles with the grace, as above.
  }

  drainCheck(now: number): void {
    if (
      this._closed || this._ending || this._stopReading || this._queue.length > 0 ||
      this._bodyEx !== null || this._headStart >= 0
    ) return;
    if (now - this._waitStart >= this._core.options.drainIdleMs) this._end();
  }

  abort(): void {
    if (!this._closed) this._conn.abort();
  }
}
