/**
 * The output side of a `serve()` connection (private): a per-connection
 * queue of exchanges whose responses leave in request order, serialized into
 * one batch per pump (one write), streamed bodies with backpressure,
 * upgrades, and the end of the connection with a FIN. `_serve_conn.ts`
 * builds the connection on it.
 *
 * @module
 */
import type { Connection } from "../reactor/connection.ts";
import type { CoreConn, ServerCore } from "./_core.ts";
import {
  bodiless,
  CHUNKED,
  CLOSE,
  dateHeader,
  fullHead,
  KEEP,
  KEEP_10,
  NO_BODY,
  OutBuffer,
  refreshDate,
  simpleHead,
  statusLine,
  UNTIL_CLOSE,
  utf8,
} from "./_out.ts";
import { bodySource, fastBody, fastContentType, headerLines } from "./_response.ts";
import { HttpParser } from "./parser.ts";
import { STATUS_TEXT } from "./response.ts";
import type { NetAddr, ServeHandler, UnixAddr } from "./types.ts";
import { DONE, type Exchange, READY, RUNNING, STREAMING } from "./_exchange.ts";
import type { RawConnection } from "./upgrade.ts";
import { type UpgradeRecord, UPGRADES } from "./_upgrades.ts";

/** Responses pending on one connection before reading pauses. */
export const MAX_PIPELINE = 64;
/** How long a connection ended with a FIN may wait for the peer's EOF. */
export const LINGER_MS = 2000;
/** The interim response to `Expect: 100-continue`. */
export const CONTINUE = utf8("HTTP/1.1 100 Continue\r\n\r\n").slice();
const LAST_CHUNK = utf8("0\r\n\r\n").slice();
const CRLF = utf8("\r\n").slice();

/** `performance.now()` 0 as wall-clock ms. */
export const TIME_ORIGIN = performance.timeOrigin;

/** The batch that responses ready during one pump are written into. */
export const batch: OutBuffer = new OutBuffer();

/** The `onError` of `serve()`, or the default. */
export type ErrorHandler = (error: unknown) => Response | Promise<Response>;

/** What a server gives its connections. */
export interface ServeContext {
  handler: ServeHandler;
  onError: ErrorHandler;
}

/** The body of a server-made error response. */
export function errorText(status: number): string {
  return `${status} ${STATUS_TEXT[status] ?? "Error"}\n`;
}

/**
 * The output side of a `serve()` connection: the queue of exchanges, their
 * responses serialized into the batch in request order, streamed bodies,
 * upgrades and the end of the connection. {@linkcode ServeConn} adds the
 * input side.
 */
export abstract class ServeOutput implements CoreConn {
  readonly _conn: Connection;
  readonly _core: ServerCore;
  readonly _ctx: ServeContext;
  readonly _parser: HttpParser;
  readonly _queue: Exchange[] = [];
  /** The exchange whose request body is being received. */
  _bodyEx: Exchange | null = null;
  /** No more requests are read (close, error, upgrade, drain). */
  _stopReading = false;
  /** An `Upgrade` request is waiting for its response: read nothing more until then. */
  _upgradePending = false;
  _peerEnded = false;
  /** The client has gone (EOF or closed): request signals abort. */
  _gone = false;
  _ending = false;
  _endedAt = 0;
  _closed = false;
  _pumping = false;
  /** Reading is paused for backpressure (our side, not the client's doing). */
  _blocked = false;
  _lastWritten = 0;
  _writeProgress = 0;
  _streaming = false;
  _waitStart: number;
  _headStart = -1;
  _bodyProgress = 0;
  _remote: NetAddr | UnixAddr | null = null;
  _drainWaiters: (() => void)[] = [];

  constructor(conn: Connection, core: ServerCore, ctx: ServeContext) {
    this._conn = conn;
    this._core = core;
    this._ctx = ctx;
    const o = core.options;
    this._parser = new HttpParser({
      maxHeaderBytes: o.maxHeaderBytes,
      maxBodyBytes: o.maxBodyBytes,
      maxTargetBytes: o.maxTargetBytes,
    });
    this._waitStart = core.reactor.now;
  }

