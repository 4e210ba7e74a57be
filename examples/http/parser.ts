/**
 * An incremental, allocation-conscious HTTP/1.1 request parser for ffinet's
 * example HTTP server.
 *
 * Feed it bytes as they arrive with {@linkcode HttpParser.prototype.feed}
 * (chunks may be split anywhere and may hold several pipelined requests), then
 * call {@linkcode HttpParser.prototype.next} until it returns `null`.
 *
 * Speed: the parser works on the bytes directly (no TextDecoder, no regular
 * expressions, no splitting):
 * - A complete, valid request line or header line is validated, hashed and
 *   delimited in a single pass with 256-entry lookup tables; only lines that
 *   are incomplete, invalid or over a limit take a slower two-pass path
 *   (find the LF, then parse), which makes errors independent of how the
 *   input was split.
 * - Short strings (methods, targets, header names and values) are interned
 *   in a small cache shared by all parsers, keyed by that hash and checked
 *   byte by byte, so a steady stream of similar requests allocates no strings.
 * - Each parser remembers the bytes of its last bodiless request head; a
 *   byte-identical head (a benchmark's, a poller's) is answered after one
 *   comparison, with the same (immutable) {@linkcode HttpHeaders}.
 * - Bytes are parsed in place in the chunk given to `feed`; only an
 *   incomplete tail is copied.
 *
 * Policy (RFC 9112 leaves some of these to the server):
 * - Lines end with CRLF. A bare LF or a bare CR anywhere in the head is a 400.
 * - Empty lines before a request line are skipped (RFC 9112 §2.2).
 * - Only `HTTP/1.0` and `HTTP/1.1` are accepted; `HTTP/1.x` with x > 1 is
 *   handled as 1.1, any other major version is a 505, anything else a 400.
 * - An HTTP/1.1 request needs a `Host` header, and no request may have two
 *   (400; RFC 9112 §3.2). Its value is not checked further.
 * - `Content-Length` must be digits; repeated values (in one header or
 *   several) must all be equal (400 otherwise); beyond `maxBodyBytes` it is a
 *   413, reported as soon as the head is complete.
 * - `Transfer-Encoding: chunked` request bodies are supported (chunk
 *   extensions are skipped, trailers are validated and dropped). When
 *   `chunked` is not the final coding the framing is unknowable: 400 (RFC 9112
 *   §6.3 says MUST). When other codings come before `chunked` (`gzip, chunked`)
 *   the request is framed but not understood: 501. Transfer-Encoding together
 *   with Content-Length, or in an HTTP/1.0 request, is a 400 (request
 *   smuggling defence).
 * - Obsolete line folding is a 400.
 * - `Expect: 100-continue` gets no interim response: a request is returned
 *   only once its body is complete (clients send the body anyway after a
 *   short wait).
 * - The head (request line, headers, final CRLF) may be `maxHeaderBytes` long
 *   at most, and so may the trailers of a chunked body: 431 otherwise.
 *
 * Errors are thrown as {@linkcode HttpParseError} carrying the status to
 * answer with; after one the parser stays failed: send the error response and
 * close the connection.
 *
 * @example
 * ```ts
 * import { HttpParser } from "./parser.ts";
 *
 * const parser = new HttpParser();
 * parser.feed(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
 * for (let req = parser.next(); req !== null; req = parser.next()) {
 *   console.log(req.method, req.target, req.headers.get("host"), req.keepAlive);
 * }
 * ```
 *
 * @module
 */

/**
 * The default limit on the size of a request head: 8 KiB.
 *
 * @example
 * ```ts
 * import { DEFAULT_MAX_HEADER_BYTES } from "./parser.ts";
 * console.log(DEFAULT_MAX_HEADER_BYTES); // 8192
 * ```
 */
export const DEFAULT_MAX_HEADER_BYTES = 8192;

/**
 * The default limit on the size of a request body: 1 MiB.
 *
 * @example
 * ```ts
 * import { DEFAULT_MAX_BODY_BYTES } from "./parser.ts";
 * console.log(DEFAULT_MAX_BODY_BYTES); // 1048576
 * ```
 */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

/**
 * The HTTP version of a parsed request.
 *
 * @example
 * ```ts
 * import type { HttpVersion } from "./parser.ts";
 * const v: HttpVersion = "1.1";
 * ```
 */
export type HttpVersion = "1.0" | "1.1";

/**
 * A malformed, oversized or unsupported request. `status` is the HTTP status
 * to answer with (400, 413, 431, 501 or 505) and `reason` says what was wrong.
 * The message reads `Cannot parse HTTP request: <reason>`.
 *
 * @example
 * ```ts
 * import { HttpParseError, HttpParser } from "./parser.ts";
 *
 * const parser = new HttpParser();
 * parser.feed(new TextEncoder().encode("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n"));
 * try {
 *   parser.next();
 * } catch (e) {
 *   if (!(e instanceof HttpParseError)) throw e;
 *   console.log(e.status, e.reason); // 400 "whitespace between header name and colon"
 * }
 * ```
 */
export class HttpParseError extends Error {
  /** The HTTP status code to answer with, e.g. 400. */
  readonly status: number;
  /** What was wrong with the request, e.g. `"invalid Content-Length"`. */
  readonly reason: string;

