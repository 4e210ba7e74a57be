/**
 * One HTTP/1.1 connection (private): the lifecycle `serve()` and
 * `serveRaw()` share. Read → parse → exchange queue → serialize → write →
 * drain, with the timeouts and the linger:
 *
 * - Input: the bytes read are parsed into request heads and bodies. A body
 *   streams to the handler with backpressure (`serve()`), or is collected
 *   whole before the handler runs (`serveRaw()`). `Expect: 100-continue` is
 *   answered once the handler wants the body and its request is in front.
 * - The exchange queue: one `Exchange` per request; responses leave in
 *   request order, the responses ready together serialized into one batch
 *   and sent with one write (`_wire.ts` serializes).
 * - A streamed response body goes out one write per chunk (size line, data
 *   and CRLF together; the chunks the stream already holds join that
 *   write), as fast as the client reads. A declared `content-length` is
 *   enforced: a stream that ends short or runs long aborts the connection.
 * - Upgrades (`upgradeConnection`): after the 101 the connection is handed
 *   over with the bytes already read.
 * - The end of a connection is a FIN, then a linger for the client's EOF.
 *
 * Reading stops while: the unsent output is above the high-water mark; the
 * handler has not taken the request body it was given; 64 responses are
 * pending; an upgrade is being decided; or the connection is to end after
 * the responses in flight (`Connection: close`, HTTP/1.0, an error, a drain).
 *
 * @module
 */
import type { TlsInfo } from "../tls/tls_connection.ts";
import type { ProxyInfo } from "../reactor/proxy/protocol.ts";
import { type CoreConn, type ServerConnection, type ServerCore, toAddr } from "./_core.ts";
import { type RequestHost, ServerRequest } from "./_request.ts";
import {
  asciiLength,
  bodiless,
  CHUNKED,
  CLOSE,
  CONTINUE,
  dateLine,
  errorText,
  fastContentType,
  fullHead,
  headerLines,
  KEEP,
  KEEP_10,
  LAST_CHUNK,
  NO_BODY,
  OutBuffer,
  refreshDate,
  simpleHead,
  statusLine,
  takeFastBody,
  takeResponseBody,
  UNTIL_CLOSE,
  utf8,
} from "./_wire.ts";
import { HttpParseError, HttpParser, type HttpRequest } from "./parser/mod.ts";
import type { NetAddr, ServeHandler, ServeHandlerInfo, UnixAddr } from "./types.ts";
import type { RawConnection, UpgradedConnection } from "./upgrade.ts";

// ---------------------------------------------------------------------------
// Exchanges: one request of a connection and its response: where the
// response is (running, serialized and waiting its turn, streaming, done),
// the request body (a stream for `serve()`, collected whole for
// `serveRaw()`), the lazy signal and `info`, and the upgrade responses
// `upgradeConnection` makes.

/** What an exchange needs from its connection. */
interface ExchangeOwner {
  /** The client has gone (EOF or closed). */
  readonly gone: boolean;
  /** The stream of `ex`'s request body. */
  bodyStream(ex: Exchange): ReadableStream<Uint8Array>;
  /** `host:port` of the local end. */
  localHost(): string;
  /** Whether the connection is on a Unix socket. */
  unix(): boolean;
  /** The peer's address. */
  remoteAddr(): NetAddr | UnixAddr;
  /** What a PROXY protocol header said, if any. */
  proxyInfo(): ProxyInfo | undefined;
  /** What the TLS handshake negotiated (undefined over plaintext). */
  tls(): TlsInfo | undefined;
}

/** An upgrade response made by `upgradeConnection`, bound to its request. */
export interface UpgradeRecord {
  request: Request;
  headers: Headers;
  resolve: (upgraded: UpgradedConnection) => void;
  reject: (error: Error) => void;
  /** Sent already: a second use is an error. */
  used: boolean;
}

/** Upgrade responses, recognised by the server. */
export const UPGRADES: WeakMap<Response, UpgradeRecord> = new WeakMap();

// Exchange states
export const RUNNING = 0; // the handler has not answered
export const READY = 1; // the response is serialized in `out`, complete
export const STREAMING = 2; // the head is out (or in `out`); the body streams once in front
export const DONE = 3;

/** The reason of a request signal aborted because the client went away. */
export function clientGone(): DOMException {
  return new DOMException("The client closed the connection", "AbortError");
}

/** The `info` argument of a handler, made lazily. */
class Info implements ServeHandlerInfo {
  #conn: ExchangeOwner;
  #ex: Exchange;
  constructor(conn: ExchangeOwner, ex: Exchange) {
    this.#conn = conn;
    this.#ex = ex;
  }
  get remoteAddr(): NetAddr | UnixAddr {
    return this.#conn.remoteAddr();
  }
  get proxy(): ProxyInfo | undefined {
    return this.#conn.proxyInfo();
  }
  get completed(): Promise<void> {
    return this.#ex.completedPromise();
  }
  get tls(): TlsInfo | undefined {
    return this.#conn.tls();
  }
}

/** One request and its response. */
export class Exchange implements RequestHost {
  readonly head: HttpRequest | null;
  readonly #owner: ExchangeOwner | null;
  #bodyStream: ReadableStream<Uint8Array> | null = null;
  state = RUNNING;
  /** The `Request` the handler got (an upgrade must be of this request). */
  request: unknown = null;
  /** Serialized response bytes waiting for their turn (STREAMING, an upgrade). */
  out: Uint8Array | null = null;
  /** A READY response's bytes in its connection's hold buffer: `[heldAt, heldEnd)`. */
  heldAt = 0;
  heldEnd = 0;
  /** The response body still to stream, once in front. */
  stream: ReadableStream<Uint8Array> | null = null;
  /** The reader of `stream` once streaming: cancelled when the client goes. */
  reader: ReadableStreamDefaultReader<Uint8Array> | ReadableStreamBYOBReader | null = null;
  chunked = false;
  /** Bytes the streamed body must still have (its declared length), or -1. */
  left = -1;
  /** Close the connection once this response is out. */
  close = false;
  upgrade: UpgradeRecord | null = null;
  /** The request body: its stream's controller while it is being received. */
  body: ReadableStreamDefaultController<Uint8Array> | null = null;
  /** The request body collected whole before the handler runs (`serveRaw()`). */
  collect: OutBuffer | null = null;
  /**
   * The whole request body, taken from the read buffer when it had all of it
   * as the head was parsed: `json()`/`text()`/… answer from it, no stream.
   */
  bodyBytes: Uint8Array<ArrayBuffer> | null = null;
  /** The first body bytes, taken as the head was parsed: the stream starts with them. */
  bodyPrefix: Uint8Array | null = null;
  /** Drop the rest of the request body (the handler does not want it). */
  discard = false;
  bodyDone = true;
  /** The handler wants the body: `100 Continue` may go once this exchange is in front. */
  pulled = false;
  continueSent = false;
  wantsContinue = false;
  controller: AbortController | null = null;
  /** The handler failed and `onError` was asked: a failure of its response is a plain 500. */
  failed = false;
  #completed: Promise<void> | null = null;
  #resolveCompleted: (() => void) | null = null;
  isHead: boolean;

