/**
 * The handler-shaped WebSocket API (Bun's `websocket: { open, message,
 * close, drain }`): one set of handlers per server, a light socket per
 * connection (no `EventTarget`, no event object per message), `send()`
 * returning the bytes sent or a backpressure signal, and topics with
 * `subscribe` / `publish`.
 *
 * `serve()` reaches it through `serve({ websocket, handler })` and
 * `server.upgrade(request, { data })`, or {@linkcode upgradeWithHandlers}
 * (return its response from the handler).
 *
 * Topics span the Workers of `serve({ workers })` (one process): a
 * `publish` is delivered in its own thread and posted once to the main
 * thread, which relays it to every other Worker. Under ffinet's supervisor
 * (`deno task serve` with several workers) a `publish` also goes once to
 * the supervisor, which relays it to every other worker process.
 *
 * @module
 */
import { beginLoopTurn } from "../../reactor/reactor.ts";
import { isServeRequest, upgradeConnection } from "../upgrade.ts";
import { isServeWorker, WEBSOCKET_PUBLISH } from "../workers.ts";
import { type SupervisorChannel, supervisorChannel } from "../supervisor_channel.ts";
import type {
  HttpServer,
  NetAddr,
  ServeHandler,
  ServeHandlerInfo,
  ServeOptions,
} from "../types.ts";
import { frameHeaderLength, Opcode, writeFrameHeader } from "./frame.ts";
import { type HandshakeOptions, negotiateHandshake } from "./handshake.ts";
import type { WebSocketLimits } from "./limits.ts";
import type { PerMessageDeflateOptions } from "./permessage_deflate.ts";
import { CLOSED, Session, type SessionHooks } from "./_session.ts";

/**
 * A server's WebSocket handlers and settings.
 *
 * @example
 * ```ts
 * import type { WebSocketHandlers } from "@ffinet/ffinet/http";
 * const handlers: WebSocketHandlers<{ user: string }> = {
 *   open(ws) {
 *     ws.subscribe("chat");
 *   },
 *   message(ws, message) {
 *     ws.publish("chat", `${ws.data.user}: ${message}`);
 *   },
 * };
 * ```
 */
export interface WebSocketHandlers<T = undefined> {
  /** The socket is open (the 101 is sent). */
  open?(ws: HandlerWebSocket<T>): void;
  /** A message: text as a string, binary as a `Uint8Array` the handler may keep. */
  message(ws: HandlerWebSocket<T>, message: string | Uint8Array<ArrayBuffer>): void;
  /** The socket is closed (1006 when the TCP connection ended without a close). */
  close?(ws: HandlerWebSocket<T>, code: number, reason: string): void;
  /** The queue emptied after `send()` returned -1. */
  drain?(ws: HandlerWebSocket<T>): void;
  /** A violation, an abrupt close or a timeout, before `close`. */
  error?(ws: HandlerWebSocket<T>, message: string): void;
  /** Message, fragment, backpressure and close limits. */
  limits?: WebSocketLimits;
  /** Seconds of silence before a ping (then as long for the pong); 0: off. Default 30. */
  idleTimeout?: number;
  /** permessage-deflate: `true` or settings to accept a client's offer. Default off. */
  perMessageDeflate?: boolean | PerMessageDeflateOptions;
}

/**
 * One topic's subscribers on this thread: their sessions in a flat array
 * (what a publish walks, with no iterator and no copy), their sockets at
 * the same places, and each socket's place. A socket that leaves has the
 * last one moved into its place; while a publish walks the arrays (a send
 * may close a socket, and the handlers may unsubscribe any) it leaves a
 * hole instead, and the holes are closed once the walk is over, so a walk
 * neither skips nor repeats a subscriber.
 */
class Topic {
  readonly #sessions: (Session | null)[] = [];
  readonly #sockets: (HandlerWebSocket<unknown> | null)[] = [];
  readonly #places = new Map<HandlerWebSocket<unknown>, number>();
  #walks = 0;
  #holes = 0;

  /** How many sockets receive the topic. */
  get size(): number {
    return this.#places.size;
  }

