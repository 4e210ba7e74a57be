/**
 * HTTP/1.1 responses as bytes, from plain values: the serializer
 * `serveRaw()` and `serve()` use (`_wire.ts`), for code that writes
 * responses itself.
 *
 * - {@linkcode writeResponse} builds a complete response (status line, the
 *   caller's fields, `date`, `content-length`, `connection`, body) in one
 *   `Uint8Array`.
 * - {@linkcode helloWorldResponse} returns cached, ready-made bytes for the
 *   benchmark's `Hello, World!` answer, rebuilt at most once per second (when
 *   the `date` changes).
 * - {@linkcode errorResponse} answers a failed request (always
 *   `connection: close`).
 * - {@linkcode ResponseBuffer} serializes responses into one growing buffer,
 *   for a connection's output: one write sends a batch.
 * - {@linkcode httpDate} caches the IMF-fixdate string for the current second.
 *
 * Field names the writer adds are lowercase (`content-length`, `date`,
 * `connection`, `content-type`), as `Deno.serve` sends them; the `date` is
 * the one cache the servers of the thread share. Responses are always
 * `HTTP/1.1` (RFC 9110 §6.2: a server sends its highest version). For an
 * HTTP/1.0 client that asked for keep-alive the response says
 * `connection: keep-alive`; when the connection is to be closed it says
 * `connection: close`.
 *
 * @example
 * ```ts
 * import { helloWorldResponse, writeResponse } from "./response.ts";
 *
 * const hello = helloWorldResponse(); // cached bytes, do not modify
 * const notFound = writeResponse(404, "no such page\n", { keepAlive: false });
 * console.log(hello.length, notFound.length);
 * ```
 *
 * @module
 */
import {
  bodiless,
  checkStatus,
  CLOSE,
  dateStamp,
  dateString,
  errorText,
  fieldLines,
  KEEP,
  KEEP_10,
  OutBuffer,
  plainResponse,
  refreshDate,
  STATUS_TEXT,
  utf8,
} from "./_wire.ts";

/**
 * Reason phrases of the registered status codes (RFC 9110 and the IANA registry).
 *
 * @example
 * ```ts
 * import { STATUS_TEXT } from "./response.ts";
 * console.log(STATUS_TEXT[431]); // "Request Header Fields Too Large"
 * ```
 */
export { STATUS_TEXT };

/**
 * How the connection goes on after a response: whether it is kept alive and
 * which HTTP version the client spoke. An {@linkcode HttpRequest} from
 * `parser.ts` fits as it is.
 *
 * @example
 * ```ts
 * import type { ConnectionOptions } from "./response.ts";
 * const options: ConnectionOptions = { keepAlive: true, version: "1.0" };
 * ```
 */
export interface ConnectionOptions {
  /** Whether the connection stays open after this response. Default `true`. */
  keepAlive?: boolean;
  /**
   * The request's HTTP version. For `"1.0"` a kept-alive connection is
   * announced with `Connection: keep-alive`. Default `"1.1"`.
   */
  version?: "1.0" | "1.1";
}

/**
 * Options for {@linkcode writeResponse}.
 *
 * @example
 * ```ts
 * import { writeResponse, type ResponseOptions } from "./response.ts";
 * const options: ResponseOptions = { contentType: "application/json", headers: { "x-id": "7" } };
 * const bytes = writeResponse(200, "{}", options);
 * ```
 */
export interface ResponseOptions extends ConnectionOptions {
  /**
   * Extra header fields, as a record or as `[name, value]` pairs. Names must
   * be tokens and values may not hold CR, LF, NUL or characters above U+00FF.
   * `Content-Length`, `Transfer-Encoding`, `Connection` and `Date` are set by
   * the writer and rejected here.
   */
  headers?: Readonly<Record<string, string>> | ReadonlyArray<readonly [string, string]>;
  /**
   * The `Content-Type` of a non-empty body. Default
   * `"text/plain; charset=utf-8"`, unless `headers` has a `content-type`.
   */
  contentType?: string;
  /**
   * Send the head only, with the `Content-Length` of `body` (for `HEAD`
   * requests). Default `false`.
   */
  omitBody?: boolean;
}

const EMPTY = new Uint8Array(0);
const NO_OPTIONS: ResponseOptions = {};