  /** Parse and dispatch what can be, then send what is ready (the input side). */
  abstract _pump(): void;
  /** Enforce timeouts (see `CoreConn`). */
  abstract sweep(now: number): void;
  /** Drain (see `CoreConn`). */
  abstract drain(): void;
  /** Close when idle for the drain's grace (see `CoreConn`). */
  abstract drainCheck(now: number): void;
  /** Cut the connection (see `CoreConn`). */
  abstract abort(): void;

  // -------------------------------------------------------------------------
  // Responses

  _handlerFailed(ex: Exchange, error: unknown): void {
    if (this._closed || ex.state !== RUNNING) return;
    let res: Response | Promise<Response>;
    try {
      res = this._ctx.onError(error);
    } catch (e) {
      console.error("ffinet http: onError failed:", e);
      this._respondError(ex, 500);
      return;
    }
    Promise.resolve(res).then(
      (r) => {
        if (r instanceof Response && !UPGRADES.has(r)) this._respond(ex, r);
        else this._respondError(ex, 500);
      },
      (e) => {
        console.error("ffinet http: onError failed:", e);
        this._respondError(ex, 500);
      },
    );
  }

  /** Answer `ex` with a plain-text error status (no handler involved). */
  _respondError(ex: Exchange, status: number): void {
    if (ex.state !== RUNNING) return;
    if (!this._pumping) refreshDate();
    const text = errorText(status);
    const body = utf8(text);
    const conn = this._connMode(ex, false);
    const head = simpleHead(status, "text/plain;charset=UTF-8", body.length, conn);
    const out = batch;
    const start = out.len;
    out.bytes(head);
    if (!ex.isHead) out.bytes(body);
    this._ready(ex, start);
    if (!this._pumping) this._flush();
  }

  /** How the connection goes on after `ex`'s response (and mark `ex.close`). */
  _connMode(ex: Exchange, wantsClose: boolean): number {
    const head = ex.head;
    const pendingBody = !ex.bodyDone && (ex.wantsContinue && !ex.continueSent);
    if (
      wantsClose || ex.close || head === null || pendingBody ||
      (this._core.draining && this._queue[this._queue.length - 1] === ex)
    ) {
      ex.close = true;
      this._stopReading = true;
      return CLOSE;
    }
    return head.version === "1.0" ? KEEP_10 : KEEP;
  }

  _respond(ex: Exchange, res: Response): void {
    if (this._closed || ex.state !== RUNNING) return;
    if (!(res instanceof Response)) {
      this._handlerFailed(
        ex,
        new TypeError("Cannot respond: the handler did not return a Response"),
      );
      return;
    }
    // An upgrade response has no body: never one with Deno's fast-path body.
    const upgrade = fastBody(res) === null ? UPGRADES.get(res) : undefined;
    if (upgrade !== undefined) {
      this._respondUpgrade(ex, upgrade);
      return;
    }
    if (ex.head !== null && this._upgradePending && this._queue[this._queue.length - 1] === ex) {
      this._upgradePending = false; // answered without an upgrade: carry on
      queueMicrotask(() => this._pump());
    }
    const wasPumping = this._pumping;
    if (!wasPumping) refreshDate();
    try {
      this._serialize(ex, res);
    } catch (e) {
      batch.len = this._batchStart;
      this._handlerFailed(ex, e);
      return;
    }
    if (!wasPumping) {
      this._flush();
      if (this._blocked && !this._closed && !this._ending) this._pump(); // a slot is free
    }
  }

  _batchStart = 0;

