/**
 * The `Request` a `serve()` handler gets (private): a lazy request that is
 * `instanceof Request`. Its `url`, `method`, `headers` and `signal` are
 * made on first use from the parsed head; everything that touches the body
 * (and `clone()`, and Deno's internal fields, for `new Request(req)` or
 * `fetch(req)`) is delegated to a real `Request` built on first need. A
 * handler that only routes on the method and path costs no `Request`.
 *
 * @module
 */
import type { HttpRequest } from "./parser/mod.ts";

const DECODER = new TextDecoder();
const EMPTY = new Uint8Array(0);

const probe = new Request("http://a/", { method: "POST", body: "x" });
const INTERNAL = Object.getOwnPropertySymbols(probe);

// deno-lint-ignore no-explicit-any
type Any = any;

// A request's `Headers` as Deno.serve makes them: immutable, and lazy
// (Deno's own fields: a lookup answers from the parsed head; the list is
// built on first iteration). Only when this Deno has those fields and
// they behave as expected; else a `Headers` built from the pairs.
const headerSymbols = Object.getOwnPropertySymbols(new Headers());
const headerField = (d: string) => headerSymbols.find((s) => s.description === d);
const H_LIST = headerField("header list");
const H_LOWER = headerField("lowercase header names");
const H_GETTER = headerField("header list getter");
const H_GET = headerField("header get");
const H_TARGET = headerField("header target");
const H_GUARD = headerField("guard");

function lazyHeaders(
  list: () => [string, string][],
  get: (name: string) => string | null,
): Headers {
  const h = new Headers() as Any;
  h[H_LIST!] = null;
  h[H_LOWER!] = null;
  h[H_GETTER!] = list;
  h[H_GET!] = get;
  h[H_TARGET!] = null;
  h[H_GUARD!] = "immutable";
  return h as Headers;
}

function probeLazyHeaders(): boolean {
  if (!H_LIST || !H_LOWER || !H_GETTER || !H_GET || !H_TARGET || !H_GUARD) return false;
  try {
    const pairs: [string, string][] = [["host", "a"], ["x-b", "1"], ["x-b", "2"]];
    const get = (n: string) => {
      const k = n.toLowerCase();
      const v = pairs.filter((p) => p[0] === k).map((p) => p[1]);
      return v.length === 0 ? null : v.join(", ");
    };
    const h = lazyHeaders(() => pairs.map((p) => [p[0], p[1]]), get);
    let immutable = false;
    try {
      h.append("x-c", "1");
    } catch (e) {
      immutable = e instanceof TypeError;
    }
    const copy = new Headers(lazyHeaders(() => pairs.map((p) => [p[0], p[1]]), get));
    return h.get("Host") === "a" && h.get("X-B") === "1, 2" && h.has("x-b") &&
      [...h].length === 2 && immutable && copy.get("x-b") === "1, 2" && h.get("y") === null;
  } catch {
    return false;
  }
}

const LAZY_HEADERS = probeLazyHeaders();

/**
 * The URLs of origin-form targets, by target: a steady client's requests get
 * the same string again (built and flattened once), not a new one to build
 * and flatten per request. Bounded: only short targets (the parser's
 * interned ones), and cleared when full.
 */
interface CachedUrl {
  scheme: string;
  host: string;
  url: string;
}
const URL_CACHE_SIZE = 1024;
const URL_CACHE_TARGET = 128;
const urlCache = new Map<string, CachedUrl>();

/** `scheme://host` + `target` (an origin-form target), from the cache when it has it. */
function originUrl(scheme: string, host: string, target: string): string {
  const hit = urlCache.get(target);
  if (hit !== undefined && hit.host === host && hit.scheme === scheme) return hit.url;
  const url = `${scheme}://${host}${target}`;
  if (target.length <= URL_CACHE_TARGET) {
    if (hit === undefined && urlCache.size >= URL_CACHE_SIZE) urlCache.clear();
    urlCache.set(target, { scheme, host, url });
  }
  return url;
}