  add(ws: HandlerWebSocket<unknown>, session: Session): void {
    if (this.#places.has(ws)) return;
    this.#places.set(ws, this.#sessions.length);
    this.#sessions.push(session);
    this.#sockets.push(ws);
  }

  delete(ws: HandlerWebSocket<unknown>): void {
    const i = this.#places.get(ws);
    if (i === undefined) return;
    this.#places.delete(ws);
    if (this.#walks > 0) {
      this.#sessions[i] = this.#sockets[i] = null;
      this.#holes++;
      return;
    }
    const last = this.#sessions.length - 1;
    if (i !== last) {
      const moved = this.#sockets[last]!;
      this.#sessions[i] = this.#sessions[last]!;
      this.#sockets[i] = moved;
      this.#places.set(moved, i);
    }
    this.#sessions.pop();
    this.#sockets.pop();
  }

  /**
   * Hand `frame` (built once for all) to every subscriber but `except`
   * (`message` for those that compress); how many took it. Sockets that
   * subscribe meanwhile get the next message, not this one.
   */
  deliver(
    frame: Uint8Array,
    appBytes: number,
    message: string | Uint8Array,
    except: HandlerWebSocket<unknown> | undefined,
  ): number {
    const sessions = this.#sessions;
    const sockets = this.#sockets;
    const end = sessions.length;
    let n = 0;
    this.#walks++;
    try {
      for (let i = 0; i < end; i++) {
        const session = sessions[i];
        if (session == null || sockets[i] === except) continue;
        if (session.sendFrame(frame, appBytes, message) >= 0) n++;
      }
    } finally {
      if (--this.#walks === 0 && this.#holes > 0) this.#closeHoles();
    }
    return n;
  }

  #closeHoles(): void {
    const sessions = this.#sessions;
    const sockets = this.#sockets;
    let j = 0;
    for (let i = 0; i < sockets.length; i++) {
      const ws = sockets[i];
      if (ws == null) continue;
      if (i !== j) {
        sessions[j] = sessions[i]!;
        sockets[j] = ws;
        this.#places.set(ws, j);
      }
      j++;
    }
    sessions.length = sockets.length = j;
    this.#holes = 0;
  }
}

/** This thread's topics and their subscribers. */
const topics = new Map<string, Topic>();

/**
 * The bus between the Workers of `serve({ workers })` (threads of one
 * process): in such a Worker, each `publish` posts the topic and a copy of
 * the message once to the main thread, which relays it to the other Workers;
 * each delivers it to its own subscribers. Worker messages queue without
 * loss (a `BroadcastChannel` drops messages past 256 unread ones). Outside
 * such a Worker, topics stay within the thread.
 */
// deno-lint-ignore no-explicit-any
const scope = globalThis as any;
let bus: boolean | undefined;
/** In a worker process of ffinet's supervisor: its channel (see `supervisor_channel.ts`). */
let channel: SupervisorChannel | null = null;

function inWorkers(): boolean {
  if (bus === undefined) {
    bus = isServeWorker();
    if (bus) {
      scope.addEventListener("message", (e: MessageEvent) => {
        const m = e.data as { type?: unknown; topic?: unknown; data?: unknown } | null;
        if (
          m !== null && typeof m === "object" && m.type === WEBSOCKET_PUBLISH &&
          typeof m.topic === "string" &&
          (typeof m.data === "string" || m.data instanceof Uint8Array)
        ) deliverRelayed(m.topic, m.data);
      });
    } else {
      channel = supervisorChannel();
      channel?.onPublish((topic, data) => deliver(topic, data, undefined));
      bus = channel !== null;
    }
  }
  return bus;
}

/**
 * Deliver a publish another Worker made. It arrives as an event of Deno's
 * loop, outside any reactor batch: it starts a write turn of its own, so
 * each subscriber gets one direct send and a burst corks together.
 */
function deliverRelayed(topic: string, data: string | Uint8Array): void {
  beginLoopTurn();
  deliver(topic, data, undefined);
}

/** Only this module makes sockets. */
const TOKEN: unique symbol = Symbol("HandlerWebSocket");

/**
 * The socket the handlers get: `send` returns the frame's bytes when the
 * message went out (to the kernel, or into a queue below the connection's
 * high-water mark), -1 when the queue is past that mark (backpressure: wait
 * for `drain`), or 0 when the message was dropped (the socket is closing or
 * closed, or the backpressure limit was passed).
 *
 * @example
 * ```ts
 * import type { HandlerWebSocket } from "@ffinet/ffinet/http";
 * function shout(ws: HandlerWebSocket<unknown>, text: string): void {
 *   if (ws.send(text.toUpperCase()) === -1) console.log("the peer is slow");
 * }
 * ```
 */
export class HandlerWebSocket<T = undefined> {
  /** The value given to `upgradeWithHandlers` (`data`). */
  data: T;
  readonly #session: Session;
  /** The topics this socket receives (made at the first `subscribe`). */
  #topics: Set<string> | undefined;

