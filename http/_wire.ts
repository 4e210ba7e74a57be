/**
 * A response on the wire (private): the one serializer of `serve()`,
 * `serveRaw()` and `response.ts`. The status line, the caller's fields,
 * then the server's own (`date`, framing, `connection`), every name the
 * server writes in lowercase (as `Deno.serve`); one `date` cache for the
 * whole thread; the batch buffer responses are serialized into; chunked
 * framing; and reading a web `Response` (its status, fields, declared
 * length and body) without copying what Deno already holds.
 *
 * @module
 */

/** Reason phrases of the registered status codes (RFC 9110 and the IANA registry). */
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

const encoder = new TextEncoder();
const EMPTY = new Uint8Array(0);

/** A growable byte buffer: a batch of responses, sent with one write. */
export class OutBuffer {
  buf: Uint8Array;
  len = 0;

  constructor(size = 16 * 1024) {
    this.buf = new Uint8Array(size);
  }

  reserve(n: number): void {
    const needed = this.len + n;
    if (needed <= this.buf.length) return;
    const grown = new Uint8Array(Math.max(needed, this.buf.length * 2, 1024));
    grown.set(this.buf.subarray(0, this.len), 0);
    this.buf = grown;
  }

  bytes(b: Uint8Array): void {
    const n = b.length;
    this.reserve(n);
    const buf = this.buf;
    const o = this.len;
    if (n > 24) buf.set(b, o); // a call costs about as much as copying 24 bytes by hand
    else for (let i = 0; i < n; i++) buf[o + i] = b[i]!;
    this.len = o + n;
  }

  /** Append a string of chars <= 0xFF, one byte each. */
  latin1(s: string): void {
    const n = s.length;
    this.reserve(n);
    const buf = this.buf;
    let o = this.len;
    for (let i = 0; i < n; i++) buf[o++] = s.charCodeAt(i);
    this.len = o;
  }

  /** Append `s` as UTF-8 (lone surrogates become U+FFFD, as TextEncoder). */
  utf8(s: string): void {
    this.reserve(s.length * 3);
    this.len += encoder.encodeInto(s, this.buf.subarray(this.len)).written;
  }

  /** Append one chunk of a chunked body: size line, data and CRLF together. */
  chunk(data: Uint8Array): void {
    this.latin1(data.length.toString(16));
    this.reserve(data.length + 4);
    const buf = this.buf;
    buf[this.len++] = 13;
    buf[this.len++] = 10;
    buf.set(data, this.len);
    this.len += data.length;
    buf[this.len++] = 13;
    buf[this.len++] = 10;
  }

  /** A copy of the content. */
  take(): Uint8Array {
    return this.buf.slice(0, this.len);
  }

  /** A view of the content (valid until the next append). */
  view(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }

  clear(): void {
    this.len = 0;
    if (this.buf.length > 1024 * 1024) this.buf = new Uint8Array(16 * 1024);
  }
}

let lastString = "";
let lastBytes = EMPTY;

/** `s` as UTF-8 (the last short string's bytes are kept: a constant body costs nothing). */
export function utf8(s: string): Uint8Array {
  if (s === lastString) return lastBytes;
  const bytes = encoder.encode(s);
  if (s.length <= 4096) {
    lastString = s;
    lastBytes = bytes;
  }
  return bytes;
}

/** Strings up to this length are checked for ASCII and copied char by char. */
const SHORT_TEXT = 1024;

/**
 * The UTF-8 length of `s` when it is short and all ASCII (its bytes are its
 * chars: `OutBuffer.latin1` writes them), else -1.
 */
export function asciiLength(s: string): number {
  const n = s.length;
  if (n > SHORT_TEXT) return -1;
  for (let i = 0; i < n; i++) if (s.charCodeAt(i) > 0x7f) return -1;
  return n;
}

