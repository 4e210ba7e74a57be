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
import type { HttpRequest } from "./parser.ts";

const probe = new Request("http://a/", { method: "POST", body: "x" });
const INTERNAL = Object.getOwnPropertySymbols(probe);

/** The per-request hooks a `ServerRequest` needs from its connection. */
export interface RequestHost {
  /** The request body stream, made on first use (null: no body). */
  requestBody(): ReadableStream<Uint8Array> | null;
  /** The request's abort signal, made on first use. */
  requestSignal(): AbortSignal;
  /** `host:port` of the local end, for a request without `Host`. */
  localHost(): string;
}

/** A lazily built web `Request` (passes `instanceof Request`). */
export class ServerRequest {
  readonly #head: HttpRequest;
  readonly #host: RequestHost;
  #url: string | undefined;
  #headers: Headers | undefined;
  #real: Request | undefined;

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
      if (target.charCodeAt(0) === 47) { // "/"
        this.#url = `http://${head.headers.get("host") || this.#host.localHost()}${target}`;
      } else if (/^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(target)) {
        this.#url = new URL(target).href; // absolute-form
      } else if (target === "*") {
        this.#url = `http://${head.headers.get("host") || this.#host.localHost()}/*`;
      } else {
        this.#url = `http://${target}/`; // authority-form (CONNECT)
      }
    }
    return this.#url;
  }

  get headers(): Headers {
    return this.#headers ??= new Headers(this.#head.headers.pairs());
  }

  get signal(): AbortSignal {
    return this.#host.requestSignal();
  }

  get body(): ReadableStream<Uint8Array> | null {
    if (this.#head.bodyLength === 0 && this.#real === undefined) return null;
    return this.#request().body;
  }

  get bodyUsed(): boolean {
    if (this.#real === undefined) return false;
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
        headers: this.#headers ?? head.headers.pairs(),
        signal: this.#host.requestSignal(),
      };
      const body = this.#host.requestBody();
      if (body !== null) init.body = body;
      this.#real = new Request(this.url, init);
    }
    return this.#real;
  }

  clone(): Request {
    return this.#request().clone();
  }
  arrayBuffer(): Promise<ArrayBuffer> {
    return this.#request().arrayBuffer();
  }
  blob(): Promise<Blob> {
    return this.#request().blob();
  }
  bytes(): Promise<Uint8Array<ArrayBuffer>> {
    return this.#request().bytes();
  }
  formData(): Promise<FormData> {
    return this.#request().formData();
  }
  json(): Promise<unknown> {
    return this.#request().json();
  }
  text(): Promise<string> {
    return this.#request().text();
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