/** The per-request hooks a `ServerRequest` needs from its connection. */
export interface RequestHost {
  /** The request body stream, made on first use (null: no body). */
  requestBody(): ReadableStream<Uint8Array> | null;
  /**
   * The whole request body when it was in hand as the head was parsed (then
   * `requestBody()` is null), else null.
   */
  requestBytes?(): Uint8Array<ArrayBuffer> | null;
  /** The request's abort signal, made on first use. */
  requestSignal(): AbortSignal;
  /** `host:port` of the local end, for a request without `Host`. */
  localHost(): string;
  /** Whether the request came over a Unix socket (its URL is then `http+unix://…`). */
  unix?(): boolean;
  /** The connection's TLS details, if it is HTTPS (its URL is then `https://…`). */
  tls?(): unknown;
}

/** A lazily built web `Request` (passes `instanceof Request`). */
export class ServerRequest {
  readonly #head: HttpRequest;
  readonly #host: RequestHost;
  #url: string | undefined;
  #headers: Headers | undefined;
  #real: Request | undefined;
  /** The body in hand was read (before a real `Request` exists). */
  #used = false;

  constructor(head: HttpRequest, host: RequestHost) {
    this.#head = head;
    this.#host = host;
  }

  /** @internal The parsed head. */
  get _head(): HttpRequest {
    return this.#head;
  }

  /** @internal The connection hooks. */
  get _host(): RequestHost {
    return this.#host;
  }

  get method(): string {
    return this.#head.method;
  }

  get url(): string {
    if (this.#url === undefined) {
      const head = this.#head;
      const target = head.target;
      // As Deno.serve: a request over a Unix socket has an `http+unix:` URL.
      const scheme = this.#host.unix?.() ? "http+unix" : this.#host.tls?.() ? "https" : "http";
      if (target.charCodeAt(0) === 47) { // "/"
        this.#url = originUrl(scheme, head.headers.get("host") || this.#host.localHost(), target);
      } else if (/^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(target)) {
        this.#url = new URL(target).href; // absolute-form
      } else if (target === "*") {
        this.#url = `${scheme}://${head.headers.get("host") || this.#host.localHost()}/*`;
      } else {
        this.#url = `${scheme}://${target}/`; // authority-form (CONNECT)
      }
    }
    return this.#url;
  }

  get headers(): Headers {
    if (this.#headers === undefined) {
      const fields = this.#head.headers;
      this.#headers = LAZY_HEADERS
        ? lazyHeaders(() => fields.webPairs(), (name) => fields.get(name))
        : new Headers(fields.webPairs());
    }
    return this.#headers;
  }

  get signal(): AbortSignal {
    return this.#host.requestSignal();
  }