function latin1Bytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** The interim response to `Expect: 100-continue`. */
export const CONTINUE: Uint8Array = latin1Bytes("HTTP/1.1 100 Continue\r\n\r\n");
/** The end of a chunked body (no trailers). */
export const LAST_CHUNK: Uint8Array = latin1Bytes("0\r\n\r\n");

/** Whether a status never has a body (1xx, 204, 304). */
export function bodiless(status: number): boolean {
  return status < 200 || status === 204 || status === 304;
}

/** How the connection goes on after a response. */
export const KEEP = 0; // HTTP/1.1 keep-alive: nothing to say
export const KEEP_10 = 1; // HTTP/1.0 keep-alive: `connection: keep-alive`
export const CLOSE = 2; // `connection: close`

/** Body framing of a response head. */
export const NO_BODY = -1; // no framing field at all (1xx, 204, 304)
export const CHUNKED = -2; // transfer-encoding: chunked
export const UNTIL_CLOSE = -3; // HTTP/1.0 stream: no framing, the close ends it

const CONNECTION_LINES = ["", "connection: keep-alive\r\n", "connection: close\r\n"];

// ---------------------------------------------------------------------------
// The date: one cache for the thread, renewed when the second changes.

/** A head made by simpleHead, valid for the current second. */
interface CachedHead {
  status: number;
  length: number;
  conn: number;
  type: string | null;
  bytes: Uint8Array;
}

/**
 * The heads simpleHead made this second: a few, compared field by field (an
 * app answers with a handful of statuses, types and lengths); a new one
 * replaces the oldest.
 */
const HEAD_SLOTS = 16;
const heads: (CachedHead | undefined)[] = new Array(HEAD_SLOTS).fill(undefined);
let nextSlot = 0;

let dateSecond = -1;
let dateText = "";
let dateLineText = "";

/**
 * Renew the date when the second changed (`now`: the wall clock in ms,
 * default `Date.now()`). The servers call it once per batch of responses.
 */
export function refreshDate(now: number = Date.now()): void {
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(second * 1000).toUTCString();
    dateLineText = `date: ${dateText}\r\n`;
    heads.fill(undefined);
    nextSlot = 0;
  }
}

/** The date as of the last {@linkcode refreshDate}, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`. */
export function dateString(): string {
  if (dateSecond < 0) refreshDate();
  return dateText;
}

/** The second the date is of: caches of whole responses are valid for it. */
export function dateStamp(): number {
  if (dateSecond < 0) refreshDate();
  return dateSecond;
}

/** The `date` field line (with its CRLF) as of the last {@linkcode refreshDate}. */
export function dateLine(): string {
  if (dateSecond < 0) refreshDate();
  return dateLineText;
}

// ---------------------------------------------------------------------------
// Heads

/** The status line; `text` defaults to the registered reason phrase. */
export function statusLine(status: number, text: string): string {
  return `HTTP/1.1 ${status} ${text || STATUS_TEXT[status] || ""}\r\n`;
}

function framing(length: number): string {
  return length >= 0
    ? `content-length: ${length}\r\n`
    : length === CHUNKED
    ? "transfer-encoding: chunked\r\n"
    : "";
}

/**
 * A head from a status, the text of the caller's field lines (each ending
 * in CRLF), and the server's own fields: `date` (unless the caller gave
 * one), the framing of `length` and the `connection` mode.
 */
export function fullHead(
  status: number,
  statusText: string,
  lines: string,
  hasDate: boolean,
  length: number,
  conn: number,
): string {
  return statusLine(status, statusText) + lines + (hasDate ? "" : dateLine()) +
    framing(length) + CONNECTION_LINES[conn]! + "\r\n";
}

/**
 * The bytes of a head with only a content type besides the server's fields
 * (the fast path), cached for the current second: do not modify.
 */