  /**
   * Create the error for a request to answer with `status`.
   *
   * @param status The HTTP status code to answer with.
   * @param reason What was wrong with the request.
   */
  constructor(status: number, reason: string) {
    super(`Cannot parse HTTP request: ${reason}`);
    this.name = "HttpParseError";
    this.status = status;
    this.reason = reason;
  }
}

/**
 * Options for {@linkcode HttpParser}.
 *
 * @example
 * ```ts
 * import { HttpParser, type HttpParserOptions } from "./parser.ts";
 * const options: HttpParserOptions = { maxHeaderBytes: 4096, maxBodyBytes: 65536 };
 * const parser = new HttpParser(options);
 * ```
 */
export interface HttpParserOptions {
  /**
   * The largest request head (request line, header lines and the empty line,
   * CRLFs included) accepted; larger ones fail with 431. Also bounds the
   * trailers of a chunked body. Default {@linkcode DEFAULT_MAX_HEADER_BYTES}.
   */
  maxHeaderBytes?: number;
  /**
   * The largest request body accepted; larger ones fail with 413.
   * Default {@linkcode DEFAULT_MAX_BODY_BYTES}.
   */
  maxBodyBytes?: number;
}

/**
 * A complete, parsed request.
 *
 * @example
 * ```ts
 * import type { HttpRequest } from "./parser.ts";
 * function describe(req: HttpRequest): string {
 *   return `${req.method} ${req.target} HTTP/${req.version} (${req.body.length} bytes)`;
 * }
 * ```
 */
export interface HttpRequest {
  /** The method, case preserved, e.g. `"GET"`. */
  readonly method: string;
  /** The request target as sent, e.g. `"/index.html?q=1"`. */
  readonly target: string;
  /** The HTTP version. */
  readonly version: HttpVersion;
  /** The header fields, names lowercased. */
  readonly headers: HttpHeaders;
  /**
   * The body (de-chunked). Owned by the request: it is never a view of the
   * bytes passed to {@linkcode HttpParser.prototype.feed}. Empty bodies share
   * one zero-length array.
   */
  readonly body: Uint8Array;
  /**
   * Whether the connection may carry another request after this one:
   * HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with
   * `Connection: keep-alive` (and no `close`).
   */
  readonly keepAlive: boolean;
}

/**
 * The header fields of a request, in arrival order, names lowercased.
 * Lookups scan a flat array, which is faster than a map for the handful of
 * fields a request carries.
 *
 * @example
 * ```ts
 * import { HttpHeaders } from "./parser.ts";
 * const headers = new HttpHeaders(["host", "example.com", "accept", "*\/*"]);
 * console.log(headers.get("Host"), headers.size); // "example.com" 2
 * ```
 */
export class HttpHeaders {
  readonly #list: readonly string[];

  /**
   * Wrap a flat list of fields.
   *
   * @param list Alternating lowercase names and values:
   * `[name0, value0, name1, value1, ...]`. Kept, not copied.
   */
  constructor(list: readonly string[] = []) {
    this.#list = list;
  }

  /** The number of header fields. */
  get size(): number {
    return this.#list.length >> 1;
  }

  /**
   * The value of the field `name` (any case), the values of repeated fields
   * joined with `", "`, or `null` when there is none.
   */
  get(name: string): string | null {
    const key = name.toLowerCase();
    const list = this.#list;
    let found: string | null = null;
    for (let i = 0; i < list.length; i += 2) {
      if (list[i] === key) {
        found = found === null ? list[i + 1]! : `${found}, ${list[i + 1]!}`;
      }
    }
    return found;
  }

  /** The values of every field named `name` (any case), in order. */
  getAll(name: string): string[] {
    const key = name.toLowerCase();
    const list = this.#list;
    const out: string[] = [];
    for (let i = 0; i < list.length; i += 2) {
      if (list[i] === key) out.push(list[i + 1]!);
    }
    return out;
  }

  /** Whether a field named `name` (any case) is present. */
  has(name: string): boolean {
    const key = name.toLowerCase();
    const list = this.#list;
    for (let i = 0; i < list.length; i += 2) {
      if (list[i] === key) return true;
    }
    return false;
  }

  /** The `[name, value]` pairs, in arrival order. */
  *[Symbol.iterator](): IterableIterator<[string, string]> {
    const list = this.#list;
    for (let i = 0; i < list.length; i += 2) yield [list[i]!, list[i + 1]!];
  }

  /** Shows the fields in `console.log` and `Deno.inspect`. */
  [Symbol.for("Deno.customInspect")](inspect: (value: unknown) => string): string {
    return `HttpHeaders ${inspect(Object.fromEntries(this))}`;
  }
}

// ---------------------------------------------------------------------------
// Byte tables

const CR = 13;
const LF = 10;
const SP = 32;
const HTAB = 9;
const COLON = 58;
const SEMICOLON = 59;

/** For a tchar (RFC 9110 token character): its lowercase form; 0 otherwise. */
const TOKEN_LOWER = new Uint8Array(256);
/** 1 for the bytes allowed in a field value: HTAB, SP, VCHAR, obs-text. */
const VALUE_OK = new Uint8Array(256);
/** 1 for the bytes allowed in a request target: VCHAR. */
const TARGET_OK = new Uint8Array(256);
/** The value of a hex digit; 255 otherwise. */
const HEX = new Uint8Array(256).fill(255);