  /** Not constructible: made by {@linkcode upgradeWithHandlers}. */
  constructor(token: typeof TOKEN, data: T, session: (ws: HandlerWebSocket<T>) => Session) {
    if (token !== TOKEN) throw new TypeError("Illegal constructor: use upgradeWithHandlers()");
    this.data = data;
    this.#session = session(this);
  }

  /** 1 while open, 2 while closing, 3 once closed. */
  get readyState(): number {
    return this.#session.state;
  }

  /** Bytes of messages queued and not yet handed to the kernel. */
  get bufferedAmount(): number {
    return this.#session.bufferedAmount;
  }

  /**
   * Send a message (a string as text, bytes as binary; copied before this
   * returns): the frame's bytes, -1 under backpressure, 0 when dropped.
   */
  send(message: string | ArrayBufferView | ArrayBuffer): number {
    let data: string | Uint8Array;
    if (typeof message === "string") data = message;
    else if (ArrayBuffer.isView(message)) {
      data = new Uint8Array(message.buffer, message.byteOffset, message.byteLength);
    } else if (message instanceof ArrayBuffer) data = new Uint8Array(message);
    else throw new TypeError("Cannot send: the message is not a string, an ArrayBuffer or a view");
    const r = this.#session.send(data);
    return r < 0 ? 0 : r > 0 ? -1 : this.#session.lastFrameBytes;
  }

  /** Start the closing handshake (`code` a close frame may carry; a reason of at most 123 bytes). */
  close(code?: number, reason?: string): void {
    this.#session.close(code, reason ?? "");
  }

  /** Reset the connection without a closing handshake. */
  terminate(): void {
    this.#session.terminate();
  }

  /** Send a ping (at most 125 bytes). */
  ping(data?: Uint8Array): void {
    this.#session.ping(data);
  }

  /** Send an unsolicited pong (at most 125 bytes). */
  pong(data?: Uint8Array): void {
    this.#session.pong(data);
  }

