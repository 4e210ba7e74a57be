/**
 * One request of a `serve()` connection and its response (private): where
 * the response is (running, serialized and waiting its turn, streaming,
 * done), the request body's stream, the lazy signal and `info`.
 *
 * @module
 */
import type { ProxyInfo } from "../reactor/proxy_protocol.ts";
import type { RequestHost } from "./_request.ts";
import type { HttpRequest } from "./parser.ts";
import type { NetAddr, ServeHandlerInfo, UnixAddr } from "./types.ts";
import type { UpgradeRecord } from "./_upgrades.ts";

/** What an exchange needs from its connection. */
export interface ExchangeOwner {
  /** The client has gone (EOF or closed). */
  readonly gone: boolean;
  /** The stream of `ex`'s request body. */
  bodyStream(ex: Exchange): ReadableStream<Uint8Array>;
  /** `host:port` of the local end. */
  localHost(): string;
  /** The peer's address. */
  remoteAddr(): NetAddr | UnixAddr;
  /** What a PROXY protocol header said, if any. */
  proxyInfo(): ProxyInfo | undefined;
}

// Exchange states
export const RUNNING = 0; // the handler has not answered
export const READY = 1; // the response is serialized in `out`, complete
export const STREAMING = 2; // the head is out (or in `out`); the body streams once in front
export const DONE = 3;

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
}

/** One request and its response. */
export class Exchange implements RequestHost {
  readonly head: HttpRequest | null;
  readonly #owner: ExchangeOwner | null;
  #bodyStream: ReadableStream<Uint8Array> | null = null;
  state = RUNNING;
  /** Serialized response bytes waiting for their turn (READY/STREAMING). */
  out: Uint8Array | null = null;
  /** The response body still to stream, once in front. */
  stream: ReadableStream<Uint8Array> | null = null;
  chunked = false;
  /** Close the connection once this response is out. */
  close = false;
  upgrade: UpgradeRecord | null = null;
  /** The request body: its stream's controller while it is being received. */
  body: ReadableStreamDefaultController<Uint8Array> | null = null;
  /** Drop the rest of the request body (the handler does not want it). */
  discard = false;
  bodyDone = true;
  continueSent = false;
  wantsContinue = false;
  controller: AbortController | null = null;
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

  requestSignal(): AbortSignal {
    if (this.controller === null) {
      this.controller = new AbortController();
      if (this.#owner !== null && this.#owner.gone && this.state !== DONE) {
        this.controller.abort(new Error("The client closed the connection"));
      }
    }
    return this.controller.signal;
  }

  localHost(): string {
    return this.#owner?.localHost() ?? "localhost";
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