export function simpleHead(
  status: number,
  contentType: string | null,
  length: number,
  conn: number,
): Uint8Array {
  for (let i = 0; i < HEAD_SLOTS; i++) {
    const h = heads[i];
    if (h === undefined) break;
    if (
      h.length === length && h.status === status && h.conn === conn && h.type === contentType
    ) return h.bytes;
  }
  const bytes = latin1Bytes(
    fullHead(
      status,
      "",
      contentType === null ? "" : `content-type: ${contentType}\r\n`,
      false,
      length,
      conn,
    ),
  );
  heads[nextSlot] = { status, length, conn, type: contentType, bytes };
  nextSlot = (nextSlot + 1) % HEAD_SLOTS;
  return bytes;
}

/** The body of a server-made error response. */
export function errorText(status: number): string {
  return `${status} ${STATUS_TEXT[status] ?? "Error"}\n`;
}

// ---------------------------------------------------------------------------
// Fields given as plain strings (serveRaw(), writeResponse()): validated here.

/** Fields as a record or `[name, value]` pairs. */
export type FieldList =
  | Readonly<Record<string, string>>
  | ReadonlyArray<readonly [string, string]>;

/** Lowercase names of the fields the server sets itself. */
const SERVER_FIELDS = new Set(["content-length", "transfer-encoding", "connection", "date"]);
const TCHARS = "!#$%&'*+-.^_`|~";

function isToken(s: string): boolean {
  if (typeof s !== "string" || s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const ok = (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) ||
      (c < 127 && TCHARS.includes(s[i]!));
    if (!ok) return false;
  }
  return true;
}

function isFieldValue(s: string): boolean {
  if (typeof s !== "string") return false;
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
  const n = name.length;
  if ((n === 4 || n === 10 || n === 14 || n === 17) && SERVER_FIELDS.has(name.toLowerCase())) {
    throw new TypeError(`Cannot write response: header "${name}" is set by the writer`);
  }
  if (!isFieldValue(value)) {
    throw new TypeError(
      `Cannot write response: invalid value for header "${name}": ${JSON.stringify(value)}`,
    );
  }
  return `${name}: ${value}\r\n`;
}

/** The default content type of a non-empty body given as plain strings. */
const DEFAULT_TYPE_LINE = "content-type: text/plain; charset=utf-8\r\n";

/**
 * The validated field lines of `headers` and `contentType` (the default
 * content type for a non-empty body that names none).
 *
 * @throws {TypeError} When a name is not a token, a value holds CR, LF,
 * NUL or a char above U+00FF, or a field is one the server sets.
 */
export function fieldLines(
  headers: FieldList | undefined,
  contentType: string | undefined,
  hasBody: boolean,
): string {
  let lines = "";
  let typed = false;
  if (headers !== undefined) {
    const pairs: Iterable<readonly [string, string]> = Array.isArray(headers)
      ? headers as ReadonlyArray<readonly [string, string]>
      : Object.entries(headers as Readonly<Record<string, string>>);
    for (const pair of pairs) {
      const name = pair[0];
      lines += fieldLine(name, pair[1]);
      if (name.length === 12 && name.toLowerCase() === "content-type") typed = true;
    }
  }
  if (contentType !== undefined) {
    if (!isFieldValue(contentType)) {
      throw new TypeError(
        `Cannot write response: invalid content type ${JSON.stringify(contentType)}`,
      );
    }
    return `content-type: ${contentType}\r\n` + lines;
  }
  return !typed && hasBody ? DEFAULT_TYPE_LINE + lines : lines;
}

/** Check a status code given as a number (100-999). */
export function checkStatus(status: number): void {
  if (!Number.isInteger(status) || status < 100 || status > 999) {
    throw new RangeError(`Cannot write response: status ${status} is not a three-digit code`);
  }
}

/**
 * Append a whole response of plain values to `out`: `lines` from
 * {@linkcode fieldLines}, `conn` the connection mode; `omitBody` for HEAD
 * (the length stays the body's).
 *
 * @throws {TypeError} When a bodiless status has a body (nothing is appended).
 */
