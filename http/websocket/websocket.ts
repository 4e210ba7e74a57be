/**
 * The server side of a WebSocket with the WHATWG `WebSocket` interface, as
 * `Deno.upgradeWebSocket` returns it: events (`open`, `message`, `error`,
 * `close`) through `on…` properties and `addEventListener`, `send()` of
 * text, bytes and blobs, `close(code, reason)`.
 *
 * @module
 */
import type { UpgradedConnection } from "../upgrade.ts";
import { CLOSED, CLOSING, Session, type SessionHooks } from "./_session.ts";
import { isValidCloseCode, MAX_CONTROL_PAYLOAD } from "./frame.ts";
import type { ResolvedWebSocketLimits } from "./limits.ts";
import type { MessageDeflate } from "./permessage_deflate.ts";

/** Only this module's friends may construct a socket. */
const TOKEN: unique symbol = Symbol("ServerWebSocket");

/**
 * What a {@linkcode ServerWebSocket} is made from (by `upgradeWebSocket`).
 *
 * @example
 * ```ts
 * import type { ServerWebSocketInit } from "@ffinet/ffinet/websocket";
 * type Url = ServerWebSocketInit["url"];
 * ```
 */
export interface ServerWebSocketInit {
  /** The connection, once the server has sent the 101. */
  connection: Promise<UpgradedConnection>;
  /** The request's URL with the `ws:` or `wss:` scheme. */
  url: string;
  /** The subprotocol answered, or "". */
  protocol: string;
  /** The extensions answered, or "". */
  extensions: string;
  /** The connection's limits. */
  limits: ResolvedWebSocketLimits;
  /** The compression negotiated, if any. */
  deflate?: MessageDeflate;
}

/** Make a socket (for `upgradeWebSocket`). */
export function createServerWebSocket(init: ServerWebSocketInit): ServerWebSocket {
  return new ServerWebSocket(TOKEN, init);
}

/**
 * An `on…` event handler of a {@linkcode ServerWebSocket}.
 *
 * @example
 * ```ts
 * import type { WebSocketEventHandler } from "@ffinet/ffinet/http";
 * const onmessage: WebSocketEventHandler<MessageEvent> = (e) => console.log(e.data);
 * ```
 */
export type WebSocketEventHandler<E extends Event> =
  | ((this: ServerWebSocket, ev: E) => unknown)
  | null;
type Handler<E extends Event> = WebSocketEventHandler<E>;

const encoder = new TextEncoder();

/** A queued send: text, bytes, or a blob whose bytes are still being read. */
type Outgoing = string | Uint8Array | Blob;

/**
 * A server-side WebSocket with the interface of the WHATWG `WebSocket`
 * (`Deno.upgradeWebSocket`'s socket); made by `upgradeWebSocket`.
 *
 * Like Deno's: `binaryType` starts as `"arraybuffer"`; `send()` throws an
 * `InvalidStateError` before `open` and does nothing after `close()`;
 * `close()` takes any code a close frame may carry. Unlike Deno's: `url`
 * is the request's URL (`ws:`), and an abrupt TCP close is reported with
 * code 1006 (RFC 6455 §7.1.5) where Deno reports 0.
 *
 * @example
 * ```ts
 * import { serve, upgradeWebSocket } from "@ffinet/ffinet/http";
 *
 * const server = serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
 *   const { socket, response } = upgradeWebSocket(req);
 *   socket.onmessage = (e) => socket.send(e.data);
 *   return response;
 * });
 * await server.shutdown();
 * ```
 */
export class ServerWebSocket extends EventTarget {
  /** The connection is not yet open. */
  static readonly CONNECTING = 0;
  /** The connection is open. */
  static readonly OPEN = 1;
  /** The closing handshake is under way. */
  static readonly CLOSING = 2;
  /** The connection is closed. */
  static readonly CLOSED = 3;
  // The state constants of instances live on the prototype (as WHATWG's):
  // four fields per socket would cost 32 bytes each.
  /** The connection is not yet open. */
  declare readonly CONNECTING: 0;
  /** The connection is open. */
  declare readonly OPEN: 1;
  /** The closing handshake is under way. */
  declare readonly CLOSING: 2;
  /** The connection is closed. */
  declare readonly CLOSED: 3;

  readonly #url: string;
  readonly #protocol: string;
  readonly #extensions: string;
  #readyState = 0;
  #binaryType: BinaryType = "arraybuffer";
  #session: Session | undefined;
  #pendingClose: { code: number | undefined; reason: string } | undefined;
  #errored = false;
  /** Whether a `message` listener was ever added (else no event is made per message). */
  #heard = false;
  // Sends waiting behind a blob being read, in order.
  #queue: Outgoing[] | null = null;
  #queuedBytes = 0;
  // The `on…` handlers, and which of them hold their place among the
  // listeners (bit per type: registered at the first assignment).
  #onopen: Handler<Event> = null;
  #onmessage: Handler<MessageEvent> = null;
  #onerror: Handler<Event> = null;
  #onclose: Handler<CloseEvent> = null;
  #registered = 0;