  constructor(head: HttpRequest | null, owner: ExchangeOwner | null) {
    this.head = head;
    this.#owner = owner;
    this.isHead = head !== null && head.method === "HEAD";
  }

  requestBody(): ReadableStream<Uint8Array> | null {
    if (this.#bodyStream === null && this.#owner !== null && !this.bodyDone && !this.discard) {
      this.#bodyStream = this.#owner.bodyStream(this);
    }
    return this.#bodyStream;
  }

  requestBytes(): Uint8Array<ArrayBuffer> | null {
    return this.bodyBytes;
  }

  requestSignal(): AbortSignal {
    if (this.controller === null) {
      this.controller = new AbortController();
      if (this.#owner !== null && this.#owner.gone && this.state !== DONE) {
        this.controller.abort(clientGone());
      }
    }
    return this.controller.signal;
  }

  localHost(): string {
    return this.#owner?.localHost() ?? "localhost";
  }

  unix(): boolean {
    return this.#owner?.unix() ?? false;
  }

  tls(): TlsInfo | undefined {
    return this.#owner?.tls();
  }

  completedPromise(): Promise<void> {
    if (this.#completed === null) {
      this.#completed = this.state === DONE
        ? Promise.resolve()
        : new Promise((resolve) => this.#resolveCompleted = resolve);
    }
    return this.#completed;
  }

  finish(): void {
    this.state = DONE;
    this.#resolveCompleted?.();
  }
}

// ---------------------------------------------------------------------------
// The connection

/** Responses pending on one connection before reading pauses. */
export const MAX_PIPELINE = 64;
/** How long a connection ended with a FIN may wait for the peer's EOF. */
export const LINGER_MS = 2000;
/** Streamed chunks already at hand are joined into one write up to this size. */
const COALESCE_BYTES = 64 * 1024;
/**
 * A byte stream (a file's `readable`) is read into one buffer of this size,
 * reused: the chunk-size line goes in the `FRAME_HEAD` bytes before the data
 * and the CRLF after it, so a chunk goes out as one write with no copy.
 */
const BYOB_SIZE = 256 * 1024;
const FRAME_HEAD = 16;
/** `performance.now()` 0 as wall-clock ms. */
const TIME_ORIGIN = performance.timeOrigin;

/**
 * The batch of the thread: what the pumps (and answers given outside a
 * pump) serialize, each connection's part sent with one write (see
 * `pendingConns`). A connection's bytes start at its `#base`: a handler may
 * answer another connection's request in the middle of a pump, and that
 * connection then sends at once only what it appended after the bytes
 * already there.
 */
const batch = new OutBuffer();

/**
 * Responses serialized by the pumps of one reactor batch are sent together
 * once that batch's synchronous work is done (a microtask), not one by one
 * between the requests: the client side is woken once for many responses,
 * as a server that writes at the end of its loop turn does. They hold, per
 * write, its connection and its range of `batch`; while any is pending,
 * `batch` only grows, so those ranges stay valid.
 */
const pendingConns: HttpConn[] = [];
const pendingRanges: number[] = [];
let pendingScheduled = false;
/** Pumps in progress on this thread (a handler may answer another connection inside one). */
let pumpDepth = 0;
/** A batch longer than this is sent at once (the batch buffer stays small). */
const DEFER_BYTES = 256 * 1024;

/** Where the writes of one connection are joined (see `HttpConn.#sendPending`). */
const gather = new OutBuffer();

/** `onError` of `serve()`, or the default. */
export type ErrorHandler = (error: unknown) => Response | Promise<Response>;

/** What handles the requests of a connection: `serve()`'s or `serveRaw()`'s. */
export interface Dispatcher {
  /** Request bodies are collected whole before `dispatch` (else they stream). */
  readonly collect: boolean;
  /** Parse with the repeated-head memo. */
  readonly memo: boolean;
  /** Run the handler of `ex`; `request` has the body when it is collected. */
  dispatch(conn: HttpConn, ex: Exchange, request: HttpRequest): void;
  /** A handler failed: the response to send instead (anything else: a 500). */
  onError(error: unknown): Response | Promise<Response> | void;
}

/** What a `serve()` server gives its connections. */
export interface ServeContext {
  handler: ServeHandler;
  onError: ErrorHandler;
}

/** Whether a target other than origin-form makes a URL. */
function validTarget(head: HttpRequest): boolean {
  const t = head.target;
  if (t === "*") return head.method === "OPTIONS";
  if (/^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(t)) return URL.canParse(t);
  return head.method === "CONNECT" && URL.canParse(`http://${t}/`);
}

const INTERNAL_ERROR = utf8("Internal Server Error").slice();

/** The answer when `onError` fails too: Deno.serve's (no content type). */
function internalError(): Response {
  return new Response(INTERNAL_ERROR, { status: 500 });
}

/** `serve()`'s handling: a web `Request` in, a `Response` out. */
export function serveDispatcher(ctx: ServeContext): Dispatcher {
  const handler = ctx.handler;
  const onError = ctx.onError;
  const failed = (e: unknown) => {
    console.error("ffinet http: onError failed:", e);
    return internalError();
  };
  return {
    collect: false,
    memo: false,
    onError(error: unknown): Response | Promise<Response> {
      let res: Response | Promise<Response>;
      try {
        res = onError(error);
      } catch (e) {
        return failed(e);
      }
      if (res instanceof Response) return res;
      return Promise.resolve(res).then(
        (r) => r instanceof Response ? r : internalError(),
        failed,
      );
    },
    dispatch(conn: HttpConn, ex: Exchange, head: HttpRequest): void {
      if (head.target.charCodeAt(0) !== 47 && !validTarget(head)) {
        ex.close = true;
        conn.respondError(ex, 400);
        return;
      }
      const request = new ServerRequest(head, ex) as unknown as Request;
      ex.request = request;
      let result: Response | Promise<Response>;
      try {
        result = handler(request, new Info(conn, ex));
      } catch (e) {
        conn.handlerFailed(ex, e);
        return;
      }
      if (result instanceof Response) {
        conn.respond(ex, result);
      } else {
        Promise.resolve(result).then(
          (res) => conn.respond(ex, res),
          (e) => conn.handlerFailed(ex, e),
        );
      }
    },
  };
}

/** A stream that broke its declared length: the connection is aborted. */
class LengthMismatch extends TypeError {}

/** One connection of a server. */
export class HttpConn implements CoreConn, ExchangeOwner {
  readonly #conn: ServerConnection;
  readonly #core: ServerCore;
  readonly #dispatcher: Dispatcher;
  readonly #parser: HttpParser;
  readonly #queue: Exchange[] = [];
  /** The exchange whose request body is being received. */
  #bodyEx: Exchange | null = null;
  /** No more requests are read (close, error, upgrade, drain). */
  #stopReading = false;
  /** An `Upgrade` request waits for its response: nothing more is read until then. */
  #upgradePending = false;
  #peerEnded = false;
  /** The client's last request asked for the close (`Connection: close`, HTTP/1.0). */
  #clientClose = false;
  /** The client has gone (EOF or closed): request signals abort. */
  #gone = false;
  #ending = false;
  #endedAt = 0;
  #closed = false;
  #pumping = false;
  /** Reading is paused for backpressure (our side, not the client's doing). */
  #blocked = false;
  #lastWritten = 0;
  #writeProgress = 0;
  #streaming = false;
  /** When the connection last became idle between requests. */
  #waitStart: number;
  /** When the first byte of the head being received arrived; -1: none is. */
  #headStart = -1;
  #bodyProgress = 0;
  #remote: NetAddr | UnixAddr | null = null;
  #drainWaiters: (() => void)[] = [];
  /** Where this connection's bytes start in the batch (see `batch`). */
  #base = 0;
  /** Responses serialized before their turn (READY), and how many it holds. */
  #hold: OutBuffer | null = null;
  #held = 0;
  /** Writes of this connection in `pendingConns`. */
  #pendingWrites = 0;