for (let b = 0; b < 256; b++) {
  const digit = b >= 48 && b <= 57;
  const lower = b >= 97 && b <= 122;
  const upper = b >= 65 && b <= 90;
  if (digit || lower || "!#$%&'*+-.^_`|~".includes(String.fromCharCode(b))) TOKEN_LOWER[b] = b;
  if (upper) TOKEN_LOWER[b] = b + 32;
  if (b === HTAB || (b >= 0x20 && b !== 0x7f)) VALUE_OK[b] = 1;
  if (b > 0x20 && b < 0x7f) TARGET_OK[b] = 1;
  if (digit) HEX[b] = b - 48;
  else if (lower && b <= 102) HEX[b] = b - 87;
  else if (upper && b <= 70) HEX[b] = b - 55;
}

// ---------------------------------------------------------------------------
// String interning: a direct-mapped cache of short strings, keyed by an FNV-1a
// hash computed while the bytes are validated. Each slot keeps the string and
// a copy of its bytes: a hit costs a byte comparison (much cheaper than
// comparing against the string's chars) and allocates nothing.

const FNV_OFFSET = 0x811c9dc5 | 0;
const FNV_PRIME = 16777619;
const INTERN_SLOTS = 2048;
const INTERN_MASK = INTERN_SLOTS - 1;
const INTERN_MAX_LEN = 128;
const internStrings: string[] = new Array<string>(INTERN_SLOTS).fill("");
const internLengths = new Int32Array(INTERN_SLOTS).fill(-1);
const internBytes = new Uint8Array(INTERN_SLOTS * INTERN_MAX_LEN);

function decode(buf: Uint8Array, start: number, end: number): string {
  // Latin-1 decoding: one char per byte, so obs-text survives unchanged.
  return String.fromCharCode.apply(null, buf.subarray(start, end) as unknown as number[]);
}

const KNOWN_NAMES = new Map(
  ["host", "connection", "content-length", "transfer-encoding"].map((name) => [name, name]),
);

/** The string of `buf[start, end)` whose FNV-1a hash is `hash`. */
function intern(buf: Uint8Array, start: number, end: number, hash: number): string {
  const len = end - start;
  if (len > INTERN_MAX_LEN) return decode(buf, start, end);
  const slot = (hash ^ (hash >>> 13)) & INTERN_MASK;
  if (internLengths[slot] === len) {
    const base = slot * INTERN_MAX_LEN - start;
    let i = start;
    while (i < end && internBytes[base + i] === buf[i]) i++;
    if (i === end) return internStrings[slot]!;
  }
  const s = decode(buf, start, end);
  internStrings[slot] = s;
  internLengths[slot] = len;
  internBytes.set(buf.subarray(start, end), slot * INTERN_MAX_LEN);
  return s;
}

/** Like {@linkcode intern} for a token, lowercased; `hash` is of the lowercase bytes. */
function internLower(buf: Uint8Array, start: number, end: number, hash: number): string {
  const len = end - start;
  if (len > INTERN_MAX_LEN) return decode(buf, start, end).toLowerCase();
  const slot = (hash ^ (hash >>> 13)) & INTERN_MASK;
  const base = slot * INTERN_MAX_LEN - start;
  if (internLengths[slot] === len) {
    let i = start;
    while (i < end && internBytes[base + i] === TOKEN_LOWER[buf[i]!]) i++;
    if (i === end) return internStrings[slot]!;
  }
  const lower = decode(buf, start, end).toLowerCase();
  // The literal itself for the names the parser compares against, so those
  // comparisons are pointer comparisons.
  const s = KNOWN_NAMES.get(lower) ?? lower;
  internStrings[slot] = s;
  internLengths[slot] = len;
  for (let i = start; i < end; i++) internBytes[base + i] = TOKEN_LOWER[buf[i]!]!;
  return s;
}

// ---------------------------------------------------------------------------
// Header value helpers (run once per special header, not per byte)

/** The value of a Content-Length field, `-1` when malformed. Saturates at 2^53. */
function parseContentLength(value: string): number {
  let n = -1;
  let item = -1;
  let sawDigit = false;
  for (let i = 0; i <= value.length; i++) {
    const c = i === value.length ? 44 : value.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (item === -2) return -1; // digits after whitespace inside an item
      item = (item < 0 ? 0 : item) * 10 + (c - 48);
      if (item > 2 ** 53) item = 2 ** 53;
      sawDigit = true;
    } else if (c === SP || c === HTAB) {
      if (item >= 0) {
        if (n !== -1 && n !== item) return -1;
        n = item;
        item = -2;
      }
    } else if (c === 44) { // ","
      if (item >= 0) {
        if (n !== -1 && n !== item) return -1;
        n = item;
      }
      item = -1;
    } else {
      return -1;
    }
  }
  return sawDigit ? n : -1;
}

/** The comma-separated elements of a list-valued field, trimmed and lowercased. */
function listElements(value: string): string[] {
  const out: string[] = [];
  for (const part of value.split(",")) {
    const s = part.trim().toLowerCase();
    if (s !== "") out.push(s);
  }
  return out;
}