function connMode(options: ConnectionOptions | undefined): number {
  if (options === undefined) return KEEP;
  return options.keepAlive === false ? CLOSE : options.version === "1.0" ? KEEP_10 : KEEP;
}

function bodyBytes(body: Uint8Array | string): Uint8Array {
  if (typeof body === "string") return utf8(body);
  if (body instanceof Uint8Array) return body;
  throw new TypeError("Cannot write response: the body must be a string or a Uint8Array");
}

/** Append a response to `out`, validating everything before anything is appended. */
function put(
  out: OutBuffer,
  status: number,
  body: Uint8Array | string,
  options: ResponseOptions,
): void {
  checkStatus(status);
  const bytes = bodyBytes(body);
  const lines = fieldLines(options.headers, options.contentType, bytes.length !== 0);
  plainResponse(out, status, bytes, lines, connMode(options), options.omitBody === true);
}

/**
 * The current time as an HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`),
 * recomputed at most once per second. Responses written afterwards use it.
 *
 * @param now The time in milliseconds since the epoch. Default `Date.now()`.
 *
 * @example
 * ```ts
 * import { httpDate } from "./response.ts";
 * console.log(httpDate()); // e.g. "Tue, 03 Jun 2025 10:00:00 GMT"
 * ```
 */
export function httpDate(now: number = Date.now()): string {
  refreshDate(now);
  return dateString();
}

/**
 * Serialize a complete HTTP/1.1 response into a new array.
 *
 * Bodiless statuses (1xx, 204, 304) get no `content-length` and must have an
 * empty body. A string body is sent as UTF-8 (its length in bytes). To
 * write many responses into one buffer, use {@linkcode ResponseBuffer}.
 *
 * @param status The status code, 100-999; the reason phrase comes from
 * {@linkcode STATUS_TEXT} (empty for codes not listed there).
 * @param body The body. Default empty.
 * @param options Headers, content type and connection handling.
 * @returns A fresh array with the whole response.
 * @throws {RangeError} When `status` is not a three-digit code.
 * @throws {TypeError} When a header is malformed or reserved, or a bodiless
 * status has a body.
 *
 * @example
 * ```ts
 * import { writeResponse } from "./response.ts";
 *
 * const bytes = writeResponse(200, '{"ok":true}', {
 *   contentType: "application/json",
 *   headers: [["cache-control", "no-store"]],
 *   keepAlive: true,
 * });
 * console.log(new TextDecoder().decode(bytes));
 * ```
 */
export function writeResponse(
  status: number,
  body: Uint8Array | string = EMPTY,
  options: ResponseOptions = NO_OPTIONS,
): Uint8Array {
  refreshDate();
  const out = new OutBuffer(256 + (typeof body === "string" ? body.length * 3 : body.length));
  put(out, status, body, options);
  return out.take();
}

const HELLO_BODY = utf8("Hello, World!").slice();
const HELLO_LINES = fieldLines(undefined, "text/plain", true);
let helloSecond = -1;
const helloCache: (Uint8Array | null)[] = [null, null, null];

/** The cached hello response for the current date. */
function hello(options: ConnectionOptions | undefined): Uint8Array {
  const second = dateStamp();
  if (helloSecond !== second) {
    helloSecond = second;
    helloCache[0] = helloCache[1] = helloCache[2] = null;
  }
  const mode = connMode(options);
  let bytes = helloCache[mode] ?? null;
  if (bytes === null) {
    const out = new OutBuffer(256);
    plainResponse(out, 200, HELLO_BODY, HELLO_LINES, mode, false);
    bytes = helloCache[mode] = out.take();
  }
  return bytes;
}

/**
 * The response `200 OK`, `text/plain`, `Hello, World!`, from a cache that is
 * rebuilt at most once per second (when the `date` changes).
 *
 * The same array is returned to every caller within a second: do not modify
 * it.
 *
 * @param options Whether the connection is kept alive and the client's
 * version; an `HttpRequest` from the parser fits. Default keep-alive, 1.1.
 *
 * @example
 * ```ts
 * import { helloWorldResponse } from "./response.ts";
 * const bytes = helloWorldResponse({ keepAlive: true, version: "1.1" });
 * console.log(new TextDecoder().decode(bytes));
 * ```
 */
export function helloWorldResponse(options?: ConnectionOptions): Uint8Array {
  refreshDate();
  return hello(options);
}