  /** What every socket's session reports to it. */
  static readonly #hooks: SessionHooks<ServerWebSocket> = {
    message: (data, ws) => ws.#message(data),
    drain: () => {},
    error: (message, ws) => {
      // The connection fails (a close frame is going out, or it is gone).
      if (ws.#readyState === 1) ws.#readyState = CLOSING;
      ws.#error(message);
    },
    closed: (code, reason, wasClean, ws) => ws.#closed(code, reason, wasClean),
  };

  /** Not constructible: use `upgradeWebSocket`. */
  constructor(token: typeof TOKEN, init: ServerWebSocketInit) {
    if (token !== TOKEN) throw new TypeError("Illegal constructor: use upgradeWebSocket()");
    super();
    this.#url = init.url;
    this.#protocol = init.protocol;
    this.#extensions = init.extensions;
    init.connection.then(
      ({ conn, head, hold }) => {
        const session = new Session(conn, init.limits, ServerWebSocket.#hooks, init.deflate, this);
        this.#session = session;
        const pending = this.#pendingClose;
        if (pending !== undefined) {
          session.start(head, hold);
          session.close(pending.code, pending.reason);
          return;
        }
        this.#readyState = 1;
        this.dispatchEvent(new Event("open"));
        session.start(head, hold);
      },
      (error: Error) => {
        init.deflate?.close();
        this.#error(error.message);
        this.#closed(1006, "", false);
      },
    );
  }

  /** `CONNECTING` (0), `OPEN` (1), `CLOSING` (2) or `CLOSED` (3). */
  get readyState(): number {
    return this.#readyState;
  }
  /** The URL of the upgrade request, with the `ws:` or `wss:` scheme. */
  get url(): string {
    return this.#url;
  }
  /** The subprotocol chosen (the `protocol` option), or "". */
  get protocol(): string {
    return this.#protocol;
  }
  /** The extensions negotiated (`permessage-deflate; …`), or "". */
  get extensions(): string {
    return this.#extensions;
  }
  /** How binary messages are delivered: `"arraybuffer"` (default) or `"blob"`. */
  get binaryType(): BinaryType {
    return this.#binaryType;
  }
  set binaryType(value: BinaryType) {
    if (value === "arraybuffer" || value === "blob") this.#binaryType = value;
  }
  /**
   * Bytes of messages passed to `send()` that have not been handed to the
   * kernel yet (UTF-8 bytes for text; uncompressed sizes).
   */
  get bufferedAmount(): number {
    return this.#queuedBytes + (this.#session?.bufferedAmount ?? 0);
  }

  /** Called once the connection is open. */
  get onopen(): WebSocketEventHandler<Event> {
    return this.#onopen;
  }
  set onopen(h: WebSocketEventHandler<Event>) {
    this.#onopen = typeof h === "function" ? h : null;
    this.#register("open", 1);
  }
  /** Called with each message. */
  get onmessage(): WebSocketEventHandler<MessageEvent> {
    return this.#onmessage;
  }
  set onmessage(h: WebSocketEventHandler<MessageEvent>) {
    this.#onmessage = typeof h === "function" ? h : null;
    this.#register("message", 2);
  }
  /** Called on a protocol violation, an abrupt close or a timeout. */
  get onerror(): WebSocketEventHandler<Event> {
    return this.#onerror;
  }
  set onerror(h: WebSocketEventHandler<Event>) {
    this.#onerror = typeof h === "function" ? h : null;
    this.#register("error", 4);
  }
  /** Called once the connection is closed. */
  get onclose(): WebSocketEventHandler<CloseEvent> {
    return this.#onclose;
  }
  set onclose(h: WebSocketEventHandler<CloseEvent>) {
    this.#onclose = typeof h === "function" ? h : null;
    this.#register("close", 8);
  }

  /**
   * The handler of `type` takes its place among the listeners at its first
   * assignment: one listener function shared by every socket (it finds the
   * handler on the event's target), so a handler costs no closure.
   */
  #register(type: string, bit: number): void {
    if ((this.#registered & bit) !== 0) return;
    this.#registered |= bit;
    this.addEventListener(type, ServerWebSocket.#invokeHandler);
  }

  static #invokeHandler(this: ServerWebSocket, ev: Event): void {
    const type = ev.type;
    const h = type === "message"
      ? this.#onmessage
      : type === "open"
      ? this.#onopen
      : type === "error"
      ? this.#onerror
      : this.#onclose;
    if (typeof h === "function") (h as (ev: Event) => unknown).call(this, ev);
  }

  /**
   * Send a message: a string as text; an `ArrayBuffer`, a view or a `Blob`
   * as binary (copied at the call; a blob's bytes are read first, and the
   * sends after it wait for it so that order is kept).
   *
   * @throws {DOMException} `InvalidStateError` before the socket is open.
   */
  send(data: string | ArrayBufferLike | ArrayBufferView | Blob): void {
    if (this.#readyState === 0) {
      throw new DOMException("'readyState' not OPEN", "InvalidStateError");
    }
    if (this.#readyState !== 1) return;
    let out: Outgoing;
    if (typeof data === "string") out = data;
    else if (data instanceof Blob) out = data;
    else if (ArrayBuffer.isView(data)) {
      out = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    } else if (data instanceof ArrayBuffer || data instanceof SharedArrayBuffer) {
      out = new Uint8Array(data);
    } else out = String(data);
    if (this.#queue === null && !(out instanceof Blob)) {
      // Framed (copied) before this returns.
      this.#session!.send(out);
      return;
    }
    // Waiting behind a blob: a copy now, as the caller may change its bytes.
    if (out instanceof Uint8Array) out = out.slice();
    this.#queue ??= [];
    this.#queue.push(out);
    this.#queuedBytes += out instanceof Blob
      ? out.size
      : typeof out === "string"
      ? encoder.encode(out).length
      : out.length;
    if (this.#queue.length === 1) void this.#pump();
  }

  /** Send queued messages in order, reading blobs as they come. */
  async #pump(): Promise<void> {
    const queue = this.#queue!;
    while (queue.length > 0) {
      const head = queue[0]!;
      let bytes: string | Uint8Array;
      if (head instanceof Blob) {
        try {
          bytes = new Uint8Array(await head.arrayBuffer());
        } catch (e) {
          this.#error(`Cannot send a Blob: ${(e as Error).message}`);
          bytes = new Uint8Array(0);
        }
      } else {
        bytes = head;
      }
      queue.shift();
      this.#queuedBytes -= head instanceof Blob
        ? head.size
        : typeof head === "string"
        ? encoder.encode(head).length
        : head.length;
      if (this.#readyState === 1) this.#session!.send(bytes);
    }
    this.#queue = null;
    this.#queuedBytes = 0;
  }

  /**
   * Start the closing handshake: `code` (a code a close frame may carry)
   * and a `reason` of at most 123 UTF-8 bytes go to the peer.
   *
   * @throws {DOMException} `InvalidAccessError` for a code that may not be
   *   sent; `SyntaxError` for a longer reason.
   */
  close(code?: number, reason?: string): void {
    if (code !== undefined && (!Number.isInteger(code) || !isValidCloseCode(code))) {
      throw new DOMException(
        `The close code must be 1000-1003, 1007-1014 or 3000-4999, received ${code}`,
        "InvalidAccessError",
      );
    }
    const text = reason === undefined ? "" : String(reason);
    if (encoder.encode(text).length > MAX_CONTROL_PAYLOAD - 2) {
      throw new DOMException("The close reason may not be longer than 123 bytes", "SyntaxError");
    }
    if (this.#readyState >= CLOSING) return;
    if (this.#readyState === 0) {
      this.#readyState = CLOSING;
      this.#pendingClose = { code, reason: text };
      return;
    }
    this.#readyState = CLOSING;
    this.#session!.close(code, text);
  }

  /**
   * As `EventTarget`'s; a `message` listener is noted, so that messages
   * nobody listens to cost no event.
   */
  override addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void {
    super.addEventListener(type, listener, options);
    if (String(type) === "message") this.#heard = true;
  }

  #message(data: string | Uint8Array<ArrayBuffer>): void {
    if (!this.#heard) return;
    let value: string | ArrayBuffer | Blob;
    if (typeof data === "string") value = data;
    else if (this.#binaryType === "blob") value = new Blob([data]);
    else if (data.byteOffset === 0 && data.byteLength === data.buffer.byteLength) {
      value = data.buffer;
    } else value = data.slice().buffer;
    this.dispatchEvent(new MessageEvent("message", { data: value }));
  }

  #error(message: string): void {
    if (this.#errored || this.#readyState === CLOSED) return;
    this.#errored = true;
    this.dispatchEvent(new ErrorEvent("error", { message }));
  }

  #closed(code: number, reason: string, wasClean: boolean): void {
    if (this.#readyState === CLOSED) return;
    this.#readyState = CLOSED;
    this.#queue = null;
    this.#queuedBytes = 0;
    this.dispatchEvent(new CloseEvent("close", { code, reason, wasClean }));
  }
}

Object.defineProperties(ServerWebSocket.prototype, {
  CONNECTING: { value: 0, enumerable: true },
  OPEN: { value: 1, enumerable: true },
  CLOSING: { value: 2, enumerable: true },
  CLOSED: { value: 3, enumerable: true },
});
