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
 * Reason phrases of the status codes the example server uses.
 *
 * @example
 * ```ts
 * import { STATUS_TEXT } from "./response.ts";
 * console.log(STATUS_TEXT[431]); // "Request Header Fields Too Large"
 * ```
 */
export const STATUS_TEXT: Readonly<Record<number, string>> = Object.freeze({
  100: "Continue",
  200: "OK",
  201: "Created",
  204: "No Content",
  301: "Moved Permanently",
  302: "Found",
  304: "Not Modified",
  400: "Bad Request",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  413: "Content Too Large",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  503: "Service Unavailable",
  505: "HTTP Version Not Supported",
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
   * {@linkcode writeResponse} and rejected here.
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

const encoder = new TextEncoder();
const EMPTY = new Uint8Array(0);

let dateSecond = Number.NaN;
let dateString = "";
let dateLine = "";

/**
 * The current time as an HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`),
 * recomputed at most once per second.
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
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateString = new Date(second * 1000).toUTCString();
    dateLine = `Date: ${dateString}\r\n`;
  }
  return dateString;
}

const statusLines = new Map<number, string>();

function statusLine(status: number): string {
  let line = statusLines.get(status);
  if (line === undefined) {
    if (!Number.isInteger(status) || status < 100 || status > 999) {
      throw new RangeError(`Cannot write response: status ${status} is not a three-digit code`);
    }
    line = `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? ""}\r\n`;
    statusLines.set(status, line);
  }
  return line;
}

/** Lowercase names of the fields {@linkcode writeResponse} sets itself. */
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

function fieldLine(name: string, value: string): string {
  if (!isToken(name)) {
    throw new TypeError(`Cannot write response: invalid header name ${JSON.stringify(name)}`);
  }
  if (RESERVED.has(name.toLowerCase())) {
    throw new TypeError(`Cannot write response: header "${name}" is set by writeResponse`);
  }
  if (!isFieldValue(value)) {
    throw new TypeError(
      `Cannot write response: invalid value for header "${name}": ${JSON.stringify(value)}`,
    );
  }
  return `${name}: ${value}\r\n`;
}

/**
 * Serialize a complete HTTP/1.1 response.
 *
 * Bodiless statuses (1xx, 204, 304) get no `Content-Length` and must have an
 * empty body. A string body is sent as UTF-8.
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
  options: ResponseOptions = {},
): Uint8Array {
  let head = statusLine(status);
  httpDate();
  head += dateLine;

  const bytes = typeof body === "string" ? (body === "" ? EMPTY : encoder.encode(body)) : body;
  const bodiless = status < 200 || status === 204 || status === 304;
  if (bodiless && bytes.length !== 0) {
    throw new TypeError(`Cannot write response: status ${status} cannot have a body`);
  }

  let hasContentType = false;
  const headers = options.headers;
  if (headers !== undefined) {
    if (Array.isArray(headers)) {
      for (const [name, value] of headers as ReadonlyArray<readonly [string, string]>) {
        head += fieldLine(name, value);
        if (name.length === 12 && name.toLowerCase() === "content-type") hasContentType = true;
      }
    } else {
      for (const name in headers) {
        const value = (headers as Readonly<Record<string, string>>)[name]!;
        head += fieldLine(name, value);
        if (name.length === 12 && name.toLowerCase() === "content-type") hasContentType = true;
      }
    }
  }
  const contentType = options.contentType;
  if (contentType !== undefined) {
    head += fieldLine("Content-Type", contentType);
  } else if (!hasContentType && bytes.length !== 0) {
    head += "Content-Type: text/plain; charset=utf-8\r\n";
  }
  if (!bodiless) head += `Content-Length: ${bytes.length}\r\n`;
  if (options.keepAlive === false) head += "Connection: close\r\n";
  else if (options.version === "1.0") head += "Connection: keep-alive\r\n";
  head += "\r\n";

  const sendBody = options.omitBody !== true;
  const headLen = head.length;
  const out = new Uint8Array(headLen + (sendBody ? bytes.length : 0));
  // Every char is at most U+00FF (checked above), so one byte each (Latin-1).
  for (let i = 0; i < headLen; i++) out[i] = head.charCodeAt(i);
  if (sendBody) out.set(bytes, headLen);
  return out;
}

const HELLO_BODY = encoder.encode("Hello, World!");
let helloSecond = Number.NaN;
const helloCache: (Uint8Array | null)[] = [null, null, null];

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
  const second = Math.floor(Date.now() / 1000);
  if (second !== helloSecond) {
    helloSecond = second;
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
    bytes = writeResponse(200, HELLO_BODY, {
      contentType: "text/plain",
      keepAlive: index !== 1,
      version: index === 2 ? "1.0" : "1.1",
    });
    helloCache[index] = bytes;
  }
  return bytes;
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
  const bodiless = status < 200 || status === 204 || status === 304;
  return writeResponse(status, bodiless ? EMPTY : text, { keepAlive: false });
}