// ---------------------------------------------------------------------------
// The parser

const S_START = 0; // before a request line (skipping empty lines)
const S_HEADERS = 1; // header lines
const S_BODY = 2; // Content-Length body
const S_CHUNK_SIZE = 3; // chunk-size line
const S_CHUNK_DATA = 4; // chunk data
const S_CHUNK_END = 5; // the CRLF after chunk data
const S_TRAILERS = 6; // trailer lines after the last chunk

/** Longest chunk-size line (size and extensions) accepted. */
const MAX_CHUNK_LINE = 4096;
/** Longest request head remembered for the identical-head shortcut. */
const MAX_MEMO_BYTES = 1024;
/** Owned buffers larger than this are released once drained. */
const KEEP_BUFFER_BYTES = 64 * 1024;
const EMPTY = new Uint8Array(0);

function positiveInteger(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new RangeError(`Cannot create HttpParser: ${name} must be a positive integer`);
  }
  return value;
}

/**
 * An incremental HTTP/1.x request parser for one connection.
 *
 * Usage: {@linkcode HttpParser.prototype.feed} each chunk read from the
 * socket, then call {@linkcode HttpParser.prototype.next} until it returns
 * `null` (more bytes needed) or throws {@linkcode HttpParseError}.
 *
 * To avoid copies the parser keeps a reference to the chunk given to `feed`
 * and parses it in place; it copies only the unparsed tail, and only when
 * `next` returns `null`. So a read buffer may be reused for the next read
 * once `next` has returned `null` (or thrown), not before.
 *
 * @example
 * ```ts
 * import { HttpParseError, HttpParser } from "./parser.ts";
 *
 * const parser = new HttpParser({ maxBodyBytes: 64 * 1024 });
 * const enc = new TextEncoder();
 * parser.feed(enc.encode("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhel"));
 * console.log(parser.next()); // null: the body is incomplete
 * parser.feed(enc.encode("loGET / HTTP/1.1\r\nHost: a\r\n\r\n"));
 * try {
 *   for (let req = parser.next(); req !== null; req = parser.next()) {
 *     console.log(req.method, req.target, new TextDecoder().decode(req.body));
 *   }
 * } catch (e) {
 *   if (e instanceof HttpParseError) console.log(e.status, e.reason);
 *   else throw e;
 * }
 * ```
 */
export class HttpParser {
  readonly #maxHeaderBytes: number;
  readonly #maxBodyBytes: number;

  // Input: #buf holds exactly the buffered bytes; [#pos, #buf.length) is unparsed.
  #buf: Uint8Array = EMPTY;
  #pos = 0;
  /** Where to resume the search for LF (bytes in [#pos, #scan) hold none). */
  #scan = 0;
  /** Whether #buf is the caller's chunk (else a view of #own). */
  #borrowed = false;
  #own: Uint8Array = EMPTY;

  #state = S_START;
  #error: HttpParseError | null = null;

  // The last bodiless request parsed in full, to answer a byte-identical head
  // (a benchmark's, or a client's repeated polling) with one comparison.
  #memoBytes: Uint8Array = EMPTY;
  #memoLen = 0;
  #memoRequest: HttpRequest | null = null;
  /** Heads parsed in full since the last shortcut; remembering costs a copy. */
  #memoMisses = 0;

  // The request being parsed.
  #method = "";
  #target = "";
  #version: HttpVersion = "1.1";
  #headers: string[] = [];
  #headBytes = 0;
  #contentLength = -1;
  #hosts = 0;
  #close = false;
  #keepAliveToken = false;
  #codings: string[] | null = null;
  #body: Uint8Array = EMPTY;
  #bodyLen = 0;
  #chunkLeft = 0;
  #crlf = 0;