/**
 * A response for a request that cannot be served, e.g. a parse error's
 * status: a `text/plain` body with the reason, and `connection: close`.
 *
 * @param status The status code, e.g. `HttpParseError.status`.
 * @param message The body's text. Default: the status and its reason phrase.
 *
 * @example
 * ```ts
 * import { errorResponse } from "./response.ts";
 * const bytes = errorResponse(431);
 * console.log(new TextDecoder().decode(bytes));
 * ```
 */
export function errorResponse(status: number, message?: string): Uint8Array {
  const text = message ?? errorText(status);
  return writeResponse(status, bodiless(status) ? EMPTY : text, { keepAlive: false });
}

/**
 * Options for {@linkcode ResponseBuffer}.
 *
 * @example
 * ```ts
 * import { ResponseBuffer, type ResponseBufferOptions } from "./response.ts";
 * const options: ResponseBufferOptions = { initialSize: 4096 };
 * const out = new ResponseBuffer(options);
 * ```
 */
export interface ResponseBufferOptions {
  /** The initial capacity in bytes; it grows as needed. Default 16 KiB. */
  initialSize?: number;
}

/**
 * A growable output buffer that responses are serialized into directly, for
 * a connection's pending output: write the responses to a batch of pipelined
 * requests, send `buffer[0, length)` with one `write(2)`, then
 * {@linkcode ResponseBuffer.prototype.consume} what was sent.
 *
 * The `date` is checked when a response is written into an empty buffer
 * and every 64 responses otherwise, so a batch costs one clock read.
 *
 * @example
 * ```ts
 * import { ResponseBuffer } from "./response.ts";
 *
 * const out = new ResponseBuffer();
 * out.writeHelloWorld();
 * out.write(404, "no such page\n", { keepAlive: false });
 * // send out.buffer.subarray(0, out.length), then:
 * out.consume(out.length);
 * console.log(out.length); // 0
 * ```
 */
export class ResponseBuffer {
  readonly #out: OutBuffer;
  #sinceDate = 0;

  /**
   * Create an empty buffer.
   *
   * @param options The initial capacity.
   * @throws {RangeError} When `initialSize` is not a non-negative integer.
   */
  constructor(options: ResponseBufferOptions = {}) {
    const size = options.initialSize ?? 16 * 1024;
    if (!Number.isSafeInteger(size) || size < 0) {
      throw new RangeError(
        "Cannot create ResponseBuffer: initialSize must be a non-negative integer",
      );
    }
    this.#out = new OutBuffer(size);
  }

  /** The number of bytes written and not yet consumed. */
  get length(): number {
    return this.#out.len;
  }

  /**
   * The backing array: the output is `buffer[0, length)`. Replaced when the
   * buffer grows, so read it again after writing.
   */
  get buffer(): Uint8Array {
    return this.#out.buf;
  }

  /** A view of the output, `buffer.subarray(0, length)`. */
  bytes(): Uint8Array {
    return this.#out.view();
  }

  /** Append a response like {@linkcode writeResponse} would return it. */
  write(
    status: number,
    body: Uint8Array | string = EMPTY,
    options: ResponseOptions = NO_OPTIONS,
  ): void {
    this.#date();
    put(this.#out, status, body, options);
  }

  /** Append the {@linkcode helloWorldResponse}. */
  writeHelloWorld(options?: ConnectionOptions): void {
    this.#date();
    this.#out.bytes(hello(options));
  }

  /** Append raw bytes, e.g. a cached response. */
  append(bytes: Uint8Array): void {
    this.#out.bytes(bytes);
  }

  /** Drop the first `n` bytes (those sent); the rest moves to the front. */
  consume(n: number): void {
    const out = this.#out;
    if (!Number.isSafeInteger(n) || n < 0 || n > out.len) {
      throw new RangeError(`Cannot consume ${n} bytes: the buffer holds ${out.len}`);
    }
    if (n < out.len) out.buf.copyWithin(0, n, out.len);
    out.len -= n;
  }

  /** Drop everything. */
  clear(): void {
    this.#out.len = 0;
  }

  #date(): void {
    if (this.#out.len === 0 || ++this.#sinceDate >= 64) {
      this.#sinceDate = 0;
      refreshDate();
    }
  }
}
