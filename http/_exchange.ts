/**
 * One request of a connection and its response (private): where the
 * response is (running, serialized and waiting its turn, streaming, done),
 * the request body (a stream for `serve()`, collected whole for
 * `serveRaw()`), the lazy signal and `info`, and the upgrade responses
 * `upgradeConnection` makes.
 *
 * @module
 */
import type { ProxyInfo } from "../reactor/proxy/protocol.ts";
import type { TlsInfo } from "../tls/tls_connection.ts";
import type { RequestHost } from "./_request.ts";
import type { HttpRequest } from "./parser/mod.ts";
import type { NetAddr, ServeHandlerInfo, UnixAddr } from "./types.ts";
import type { UpgradedConnection } from "./upgrade.ts";
import type { OutBuffer } from "./_wire.ts";

/** What an exchange needs from its connection. */
export interface ExchangeOwner {
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
export class Info implements ServeHandlerInfo {
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
  /** Serialized response bytes waiting for their turn (READY/STREAMING). */
  out: Uint8Array | null = null;
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
