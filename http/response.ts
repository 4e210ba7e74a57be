/**
 * Fast HTTP/1.1 response serialization for ffinet's example HTTP server.
 *
 * - {@linkcode writeResponse} builds a complete response (status line, `Date`,
 *   caller headers, `Content-Length`, `Connection`, body) in one
 *   `Uint8Array`, with a single allocation for the output.
 * - {@linkcode helloWorldResponse} returns cached, ready-made bytes for the
 *   benchmark's `Hello, World!` answer, rebuilt at most once per second (when
 *   the `Date` changes).
 * - {@linkcode errorResponse} answers a failed request (always
 *   `Connection: close`).
 * - {@linkcode ResponseBuffer} serializes responses straight into a
 *   connection's output buffer, allocating nothing per response: allocating
 *   a small `Uint8Array` costs more than serializing into one.
 * - {@linkcode httpDate} caches the IMF-fixdate string for the current second.
 *
 * Responses are always `HTTP/1.1` (RFC 9110 §6.2: a server sends its highest
 * version). For an HTTP/1.0 client that asked for keep-alive the response
 * says `Connection: keep-alive`; when the connection is to be closed it says
 * `Connection: close`.
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

/**
 * Reason phrases of the registered status codes (RFC 9110 and the IANA registry).
 *
 * @example
 * ```ts
 * import { STATUS_TEXT } from "./response.ts";
 * console.log(STATUS_TEXT[431]); // "Request Header Fields Too Large"
 * ```
 */
export const STATUS_TEXT: Readonly<Record<number, string>> = Object.freeze({
  100: "Continue",
  101: "Switching Protocols",
  102: "Processing",
  103: "Early Hints",
  200: "OK",
  201: "Created",
  202: "Accepted",
  203: "Non-Authoritative Information",
  204: "No Content",
  205: "Reset Content",
  206: "Partial Content",
  207: "Multi-Status",
  208: "Already Reported",
  226: "IM Used",
  300: "Multiple Choices",
  301: "Moved Permanently",
  302: "Found",
  303: "See Other",
  304: "Not Modified",
  305: "Use Proxy",
  307: "Temporary Redirect",
  308: "Permanent Redirect",
  400: "Bad Request",
  401: "Unauthorized",
  402: "Payment Required",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  406: "Not Acceptable",
  407: "Proxy Authentication Required",
  408: "Request Timeout",
  409: "Conflict",
  410: "Gone",
  411: "Length Required",
  412: "Precondition Failed",
  413: "Content Too Large",
  414: "URI Too Long",
  415: "Unsupported Media Type",
  416: "Range Not Satisfiable",
  417: "Expectation Failed",
  418: "I'm a teapot",
  421: "Misdirected Request",
  422: "Unprocessable Content",
  423: "Locked",
  424: "Failed Dependency",
  425: "Too Early",
  426: "Upgrade Required",
  428: "Precondition Required",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  451: "Unavailable For Legal Reasons",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
  505: "HTTP Version Not Supported",
  506: "Variant Also Negotiates",
  507: "Insufficient Storage",
  508: "Loop Detected",
  510: "Not Extended",
  511: "Network Authentication Required",
});

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

function latin1Bytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

// ---------------------------------------------------------------------------
// The Date header

let dateSecond = Number.NaN;
let dateString = "";
let dateLine: Uint8Array = EMPTY;

function refreshDate(now: number): void {
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateString = new Date(second * 1000).toUTCString();
    dateLine = latin1Bytes(`Date: ${dateString}\r\n`);
  }
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
  return dateString;
}

// ---------------------------------------------------------------------------
// Serialization. Each piece is measured first (validating what the caller
// gave), then written straight into the output: no intermediate strings.

const statusLines: (Uint8Array | undefined)[] = [];
const CRLF = latin1Bytes("\r\n");
const CONTENT_LENGTH = latin1Bytes("Content-Length: ");
const DEFAULT_CONTENT_TYPE = latin1Bytes("Content-Type: text/plain; charset=utf-8\r\n");
const CONNECTION_CLOSE = latin1Bytes("Connection: close\r\n");
const CONNECTION_KEEP_ALIVE = latin1Bytes("Connection: keep-alive\r\n");
const CONTENT_TYPE = "Content-Type";