  constructor(conn: ServerConnection, core: ServerCore, dispatcher: Dispatcher) {
    this.#conn = conn;
    this.#core = core;
    this.#dispatcher = dispatcher;
    const o = core.options;
    this.#parser = new HttpParser({
      maxHeaderBytes: o.maxHeaderBytes,
      maxHeaderCount: o.maxHeaderCount,
      maxBodyBytes: o.maxBodyBytes,
      maxTargetBytes: o.maxTargetBytes,
      memo: dispatcher.memo,
    });
    this.#waitStart = core.reactor.now;
    conn.onData = (data) => this.#onData(data);
    conn.onEnd = () => this.#onEnd();
    conn.onDrain = () => this.#onDrain();
    conn.onClose = () => this.#onClose();
  }

  // -------------------------------------------------------------------------
  // What exchanges and handlers ask of the connection

  /** The client has gone (EOF or closed). */
  get gone(): boolean {
    return this.#gone;
  }

  /** Whether the connection stays open after `ex`'s response, as things stand. */
  keepsAlive(ex: Exchange): boolean {
    return !ex.close && ex.head !== null && ex.head.keepAlive &&
      !(this.#core.draining && this.#queue[this.#queue.length - 1] === ex);
  }

  /** The PROXY protocol header the connection arrived with, if any. */
  proxyInfo(): ProxyInfo | undefined {
    return this.#conn.proxyInfo;
  }

  remoteAddr(): NetAddr | UnixAddr {
    if (this.#remote === null) {
      try {
        const remote = toAddr(this.#conn.remoteAddress());
        // As Deno.serve: a Unix peer without a name reports the server's socket path.
        const local = this.#core.addr;
        this.#remote =
          remote.transport === "unix" && remote.path === "" && local.transport === "unix"
            ? { transport: "unix", path: local.path }
            : remote;
      } catch {
        this.#remote = { transport: "tcp", hostname: "", port: 0 };
      }
    }
    return this.#remote;
  }

  /** Whether the server listens on a Unix socket (no syscall: the server's address). */
  unix(): boolean {
    return this.#core.addr.transport === "unix";
  }

  /** What the TLS handshake negotiated (undefined over plaintext). */
  tls(): TlsInfo | undefined {
    return this.#conn.info;
  }

  localHost(): string {
    const a = toAddr(this.#conn.localAddress());
    if (a.transport === "unix") return "localhost";
    return a.hostname.includes(":") ? `[${a.hostname}]:${a.port}` : `${a.hostname}:${a.port}`;
  }

  /** The stream of `ex`'s request body (made when the handler first wants it). */
  bodyStream(ex: Exchange): ReadableStream<Uint8Array> {
    return new ReadableStream<Uint8Array>({
      start: (c) => {
        ex.body = c;
        const prefix = ex.bodyPrefix;
        if (prefix !== null) {
          ex.bodyPrefix = null;
          c.enqueue(prefix);
        }
      },
      pull: () => this.#pull(ex),
      cancel: () => {
        ex.discard = true;
        ex.body = null;
        this.#pump();
      },
    }, { highWaterMark: 64 * 1024, size: (c) => c.byteLength });
  }

  // -------------------------------------------------------------------------
  // Input

  #onData(data: Uint8Array): void {
    if (this.#ending || this.#stopReading && this.#bodyEx === null) return; // lingering: drop
    this.#parser.feed(data);
    this.#pump();
  }

  #onEnd(): void {
    this.#open();
    this.#peerEnded = true;
    this.#gone = true;
    // As Go's net/http: the client's EOF cancels the requests in progress
    // (their responses are still sent, for clients that only half-closed).
    for (const ex of this.#queue) if (ex.state !== DONE) ex.controller?.abort(clientGone());
    this.#wakeStreams();
    if (this.#ending) {
      this.#conn.close();
      return;
    }
    // A streaming response ends with its client (as Deno.serve): the stream is cancelled.
    const front = this.#queue[0];
    if (front !== undefined && front.reader !== null) {
      front.reader.cancel(clientGone()).catch(() => {});
    }
    const bodyEx = this.#bodyEx;
    if (bodyEx !== null) {
      // The body was cut short.
      const error = new Error("Cannot read the request body: the client closed early");
      this.#endBody(bodyEx, error);
      if (bodyEx.state === RUNNING && bodyEx.request === null) {
        bodyEx.close = true;
        this.respondError(bodyEx, 400); // collected for serveRaw(): its handler never ran
      }
    }
    this.#stopReading = true;
    if (this.#queue.length === 0) this.#end();
  }

  #onDrain(): void {
    this.#wakeStreams();
    this.#pump();
  }

  /** Start writing outside a pump: this connection's bytes go after those in the batch. */
  #open(): void {
    if (!this.#pumping) this.#base = batch.len;
  }

  #wakeStreams(): void {
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const w of waiters) w();
  }

  #onClose(): void {
    this.#closed = true;
    this.#gone = true;
    for (const ex of this.#queue) {
      if (ex.state === DONE) continue;
      // Made only for a request still in progress (a DOMException takes a stack trace).
      const gone = clientGone();
      ex.controller?.abort(gone);
      if (ex.body !== null || ex.collect !== null) {
        this.#endBody(ex, new Error("Cannot read the request body: the connection closed"));
      }
      // The response body's producer is told (its cancel() runs).
      if (ex.reader !== null) ex.reader.cancel(gone).catch(() => {});
      else ex.stream?.cancel(gone).catch(() => {});
      ex.upgrade?.reject(new Error("Cannot upgrade: the connection closed"));
      ex.finish();
    }
    this.#queue.length = 0;
    this.#held = 0;
    this.#hold = null;
    this.#wakeStreams();
    this.#core.remove(this);
  }

  /** Parse and dispatch what can be, then send what is ready. */
  #pump(): void {
    if (this.#pumping || this.#closed) return;
    this.#base = batch.len;
    this.#pumping = true;
    pumpDepth++;
    const core = this.#core;
    const now = core.reactor.now;
    // The reactor's clock (read once per batch) as wall time: no clock call here.
    refreshDate(TIME_ORIGIN + now);
    const parser = this.#parser;
    const conn = this.#conn;
    const hwm = core.options.highWaterMark;
    let blocked = false;
    try {
      for (;;) {
        if (this.#closed || this.#ending) break;
        const bodyEx = this.#bodyEx;
        if (bodyEx !== null) {
          const ctrl = bodyEx.body;
          const collect = bodyEx.collect;
          if (
            collect === null && !bodyEx.discard && (ctrl === null || (ctrl.desiredSize ?? 1) <= 0)
          ) {
            blocked = true; // the handler has not taken what it was given
            break;
          }
          const chunk = parser.readBody();
          if (chunk !== null) {
            this.#bodyProgress = now;
            if (collect !== null) collect.bytes(chunk);
            else if (!bodyEx.discard) ctrl!.enqueue(chunk.slice());
            continue;
          }
          if (!parser.inBody) {
            this.#endBody(bodyEx, null);
            continue;
          }
          break; // more body bytes needed
        }
        if (this.#stopReading) break;
        if (
          this.#upgradePending || this.#queue.length >= MAX_PIPELINE ||
          conn.writableLength >= hwm || (core.draining && this.#queue.length > 0)
        ) {
          blocked = true;
          break;
        }
        const head = parser.nextHead();
        if (head === null) break;
        this.#start(head);
      }
    } catch (e) {
      if (!(e instanceof HttpParseError)) {
        // A bug: drop what this pump serialized and cut the connection.
        batch.len = this.#base;
        this.#pumping = false;
        this.#conn.abort();
        throw e;
      }
      this.#parseFailed(e);
    } finally {
      this.#pumping = false;
      pumpDepth--;
    }
    if (this.#closed) return;
    // The header timeout runs from the first byte of a head until it is
    // complete; between requests (nothing buffered) and during a body it does not.
    if (this.#bodyEx !== null || parser.idle) this.#headStart = -1;
    else if (this.#headStart < 0) this.#headStart = now;
    parser.retain();
    this.#flush();
    if (!this.#closed && !this.#ending) {
      this.#blocked = blocked;
      if (blocked || this.#stopReading && this.#bodyEx === null) conn.pause();
      else conn.resume();
    }
  }

  #parseFailed(e: HttpParseError): void {
    this.#stopReading = true;
    const bodyEx = this.#bodyEx;
    if (bodyEx !== null) {
      this.#endBody(bodyEx, e);
      if (bodyEx.state === RUNNING) {
        // Its handler has not answered: the error is the answer.
        bodyEx.close = true;
        this.respondError(bodyEx, e.status);
        return;
      }
    }
    const ex = new Exchange(null, null);
    ex.close = true;
    ex.isHead = e.method === "HEAD";
    this.#queue.push(ex);
    this.respondError(ex, e.status);
  }

  #start(head: HttpRequest): void {
    const ex = new Exchange(head, this);
    const core = this.#core;
    if (!head.keepAlive || core.draining) {
      ex.close = true;
      this.#stopReading = true;
      this.#clientClose = !head.keepAlive;
    }
    this.#queue.push(ex);
    const dispatcher = this.#dispatcher;
    if (head.upgrade && !dispatcher.collect) this.#upgradePending = true;
    if (head.bodyLength !== 0) {
      ex.bodyDone = false;
      ex.wantsContinue = head.expectContinue;
      this.#bodyEx = ex;
      this.#bodyProgress = core.reactor.now;
      if (dispatcher.collect) {
        // The handler runs once the body is complete (#endBody); it wants it now.
        ex.collect = new OutBuffer(head.bodyLength > 0 ? head.bodyLength : 1024);
        ex.pulled = true;
        this.#sendContinue(ex, true);
        return;
      }
      // A Request cannot carry a GET or HEAD body: it is read and dropped.
      if (head.method === "GET" || head.method === "HEAD") ex.discard = true;
      else if (head.bodyLength > 0) this.#takeBody(ex, head.bodyLength);
    }
    dispatcher.dispatch(this, ex, head);
  }

  /**
   * Take the body bytes already read (a view valid until the next read, so
   * copied): all of them make `ex.bodyBytes`, which `json()`/`text()`/…
   * answer from without a stream; a part starts the stream made later.
   */
  #takeBody(ex: Exchange, length: number): void {
    const parser = this.#parser;
    const chunk = parser.readBody();
    if (chunk === null) return;
    const copy = chunk.slice();
    if (copy.length < length) {
      ex.bodyPrefix = copy;
      return;
    }
    parser.readBody(); // the end of the body
    ex.bodyBytes = copy;
    ex.bodyDone = true;
    this.#bodyEx = null;
  }

  /** The handler wants (more of) the request body. */
  #pull(ex: Exchange): void {
    ex.pulled = true;
    this.#sendContinue(ex, this.#pumping);
    if (!this.#pumping) queueMicrotask(() => this.#pump());
  }

  /**
   * `100 Continue` for `ex` when its client waits for one, its handler wants
   * the body and it is in front: into the batch (`toBatch`, after the
   * responses before it) or written now.
   */
  #sendContinue(ex: Exchange, toBatch: boolean): void {
    if (
      !ex.wantsContinue || ex.continueSent || !ex.pulled || ex.bodyDone ||
      this.#queue[0] !== ex || this.#closed || this.#ending
    ) return;
    ex.continueSent = true;
    if (toBatch) batch.bytes(CONTINUE);
    else if (this.#conn.state === "open") {
      this.#sendOwnPending();
      this.#conn.write(CONTINUE);
    }
  }

  #endBody(ex: Exchange, error: Error | null): void {
    if (this.#bodyEx === ex) this.#bodyEx = null;
    ex.bodyDone = true;
    const collect = ex.collect;
    if (collect !== null) {
      ex.collect = null;
      if (error === null && ex.state === RUNNING && !this.#closed && ex.head !== null) {
        const body = collect.len === collect.buf.length ? collect.buf : collect.take();
        this.#dispatcher.dispatch(this, ex, { ...ex.head, body });
      }
      return;
    }
    const c = ex.body;
    ex.body = null;
    if (c === null) return;
    try {
      if (error === null) c.close();
      else c.error(error);
    } catch { /* the handler cancelled it */ }
  }

  // -------------------------------------------------------------------------
  // Answers

  /** A handler failed: `onError`'s response, else a 500. */
  handlerFailed(ex: Exchange, error: unknown): void {
    if (this.#closed || ex.state !== RUNNING) return;
    if (ex.failed) {
      // The response onError gave failed as well.
      console.error("ffinet http: onError's response failed:", error);
      this.respondError(ex, 500);
      return;
    }
    ex.failed = true;
    let res: Response | Promise<Response> | void;
    try {
      res = this.#dispatcher.onError(error);
    } catch (e) {
      console.error("ffinet http: onError failed:", e);
      this.respondError(ex, 500);
      return;
    }
    if (res instanceof Response) {
      this.respond(ex, res);
    } else if (res !== null && typeof res === "object" && typeof res.then === "function") {
      Promise.resolve(res).then(
        (r) => r instanceof Response ? this.respond(ex, r) : this.respondError(ex, 500),
        (e) => {
          console.error("ffinet http: onError failed:", e);
          this.respondError(ex, 500);
        },
      );
    } else {
      this.respondError(ex, 500);
    }
  }

  /** Answer `ex` with a plain-text error status (no handler involved). */
  respondError(ex: Exchange, status: number): void {
    if (this.#closed || ex.state !== RUNNING) return;
    const pumping = this.#pumping;
    if (!pumping) {
      this.#open();
      refreshDate();
    }
    const body = utf8(errorText(status));
    const mode = this.#connMode(ex, false);
    const start = batch.len;
    batch.bytes(simpleHead(status, "text/plain;charset=UTF-8", body.length, mode));
    if (!ex.isHead) batch.bytes(body);
    this.#ready(ex, start);
    if (!pumping) this.#afterAnswer();
  }

  /**
   * Answer `ex` with what `write` appends to the batch, given the connection
   * mode (`serveRaw()`: validated before, it cannot fail).
   */
  respondWith(ex: Exchange, write: (out: OutBuffer, mode: number) => void): void {
    if (this.#closed || ex.state !== RUNNING) return;
    const pumping = this.#pumping;
    if (!pumping) {
      this.#open();
      refreshDate();
    }
    const start = batch.len;
    write(batch, this.#connMode(ex, false));
    this.#ready(ex, start);
    if (!pumping) this.#afterAnswer();
  }

  /** Answer `ex` with a web `Response` (`serve()`). */
  respond(ex: Exchange, res: Response): void {
    if (this.#closed || ex.state !== RUNNING) return;
    if (!(res instanceof Response)) {
      this.handlerFailed(
        ex,
        new TypeError("Cannot respond: the handler did not return a Response"),
      );
      return;
    }
    const pumping = this.#pumping;
    this.#open();
    // An upgrade response has no body: never one with Deno's fast-path body.
    const fast = takeFastBody(res);
    const upgrade = fast === null ? UPGRADES.get(res) : undefined;
    if (upgrade !== undefined) {
      this.#respondUpgrade(ex, upgrade);
      if (!pumping) this.#flush();
      return;
    }
    if (!pumping) refreshDate();
    const start = batch.len;
    try {
      this.#serialize(ex, res, start, fast);
    } catch (e) {
      batch.len = start;
      this.handlerFailed(ex, e);
      return;
    }
    if (!pumping) this.#afterAnswer();
  }

  /** After an answer given outside a pump: send it, and read on if a slot freed. */
  #afterAnswer(): void {
    this.#flush();
    if (this.#blocked && !this.#closed && !this.#ending) this.#pump();
  }

  /** How the connection goes on after `ex`'s response (and mark `ex.close`). */
  #connMode(ex: Exchange, wantsClose: boolean): number {
    const head = ex.head;
    // A client that waits for `100 Continue` and did not get it has not sent
    // its body: what it sends next may be that body, never a request.
    const pendingBody = !ex.bodyDone && ex.wantsContinue && !ex.continueSent;
    if (
      wantsClose || ex.close || head === null || pendingBody ||
      (this.#core.draining && this.#queue[this.#queue.length - 1] === ex)
    ) {
      ex.close = true;
      this.#stopReading = true;
      return CLOSE;
    }
    return head.version === "1.0" ? KEEP_10 : KEEP;
  }

  /** Serialize `res` (`fast`: its fast-path body, see `takeFastBody`). */
  #serialize(ex: Exchange, res: Response, start: number, fast: string | Uint8Array | null): void {
    const out = batch;
    if (fast !== null) {
      const mode = this.#connMode(ex, false);
      // A short ASCII text goes into the batch as it is (no encoded copy).
      const ascii = typeof fast === "string" ? asciiLength(fast) : -1;
      if (ascii >= 0) {
        out.bytes(simpleHead(200, fastContentType(res), ascii, mode));
        if (!ex.isHead) out.latin1(fast as string);
      } else {
        const bytes = typeof fast === "string" ? utf8(fast) : fast;
        out.bytes(simpleHead(200, fastContentType(res), bytes.length, mode));
        if (!ex.isHead) out.bytes(bytes);
      }
      this.#ready(ex, start);
      return;
    }
    const status = res.status;
    if (status < 200 || status > 599) {
      if (res.type === "error") {
        throw new TypeError(
          "Cannot respond with Response.error(): a network error is not an HTTP response",
        );
      }
      if (status === 101) {
        throw new TypeError(
          "Cannot send 101 Switching Protocols without switching: use upgradeConnection(request)",
        );
      }
      throw new TypeError(`Cannot respond with status ${status}: it must be from 200 to 599`);
    }
    const fields = headerLines(res);
    const source = takeResponseBody(res);
    const noBody = bodiless(status);
    // HEAD: the handler's content-length when it gives one (the length a GET would have).
    const headLength = ex.isHead && fields.length >= 0 ? fields.length : -1;
    switch (source.kind) {
      case "none":
      case "bytes":
      case "string": {
        const bytes = source.kind === "none"
          ? null
          : source.kind === "bytes"
          ? source.bytes
          : utf8(source.text);
        const length = noBody
          ? NO_BODY
          : headLength >= 0
          ? headLength
          : bytes === null
          ? 0
          : bytes.length;
        const mode = this.#connMode(ex, fields.close);
        out.latin1(fullHead(status, res.statusText, fields.lines, fields.hasDate, length, mode));
        if (!ex.isHead && !noBody && bytes !== null) out.bytes(bytes);
        this.#ready(ex, start);
        return;
      }
      case "stream": {
        const version10 = ex.head !== null && ex.head.version === "1.0";
        // HEAD without a stated length: no framing field (as Deno.serve).
        const length = noBody || (ex.isHead && fields.length < 0)
          ? NO_BODY
          : fields.length >= 0
          ? fields.length
          : version10
          ? UNTIL_CLOSE
          : CHUNKED;
        const untilClose = length === UNTIL_CLOSE && !ex.isHead;
        const mode = this.#connMode(ex, fields.close || untilClose);
        out.latin1(fullHead(status, res.statusText, fields.lines, fields.hasDate, length, mode));
        if (ex.isHead || noBody) {
          source.stream.cancel().catch(() => {});
          this.#ready(ex, start);
          return;
        }
        this.#settled(ex);
        ex.chunked = length === CHUNKED;
        ex.left = length >= 0 ? length : -1;
        ex.stream = source.stream;
        ex.state = STREAMING;
        if (this.#queue[0] !== ex) {
          // Taken at once, as Deno.serve takes a stream it is given: the same
          // response returned for a later request is refused, not sent twice.
          ex.reader = readerOf(source.stream);
          ex.out = out.buf.slice(start, out.len);
          out.len = start;
        } else {
          this.#startStream(ex);
        }
        return;
      }
    }
  }

  /** The response of `ex` is decided (not an upgrade): reading may go on. */
  #settled(ex: Exchange): void {
    if (this.#upgradePending && ex.head !== null && ex.head.upgrade) {
      this.#upgradePending = false;
      if (!this.#pumping) queueMicrotask(() => this.#pump());
    }
  }

  /** `ex`'s response is complete in `batch[start, len)`. */
  #ready(ex: Exchange, start: number): void {
    this.#settled(ex);
    if (this.#queue[0] === ex) {
      ex.state = DONE;
      this.#done(ex);
    } else {
      // Not its turn: its bytes wait in the hold buffer until the earlier
      // responses are out (one buffer per connection, reused: no copy each).
      const hold = this.#hold ??= new OutBuffer(4096);
      ex.heldAt = hold.len;
      hold.bytes(batch.buf.subarray(start, batch.len));
      ex.heldEnd = hold.len;
      this.#held++;
      batch.len = start;
      ex.state = READY;
    }
  }

  /** The front exchange `ex` is fully written (to the batch): next. */
  #done(ex: Exchange): void {
    if (!this.#retire(ex)) this.#advance();
  }

  /**
   * Take the fully written front exchange `ex` off the queue; when it closes
   * the connection, end it and say so (`true`).
   */
  #retire(ex: Exchange): boolean {
    this.#queue.shift();
    ex.finish();
    if (!ex.bodyDone) ex.discard = true;
    if (ex.close) {
      this.#end();
      return true;
    }
    return false;
  }

  /** Move queued, finished responses to the batch while they are in front. */
  #advance(): void {
    for (;;) {
      const ex = this.#queue[0];
      if (ex === undefined) {
        this.#waitStart = this.#core.reactor.now;
        // Draining: an idle connection gets the grace (`drainCheck`).
        if (
          this.#stopReading || this.#core.draining && this.#core.options.drainIdleMs === 0
        ) {
          this.#end();
        }
        return;
      }
      // Its handler asked for the body while it waited its turn: now it may come.
      if (ex.state === RUNNING) this.#sendContinue(ex, true);
      if (ex.state === READY) {
        const hold = this.#hold!;
        batch.bytes(hold.buf.subarray(ex.heldAt, ex.heldEnd));
        if (--this.#held === 0) hold.clear();
        if (this.#retire(ex)) return;
        continue;
      }
      if (ex.state === STREAMING && ex.stream !== null) {
        if (ex.out !== null) {
          batch.bytes(ex.out);
          ex.out = null;
        }
        this.#startStream(ex);
      } else if (ex.upgrade !== null) {
        this.#finishUpgrade(ex);
      }
      return;
    }
  }

  /**
   * Send this connection's bytes of the batch: at the end of the reactor
   * batch (see `pendingConns`) while nothing else may append in between,
   * else now.
   */
  #flush(): void {
    const out = batch;
    const base = this.#base;
    if (out.len <= base) return;
    if (this.#closed) {
      out.len = base;
      return;
    }
    const conn = this.#conn;
    if (pumpDepth === 0 && !this.#ending && out.len <= DEFER_BYTES && conn.state === "open") {
      pendingConns.push(this);
      pendingRanges.push(base, out.len);
      this.#pendingWrites++;
      this.#base = out.len;
      if (!pendingScheduled) {
        pendingScheduled = true;
        queueMicrotask(HttpConn.#sendPending);
      }
      return;
    }
    this.#sendOwnPending();
    if (conn.state === "open") conn.write(out.buf.subarray(base, out.len));
    out.len = base;
    if (this.#ending && conn.state === "open") this.#finishEnd();
  }

  /** Send the deferred writes (see `pendingConns`): a microtask. */
  static #sendPending(): void {
    pendingScheduled = false;
    const conns = pendingConns;
    const ranges = pendingRanges;
    const buf = batch.buf;
    for (let i = 0; i < conns.length; i++) {
      const start = ranges[2 * i]!;
      if (start < 0) continue;
      const conn = conns[i]!;
      if (conn.#pendingWrites === 1) {
        // A view made with the constructor: cheaper than `subarray`.
        conn.#send(new Uint8Array(buf.buffer, buf.byteOffset + start, ranges[2 * i + 1]! - start));
      } else {
        // Several writes of one connection: joined, sent with one call.
        gather.len = 0;
        for (let j = i; j < conns.length; j++) {
          if (conns[j] !== conn || ranges[2 * j]! < 0) continue;
          gather.bytes(buf.subarray(ranges[2 * j]!, ranges[2 * j + 1]!));
          ranges[2 * j] = -1;
        }
        conn.#send(gather.view());
        gather.clear();
      }
      conn.#pendingWrites = 0;
    }
    conns.length = 0;
    ranges.length = 0;
    if (pumpDepth === 0) batch.len = 0;
  }

  /** Write deferred bytes of this connection. */
  #send(bytes: Uint8Array): void {
    if (!this.#closed && this.#conn.state === "open") this.#conn.write(bytes);
  }

  /** Write this connection's deferred bytes now: what it sends next goes after them. */
  #sendOwnPending(): void {
    if (this.#pendingWrites === 0) return;
    this.#pendingWrites = 0;
    const conns = pendingConns;
    for (let i = 0; i < conns.length; i++) {
      if (conns[i] !== this) continue;
      const r = pendingRanges;
      if (r[2 * i]! >= 0) this.#send(batch.buf.subarray(r[2 * i]!, r[2 * i + 1]!));
      r[2 * i] = -1;
    }
  }

  // -------------------------------------------------------------------------
  // Streamed response bodies

  #startStream(ex: Exchange): void {
    if (this.#streaming) return;
    this.#streaming = true;
    let reader = ex.reader;
    try {
      reader ??= readerOf(ex.stream!);
    } catch (e) {
      // Locked by the handler after it answered.
      this.#streaming = false;
      ex.stream = null;
      this.#reportError(e);
      this.#conn.abort();
      return;
    }
    ex.reader = reader;
    void this.#streamBody(ex, reader);
  }

  /** Whether a streamed body can go on (the client is there to take it). */
  #streamOpen(): boolean {
    return !this.#closed && !this.#peerEnded && this.#conn.state === "open";
  }

  async #streamBody(
    ex: Exchange,
    reader: ReadableStreamDefaultReader<Uint8Array> | ReadableStreamBYOBReader,
  ): Promise<void> {
    if (!this.#pumping) this.#flush(); // the head goes out now; the body follows as it comes
    const conn = this.#conn;
    const hwm = this.#core.options.highWaterMark;
    let pending: Uint8Array[] = [];
    let pendingBytes = 0;
    let next: Promise<ReadableStreamReadResult<Uint8Array>> | null = null;
    let ended = false;
    let failure: unknown = null;
    try {
      if (reader instanceof ReadableStreamBYOBReader) {
        ended = await this.#streamBytes(ex, reader);
      } else {
        for (;;) {
          if (!this.#streamOpen()) break;
          if (pendingBytes === 0 && conn.writableLength >= hwm) {
            await new Promise<void>((resolve) => this.#drainWaiters.push(resolve));
            continue;
          }
          const result = await (next ?? reader.read());
          next = null;
          if (!this.#streamOpen()) break;
          if (result.done) {
            ended = true;
            break;
          }
          const value = result.value;
          if (!(value instanceof Uint8Array)) {
            throw new TypeError("Cannot send the response body: a chunk is not a Uint8Array");
          }
          if (ex.left >= 0) {
            if (value.length > ex.left) {
              throw new LengthMismatch(
                "Cannot send the response body: the stream is longer than its content-length",
              );
            }
            ex.left -= value.length;
          }
          if (value.length > 0) {
            pending.push(value);
            pendingBytes += value.length;
          }
          if (pendingBytes > 0 && pendingBytes < COALESCE_BYTES) {
            // A chunk the stream holds already joins this write.
            const p = reader.read();
            let settled = false;
            p.then(() => settled = true, () => settled = true);
            await undefined;
            next = p;
            if (settled) continue;
          }
          this.#writeChunks(ex, pending, false);
          pending = [];
          pendingBytes = 0;
        }
      }
    } catch (e) {
      failure = e;
    }
    this.#open();
    this.#streaming = false;
    ex.stream = null;
    ex.reader = null;
    if (this.#closed) {
      next?.catch(() => {});
      return; // #onClose cancelled the stream and finished the exchange
    }
    if (!ended && failure === null) {
      // The client went away (EOF): nobody reads the rest.
      reader.cancel(clientGone()).catch(() => {});
      next?.catch(() => {});
      ex.finish();
      this.#conn.close();
      return;
    }
    if (failure === null && ex.left > 0) {
      failure = new LengthMismatch(
        "Cannot send the response body: the stream ended before its content-length",
      );
    }
    if (failure !== null) {
      reader.cancel(failure).catch(() => {});
      next?.catch(() => {});
      this.#reportError(failure);
      ex.finish();
      if (failure instanceof LengthMismatch) {
        // Never wrong framing: the client sees a reset, not a response of the wrong length.
        this.#conn.abort();
        return;
      }
      // The body failed mid-response: what came is sent, then a FIN (the
      // missing end of the body tells the client it is incomplete).
      if (pendingBytes > 0) this.#writeChunks(ex, pending, false);
      ex.close = true;
      this.#queue.shift();
      this.#end();
      return;
    }
    this.#writeChunks(ex, pending, true);
    if (!ex.chunked && ex.left < 0) ex.close = true; // the close ends an HTTP/1.0 body
    this.#done(ex);
    this.#flush();
    if (!this.#closed && !this.#ending) this.#pump();
  }

  /**
   * Stream a byte stream's body through one reused buffer (see `BYOB_SIZE`);
   * true when the stream ended, false when the client went first.
   */
  async #streamBytes(ex: Exchange, reader: ReadableStreamBYOBReader): Promise<boolean> {
    const conn = this.#conn;
    const hwm = this.#core.options.highWaterMark;
    let buffer = new ArrayBuffer(BYOB_SIZE);
    for (;;) {
      if (!this.#streamOpen()) return false;
      if (conn.writableLength >= hwm) {
        await new Promise<void>((resolve) => this.#drainWaiters.push(resolve));
        continue;
      }
      const result = await reader.read(
        new Uint8Array(buffer, FRAME_HEAD, BYOB_SIZE - FRAME_HEAD - 2),
      );
      if (!this.#streamOpen()) return false;
      if (result.done) return true;
      const value = result.value;
      if (ex.left >= 0) {
        if (value.length > ex.left) {
          throw new LengthMismatch(
            "Cannot send the response body: the stream is longer than its content-length",
          );
        }
        ex.left -= value.length;
      }
      if (value.length === 0) continue;
      this.#open();
      if (
        batch.len !== this.#base || value.byteOffset !== FRAME_HEAD ||
        value.buffer.byteLength !== BYOB_SIZE
      ) {
        // Bytes of this connection wait in the batch (they go first), or the
        // stream answered in a buffer of its own: the plain path.
        this.#writeChunks(ex, [value.slice()], false);
        buffer = new ArrayBuffer(BYOB_SIZE);
        continue;
      }
      buffer = value.buffer;
      const bytes = new Uint8Array(buffer);
      let start = FRAME_HEAD;
      let end = FRAME_HEAD + value.length;
      if (ex.chunked) {
        const size = value.length.toString(16);
        start -= size.length + 2;
        for (let i = 0; i < size.length; i++) bytes[start + i] = size.charCodeAt(i);
        bytes[FRAME_HEAD - 2] = 13;
        bytes[FRAME_HEAD - 1] = 10;
        bytes[end++] = 13;
        bytes[end++] = 10;
      }
      // The connection copies what the kernel does not take now: the buffer
      // is free again once `write` returns.
      this.#sendOwnPending();
      if (conn.state === "open") conn.write(bytes.subarray(start, end));
    }
  }

  /**
   * Append `chunks` (and the last chunk when `last`) to the batch as one
   * write; when not `last`, send it now (`last`: the caller flushes).
   */
  #writeChunks(ex: Exchange, chunks: Uint8Array[], last: boolean): void {
    const out = batch;
    this.#open();
    if (ex.chunked) {
      for (const c of chunks) out.chunk(c);
      if (last) out.bytes(LAST_CHUNK);
    } else {
      if (!last && chunks.length === 1 && out.len === this.#base) {
        // One piece: written as it is (the connection copies what it cannot send now).
        this.#sendOwnPending();
        if (this.#conn.state === "open") this.#conn.write(chunks[0]!);
        return;
      }
      for (const c of chunks) out.bytes(c);
    }
    if (!last) this.#flush();
  }

  /** Hand an error the client cannot be told about to `onError` (its response is not used). */
  #reportError(error: unknown): void {
    try {
      const r = this.#dispatcher.onError(error);
      if (r instanceof Promise) {
        r.catch((e) => console.error("ffinet http: onError failed:", e));
      }
    } catch (e) {
      console.error("ffinet http: onError failed:", e);
    }
  }

  // -------------------------------------------------------------------------
  // Upgrades

  #respondUpgrade(ex: Exchange, upgrade: UpgradeRecord): void {
    if (ex.failed) {
      this.respondError(ex, 500); // onError answered with an upgrade: not for an error
      return;
    }
    if (upgrade.request !== ex.request || upgrade.used) {
      this.handlerFailed(
        ex,
        new TypeError(
          upgrade.used
            ? "Cannot upgrade: the response of upgradeConnection() was used already"
            : "Cannot upgrade: the response of upgradeConnection() belongs to another request",
        ),
      );
      return;
    }
    upgrade.used = true;
    const head = ex.head;
    const token = head?.headers.get("upgrade");
    if (head === null || !head.upgrade || token === null || token === undefined) {
      const error = new TypeError(
        "Cannot upgrade: the request has no Upgrade header with Connection: upgrade",
      );
      upgrade.reject(error);
      this.handlerFailed(ex, error);
      return;
    }
    let lines = "";
    for (const [name, value] of upgrade.headers) {
      if (
        name === "connection" || name === "upgrade" || name === "content-length" ||
        name === "transfer-encoding"
      ) continue;
      lines += `${name}: ${value}\r\n`;
    }
    ex.out = utf8(
      statusLine(101, "Switching Protocols") + lines + dateLine() +
        `connection: upgrade\r\nupgrade: ${token}\r\n\r\n`,
    ).slice();
    ex.upgrade = upgrade;
    ex.state = STREAMING;
    this.#stopReading = true;
    if (this.#queue[0] === ex) this.#finishUpgrade(ex);
  }

  #finishUpgrade(ex: Exchange): void {
    const upgrade = ex.upgrade!;
    const conn = this.#conn;
    batch.bytes(ex.out!);
    ex.out = null;
    this.#flush();
    this.#sendOwnPending(); // the 101 is out before the connection is handed over
    this.#queue.shift();
    ex.finish();
    if (this.#closed) return;
    const head = this.#parser.takeBuffered();
    conn.onData = undefined;
    conn.onEnd = undefined;
    conn.onDrain = undefined;
    conn.onClose = undefined;
    this.#closed = true; // for this protocol: the connection is the caller's now
    this.#core.remove(this);
    conn.resume();
    const core = this.#core;
    upgrade.resolve({
      conn: conn as unknown as RawConnection,
      head,
      hold: (goingAway) => core.hold(goingAway, () => conn.abort()),
    });
  }

  // -------------------------------------------------------------------------
  // Timeouts, drain, closing

  sweep(now: number): void {
    if (this.#closed) return;
    this.#open();
    const o = this.#core.options;
    const conn = this.#conn;
    if (conn.writableLength > 0) {
      // A client that does not read what it asked for: cut it after the idle timeout.
      if (conn.bytesWritten !== this.#lastWritten) {
        this.#lastWritten = conn.bytesWritten;
        this.#writeProgress = now;
      } else if (o.idleTimeoutMs > 0 && now - this.#writeProgress > o.idleTimeoutMs) {
        conn.abort();
        return;
      }
    } else {
      this.#writeProgress = now;
    }
    if (this.#ending) {
      if (now - this.#endedAt > LINGER_MS) conn.close();
      return;
    }
    if (this.#blocked) {
      // Waiting on our side: the client's clocks do not run.
      if (this.#headStart >= 0) this.#headStart = now;
      this.#bodyProgress = now;
      return;
    }
    if (this.#bodyEx !== null) {
      const ex = this.#bodyEx;
      const waiting = ex.discard || ex.body === null || (ex.body.desiredSize ?? 1) > 0;
      if (
        o.bodyTimeoutMs > 0 && waiting && !(ex.wantsContinue && !ex.continueSent) &&
        now - this.#bodyProgress > o.bodyTimeoutMs
      ) {
        const error = new Error("Cannot read the request body: timed out");
        this.#endBody(ex, error);
        this.#stopReading = true;
        if (ex.state === RUNNING) {
          ex.close = true;
          this.respondError(ex, 408);
        } else if (this.#queue.length === 0) {
          this.#end();
        }
      }
      return;
    }
    if (this.#queue.length > 0 || this.#stopReading) return;
    if (this.#headStart >= 0) {
      if (o.headerTimeoutMs > 0 && now - this.#headStart > o.headerTimeoutMs) {
        this.#stopReading = true;
        const ex = new Exchange(null, null);
        ex.close = true;
        this.#queue.push(ex);
        this.respondError(ex, 408);
      }
    } else if (o.idleTimeoutMs > 0 && now - this.#waitStart > o.idleTimeoutMs) {
      this.#end();
    }
  }

  drain(): void {
    if (this.#closed) return;
    this.#open();
    if (this.#ending) {
      this.#conn.close(); // do not linger for the client's EOF: flush, then close
      return;
    }
    const last = this.#queue[this.#queue.length - 1];
    if (last === undefined) {
      // Between requests: reading goes on (a request that arrives gets
      // `connection: close`); an idle one closes after the grace
      // (`drainCheck`), at once when it is idle that long already.
      if (this.#bodyEx === null) this.drainCheck(this.#core.reactor.now);
      return;
    }
    if (last.state === RUNNING) {
      // Its response is still to be made: it says `connection: close` and ends the connection.
      last.close = true;
      this.#stopReading = true;
    }
    // Otherwise that response's head went out already (keep-alive): after
    // it the connection idles with the grace, as above.
  }

  drainCheck(now: number): void {
    if (
      this.#closed || this.#ending || this.#stopReading || this.#queue.length > 0 ||
      this.#bodyEx !== null || this.#headStart >= 0
    ) return;
    this.#open();
    if (now - this.#waitStart >= this.#core.options.drainIdleMs) this.#end();
  }

  abort(): void {
    if (!this.#closed) this.#conn.abort();
  }

  /** No more responses on this connection: close with a FIN once sent. */
  #end(): void {
    if (this.#ending || this.#closed) return;
    this.#ending = true;
    this.#endedAt = this.#core.reactor.now;
    if (!this.#pumping) this.#flush();
    this.#finishEnd();
  }

  #finishEnd(): void {
    const conn = this.#conn;
    if (batch.len > this.#base && this.#pumping) return; // the pump flushes, then calls again
    this.#sendOwnPending();
    if (this.#peerEnded || this.#core.draining) {
      conn.close();
    } else if (this.#clientClose && this.#parser.idle) {
      // The client asked for the close and everything it sent was read: it
      // sends nothing more, so there is nothing to linger for (as nginx's
      // lingering_close, which lingers only when unread input is left).
      conn.close();
    } else {
      // Half-close: the peer sees the FIN after the last response; what it
      // still sends is read and dropped until its EOF (closing with unread
      // input would make the kernel send a reset instead).
      conn.end();
      conn.resume();
    }
  }
}

const dispatchers = new WeakMap<ServeContext, Dispatcher>();

/** A `serve()` connection. */
export class ServeConn extends HttpConn {
  constructor(conn: ServerConnection, core: ServerCore, ctx: ServeContext) {
    let dispatcher = dispatchers.get(ctx);
    if (dispatcher === undefined) dispatchers.set(ctx, dispatcher = serveDispatcher(ctx));
    super(conn, core, dispatcher);
  }
}

/** A reader of a response stream: a BYOB one for a byte stream, else the default one. */
function readerOf(
  stream: ReadableStream<Uint8Array>,
): ReadableStreamDefaultReader<Uint8Array> | ReadableStreamBYOBReader {
  try {
    return stream.getReader({ mode: "byob" });
  } catch {
    return stream.getReader(); // not a byte stream
  }
}