  /**
   * Create a parser for one connection.
   *
   * @param options Size limits.
   * @throws {RangeError} When a limit is not a positive integer.
   */
  constructor(options: HttpParserOptions = {}) {
    this.#maxHeaderBytes = positiveInteger(
      options.maxHeaderBytes,
      DEFAULT_MAX_HEADER_BYTES,
      "maxHeaderBytes",
    );
    this.#maxBodyBytes = positiveInteger(
      options.maxBodyBytes,
      DEFAULT_MAX_BODY_BYTES,
      "maxBodyBytes",
    );
  }

  /** The error the parser failed with, or `null` while it has not failed. */
  get error(): HttpParseError | null {
    return this.#error;
  }

  /**
   * Whether the parser is between requests with nothing buffered: a peer
   * closing now loses no request.
   */
  get idle(): boolean {
    return this.#state === S_START && this.#pos === this.#buf.length;
  }

  /**
   * Add bytes received from the peer. Parsing happens in
   * {@linkcode HttpParser.prototype.next}. Ignored once the parser has failed.
   *
   * The parser may keep a reference to `chunk` until `next` returns `null`
   * or throws: do not modify it before then.
   */
  feed(chunk: Uint8Array): void {
    if (this.#error !== null || chunk.length === 0) return;
    const buf = this.#buf;
    const pos = this.#pos;
    const pending = buf.length - pos;
    if (pending === 0) {
      this.#buf = chunk;
      this.#pos = 0;
      this.#scan = 0;
      this.#borrowed = true;
      return;
    }
    const total = pending + chunk.length;
    let own = this.#own;
    if (own.length < total) {
      own = new Uint8Array(Math.max(total, own.length * 2, 4096));
      own.set(buf.subarray(pos), 0);
      this.#own = own;
    } else if (this.#borrowed) {
      own.set(buf.subarray(pos), 0);
    } else if (pos !== 0) {
      own.copyWithin(0, pos, pos + pending);
    }
    own.set(chunk, pending);
    this.#buf = own.subarray(0, total);
    this.#scan -= pos;
    this.#pos = 0;
    this.#borrowed = false;
  }

  /**
   * Parse the next complete request from the buffered bytes.
   *
   * @returns The request, or `null` when more bytes are needed.
   * @throws {HttpParseError} When the request is malformed, too large or
   * unsupported; every later call throws the same error.
   */
  next(): HttpRequest | null {
    if (this.#error !== null) throw this.#error;
    const buf = this.#buf;
    const end = buf.length;
    let pos = this.#pos;
    let scan = this.#scan;
    let headStart = -1; // where the request line began, when parsed in this call
    for (;;) {
      const state = this.#state;

      if (state === S_BODY || state === S_CHUNK_DATA) {
        const want = state === S_BODY ? this.#contentLength - this.#bodyLen : this.#chunkLeft;
        const avail = end - pos;
        const n = avail < want ? avail : want;
        if (n > 0) {
          this.#body.set(buf.subarray(pos, pos + n), this.#bodyLen);
          this.#bodyLen += n;
          pos += n;
        }
        if (n < want) {
          if (state === S_CHUNK_DATA) this.#chunkLeft -= n;
          return this.#needMore(pos, pos);
        }
        scan = pos;
        if (state === S_BODY) return this.#emit(pos);
        this.#chunkLeft = 0;
        this.#crlf = 0;
        this.#state = S_CHUNK_END;
        continue;
      }

      if (state === S_CHUNK_END) {
        while (this.#crlf < 2) {
          if (pos === end) return this.#needMore(pos, pos);
          if (buf[pos] !== (this.#crlf === 0 ? CR : LF)) {
            throw this.#fail(400, "chunk data is not followed by CRLF");
          }
          pos++;
          this.#crlf++;
        }
        scan = pos;
        this.#state = S_CHUNK_SIZE;
        continue;
      }

      // A line-oriented state. Fast path: parse a complete, valid request line
      // or header line in one pass. Anything else (an incomplete line, an
      // error, a limit) takes the slow path below, which finds the line end
      // first and so reports the same error however the bytes were split.
      if (state === S_START && pos < end && buf[pos] !== CR) {
        const memoLen = this.#memoLen;
        if (memoLen !== 0 && end - pos >= memoLen) {
          const memo = this.#memoBytes;
          const base = pos;
          let i = 0;
          while (i < memoLen && memo[i] === buf[base + i]) i++;
          if (i === memoLen) {
            this.#memoMisses = 0;
            pos += memoLen;
            this.#pos = this.#scan = pos;
            const m = this.#memoRequest!;
            return {
              method: m.method,
              target: m.target,
              version: m.version,
              headers: m.headers,
              body: EMPTY,
              keepAlive: m.keepAlive,
            };
          }
        }
        headStart = pos;
      }
      if (pos < end && buf[pos] !== CR) {
        const next = state === S_HEADERS
          ? this.#fastHeaderLine(buf, pos, end)
          : state === S_START
          ? this.#fastRequestLine(buf, pos, end)
          : -1;
        if (next > 0) {
          pos = scan = next;
          continue;
        }
      }

      // Slow path: find the end of the line.
      let lf = scan;
      while (lf < end && buf[lf] !== LF) lf++;
      if (lf === end) {
        this.#checkLineLimit(state, end - pos);
        return this.#needMore(pos, end);
      }
      const lineLen = lf + 1 - pos;
      this.#checkLineLimit(state, lineLen);
      if (lf === pos || buf[lf - 1] !== CR) {
        throw this.#fail(400, "bare LF (lines must end with CRLF)");
      }
      const eol = lf - 1; // the CR
      const empty = eol === pos;

      if (state === S_START) {
        if (!empty) {
          this.#parseRequestLine(buf, pos, eol);
          this.#headBytes = lineLen;
          this.#state = S_HEADERS;
        }
      } else if (state === S_HEADERS) {
        this.#headBytes += lineLen;
        if (!empty) {
          this.#parseHeaderLine(buf, pos, eol, false);
        } else if (this.#finishHead()) {
          const request = this.#emit(lf + 1);
          // Remember the head after a change of requests, and now and then
          // while they keep changing (a copy per request would cost more
          // than the shortcut saves).
          const misses = ++this.#memoMisses;
          if (headStart >= 0 && (misses <= 2 || (misses & 15) === 0)) {
            this.#remember(buf, headStart, lf + 1, request);
          }
          return request;
        }
      } else if (state === S_CHUNK_SIZE) {
        this.#parseChunkSize(buf, pos, eol);
      } else { // S_TRAILERS
        this.#headBytes += lineLen;
        if (empty) return this.#emit(lf + 1);
        this.#parseHeaderLine(buf, pos, eol, true);
      }
      pos = lf + 1;
      scan = pos;
    }
  }

  /**
   * Forget everything, including a failure, to parse a new connection's
   * requests (keeps the internal buffer for reuse).
   */
  reset(): void {
    this.#buf = EMPTY;
    this.#pos = 0;
    this.#scan = 0;
    this.#borrowed = false;
    this.#state = S_START;
    this.#error = null;
    this.#resetRequest();
  }

  #resetRequest(): void {
    this.#method = "";
    this.#target = "";
    this.#version = "1.1";
    this.#headers = [];
    this.#headBytes = 0;
    this.#contentLength = -1;
    this.#hosts = 0;
    this.#close = false;
    this.#keepAliveToken = false;
    this.#codings = null;
    this.#body = EMPTY;
    this.#bodyLen = 0;
    this.#chunkLeft = 0;
    this.#crlf = 0;
  }

  #fail(status: number, reason: string): HttpParseError {
    const error = new HttpParseError(status, reason);
    this.#error = error;
    this.#buf = EMPTY;
    this.#pos = 0;
    this.#scan = 0;
    this.#borrowed = false;
    this.#own = EMPTY;
    this.#body = EMPTY;
    return error;
  }

  /** Store the position and copy the unparsed tail out of a borrowed chunk. */
  #needMore(pos: number, scan: number): null {
    const buf = this.#buf;
    const pending = buf.length - pos;
    if (pending === 0) {
      this.#buf = EMPTY;
      this.#pos = 0;
      this.#scan = 0;
      this.#borrowed = false;
      if (this.#own.length > KEEP_BUFFER_BYTES) this.#own = EMPTY;
      return null;
    }
    if (this.#borrowed) {
      let own = this.#own;
      if (own.length < pending) own = this.#own = new Uint8Array(Math.max(pending, 4096));
      own.set(buf.subarray(pos), 0);
      this.#buf = own.subarray(0, pending);
      this.#scan = scan - pos;
      this.#pos = 0;
      this.#borrowed = false;
      return null;
    }
    this.#pos = pos;
    this.#scan = scan;
    return null;
  }

  /** Fail when a line of `length` bytes (complete or not) breaks a limit. */
  #checkLineLimit(state: number, length: number): void {
    if (state === S_CHUNK_SIZE) {
      if (length > MAX_CHUNK_LINE) throw this.#fail(400, "chunk size line is too long");
    } else if (state === S_START) {
      if (length > this.#maxHeaderBytes) {
        throw this.#fail(431, "request line is larger than the header limit");
      }
    } else if (this.#headBytes + length > this.#maxHeaderBytes) {
      throw this.#fail(
        431,
        state === S_HEADERS
          ? "request header fields are too large"
          : "trailer fields are too large",
      );
    }
  }

  #parseRequestLine(buf: Uint8Array, start: number, eol: number): void {
    // method SP request-target SP HTTP-version
    let i = start;
    let h = FNV_OFFSET;
    for (; i < eol; i++) {
      const b = buf[i]!;
      if (TOKEN_LOWER[b] === 0) break;
      h = Math.imul(h ^ b, FNV_PRIME);
    }
    if (i === start || i === eol || buf[i] !== SP) {
      throw this.#fail(400, this.#badByte(buf, i, eol, "malformed request line (method)"));
    }
    this.#method = intern(buf, start, i, h);

    const targetStart = ++i;
    h = FNV_OFFSET;
    for (; i < eol; i++) {
      const b = buf[i]!;
      if (TARGET_OK[b] === 0) break;
      h = Math.imul(h ^ b, FNV_PRIME);
    }
    if (i === targetStart || i === eol || buf[i] !== SP) {
      throw this.#fail(400, this.#badByte(buf, i, eol, "malformed request line (target)"));
    }
    this.#target = intern(buf, targetStart, i, h);

    i++;
    if (
      eol - i !== 8 || buf[i] !== 72 || buf[i + 1] !== 84 || buf[i + 2] !== 84 ||
      buf[i + 3] !== 80 || buf[i + 4] !== 47 || buf[i + 6] !== 46 // "HTTP/" d "." d
    ) {
      throw this.#fail(400, this.#badByte(buf, i, eol, "malformed request line (version)"));
    }
    const major = buf[i + 5]! - 48;
    const minor = buf[i + 7]! - 48;
    if (major < 0 || major > 9 || minor < 0 || minor > 9) {
      throw this.#fail(400, "malformed request line (version)");
    }
    if (major !== 1) throw this.#fail(505, `HTTP/${major}.${minor} is not supported`);
    this.#version = minor === 0 ? "1.0" : "1.1";
  }

  /**
   * Parse `METHOD SP target SP HTTP/1.x CRLF` at `start` when it is complete,
   * valid and within the limit; returns the next line's start, or -1 to let
   * the slow path handle the line.
   */
  #fastRequestLine(buf: Uint8Array, start: number, end: number): number {
    let i = start;
    let hm = FNV_OFFSET;
    for (; i < end; i++) {
      const b = buf[i]!;
      if (TOKEN_LOWER[b] === 0) break;
      hm = Math.imul(hm ^ b, FNV_PRIME);
    }
    if (i === start || i >= end || buf[i] !== SP) return -1;
    const methodEnd = i++;
    const targetStart = i;
    let ht = FNV_OFFSET;
    for (; i < end; i++) {
      const b = buf[i]!;
      if (TARGET_OK[b] === 0) break;
      ht = Math.imul(ht ^ b, FNV_PRIME);
    }
    if (i === targetStart || i + 11 > end || buf[i] !== SP) return -1;
    const targetEnd = i++;
    if (
      buf[i] !== 72 || buf[i + 1] !== 84 || buf[i + 2] !== 84 || buf[i + 3] !== 80 ||
      buf[i + 4] !== 47 || buf[i + 5] !== 49 || buf[i + 6] !== 46 || buf[i + 8] !== CR ||
      buf[i + 9] !== LF
    ) return -1;
    const minor = buf[i + 7];
    if (minor !== 48 && minor !== 49) return -1;
    const next = i + 10;
    if (next - start > this.#maxHeaderBytes) return -1;
    this.#method = intern(buf, start, methodEnd, hm);
    this.#target = intern(buf, targetStart, targetEnd, ht);
    this.#version = minor === 48 ? "1.0" : "1.1";
    this.#headBytes = next - start;
    this.#state = S_HEADERS;
    return next;
  }

  /**
   * Parse `name: value CRLF` at `start` when it is complete, valid and within
   * the limit; returns the next line's start, or -1 to let the slow path
   * handle the line.
   */
  #fastHeaderLine(buf: Uint8Array, start: number, end: number): number {
    let i = start;
    let hn = FNV_OFFSET;
    for (; i < end; i++) {
      const l = TOKEN_LOWER[buf[i]!]!;
      if (l === 0) break;
      hn = Math.imul(hn ^ l, FNV_PRIME);
    }
    if (i === start || i >= end || buf[i] !== COLON) return -1;
    const nameEnd = i++;
    while (i < end && (buf[i] === SP || buf[i] === HTAB)) i++;
    const valueStart = i;
    let valueEnd = i;
    let running = FNV_OFFSET;
    let hv = FNV_OFFSET;
    for (; i < end; i++) {
      const b = buf[i]!;
      if (VALUE_OK[b] === 0) break;
      running = Math.imul(running ^ b, FNV_PRIME);
      if (b > SP) { // not OWS: the value ends here unless more follows
        hv = running;
        valueEnd = i + 1;
      }
    }
    if (i + 1 >= end || buf[i] !== CR || buf[i + 1] !== LF) return -1;
    const next = i + 2;
    const headBytes = this.#headBytes + (next - start);
    if (headBytes > this.#maxHeaderBytes) return -1;
    this.#headBytes = headBytes;
    this.#addHeader(internLower(buf, start, nameEnd, hn), intern(buf, valueStart, valueEnd, hv));
    return next;
  }

  /** `fallback`, or a bare-CR reason when the byte at `i` is a CR. */
  #badByte(buf: Uint8Array, i: number, eol: number, fallback: string): string {
    for (let j = i; j < eol; j++) if (buf[j] === CR) return "bare CR in the request head";
    return fallback;
  }

  #parseHeaderLine(buf: Uint8Array, start: number, eol: number, trailer: boolean): void {
    let i = start;
    let h = FNV_OFFSET;
    for (; i < eol; i++) {
      const l = TOKEN_LOWER[buf[i]!]!;
      if (l === 0) break;
      h = Math.imul(h ^ l, FNV_PRIME);
    }
    if (i === eol || buf[i] !== COLON) {
      const b = i < eol ? buf[i] : -1;
      let colon = i;
      while (colon < eol && buf[colon] !== COLON) colon++;
      let reason: string;
      if (b === CR) reason = "bare CR in the request head";
      else if (i === start && (b === SP || b === HTAB)) reason = "obsolete line folding";
      else if (colon === eol) reason = "header line without a colon";
      else if (b === SP || b === HTAB) reason = "whitespace between header name and colon";
      else reason = "invalid character in header name";
      throw this.#fail(400, reason);
    }
    if (i === start) throw this.#fail(400, "empty header name");
    const nameEnd = i;

    // OWS field-value OWS
    i++;
    while (i < eol && (buf[i] === SP || buf[i] === HTAB)) i++;
    let valueEnd = eol;
    while (valueEnd > i && (buf[valueEnd - 1] === SP || buf[valueEnd - 1] === HTAB)) valueEnd--;
    const valueStart = i;
    let hv = FNV_OFFSET;
    for (; i < valueEnd; i++) {
      const b = buf[i]!;
      if (VALUE_OK[b] === 0) {
        throw this.#fail(
          400,
          b === CR ? "bare CR in the request head" : "invalid character in header value",
        );
      }
      hv = Math.imul(hv ^ b, FNV_PRIME);
    }
    if (trailer) return; // validated, dropped

    this.#addHeader(internLower(buf, start, nameEnd, h), intern(buf, valueStart, valueEnd, hv));
  }

  #addHeader(name: string, value: string): void {
    this.#headers.push(name, value);
    switch (name.length) {
      case 4:
        if (name === "host") this.#hosts++;
        break;
      case 10:
        if (name === "connection") this.#connection(value);
        break;
      case 14:
        if (name === "content-length") {
          const n = parseContentLength(value);
          if (n < 0) throw this.#fail(400, "invalid Content-Length");
          if (this.#contentLength !== -1 && this.#contentLength !== n) {
            throw this.#fail(400, "conflicting Content-Length values");
          }
          this.#contentLength = n;
        }
        break;
      case 17:
        if (name === "transfer-encoding") {
          const codings = this.#codings ??= [];
          for (const coding of listElements(value)) codings.push(coding);
        }
        break;
    }
  }

  #connection(value: string): void {
    if (value === "close") {
      this.#close = true;
    } else if (value === "keep-alive") {
      this.#keepAliveToken = true;
    } else {
      for (const token of listElements(value)) {
        if (token === "close") this.#close = true;
        else if (token === "keep-alive") this.#keepAliveToken = true;
      }
    }
  }

  /** Validate the head's framing; returns true when the request has no body. */
  #finishHead(): boolean {
    if (this.#hosts > 1) throw this.#fail(400, "more than one Host header");
    if (this.#hosts === 0 && this.#version === "1.1") throw this.#fail(400, "missing Host header");
    const codings = this.#codings;
    if (codings !== null) {
      if (this.#version === "1.0") {
        throw this.#fail(400, "Transfer-Encoding in an HTTP/1.0 request");
      }
      if (this.#contentLength !== -1) {
        throw this.#fail(400, "both Transfer-Encoding and Content-Length");
      }
      if (codings.length === 0) throw this.#fail(400, "empty Transfer-Encoding");
      for (const coding of codings) {
        let j = 0;
        while (j < coding.length && coding.charCodeAt(j) !== SEMICOLON) {
          if (TOKEN_LOWER[coding.charCodeAt(j)] === 0) {
            throw this.#fail(400, "malformed Transfer-Encoding");
          }
          j++;
        }
      }
      const last = codings.length - 1;
      if (codings[last] !== "chunked") {
        throw this.#fail(400, "chunked is not the final transfer coding");
      }
      if (codings.indexOf("chunked") !== last) {
        throw this.#fail(400, "chunked applied more than once");
      }
      if (last > 0) throw this.#fail(501, `unsupported transfer coding "${codings[0]}"`);
      this.#state = S_CHUNK_SIZE;
      return false;
    }
    const length = this.#contentLength;
    if (length > this.#maxBodyBytes) {
      throw this.#fail(413, `body of ${length} bytes exceeds the limit of ${this.#maxBodyBytes}`);
    }
    if (length <= 0) return true;
    this.#body = new Uint8Array(length);
    this.#state = S_BODY;
    return false;
  }

  #parseChunkSize(buf: Uint8Array, start: number, eol: number): void {
    // chunk-size [ BWS ";" chunk-ext ] (extensions are skipped)
    const room = this.#maxBodyBytes - this.#bodyLen;
    let size = 0;
    let i = start;
    for (; i < eol; i++) {
      const d = HEX[buf[i]!]!;
      if (d === 255) break;
      size = size * 16 + d;
      if (size > room) size = room + 1; // saturate; reported below
    }
    if (i === start) throw this.#fail(400, "invalid chunk size");
    while (i < eol && (buf[i] === SP || buf[i] === HTAB)) i++;
    if (i < eol) {
      if (buf[i] !== SEMICOLON) throw this.#fail(400, "invalid chunk size");
      for (; i < eol; i++) {
        if (VALUE_OK[buf[i]!] === 0) throw this.#fail(400, "invalid chunk extension");
      }
    }
    if (size > room) {
      throw this.#fail(413, `chunked body exceeds the limit of ${this.#maxBodyBytes} bytes`);
    }
    if (size === 0) {
      this.#headBytes = 0; // now counts trailer bytes
      this.#state = S_TRAILERS;
      return;
    }
    const needed = this.#bodyLen + size;
    if (this.#body.length < needed) {
      const grown = new Uint8Array(
        Math.min(Math.max(needed, this.#body.length * 2, 256), this.#maxBodyBytes),
      );
      grown.set(this.#body.subarray(0, this.#bodyLen), 0);
      this.#body = grown;
    }
    this.#chunkLeft = size;
    this.#state = S_CHUNK_DATA;
  }

  /** Keep the head `buf[start, end)` of the bodiless `request` for later comparison. */
  #remember(buf: Uint8Array, start: number, end: number, request: HttpRequest): void {
    const len = end - start;
    if (len > MAX_MEMO_BYTES) return;
    if (this.#memoBytes.length < len) this.#memoBytes = new Uint8Array(MAX_MEMO_BYTES);
    const memo = this.#memoBytes;
    for (let i = 0; i < len; i++) memo[i] = buf[start + i]!;
    this.#memoLen = len;
    this.#memoRequest = request;
  }

  #emit(pos: number): HttpRequest {
    this.#pos = pos;
    this.#scan = pos;
    const bodyLen = this.#bodyLen;
    const body = this.#body;
    const request: HttpRequest = {
      method: this.#method,
      target: this.#target,
      version: this.#version,
      headers: new HttpHeaders(this.#headers),
      body: bodyLen === 0 ? EMPTY : bodyLen === body.length ? body : body.subarray(0, bodyLen),
      keepAlive: this.#version === "1.1" ? !this.#close : this.#keepAliveToken && !this.#close,
    };
    this.#state = S_START;
    this.#resetRequest();
    return request;
  }
}