function statusLine(status: number): Uint8Array {
  let line = statusLines[status];
  if (line === undefined) {
    if (!Number.isInteger(status) || status < 100 || status > 999) {
      throw new RangeError(`Cannot write response: status ${status} is not a three-digit code`);
    }
    line = latin1Bytes(`HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? ""}\r\n`);
    statusLines[status] = line;
  }
  return line;
}

/** Lowercase names of the fields the writer sets itself. */
const RESERVED = new Set(["content-length", "transfer-encoding", "connection", "date"]);

function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const ok = (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) ||
      (c < 127 && "!#$%&'*+-.^_`|~".includes(s[i]!));
    if (!ok) return false;
  }
  return true;
}

function isFieldValue(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f || c > 0xff) return false;
  }
  return true;
}

function checkField(name: string, value: string, reservedOk: boolean): void {
  if (!isToken(name)) {
    throw new TypeError(`Cannot write response: invalid header name ${JSON.stringify(name)}`);
  }
  const n = name.length;
  if (
    !reservedOk && (n === 4 || n === 10 || n === 14 || n === 17) &&
    RESERVED.has(name.toLowerCase())
  ) {
    throw new TypeError(`Cannot write response: header "${name}" is set by the writer`);
  }
  if (!isFieldValue(value)) {
    throw new TypeError(
      `Cannot write response: invalid value for header "${name}": ${JSON.stringify(value)}`,
    );
  }
}

function putBytes(out: Uint8Array | null, o: number, bytes: Uint8Array): number {
  const n = bytes.length;
  if (out !== null) {
    if (n > 24) out.set(bytes, o); // a call costs about as much as copying 24 bytes by hand
    else for (let i = 0; i < n; i++) out[o + i] = bytes[i]!;
  }
  return o + n;
}

function putLatin1(out: Uint8Array | null, o: number, s: string): number {
  if (out !== null) { for (let i = 0; i < s.length; i++) out[o + i] = s.charCodeAt(i); }
  return o + s.length;
}

function putField(
  out: Uint8Array | null,
  o: number,
  name: string,
  value: string,
  reservedOk = false,
): number {
  if (out === null) checkField(name, value, reservedOk);
  o = putLatin1(out, o, name);
  if (out !== null) {
    out[o] = 58; // ":"
    out[o + 1] = 32;
  }
  o = putLatin1(out, o + 2, value);
  return putBytes(out, o, CRLF);
}

function putDecimal(out: Uint8Array | null, o: number, n: number): number {
  let digits = 1;
  for (let x = n; x >= 10; x = Math.floor(x / 10)) digits++;
  if (out !== null) {
    for (let i = digits - 1, x = n; i >= 0; i--, x = Math.floor(x / 10)) out[o + i] = 48 + x % 10;
  }
  return o + digits;
}

function isContentType(name: string): boolean {
  return name.length === 12 && name.toLowerCase() === "content-type";
}

function bodiless(status: number): boolean {
  return status < 200 || status === 204 || status === 304;
}

/**
 * Measure (`out` null, validating) or write the head at `o`; returns its end.
 * `bodyLength` is the body's length in bytes.
 */
function putHead(
  out: Uint8Array | null,
  o: number,
  status: number,
  bodyLength: number,
  options: ResponseOptions,
): number {
  o = putBytes(out, o, statusLine(status));
  o = putBytes(out, o, dateLine);
  let hasContentType = false;
  const headers = options.headers;
  if (headers !== undefined) {
    if (Array.isArray(headers)) {
      for (const [name, value] of headers as ReadonlyArray<readonly [string, string]>) {
        o = putField(out, o, name, value);
        if (isContentType(name)) hasContentType = true;
      }
    } else {
      const record = headers as Readonly<Record<string, string>>;
      for (const name in record) {
        o = putField(out, o, name, record[name]!);
        if (isContentType(name)) hasContentType = true;
      }
    }
  }
  const contentType = options.contentType;
  if (contentType !== undefined) {
    o = putField(out, o, CONTENT_TYPE, contentType, true);
  } else if (!hasContentType && bodyLength !== 0) {
    o = putBytes(out, o, DEFAULT_CONTENT_TYPE);
  }
  if (bodiless(status)) {
    if (bodyLength !== 0 && out === null) {
      throw new TypeError(`Cannot write response: status ${status} cannot have a body`);
    }
  } else {
    o = putBytes(out, o, CONTENT_LENGTH);
    o = putDecimal(out, o, bodyLength);
    o = putBytes(out, o, CRLF);
  }
  if (options.keepAlive === false) o = putBytes(out, o, CONNECTION_CLOSE);
  else if (options.version === "1.0") o = putBytes(out, o, CONNECTION_KEEP_ALIVE);
  return putBytes(out, o, CRLF);
}