  _serialize(ex: Exchange, res: Response): void {
    const out = batch;
    const start = this._batchStart = out.len;
    const fast = fastBody(res);
    if (fast !== null) {
      const bytes = typeof fast === "string" ? utf8(fast) : fast;
      const conn = this._connMode(ex, false);
      out.bytes(simpleHead(200, fastContentType(res), bytes.length, conn));
      if (!ex.isHead) out.bytes(bytes);
      this._ready(ex, start);
      return;
    }
    const status = res.status;
    const { lines, hasDate, close } = headerLines(res);
    const source = bodySource(res);
    const noBody = bodiless(status);
    switch (source.kind) {
      case "none":
      case "bytes":
      case "string": {
        const bytes = source.kind === "none"
          ? null
          : source.kind === "bytes"
          ? source.bytes
          : utf8(source.text);
        const length = noBody ? NO_BODY : bytes === null ? 0 : bytes.length;
        const conn = this._connMode(ex, close);
        out.latin1(fullHead(status, res.statusText, lines, hasDate, length, conn));
        if (!ex.isHead && !noBody && bytes !== null) out.bytes(bytes);
        this._ready(ex, start);
        return;
      }
      case "blob": {
        ex.state = STREAMING; // not RUNNING any more; bytes come later
        source.blob.bytes().then((bytes) => {
          if (this._closed) return;
          ex.state = RUNNING;
          refreshDate();
          const conn = this._connMode(ex, close);
          const s = this._batchStart = out.len;
          out.latin1(
            fullHead(status, res.statusText, lines, hasDate, noBody ? NO_BODY : bytes.length, conn),
          );
          if (!ex.isHead && !noBody) out.bytes(bytes);
          this._ready(ex, s);
          if (!this._pumping) this._flush();
        }, (e) => {
          ex.state = RUNNING;
          this._handlerFailed(ex, e);
        });
        return;
      }
      case "stream": {
        const version10 = ex.head !== null && ex.head.version === "1.0";
        const conn = this._connMode(ex, close || version10);
        const length = noBody ? NO_BODY : version10 ? UNTIL_CLOSE : CHUNKED;
        out.latin1(fullHead(status, res.statusText, lines, hasDate, length, conn));
        if (ex.isHead || noBody) {
          source.stream.cancel().catch(() => {});
          this._ready(ex, start);
          return;
        }
        ex.chunked = !version10;
        ex.stream = source.stream;
        ex.state = STREAMING;
        if (this._queue[0] !== ex) {
          ex.out = out.buf.slice(start, out.len);
          out.len = start;
        }
        if (this._queue[0] === ex) this._startStream(ex);
        return;
      }
    }
  }

  /** `ex`'s response is complete in `batch[start, len)`. */
  _ready(ex: Exchange, start: number): void {
    const out = batch;
    if (this._queue[0] === ex) {
      ex.state = DONE;
      this._done(ex);
    } else {
      // Not its turn: keep its bytes until the earlier responses are out.
      ex.out = out.buf.slice(start, out.len);
      out.len = start;
      ex.state = READY;
    }
  }

  /** The front exchange `ex` is fully written (to the batch): next. */
  _done(ex: Exchange): void {
    if (!this._retire(ex)) this._advance();
  }

  /**
   * Take the fully written front exchange `ex` off the queue; when it closes
   * the connection, end it and say so (`true`).
   */
  _retire(ex: Exchange): boolean {
    this._queue.shift();
    ex.finish();
    if (!ex.bodyDone) ex.discard = true;
    if (ex.close) {
      this._end();
      return true;
    }
    return false;
  }

  /** Move queued, finished responses to the batch while they are in front. */
  _advance(): void {
    for (;;) {
      const ex = this._queue[0];
      if (ex === undefined) {
        this._waitStart = this._core.reactor.now;
        // Draining: an idle connection gets the grace (`drainCheck`).
        if (this._stopReading || this._core.draining && this._core.options.drainIdleMs === 0) {
          this._end();
        }
        return;
      }
      if (ex.wantsContinue && !ex.continueSent && ex.body !== null && ex.state === RUNNING) {
        // Its handler asked for the body while it waited its turn: now it may come.
        ex.continueSent = true;
        batch.bytes(CONTINUE);
      }
      if (ex.state === READY) {
        batch.bytes(ex.out!);
        ex.out = null;
        if (this._retire(ex)) return;
        continue;
      }
      if (ex.state === STREAMING && ex.stream !== null) {
        if (ex.out !== null) {
          batch.bytes(ex.out);
          ex.out = null;
        }
        this._startStream(ex);
      } else if (ex.upgrade !== null) {
        this._finishUpgrade(ex);
      }
      return;
    }
  }

  /** Send the batch. */
  _flush(): void {
    const out = batch;
    if (out.len === 0 || this._closed) {
      out.len = 0;
      return;
    }
    const conn = this._conn;
    if (conn.state === "open") conn.write(out.view());
    out.len = 0;
    if (this._ending && conn.state === "open") this._finishEnd();
  }