  get body(): ReadableStream<Uint8Array> | null {
    if (this.#head.bodyLength === 0 && this.#real === undefined) return null;
    return this.#request().body;
  }

  get bodyUsed(): boolean {
    if (this.#real === undefined) return this.#used;
    return this.#real.bodyUsed;
  }

  get redirect(): RequestRedirect {
    return "follow";
  }
  get cache(): RequestCache {
    return "default";
  }
  get credentials(): RequestCredentials {
    return "same-origin";
  }
  get integrity(): string {
    return "";
  }
  get keepalive(): boolean {
    return false;
  }
  get mode(): RequestMode {
    return "cors";
  }
  get referrer(): string {
    return "about:client";
  }
  get referrerPolicy(): ReferrerPolicy {
    return "";
  }
  get destination(): RequestDestination {
    return "";
  }

  /** The real `Request`, built on first need. */
  #request(): Request {
    if (this.#real === undefined) {
      const head = this.#head;
      const init: RequestInit = {
        method: head.method,
        headers: this.#headers ?? head.headers.webPairs(),
        signal: this.#host.requestSignal(),
      };
      const bytes = this.#host.requestBytes?.() ?? null;
      if (bytes !== null) {
        // The body in hand, as a stream (a stream read through `body`
        // makes `bodyUsed` true, as Deno.serve's); a body read stays read.
        const chunk = this.#used ? EMPTY : bytes;
        init.body = new ReadableStream<Uint8Array>({
          start(c) {
            if (chunk.length > 0) c.enqueue(chunk);
            c.close();
          },
        });
        this.#real = new Request(this.url, init);
        if (this.#used) this.#real.arrayBuffer().catch(() => {});
      } else {
        const body = this.#host.requestBody();
        if (body !== null) init.body = body;
        this.#real = new Request(this.url, init);
      }
    }
    return this.#real;
  }

  /**
   * The body for a read without a stream: its bytes (the read uses them up),
   * a TypeError once read, or undefined when a real `Request` must answer.
   */
  #take(): Uint8Array<ArrayBuffer> | TypeError | undefined {
    if (this.#real !== undefined) return undefined;
    if (this.#head.bodyLength === 0) return EMPTY; // a null body: never used up
    const bytes = this.#host.requestBytes?.() ?? null;
    if (bytes === null) return undefined;
    if (this.#used) return new TypeError("Body already consumed");
    this.#used = true;
    return bytes;
  }

  clone(): Request {
    return this.#request().clone();
  }
  arrayBuffer(): Promise<ArrayBuffer> {
    const b = this.#take();
    if (b === undefined) return this.#request().arrayBuffer();
    if (b instanceof TypeError) return Promise.reject(b);
    // The bytes are this request's own copy: their buffer is handed over.
    return Promise.resolve(b === EMPTY ? new ArrayBuffer(0) : b.buffer);
  }
  blob(): Promise<Blob> {
    const b = this.#take();
    if (b === undefined) return this.#request().blob();
    if (b instanceof TypeError) return Promise.reject(b);
    return this.#asResponse(b).blob();
  }
  bytes(): Promise<Uint8Array<ArrayBuffer>> {
    const b = this.#take();
    if (b === undefined) return this.#request().bytes();
    if (b instanceof TypeError) return Promise.reject(b);
    return Promise.resolve(b === EMPTY ? new Uint8Array(0) : b);
  }
  formData(): Promise<FormData> {
    const b = this.#take();
    if (b === undefined) return this.#request().formData();
    if (b instanceof TypeError) return Promise.reject(b);
    return this.#asResponse(b).formData();
  }

  /** The bytes in a `Response` with this request's content type: the same body parsing. */
  #asResponse(b: Uint8Array<ArrayBuffer>): Response {
    const type = this.#head.headers.get("content-type");
    return new Response(b, type === null ? undefined : { headers: { "content-type": type } });
  }
  json(): Promise<unknown> {
    const b = this.#take();
    if (b === undefined) return this.#request().json();
    if (b instanceof TypeError) return Promise.reject(b);
    try {
      return Promise.resolve(JSON.parse(DECODER.decode(b)));
    } catch (e) {
      return Promise.reject(e);
    }
  }
  text(): Promise<string> {
    const b = this.#take();
    if (b === undefined) return this.#request().text();
    if (b instanceof TypeError) return Promise.reject(b);
    return Promise.resolve(DECODER.decode(b));
  }

  /** @internal The real request, for Deno's internal fields. */
  static _real(r: ServerRequest): Request {
    return r.#request();
  }

  [Symbol.for("Deno.customInspect")](inspect: (value: unknown) => string): string {
    return `Request ${inspect({ method: this.method, url: this.url, headers: this.headers })}`;
  }
}

Object.setPrototypeOf(ServerRequest.prototype, Request.prototype);
// Deno's own code reads a request's internal fields (`new Request(req)`,
// `fetch(req)`, brand checks): they come from the real request.
for (const sym of INTERNAL) {
  Object.defineProperty(ServerRequest.prototype, sym, {
    configurable: true,
    get(this: ServerRequest) {
      // deno-lint-ignore no-explicit-any
      return (ServerRequest._real(this) as any)[sym];
    },
    set(this: ServerRequest, value: unknown) {
      // deno-lint-ignore no-explicit-any
      (ServerRequest._real(this) as any)[sym] = value;
    },
  });
}
// `textStream` and whatever else Request.prototype has that is not above.
for (const name of Object.getOwnPropertyNames(Request.prototype)) {
  if (Object.prototype.hasOwnProperty.call(ServerRequest.prototype, name)) continue;
  const desc = Object.getOwnPropertyDescriptor(Request.prototype, name)!;
  if (typeof desc.value === "function") {
    Object.defineProperty(ServerRequest.prototype, name, {
      configurable: true,
      writable: true,
      value(this: ServerRequest, ...args: unknown[]) {
        // deno-lint-ignore no-explicit-any
        return (desc.value as any).apply(ServerRequest._real(this), args);
      },
    });
  } else if (desc.get !== undefined) {
    const get = desc.get;
    Object.defineProperty(ServerRequest.prototype, name, {
      configurable: true,
      get(this: ServerRequest) {
        return get.call(ServerRequest._real(this));
      },
    });
  }
}