/** The UTF-8 length of `s` (lone surrogates count as U+FFFD, like TextEncoder). */
function utf8Length(s: string): number {
  let n = s.length; // one byte per char, plus:
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) {
      n += 1; // 2 bytes
    } else {
      n += 2; // 3 bytes; or 4 for a surrogate pair (2 chars)
      if (c <= 0xdbff && c >= 0xd800 && i + 1 < s.length) {
        const d = s.charCodeAt(i + 1);
        if (d >= 0xdc00 && d <= 0xdfff) i++;
      }
    }
  }
  return n;
}

/** Write `s` as UTF-8 at `o` (lone surrogates become U+FFFD); returns the end. */
function putUtf8(out: Uint8Array, o: number, s: string): number {
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      out[o++] = c;
    } else if (c < 0x800) {
      out[o++] = 0xc0 | (c >> 6);
      out[o++] = 0x80 | (c & 0x3f);
    } else {
      if (c >= 0xd800 && c <= 0xdfff) {
        const d = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
        if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
          c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
          i++;
          out[o++] = 0xf0 | (c >> 18);
          out[o++] = 0x80 | ((c >> 12) & 0x3f);
          out[o++] = 0x80 | ((c >> 6) & 0x3f);
          out[o++] = 0x80 | (c & 0x3f);
          continue;
        }
        c = 0xfffd;
      }
      out[o++] = 0xe0 | (c >> 12);
      out[o++] = 0x80 | ((c >> 6) & 0x3f);
      out[o++] = 0x80 | (c & 0x3f);
    }
  }
  return o;
}

/** Write the whole response at `o` of `out`, which has room; returns the end. */
function putResponse(
  out: Uint8Array,
  o: number,
  status: number,
  body: Uint8Array | string,
  bodyLength: number,
  options: ResponseOptions,
): number {
  o = putHead(out, o, status, bodyLength, options);
  if (options.omitBody === true || bodyLength === 0) return o;
  return typeof body === "string" ? putUtf8(out, o, body) : putBytes(out, o, body);
}

/** The total size of a response, validating it. */
function measure(
  status: number,
  bodyLength: number,
  options: ResponseOptions,
): number {
  return putHead(null, 0, status, bodyLength, options) +
    (options.omitBody === true ? 0 : bodyLength);
}

const NO_OPTIONS: ResponseOptions = {};

/**
 * Serialize a complete HTTP/1.1 response into a new array.
 *
 * Bodiless statuses (1xx, 204, 304) get no `Content-Length` and must have an
 * empty body. A string body is sent as UTF-8. To write many responses
 * without an allocation each, use {@linkcode ResponseBuffer}.
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
  refreshDate(Date.now());
  const bodyLength = typeof body === "string" ? utf8Length(body) : body.length;
  const out = new Uint8Array(measure(status, bodyLength, options));
  putResponse(out, 0, status, body, bodyLength, options);
  return out;
}

const HELLO_BODY = latin1Bytes("Hello, World!");
const HELLO_OPTIONS: ResponseOptions[] = [
  { contentType: "text/plain" },
  { contentType: "text/plain", keepAlive: false },
  { contentType: "text/plain", version: "1.0" },
];
let helloSecond = Number.NaN;
const helloCache: (Uint8Array | null)[] = [null, null, null];

/** The cached hello response for the current `dateSecond`. */
function hello(options: ConnectionOptions | undefined): Uint8Array {
  if (helloSecond !== dateSecond) {
    helloSecond = dateSecond;
    helloCache[0] = helloCache[1] = helloCache[2] = null;
  }
  const index = options === undefined
    ? 0
    : options.keepAlive === false
    ? 1
    : options.version === "1.0"
    ? 2
    : 0;
  let bytes = helloCache[index] ?? null;
  if (bytes === null) {
    const helloOptions = HELLO_OPTIONS[index]!;
    bytes = new Uint8Array(measure(200, HELLO_BODY.length, helloOptions));
    putResponse(bytes, 0, 200, HELLO_BODY, HELLO_BODY.length, helloOptions);
    helloCache[index] = bytes;
  }
  return bytes;
}