  _startStream(ex: Exchange): void {
    if (this._streaming) return;
    this._streaming = true;
    const stream = ex.stream!;
    // The head goes out with this batch; the body follows as it comes.
    void this._streamBody(ex, stream.getReader());
  }

  async _streamBody(ex: Exchange, reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
    if (!this._pumping) this._flush();
    const conn = this._conn;
    const hwm = this._core.options.highWaterMark;
    try {
      for (;;) {
        if (this._closed) {
          reader.cancel().catch(() => {});
          return;
        }
        if (conn.writableLength >= hwm) {
          await new Promise<void>((resolve) => this._drainWaiters.push(resolve));
          continue;
        }
        const { value, done } = await reader.read();
        if (this._closed) {
          reader.cancel().catch(() => {});
          return;
        }
        if (done) break;
        if (!(value instanceof Uint8Array)) {
          throw new TypeError("Cannot send the response body: a chunk is not a Uint8Array");
        }
        if (value.length === 0) continue;
        if (conn.state !== "open") return;
        if (ex.chunked) {
          conn.write(utf8(value.length.toString(16) + "\r\n"));
          conn.write(value);
          conn.write(CRLF);
        } else {
          conn.write(value);
        }
      }
    } catch (e) {
      // The body failed mid-response: the client cannot be told but by a reset.
      console.error("ffinet http: response body stream failed:", e);
      this._streaming = false;
      ex.stream = null;
      ex.finish();
      this._conn.abort();
      return;
    }
    this._streaming = false;
    ex.stream = null;
    if (this._closed) return;
    if (ex.chunked && conn.state === "open") conn.write(LAST_CHUNK);
    if (!ex.chunked) ex.close = true;
    this._done(ex);
    this._flush();
    if (!this._closed && !this._ending) this._pump();
  }

  // -------------------------------------------------------------------------
  // Upgrades

  _respondUpgrade(ex: Exchange, upgrade: UpgradeRecord): void {
    const head = ex.head;
    const token = head?.headers.get("upgrade");
    if (head === null || token === null || token === undefined) {
      upgrade.reject(new Error("Cannot upgrade: the request has no Upgrade header"));
      this._respondError(ex, 400);
      if (!this._pumping) this._flush();
      return;
    }
    let lines = "";
    for (const [name, value] of upgrade.headers) {
      if (name === "connection" || name === "upgrade") continue;
      lines += `${name}: ${value}\r\n`;
    }
    ex.out = utf8(
      statusLine(101, "Switching Protocols") + lines + dateHeader() +
        `connection: upgrade\r\nupgrade: ${token}\r\n\r\n`,
    ).slice();
    ex.upgrade = upgrade;
    ex.state = STREAMING;
    this._stopReading = true;
    if (this._queue[0] === ex) {
      this._finishUpgrade(ex);
    }
  }

  _finishUpgrade(ex: Exchange): void {
    const upgrade = ex.upgrade!;
    const conn = this._conn;
    batch.bytes(ex.out!);
    ex.out = null;
    this._flush();
    this._queue.shift();
    ex.finish();
    if (this._closed) return;
    const head = this._parser.takeBuffered();
    conn.onData = undefined;
    conn.onEnd = undefined;
    conn.onDrain = undefined;
    conn.onClose = undefined;
    this._closed = true; // for this protocol: the connection is the caller's now
    this._core.remove(this);
    conn.resume();
    upgrade.resolve({ conn: conn as unknown as RawConnection, head });
  }

  // -------------------------------------------------------------------------
  // Closing

  /** No more responses on this connection: close with a FIN once sent. */
  _end(): void {
    if (this._ending || this._closed) return;
    this._ending = true;
    this._endedAt = this._core.reactor.now;
    if (!this._pumping) this._flush();
    this._finishEnd();
  }

  _finishEnd(): void {
    const conn = this._conn;
    if (batch.len > 0 && this._pumping) return; // the pump flushes, then calls again
    if (this._peerEnded || this._core.draining) {
      conn.close();
    } else {
      // Half-close: the peer sees the FIN after the last response; what it
      // still sends is read and dropped until its EOF (closing with unread
      // input would make the kernel send a reset instead).
      conn.end();
      conn.resume();
    }
  }

  _maybeClose(): void {
    if (this._queue.length === 0) this._end();
  }
}