export function plainResponse(
  out: OutBuffer,
  status: number,
  body: Uint8Array,
  lines: string,
  conn: number,
  omitBody: boolean,
): void {
  const noBody = bodiless(status);
  if (noBody && body.length !== 0) {
    throw new TypeError(`Cannot write response: status ${status} cannot have a body`);
  }
  out.latin1(fullHead(status, "", lines, false, noBody ? NO_BODY : body.length, conn));
  if (!omitBody && body.length !== 0) out.bytes(body);
}

// ---------------------------------------------------------------------------
// Reading a web Response: Deno's own fast-path fields when the response was
// built with only a content type (as Deno.serve reads them).

const probe = new Response("x", { headers: { "content-type": "a/b" } });
const symbols = Object.getOwnPropertySymbols(probe);
const find = (d: string) => symbols.find((s) => s.description === d);
const FAST_STATUS = find("serve fast status");
const FAST_BODY = find("serve fast body");
const FAST_KIND = find("serve fast header kind");
const FAST_TYPE = find("serve fast content type");
const FAST_CONSUMED = find("serve fast consumed");
const LAZY_BODY = find("lazy static body");
const INNER = find("response");

// deno-lint-ignore no-explicit-any
type Any = any;

function probeFast(): boolean {
  if (!FAST_STATUS || !FAST_BODY || !FAST_KIND || !FAST_TYPE || !FAST_CONSUMED) return false;
  const p = probe as Any;
  const q = new Response(new Uint8Array(1)) as Any;
  const mutated = new Response("x") as Any;
  mutated.headers.set("x-a", "1");
  // Sending marks the response consumed, as Deno.serve does: the flag must
  // make `bodyUsed` true (then the next send of the same object is refused).
  const sent = new Response("x") as Any;
  sent[FAST_CONSUMED] = true;
  return p[FAST_STATUS] === 200 && p[FAST_BODY] === "x" && p[FAST_KIND] === 2 &&
    p[FAST_TYPE] === "a/b" && q[FAST_KIND] === 0 && q[FAST_BODY] instanceof Uint8Array &&
    mutated[FAST_STATUS] === 0 && sent.bodyUsed === true;
}

const FAST = probeFast();

/**
 * Whether Deno's lazy body field tells an unread body without `bodyUsed`:
 * `new Response(text)` keeps its text there until the body is touched, and
 * `bodyUsed` would build the body object only to say it is unread.
 */
function probeLazy(): boolean {
  if (!FAST || !FAST_CONSUMED || !LAZY_BODY) return false;
  const fresh = new Response("x") as Any;
  const read = new Response("x") as Any;
  read.text().catch(() => {});
  return fresh[LAZY_BODY] === "x" && fresh[FAST_CONSUMED] === false && !fresh.bodyUsed &&
    (read[LAZY_BODY] === null || read[LAZY_BODY] === undefined) && read.bodyUsed === true;
}

const LAZY = probeLazy();

/**
 * Take the body of a fast-path response (status 200, content type only)
 * whose body was not read, or null. A taken response is consumed, as
 * `Deno.serve` leaves a response it sent: `bodyUsed` is true, and sending
 * the same object again is refused (see {@linkcode takeResponseBody}).
 */
export function takeFastBody(res: Response): string | Uint8Array | null {
  if (!FAST) return null;
  const r = res as Any;
  if (r[FAST_STATUS!] !== 200) return null;
  if (LAZY) {
    if (r[FAST_CONSUMED!] === true) return null;
    const lazy = r[LAZY_BODY!];
    if ((lazy === null || lazy === undefined) && res.bodyUsed) return null;
  } else if (res.bodyUsed) {
    return null;
  }
  const body = r[FAST_BODY!] as string | Uint8Array;
  r[FAST_CONSUMED!] = true;
  return body;
}

/** The content type of a fast-path response. */
export function fastContentType(res: Response): string | null {
  const r = res as Any;
  const kind = r[FAST_KIND!] as number;
  if (kind === 0) return null;
  return (r[FAST_TYPE!] as string | null) ?? "text/plain;charset=UTF-8";
}