  /** Receive what is published to `topic` on this thread. */
  subscribe(topic: string): void {
    if (this.#session.state === CLOSED) return;
    inWorkers(); // hear the other Workers' publishes from now on
    let t = topics.get(topic);
    if (t === undefined) topics.set(topic, t = new Topic());
    t.add(this as HandlerWebSocket<unknown>, this.#session);
    (this.#topics ??= new Set()).add(topic);
  }

  /** Stop receiving `topic`. */
  unsubscribe(topic: string): void {
    const t = topics.get(topic);
    t?.delete(this as HandlerWebSocket<unknown>);
    if (t?.size === 0) topics.delete(topic);
    this.#topics?.delete(topic);
  }

  /** Whether this socket receives `topic`. */
  isSubscribed(topic: string): boolean {
    return this.#topics?.has(topic) ?? false;
  }

  /** Send `message` to every other subscriber of `topic` on this thread; returns how many got it. */
  publish(topic: string, message: string | ArrayBufferView | ArrayBuffer): number {
    return publish(topic, message, this as HandlerWebSocket<unknown>);
  }

  /** Leave every topic (when the socket closes). */
  unsubscribeAll(): void {
    if (this.#topics === undefined) return;
    for (const topic of [...this.#topics]) this.unsubscribe(topic);
    this.#topics = undefined;
  }
}

/**
 * Send `message` to every subscriber of `topic` (but `except`): on this
 * thread, in the other Workers of `serve({ workers })` when called in one
 * of them, and in the other worker processes under ffinet's supervisor.
 * Returns how many sockets of this thread took it.
 *
 * @example
 * ```ts
 * import { publish } from "@ffinet/ffinet/http";
 * console.log(publish("news", "nobody listens yet")); // 0
 * ```
 */
export function publish(
  topic: string,
  message: string | ArrayBufferView | ArrayBuffer,
  except?: HandlerWebSocket<unknown>,
): number {
  let data: string | Uint8Array;
  if (typeof message === "string") data = message;
  else if (ArrayBuffer.isView(message)) {
    data = new Uint8Array(message.buffer, message.byteOffset, message.byteLength);
  } else if (message instanceof ArrayBuffer) data = new Uint8Array(message);
  else throw new TypeError("Cannot publish: the message is not a string, an ArrayBuffer or a view");
  // A copy (never a view of the caller's memory, shared or not) for the
  // other Workers, moved to the main thread rather than cloned again.
  if (inWorkers()) {
    if (channel !== null) channel.publish(topic, data);
    else if (typeof data === "string") scope.postMessage({ type: WEBSOCKET_PUBLISH, topic, data });
    else {
      const copy = data.slice();
      scope.postMessage({ type: WEBSOCKET_PUBLISH, topic, data: copy }, [copy.buffer]);
    }
  }
  return deliver(topic, data, except);
}

const encoder = new TextEncoder();

/**
 * Send `data` to this thread's subscribers of `topic` but `except`: its
 * frame is built once (header and payload in one buffer) and handed to
 * each subscriber's connection as it is.
 */
function deliver(
  topic: string,
  data: string | Uint8Array,
  except: HandlerWebSocket<unknown> | undefined,
): number {
  const t = topics.get(topic);
  if (t === undefined) return 0;
  const payload = typeof data === "string" ? encoder.encode(data) : data;
  const n = payload.byteLength; // read once: the frame holds exactly this many bytes
  const head = frameHeaderLength(n);
  const frame = new Uint8Array(head + n);
  frame.set(payload.subarray(0, n), head);
  writeFrameHeader(frame, head, typeof data === "string" ? Opcode.Text : Opcode.Binary, n);
  return t.deliver(frame, n, data, except);
}

/** The session hooks of each handler set (one object for all its sockets). */
const sessionHooks = new WeakMap<WebSocketHandlers<never>, SessionHooks<never>>();

function hooksOf<T>(handlers: WebSocketHandlers<T>): SessionHooks<HandlerWebSocket<T>> {
  let hooks = sessionHooks.get(handlers as WebSocketHandlers<never>) as
    | SessionHooks<HandlerWebSocket<T>>
    | undefined;
  if (hooks === undefined) {
    hooks = {
      message: (m, ws) => handlers.message(ws, m),
      drain: (ws) => handlers.drain?.(ws),
      error: (m, ws) => handlers.error?.(ws, m),
      closed: (code, reason, _clean, ws) => {
        ws.unsubscribeAll();
        handlers.close?.(ws, code, reason);
      },
    };
    sessionHooks.set(handlers as WebSocketHandlers<never>, hooks as SessionHooks<never>);
  }
  return hooks;
}

/**
 * Upgrade a request of ffinet's `serve()` to a WebSocket run by `handlers`:
 * return the response from the handler. `data` becomes `ws.data`.
 *
 * @throws {TypeError} When `request` is not a WebSocket handshake, or did not
 *   come from ffinet's `serve()`.
 *
 * @example A chat room
 * ```ts
 * import { serve, upgradeWithHandlers, type WebSocketHandlers } from "@ffinet/ffinet/http";
 *
 * const chat: WebSocketHandlers<{ name: string }> = {
 *   open: (ws) => ws.subscribe("room"),
 *   message: (ws, m) => ws.publish("room", `${ws.data.name}: ${m}`),
 * };
 * const server = serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
 *   const name = new URL(req.url).searchParams.get("name") ?? "anonymous";
 *   return upgradeWithHandlers(req, chat, { data: { name } });
 * });
 * await server.shutdown();
 * ```
 */
export function upgradeWithHandlers<T>(
  request: Request,
  handlers: WebSocketHandlers<T>,
  options: { data?: T; protocol?: string } = {},
): Response {
  // Each setting read once; one options object per handshake.
  const handshake: HandshakeOptions = {};
  const { limits: limitsIn, idleTimeout, perMessageDeflate } = handlers;
  const protocol = options.protocol;
  if (limitsIn !== undefined) handshake.limits = limitsIn;
  if (idleTimeout !== undefined) handshake.idleTimeout = idleTimeout;
  if (protocol !== undefined) handshake.protocol = protocol;
  if (perMessageDeflate !== undefined) handshake.compression = perMessageDeflate;
  const { headers, limits, deflate } = negotiateHandshake(request, handshake);
  const { response, connection } = upgradeConnection(request, { headers });
  connection.then(({ conn, head, hold }) => {
    let session!: Session<HandlerWebSocket<T>>;
    const ws = new HandlerWebSocket<T>(
      TOKEN,
      options.data as T,
      (self) => session = new Session(conn, limits, hooksOf(handlers), deflate, self),
    );
    handlers.open?.(ws);
    session.start(head, hold);
  }, () => deflate?.close());
  return response;
}

/**
 * `serve()` with Bun's WebSocket shape: the options' `websocket` handlers,
 * and a handler that calls `server.upgrade(request, { data })` and then
 * returns nothing (the server answers 101), or returns a `Response`.
 *
 * @example
 * ```ts
 * import { serve, type WebSocketServeInit } from "@ffinet/ffinet/http";
 *
 * const init: WebSocketServeInit<{ id: number }> = {
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   onListen() {},
 *   websocket: { message: (ws, m) => ws.send(`${ws.data.id}: ${m}`) },
 *   handler: (req) => {
 *     if (server.upgrade(req, { data: { id: 1 } })) return;
 *     return new Response("not a WebSocket request", { status: 426 });
 *   },
 * };
 * const server = serve(init);
 * await server.shutdown();
 * ```
 */
export interface WebSocketServeInit<T = undefined> extends ServeOptions {
  /** The handlers of every WebSocket `server.upgrade()` makes. */
  websocket: WebSocketHandlers<T>;
  /** The request handler: nothing after a successful `server.upgrade(request)`. */
  handler(
    request: Request,
    info: ServeHandlerInfo,
  ): Response | undefined | Promise<Response | undefined>;
}

/**
 * The server of {@linkcode WebSocketServeInit}: an `HttpServer` with Bun's
 * `upgrade()`.
 *
 * @example
 * ```ts
 * import type { WebSocketServer } from "@ffinet/ffinet/http";
 * function route(server: WebSocketServer<string>, req: Request): Response | undefined {
 *   return server.upgrade(req, { data: "guest" }) ? undefined : new Response("hi");
 * }
 * ```
 */
export interface WebSocketServer<T = undefined> extends HttpServer<NetAddr> {
  /**
   * Upgrade `request` to a WebSocket run by the server's `websocket`
   * handlers (`data` becomes `ws.data`): true, and the handler then returns
   * nothing; false when `request` is not a WebSocket handshake of this
   * server's (answer it with a `Response`).
   *
   * @throws {TypeError} For a `protocol` the client did not offer.
   */
  upgrade(request: Request, options?: { data?: T; protocol?: string }): boolean;
}

/**
 * Bun's shape for `serve()` (private to `serve.ts`): the handler wrapped so
 * that after `server.upgrade(request)` its answer is the upgrade response,
 * and `attach` adding `upgrade` to the server.
 */
export function webSocketServe<T>(
  init: WebSocketServeInit<T>,
  handler: WebSocketServeInit<T>["handler"],
): { handler: ServeHandler; attach(server: HttpServer<NetAddr>): WebSocketServer<T> } {
  const handlers = init.websocket;
  if (handlers === null || typeof handlers !== "object" || typeof handlers.message !== "function") {
    throw new TypeError("Cannot serve: websocket needs a message(ws, message) handler");
  }
  const upgraded = new WeakMap<Request, Response>();
  const answer = (request: Request, res: Response | undefined): Response => {
    const up = upgraded.get(request);
    if (up !== undefined) return up; // upgraded: any Response returned is ignored, as Bun
    if (res === undefined) {
      throw new TypeError(
        "Cannot respond: the handler returned nothing and did not call server.upgrade(request)",
      );
    }
    return res;
  };
  const wrapped: ServeHandler = (request, info) => {
    const res = handler(request, info);
    return res instanceof Promise ? res.then((r) => answer(request, r)) : answer(request, res);
  };
  const upgrade = (request: Request, options: { data?: T; protocol?: string } = {}): boolean => {
    if (!isServeRequest(request) || upgraded.has(request)) return false;
    if ((request.headers.get("upgrade") ?? "").toLowerCase() !== "websocket") return false;
    let response: Response;
    try {
      response = upgradeWithHandlers(request, handlers, options);
    } catch (e) {
      if (e instanceof TypeError && /protocol/.test(e.message)) throw e;
      return false; // not a valid handshake: the handler answers it
    }
    upgraded.set(request, response);
    return true;
  };
  return {
    handler: wrapped,
    attach: (server) => Object.assign(server, { upgrade }) as WebSocketServer<T>,
  };
}