/**
 * The response `200 OK`, `text/plain`, `Hello, World!`, from a cache that is
 * rebuilt at most once per second (when the `Date` changes).
 *
 * The same array is returned to every caller within a second: do not modify
 * it.
 *
 * @param options Whether the connection is kept alive and the client's
 * version; an `HttpRequest` from `parser.ts` fits. Default keep-alive, 1.1.
 *
 * @example
 * ```ts
 * import { helloWorldResponse } from "./response.ts";
 * const bytes = helloWorldResponse({ keepAlive: true, version: "1.1" });
 * console.log(new TextDecoder().decode(bytes));
 * ```
 */
export function helloWorldResponse(options?: ConnectionOptions): Uint8Array {
  refreshDate(Date.now());
  return hello(options);
}

/**
 * A response for a request that cannot be served, e.g. a parse error's
 * status: a `text/plain` body with the reason, and `Connection: close`.
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
  const text = message ?? `${status} ${STATUS_TEXT[status] ?? "Error"}\n`;
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
 * Writing allocates nothing (unless the buffer grows). The `Date` is checked
 * when a response is written into an empty buffer and every 64 responses
 * otherwise, so a batch costs one clock read.
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
  #buf: Uint8Array;
  #len = 0;
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
    this.#buf = new Uint8Array(size);
  }

  /** The number of bytes written and not yet consumed. */
  get length(): number {
    return this.#len;
  }

  /**
   * The backing array: the output is `buffer[0, length)`. Replaced when the
   * buffer grows, so read it again after writing.
   */
  get buffer(): Uint8Array {
    return this.#buf;
  }

  /** A view of the output, `buffer.subarray(0, length)`. */
  bytes(): Uint8Array {
    return this.#buf.subarray(0, this.#len);
  }

  /** Append a response like {@linkcode writeResponse} would return it. */
  write(
    status: number,
    body: Uint8Array | string = EMPTY,
    options: ResponseOptions = NO_OPTIONS,
  ): void {
    this.#date();
    const bodyLength = typeof body === "string" ? utf8Length(body) : body.length;
    const size = measure(status, bodyLength, options);
    this.#reserve(size);
    this.#len = putResponse(this.#buf, this.#len, status, body, bodyLength, options);
  }

  /** Append the {@linkcode helloWorldResponse}. */
  writeHelloWorld(options?: ConnectionOptions): void {
    this.#date();
    this.append(hello(options));
  }

  /** Append raw bytes, e.g. a cached response. */
  append(bytes: Uint8Array): void {
    this.#reserve(bytes.length);
    this.#buf.set(bytes, this.#len);
    this.#len += bytes.length;
  }

  /** Drop the first `n` bytes (those sent); the rest moves to the front. */
  consume(n: number): void {
    if (!Number.isSafeInteger(n) || n < 0 || n > this.#len) {
      throw new RangeError(`Cannot consume ${n} bytes: the buffer holds ${this.#len}`);
    }
    if (n < this.#len) this.#buf.copyWithin(0, n, this.#len);
    this.#len -= n;
  }

  /** Drop everything. */
  clear(): void {
    this.#len = 0;
  }

  #date(): void {
    if (this.#len === 0 || ++this.#sinceDate >= 64) {
      this.#sinceDate = 0;
      refreshDate(Date.now());
    }
  }

  #reserve(n: number): void {
    const needed = this.#len + n;
    if (needed <= this.#buf.length) return;
    const grown = new Uint8Array(Math.max(needed, this.#buf.length * 2, 1024));
    grown.set(this.#buf.subarray(0, this.#len), 0);
    this.#buf = grown;
  }
}