/** What a response body is, as far as can be told without reading it. */
export type BodySource =
  | { kind: "none" }
  | { kind: "bytes"; bytes: Uint8Array }
  | { kind: "string"; text: string }
  | { kind: "stream"; stream: ReadableStream<Uint8Array> };

/**
 * Whether a static body (text or bytes kept as they are) is marked consumed
 * through its inner body's `consumed` flag, as `Deno.serve` marks one it sent.
 */
function probeStatic(): boolean {
  if (INNER === undefined) return false;
  const sent = new Response(new Uint8Array(1), { status: 201 }) as Any;
  const kept = sent[INNER]?.body?.streamOrStatic;
  if (kept === null || typeof kept !== "object" || kept.consumed !== false) return false;
  if (!(kept.body instanceof Uint8Array) || sent.bodyUsed !== false) return false;
  kept.consumed = true;
  return sent.bodyUsed === true;
}

const STATIC = probeStatic();

/**
 * Take the body of `res` (generic path): a response whose body was taken is
 * consumed, as `Deno.serve` leaves one it sent (`bodyUsed` is true, the
 * next take throws). A null body is never consumed: the same bodiless
 * response can be sent any number of times (as from Deno.serve). A stream
 * (and a Blob or FormData, which stream) is consumed by being read.
 *
 * @throws {TypeError} When the body was already read or sent, or is locked to a reader.
 */
export function takeResponseBody(res: Response): BodySource {
  if (res.bodyUsed) {
    throw new TypeError("Cannot send the response: its body was already read or sent");
  }
  const inner = INNER === undefined ? undefined : (res as Any)[INNER];
  const body = inner?.body;
  if (inner !== undefined && body === null) return { kind: "none" };
  if (body !== undefined) {
    const source = body.source;
    if (typeof source === "string" || source instanceof Uint8Array) {
      const kept = body.streamOrStatic;
      // Still kept as it is (no `res.body` stream made): flag it, as Deno.serve does.
      if (STATIC && kept.consumed === false) kept.consumed = true;
      else lock(res.body);
      return typeof source === "string"
        ? { kind: "string", text: source }
        : { kind: "bytes", bytes: source };
    }
  }
  const stream = res.body;
  if (stream === null) return { kind: "none" };
  if (stream.locked) {
    throw new TypeError("Cannot send the response: its body is locked to a reader");
  }
  // A Blob (and FormData) streams, as Deno.serve sends it (chunked).
  return { kind: "stream", stream };
}

/**
 * Lock the stream of a static body sent from its source, so that the same
 * response cannot be sent again (as Deno.serve, which reads that stream).
 */
function lock(stream: ReadableStream<Uint8Array> | null): void {
  if (stream === null) return;
  if (stream.locked) {
    throw new TypeError("Cannot send the response: its body is locked to a reader");
  }
  stream.getReader();
}

/** The fields of a web `Response` the server sends, and what it takes from them. */
export interface ResponseFields {
  /** The lines to send, each ending in CRLF (framing fields are the server's). */
  lines: string;
  hasDate: boolean;
  /** The response asks to close the connection (`connection: close`). */
  close: boolean;
  /** The handler's `content-length` when it is one valid number, else -1. */
  length: number;
}

const RESERVED = new Set(["content-length", "transfer-encoding", "connection", "keep-alive"]);

/** The fields of `res` to send (framing fields are the server's). */
export function headerLines(res: Response): ResponseFields {
  let lines = "";
  let hasDate = false;
  let close = false;
  let length = -1;
  for (const [name, value] of res.headers) {
    if (RESERVED.has(name)) {
      if (name === "connection" && /(^|,)\s*close\s*(,|$)/i.test(value)) close = true;
      else if (name === "content-length" && /^[0-9]{1,15}$/.test(value)) length = Number(value);
      continue;
    }
    if (name === "date") hasDate = true;
    lines += `${name}: ${value}\r\n`;
  }
  return { lines, hasDate, close, length };
}
