/**
 * An incremental, allocation-conscious HTTP/1.1 request parser.
 *
 * Feed it bytes as they arrive with {@linkcode HttpParser.prototype.feed}
 * (chunks may be split anywhere and may hold several pipelined requests).
 * Then either:
 * - call {@linkcode HttpParser.prototype.next} until it returns `null`: each
 *   request comes whole, its body buffered (up to `maxBodyBytes`); or
 * - stream: {@linkcode HttpParser.prototype.nextHead} returns a request's
 *   head as soon as it is complete; while {@linkcode HttpParser.prototype.inBody}
 *   is true, {@linkcode HttpParser.prototype.readBody} returns the body's
 *   bytes as they arrive (de-chunked), in place.
 *
 * Speed: the parser works on the bytes directly (no TextDecoder, no regular
 * expressions, no splitting):
 * - A complete, valid request line or header line is validated, hashed and
 *   delimited in a single pass with 256-entry lookup tables; only lines that
 *   are incomplete, invalid or over a limit take a slower two-pass path
 *   (find the LF, then parse), which makes errors independent of how the
 *   input was split.
 * - Short strings (methods, targets, header names and values) are interned
 *   in a small cache shared by all parsers (the tables at the end of this file), so a steady
 *   stream of similar requests allocates no strings.
 * - With `memo: true`, each parser remembers the bytes of its last bodiless
 *   request head; a byte-identical head is answered after one comparison,
 *   with the same request object (`_memo.ts`).
 * - Bytes are parsed in place in the chunk given to `feed`; only an
 *   incomplete tail is copied.
 *
 * Policy (RFC 9112 leaves some of these to the server):
 * - Lines end with CRLF. A bare LF or a bare CR anywhere in the head is a 400.
 * - Empty lines before a request line are skipped (RFC 9112 §2.2).
 * - Only `HTTP/1.0` and `HTTP/1.1` are accepted; `HTTP/1.x` with x > 1 is
 *   handled as 1.1, any other major version is a 505, anything else a 400.
 * - A method longer than `MAX_METHOD_BYTES` (32) is a 501, however long the
 *   line: no server implements it (and it is not a long target: no 414).
 * - A request target longer than `maxTargetBytes` is a 414. Its form
 *   (RFC 9112 §3.2): origin-form (`/…`); `*` for OPTIONS only (RFC 9110
 *   §9.3.7); `host:port` for CONNECT only; otherwise an absolute `http:` or
 *   `https:` URI with an authority (`file:`, `data:` and others are a 400). A
 *   fragment (`#`) is a 400: clients never send one.
 * - An HTTP/1.1 request needs a `Host` header, and no request may have two
 *   (400; RFC 9112 §3.2); its value must be `host [":" port]` (400).
 * - `Content-Length` must be digits; repeated values (in one header or
 *   several) must all be equal (400 otherwise); beyond `maxBodyBytes` it is a
 *   413, reported as soon as the head is complete.
 * - `Transfer-Encoding: chunked` request bodies are supported (chunk
 *   extensions are checked against RFC 9112 §7.1.1 and skipped, trailers are
 *   validated and dropped). When `chunked` is not the final coding the
 *   framing is unknowable: 400 (RFC 9112 §6.3 says MUST). When other codings
 *   come before `chunked` (`gzip, chunked`) the request is framed but not
 *   understood: 501. Transfer-Encoding together with Content-Length, or in an
 *   HTTP/1.0 request, is a 400 (request smuggling defence).
 * - Obsolete line folding is a 400.
 * - `Expect: 100-continue` is reported in {@linkcode HttpRequest.expectContinue}
 *   (the server answers it).
 * - The head (request line, headers, final CRLF) may be `maxHeaderBytes` long
 *   at most, and so may the trailers of a chunked body; it may hold
 *   `maxHeaderCount` fields at most: 431 otherwise.
 * - Every chunk-size line needs hex digits: an empty one is a 400 (so bytes
 *   after it are never read as a new request).
 *
 * The limits, their defaults and ranges are defined once, in `limits.ts`.
 *
 * Errors are thrown as {@linkcode HttpParseError} carrying the status to
 * answer with; after one the parser stays failed: send the error response and
 * close the connection.
 *
 * @example
 * ```ts
 * import { HttpParser } from "@ffinet/ffinet/http";
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
import { HttpHeaders } from "../headers.ts";
import { HeadMemo } from "./_memo.ts";
import {
  type HttpParserOptions,
  MAX_CHUNK_LINE_BYTES,
  MAX_METHOD_BYTES,
  type ParserLimits,
  parserLimits,
} from "./limits.ts";
import { HttpParseError } from "./parse_error.ts";
import type { HttpRequest, HttpVersion } from "./request.ts";

const S_START = 0; // before a request line (skipping empty lines)
const S_HEADERS = 1; // header lines
const S_BODY = 2; // Content-Length body
const S_CHUNK_SIZE = 3; // chunk-size line
const S_CHUNK_DATA = 4; // chunk data
const S_CHUNK_END = 5; // the CRLF after chunk data
const S_TRAILERS = 6; // trailer lines after the last chunk

// What #run found.
const EV_NONE = 0; // more bytes needed
const EV_HEAD = 1; // a head, in #outRequest
const EV_DATA = 2; // body bytes, in #outData
const EV_END = 3; // the end of a body

/** Owned buffers larger than this are released once drained. */
const KEEP_BUFFER_BYTES = 64 * 1024;
const EMPTY = new Uint8Array(0);

/**
 * An incremental HTTP/1.x request parser for one connection.
 *
 * Usage: {@linkcode HttpParser.prototype.feed} each chunk read from the
 * socket, then call {@linkcode HttpParser.prototype.next} until it returns
 * `null` (more bytes needed) or throws {@linkcode HttpParseError}; or use
 * `nextHead`/`readBody` to stream bodies.
 *
 * To avoid copies the parser keeps a reference to the chunk given to `feed`
 * and parses it in place; it copies only the unparsed tail, and only when
 * `next`/`nextHead`/`readBody` returns `null`. So a read buffer may be reused
 * for the next read once one of them has returned `null` (or thrown), not
 * before.
 *
 * @example Whole requests
 * ```ts
 * import { HttpParseError, HttpParser } from "@ffinet/ffinet/http";
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
 *
 * @example Streaming a body
 * ```ts
 * import { HttpParser } from "@ffinet/ffinet/http";
 *
 * const parser = new HttpParser();
 * parser.feed(new TextEncoder().encode(
 *   "PUT /f HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
 * ));
 * const head = parser.nextHead()!;
 * let got = "";
 * for (let chunk = parser.readBody(); chunk !== null; chunk = parser.readBody()) {
 *   got += new TextDecoder().decode(chunk); // a view: copy what you keep
 * }
 * console.log(head.target, got, parser.inBody); // "/f" "abc" false
 * ```
 */
export class HttpParser {
  readonly #maxHeaderBytes: number;
  readonly #maxBodyBytes: number;
  readonly #maxTargetBytes: number;
  readonly #memo: HeadMemo | null;

  // Input: #buf holds exactly the buffered bytes; [#pos, #buf.length) is unparsed.
  #buf: Uint8Array = EMPTY;
  #pos = 0;
  /** Where to resume the search for LF (bytes in [#pos, #scan) hold none). */
  #scan = 0;
  /** Whether #buf is the caller's chunk (else a view of #own). */
  #borrowed = false;
  #own: Uint8Array = EMPTY;

  #state = S_START;
  #endPending = false;
  #error: HttpParseError | null = null;
  #outRequest: HttpRequest | null = null;
  #outData: Uint8Array = EMPTY;
  // next(): the request whose body is being buffered.
  #pendingHead: HttpRequest | null = null;
  #pendingBody: Uint8Array = EMPTY;
  #pendingLen = 0;

  /** The head of the request being parsed. */
  readonly #h: HeadParser;
  // Its body.
  #bodyLen = 0;
  #chunkLeft = 0;
  #crlf = 0;

  /**
   * Create a parser for one connection.
   *
   * @param options Size limits and the memo.
   * @throws {RangeError} When a limit is out of its range (`limits.ts`).
   */
  constructor(options: HttpParserOptions = {}) {
    const limits = parserLimits("create HttpParser", options);
    this.#maxHeaderBytes = limits.maxHeaderBytes;
    this.#maxBodyBytes = limits.maxBodyBytes;
    this.#maxTargetBytes = limits.maxTargetBytes;
    this.#memo = options.memo === true ? new HeadMemo() : null;
    this.#h = new HeadParser(limits);
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
    return this.#state === S_START && !this.#endPending && this.#pos === this.#buf.length;
  }

  /**
   * Whether bytes of a request head (other than blank lines) have arrived
   * and the head is not complete yet.
   */
  get inHead(): boolean {
    return this.#state === S_HEADERS ||
      (this.#state === S_START && !this.#endPending && this.#pos < this.#buf.length &&
        this.#buf[this.#pos] !== CR);
  }

  /** Whether the body of the last head from `nextHead` has not been read to its end. */
  get inBody(): boolean {
    return this.#state >= S_BODY || this.#endPending;
  }

  /**
   * `next()` only: the head of the request whose body is being buffered
   * (e.g. to answer its `Expect: 100-continue`), or `null`.
   */
  get pendingHead(): HttpRequest | null {
    return this.#pendingHead;
  }

  /** Body bytes of the current request received so far. */
  get bodyBytesRead(): number {
    return this.#bodyLen;
  }

  /**
   * Add bytes received from the peer. Parsing happens in `next`, `nextHead`
   * and `readBody`. Ignored once the parser has failed.
   *
   * The parser may keep a reference to `chunk` until one of those returns
   * `null` or throws: do not modify it before then.
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
   * Copy the unparsed bytes out of the chunk last given to `feed`, so the
   * caller may reuse that chunk while requests are left unparsed (e.g. while
   * the server does not read more for backpressure).
   */
  retain(): void {
    if (this.#borrowed && this.#error === null) this.#needMore(this.#pos, this.#scan);
  }

  /**
   * Take the bytes buffered and not parsed yet (e.g. those after an upgrade
   * request's head), leaving the parser empty.
   */
  takeBuffered(): Uint8Array {
    const out = this.#buf.slice(this.#pos);
    this.#buf = EMPTY;
    this.#pos = 0;
    this.#scan = 0;
    this.#borrowed = false;
    return out;
  }

  /**
   * Parse the next complete request from the buffered bytes, its body
   * buffered in full.
   *
   * @returns The request, or `null` when more bytes are needed.
   * @throws {HttpParseError} When the request is malformed, too large or
   * unsupported; every later call throws the same error.
   */
  next(): HttpRequest | null {
    for (;;) {
      const ev = this.#run();
      if (ev === EV_NONE) return null;
      if (ev === EV_HEAD) {
        const req = this.#outRequest!;
        if (this.#state < S_BODY) return req;
        this.#pendingHead = req;
        this.#pendingBody = new Uint8Array(req.bodyLength > 0 ? req.bodyLength : 256);
        this.#pendingLen = 0;
      } else if (ev === EV_DATA) {
        const data = this.#outData;
        const len = this.#pendingLen;
        let body = this.#pendingBody;
        if (len + data.length > body.length) {
          const grown = new Uint8Array(Math.max(len + data.length, body.length * 2));
          grown.set(body.subarray(0, len), 0);
          body = this.#pendingBody = grown;
        }
        body.set(data, len);
        this.#pendingLen = len + data.length;
      } else { // EV_END
        const h = this.#pendingHead!;
        const body = this.#pendingBody;
        const len = this.#pendingLen;
        this.#pendingHead = null;
        this.#pendingBody = EMPTY;
        this.#pendingLen = 0;
        return {
          method: h.method,
          target: h.target,
          version: h.version,
          headers: h.headers,
          body: len === 0 ? EMPTY : len === body.length ? body : body.subarray(0, len),
          bodyLength: h.bodyLength,
          expectContinue: h.expectContinue,
          upgrade: h.upgrade,
          keepAlive: h.keepAlive,
        };
      }
    }
  }

  /**
   * Parse the next request head. When the request has a body
   * ({@linkcode HttpParser.prototype.inBody} is then true), read it with
   * `readBody` before asking for the next head.
   *
   * @returns The head (its `body` is empty), or `null` when more bytes are needed.
   * @throws {HttpParseError} As `next`.
   */
  nextHead(): HttpRequest | null {
    if (this.inBody) {
      throw new Error("Cannot parse the next request head: the body is not read to its end");
    }
    const ev = this.#run();
    return ev === EV_HEAD ? this.#outRequest : null;
  }

  /**
   * The next piece of the current request's body: a view of the buffered
   * bytes, valid until the next `feed`; copy what you keep. `null` when more
   * bytes are needed, or when the body is complete (`inBody` is then false).
   *
   * @throws {HttpParseError} When the body is malformed or too large.
   */
  readBody(): Uint8Array | null {
    if (!this.inBody) return null;
    const ev = this.#run();
    return ev === EV_DATA ? this.#outData : null;
  }

  /** Advance the state machine: one event. Every error becomes the parser's. */
  #run(): number {
    try {
      return this.#step();
    } catch (e) {
      if (e instanceof HttpParseError && this.#error === null) this.#failWith(e);
      throw e;
    }
  }

  #step(): number {
    if (this.#error !== null) throw this.#error;
    if (this.#endPending) {
      this.#endPending = false;
      this.#state = S_START;
      this.#resetRequest();
      return EV_END;
    }
    const buf = this.#buf;
    const end = buf.length;
    let pos = this.#pos;
    let scan = this.#scan;
    let headStart = -1; // where the request line began, when parsed in this call
    for (;;) {
      const state = this.#state;

      if (state === S_BODY || state === S_CHUNK_DATA) {
        const want = state === S_BODY ? this.#h.contentLength - this.#bodyLen : this.#chunkLeft;
        const avail = end - pos;
        const n = avail < want ? avail : want;
        if (n === 0) return this.#needMore(pos, pos);
        this.#outData = buf.subarray(pos, pos + n);
        pos += n;
        this.#bodyLen += n;
        if (state === S_CHUNK_DATA) {
          this.#chunkLeft -= n;
          if (this.#chunkLeft === 0) {
            this.#crlf = 0;
            this.#state = S_CHUNK_END;
          }
        } else if (n === want) {
          this.#endPending = true;
        }
        this.#pos = this.#scan = pos;
        return EV_DATA;
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
        const memo = this.#memo;
        if (memo !== null) {
          const hit = memo.match(buf, pos, end);
          if (hit !== null) {
            pos += memo.length;
            this.#pos = this.#scan = pos;
            this.#outRequest = hit;
            return EV_HEAD;
          }
        }
        headStart = pos;
      }
      if (pos < end && buf[pos] !== CR) {
        if (state === S_HEADERS) {
          const next = this.#h.fastHeaderLine(buf, pos, end);
          if (next > 0) {
            pos = scan = next;
            continue;
          }
        } else if (state === S_START) {
          const next = this.#h.fastRequestLine(buf, pos, end);
          if (next > 0) {
            this.#state = S_HEADERS;
            pos = scan = next;
            continue;
          }
        }
      }

      // Slow path: find the end of the line.
      let lf = scan;
      while (lf < end && buf[lf] !== LF) lf++;
      if (lf === end) {
        this.#checkLineLimit(state, pos, end - pos);
        return this.#needMore(pos, end);
      }
      const lineLen = lf + 1 - pos;
      this.#checkLineLimit(state, pos, lineLen);
      if (lf === pos || buf[lf - 1] !== CR) {
        throw this.#fail(400, "bare LF (lines must end with CRLF)");
      }
      const eol = lf - 1; // the CR
      const empty = eol === pos;

      if (state === S_START) {
        if (!empty) {
          this.#h.parseRequestLine(buf, pos, eol);
          this.#h.headBytes = lineLen;
          this.#state = S_HEADERS;
        }
      } else if (state === S_HEADERS) {
        this.#h.headBytes += lineLen;
        if (!empty) {
          this.#h.parseHeaderLine(buf, pos, eol, false);
        } else {
          const body = this.#h.finishHead();
          const request = this.#outRequest = this.#h.build();
          this.#pos = this.#scan = lf + 1;
          if (body === CHUNKED) this.#state = S_CHUNK_SIZE;
          else if (body === LENGTH) this.#state = S_BODY;
          else {
            this.#state = S_START;
            this.#resetRequest();
            if (this.#memo !== null && headStart >= 0) {
              this.#memo.parsed(buf, headStart, lf + 1, request);
            }
          }
          return EV_HEAD;
        }
      } else if (state === S_CHUNK_SIZE) {
        this.#parseChunkSize(buf, pos, eol);
      } else { // S_TRAILERS
        this.#h.headBytes += lineLen;
        if (empty) {
          this.#pos = this.#scan = lf + 1;
          this.#state = S_START;
          this.#resetRequest();
          return EV_END;
        }
        this.#h.parseHeaderLine(buf, pos, eol, true);
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
    this.#endPending = false;
    this.#error = null;
    this.#pendingHead = null;
    this.#pendingBody = EMPTY;
    this.#pendingLen = 0;
    this.#resetRequest();
  }

  #resetRequest(): void {
    this.#h.reset();
    this.#bodyLen = 0;
    this.#chunkLeft = 0;
    this.#crlf = 0;
  }

  #fail(status: number, reason: string): HttpParseError {
    let method = this.#h.method;
    if (method === "" && this.#state === S_START) {
      // A request line too long to parse: its method may still be readable.
      const buf = this.#buf;
      let i = this.#pos;
      while (i < buf.length && (buf[i] === CR || buf[i] === LF)) i++;
      if (
        buf[i] === 72 && buf[i + 1] === 69 && buf[i + 2] === 65 && buf[i + 3] === 68 &&
        buf[i + 4] === SP
      ) method = "HEAD";
    }
    return this.#failWith(new HttpParseError(status, reason, method));
  }

  #failWith(error: HttpParseError): HttpParseError {
    this.#error = error;
    this.#buf = EMPTY;
    this.#pos = 0;
    this.#scan = 0;
    this.#borrowed = false;
    this.#own = EMPTY;
    this.#pendingBody = EMPTY;
    return error;
  }

  /** Store the position and copy the unparsed tail out of a borrowed chunk. */
  #needMore(pos: number, scan: number): number {
    const buf = this.#buf;
    const pending = buf.length - pos;
    if (pending === 0) {
      this.#buf = EMPTY;
      this.#pos = 0;
      this.#scan = 0;
      this.#borrowed = false;
      if (this.#own.length > KEEP_BUFFER_BYTES) this.#own = EMPTY;
      return EV_NONE;
    }
    if (this.#borrowed) {
      let own = this.#own;
      if (own.length < pending) own = this.#own = new Uint8Array(Math.max(pending, 4096));
      own.set(buf.subarray(pos), 0);
      this.#buf = own.subarray(0, pending);
      this.#scan = scan - pos;
      this.#pos = 0;
      this.#borrowed = false;
      return EV_NONE;
    }
    this.#pos = pos;
    this.#scan = scan;
    return EV_NONE;
  }

  /** Fail when the line at `pos`, `length` bytes so far (complete or not), breaks a limit. */
  #checkLineLimit(state: number, pos: number, length: number): void {
    if (state === S_CHUNK_SIZE) {
      if (length > MAX_CHUNK_LINE_BYTES) throw this.#fail(400, "chunk size line is too long");
    } else if (state === S_START) {
      if (this.#h.methodTooLong(this.#buf, pos, this.#buf.length)) {
        throw this.#fail(501, METHOD_TOO_LONG);
      }
      if (length > this.#maxHeaderBytes) {
        throw this.#fail(
          this.#longLineStatus(pos),
          "request line is larger than the header limit",
        );
      }
    } else if (this.#h.headBytes + length > this.#maxHeaderBytes) {
      throw this.#fail(
        431,
        state === S_HEADERS
          ? "request header fields are too large"
          : "trailer fields are too large",
      );
    }
  }

  /**
   * The status for a request line at `pos` over `maxHeaderBytes`: 414 when
   * its target is what is too long, else 431. Decided from the line's first
   * `maxHeaderBytes + 1` bytes only, which are buffered whether the line is
   * complete or not, so the status never depends on how the bytes arrived.
   */
  #longLineStatus(pos: number): number {
    const buf = this.#buf;
    const end = Math.min(buf.length, pos + this.#maxHeaderBytes + 1);
    let i = pos;
    while (i < end && buf[i] !== SP) i++; // the method (at most MAX_METHOD_BYTES: checked first)
    const target = ++i;
    while (i < end && buf[i] !== SP && buf[i] !== CR && buf[i] !== LF) i++;
    return i - target > this.#maxTargetBytes ? 414 : 431;
  }

  #parseChunkSize(buf: Uint8Array, start: number, eol: number): void {
    // chunk-size [ chunk-ext ] (extensions are checked and skipped)
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
    if (i < eol && !isValidChunkExt(buf, i, eol)) {
      let j = i;
      while (j < eol && (buf[j] === SP || buf[j] === HTAB)) j++;
      throw this.#fail(
        400,
        j < eol && buf[j] === 59 ? "invalid chunk extension" : "invalid chunk size",
      );
    }
    if (size > room) {
      throw this.#fail(413, `chunked body exceeds the limit of ${this.#maxBodyBytes} bytes`);
    }
    if (size === 0) {
      this.#h.headBytes = 0; // now counts trailer bytes
      this.#state = S_TRAILERS;
      return;
    }
    this.#chunkLeft = size;
    this.#state = S_CHUNK_DATA;
  }
}

// ---------------------------------------------------------------------------
// The request head: the request line and header lines of one request,
// validated and hashed in one pass, and the framing the head announces. The
// parser above finds the lines and runs the framing; this holds the fields
// of the request being parsed.

/** The head announces no body. */
const NONE = 0;
/** The head announces a Content-Length body. */
const LENGTH = 1;
/** The head announces a chunked body. */
const CHUNKED = 2;

const SLASH = 47;
const HASH = 35;
/** The reason of the 501 for a method over the limit. */
const METHOD_TOO_LONG = `method is longer than ${MAX_METHOD_BYTES} bytes (not implemented)`;
/** 1 for the bytes of a URI scheme (RFC 3986 §3.1): ALPHA, DIGIT, "+", "-", ".". */
const SCHEME_OK = new Uint8Array(128);
for (const c of "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.") {
  SCHEME_OK[c.charCodeAt(0)] = 1;
}

/** The head of the request being parsed. */
class HeadParser {
  readonly maxHeaderBytes: number;
  readonly maxHeaderCount: number;
  readonly maxBodyBytes: number;
  readonly maxTargetBytes: number;
  method = "";
  target = "";
  version: HttpVersion = "1.1";
  headers: string[] = [];
  /** Bytes of the head so far (then of the trailers). */
  headBytes = 0;
  contentLength = -1;
  hosts = 0;
  host = "";
  close = false;
  keepAliveToken = false;
  expectContinue = false;
  upgradeToken = false;
  upgradeHeader = false;
  codings: string[] | null = null;

  constructor(limits: ParserLimits) {
    this.maxHeaderBytes = limits.maxHeaderBytes;
    this.maxHeaderCount = limits.maxHeaderCount;
    this.maxBodyBytes = limits.maxBodyBytes;
    this.maxTargetBytes = limits.maxTargetBytes;
  }

  /** Forget the request. */
  reset(): void {
    this.method = "";
    this.target = "";
    this.version = "1.1";
    this.headers = [];
    this.headBytes = 0;
    this.contentLength = -1;
    this.hosts = 0;
    this.host = "";
    this.close = false;
    this.keepAliveToken = false;
    this.expectContinue = false;
    this.upgradeToken = false;
    this.upgradeHeader = false;
    this.codings = null;
  }

  /** The error for this request (the method, when read, goes with it). */
  fail(status: number, reason: string): HttpParseError {
    return new HttpParseError(status, reason, this.method);
  }

  parseRequestLine(buf: Uint8Array, start: number, eol: number): void {
    // method SP request-target SP HTTP-version
    let i = start;
    let h = FNV_OFFSET;
    for (; i < eol; i++) {
      const b = buf[i]!;
      if (TOKEN_LOWER[b] === 0) break;
      h = Math.imul(h ^ b, FNV_PRIME);
    }
    // (A method over MAX_METHOD_BYTES was refused before: parser.ts checks every request line.)
    if (i === start || i === eol || buf[i] !== SP) {
      throw this.fail(400, this.#badByte(buf, i, eol, "malformed request line (method)"));
    }
    this.method = intern(buf, start, i, h);

    const targetStart = ++i;
    h = FNV_OFFSET;
    for (; i < eol; i++) {
      const b = buf[i]!;
      if (TARGET_OK[b] === 0) break;
      h = Math.imul(h ^ b, FNV_PRIME);
    }
    if (i < eol && buf[i] === HASH) {
      throw this.fail(400, "fragment in the request target (RFC 9112 §3.2)");
    }
    if (i === targetStart || i === eol || buf[i] !== SP) {
      throw this.fail(400, this.#badByte(buf, i, eol, "malformed request line (target)"));
    }
    if (i - targetStart > this.maxTargetBytes) {
      throw this.fail(414, `request target is longer than ${this.maxTargetBytes} bytes`);
    }
    this.target = intern(buf, targetStart, i, h);
    if (buf[targetStart] !== SLASH) this.#checkTargetForm();

    i++;
    if (
      eol - i !== 8 || buf[i] !== 72 || buf[i + 1] !== 84 || buf[i + 2] !== 84 ||
      buf[i + 3] !== 80 || buf[i + 4] !== 47 || buf[i + 6] !== 46 // "HTTP/" d "." d
    ) {
      throw this.fail(400, this.#badByte(buf, i, eol, "malformed request line (version)"));
    }
    const major = buf[i + 5]! - 48;
    const minor = buf[i + 7]! - 48;
    if (major < 0 || major > 9 || minor < 0 || minor > 9) {
      throw this.fail(400, "malformed request line (version)");
    }
    if (major !== 1) throw this.fail(505, `HTTP/${major}.${minor} is not supported`);
    this.version = minor === 0 ? "1.0" : "1.1";
  }

  /**
   * Parse `METHOD SP target SP HTTP/1.x CRLF` at `start` when it is complete,
   * valid and within the limit; returns the next line's start, or -1 to let
   * the slow path handle the line.
   */
  fastRequestLine(buf: Uint8Array, start: number, end: number): number {
    let i = start;
    let hm = FNV_OFFSET;
    for (; i < end; i++) {
      const b = buf[i]!;
      if (TOKEN_LOWER[b] === 0) break;
      hm = Math.imul(hm ^ b, FNV_PRIME);
    }
    if (i === start || i >= end || buf[i] !== SP || i - start > MAX_METHOD_BYTES) return -1;
    const methodEnd = i++;
    const targetStart = i;
    let ht = FNV_OFFSET;
    for (; i < end; i++) {
      const b = buf[i]!;
      if (TARGET_OK[b] === 0) break;
      ht = Math.imul(ht ^ b, FNV_PRIME);
    }
    if (i === targetStart || i + 11 > end || buf[i] !== SP || buf[targetStart] !== SLASH) {
      return -1; // other target forms are checked on the slow path
    }
    const targetEnd = i++;
    if (targetEnd - targetStart > this.maxTargetBytes) return -1;
    if (
      buf[i] !== 72 || buf[i + 1] !== 84 || buf[i + 2] !== 84 || buf[i + 3] !== 80 ||
      buf[i + 4] !== 47 || buf[i + 5] !== 49 || buf[i + 6] !== 46 || buf[i + 8] !== CR ||
      buf[i + 9] !== LF
    ) return -1;
    const minor = buf[i + 7];
    if (minor !== 48 && minor !== 49) return -1;
    const next = i + 10;
    if (next - start > this.maxHeaderBytes) return -1;
    this.method = intern(buf, start, methodEnd, hm);
    this.target = intern(buf, targetStart, targetEnd, ht);
    this.version = minor === 48 ? "1.0" : "1.1";
    this.headBytes = next - start;
    return next;
  }

  /**
   * Parse `name: value CRLF` at `start` when it is complete, valid and within
   * the limit; returns the next line's start, or -1 to let the slow path
   * handle the line.
   */
  fastHeaderLine(buf: Uint8Array, start: number, end: number): number {
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
    const headBytes = this.headBytes + (next - start);
    if (headBytes > this.maxHeaderBytes) return -1;
    this.headBytes = headBytes;
    this.#addHeader(internLower(buf, start, nameEnd, hn), intern(buf, valueStart, valueEnd, hv));
    return next;
  }

  /**
   * Whether the line at `start` (complete or not, up to `end`) begins with a
   * method longer than {@linkcode MAX_METHOD_BYTES}: a 501 however long the
   * rest of the line is, never a 414 or 431.
   */
  methodTooLong(buf: Uint8Array, start: number, end: number): boolean {
    const stop = Math.min(end, start + MAX_METHOD_BYTES + 1);
    let i = start;
    while (i < stop && TOKEN_LOWER[buf[i]!] !== 0) i++;
    return i - start > MAX_METHOD_BYTES;
  }

  /**
   * Check a target that is not origin-form (RFC 9112 §3.2): `*` only for
   * OPTIONS (asterisk-form, RFC 9110 §9.3.7), `host:port` only for CONNECT
   * (authority-form), else an absolute `http:`/`https:` URI with an
   * authority. Anything else (`file:`, `data:`, a bare word) is a 400.
   */
  #checkTargetForm(): void {
    const t = this.target;
    if (t === "*") {
      if (this.method !== "OPTIONS") {
        throw this.fail(400, "the asterisk-form target is for OPTIONS only");
      }
      return;
    }
    if (this.method === "CONNECT") {
      const colon = t.lastIndexOf(":");
      if (colon <= 0 || colon === t.length - 1 || t.charCodeAt(0) === 58 || !isValidHost(t)) {
        throw this.fail(400, "CONNECT needs an authority-form target (host:port)");
      }
      return;
    }
    let i = 0;
    while (i < t.length && SCHEME_OK[t.charCodeAt(i)] === 1) i++;
    if (i === 0 || t.charCodeAt(i) !== 58 || !(t.charCodeAt(0) >= 65)) {
      throw this.fail(400, "the request target is not origin-form or absolute-form");
    }
    const scheme = t.slice(0, i).toLowerCase();
    if (scheme !== "http" && scheme !== "https") {
      throw this.fail(400, "an absolute-form target must be an http or https URI");
    }
    if (t.charCodeAt(i + 1) !== SLASH || t.charCodeAt(i + 2) !== SLASH) {
      throw this.fail(400, "an absolute-form target needs an authority");
    }
  }

  /** `fallback`, or a bare-CR reason when the byte at `i` is a CR. */
  #badByte(buf: Uint8Array, i: number, eol: number, fallback: string): string {
    for (let j = i; j < eol; j++) if (buf[j] === CR) return "bare CR in the request head";
    return fallback;
  }

  parseHeaderLine(buf: Uint8Array, start: number, eol: number, trailer: boolean): void {
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
      throw this.fail(400, reason);
    }
    if (i === start) throw this.fail(400, "empty header name");
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
        throw this.fail(
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
    if (this.headers.length >= this.maxHeaderCount * 2) {
      throw this.fail(431, `more than ${this.maxHeaderCount} header fields`);
    }
    this.headers.push(name, value);
    switch (name.length) {
      case 4:
        if (name === "host") {
          this.hosts++;
          this.host = value;
        }
        break;
      case 6:
        if (name === "expect" && value.toLowerCase() === "100-continue") {
          this.expectContinue = true;
        }
        break;
      case 7:
        if (name === "upgrade") this.upgradeHeader = true;
        break;
      case 10:
        if (name === "connection") this.#connection(value);
        break;
      case 14:
        if (name === "content-length") {
          const n = parseContentLength(value);
          if (n < 0) throw this.fail(400, "invalid Content-Length");
          if (this.contentLength !== -1 && this.contentLength !== n) {
            throw this.fail(400, "conflicting Content-Length values");
          }
          this.contentLength = n;
        }
        break;
      case 17:
        if (name === "transfer-encoding") {
          const codings = this.codings ??= [];
          for (const coding of listElements(value)) codings.push(coding);
        }
        break;
    }
  }

  #connection(value: string): void {
    if (value === "close") {
      this.close = true;
    } else if (value === "keep-alive") {
      this.keepAliveToken = true;
    } else {
      for (const token of listElements(value)) {
        if (token === "close") this.close = true;
        else if (token === "keep-alive") this.keepAliveToken = true;
        else if (token === "upgrade") this.upgradeToken = true;
      }
    }
  }

  /** Validate the head's framing: the body that follows, NONE, LENGTH or CHUNKED. */
  finishHead(): number {
    if (this.hosts > 1) throw this.fail(400, "more than one Host header");
    if (this.hosts === 0 && this.version === "1.1") throw this.fail(400, "missing Host header");
    if (this.hosts === 1 && !isValidHost(this.host)) throw this.fail(400, "invalid Host header");
    const codings = this.codings;
    if (codings !== null) {
      if (this.version === "1.0") {
        throw this.fail(400, "Transfer-Encoding in an HTTP/1.0 request");
      }
      if (this.contentLength !== -1) {
        throw this.fail(400, "both Transfer-Encoding and Content-Length");
      }
      if (codings.length === 0) throw this.fail(400, "empty Transfer-Encoding");
      for (const coding of codings) {
        let j = 0;
        while (j < coding.length && coding.charCodeAt(j) !== 59) { // ";"
          if (TOKEN_LOWER[coding.charCodeAt(j)] === 0) {
            throw this.fail(400, "malformed Transfer-Encoding");
          }
          j++;
        }
      }
      const last = codings.length - 1;
      if (codings[last] !== "chunked") {
        throw this.fail(400, "chunked is not the final transfer coding");
      }
      if (codings.indexOf("chunked") !== last) {
        throw this.fail(400, "chunked applied more than once");
      }
      if (last > 0) throw this.fail(501, `unsupported transfer coding "${codings[0]}"`);
      return CHUNKED;
    }
    const length = this.contentLength;
    if (length > this.maxBodyBytes) {
      throw this.fail(413, `body of ${length} bytes exceeds the limit of ${this.maxBodyBytes}`);
    }
    return length <= 0 ? NONE : LENGTH;
  }

  /** The parsed head as a request. */
  build(): HttpRequest {
    const request: HttpRequest = {
      method: this.method,
      target: this.target,
      version: this.version,
      headers: new HttpHeaders(this.headers),
      body: EMPTY,
      bodyLength: this.codings !== null ? -1 : this.contentLength < 0 ? 0 : this.contentLength,
      expectContinue: this.expectContinue,
      upgrade: this.upgradeToken && this.upgradeHeader,
      keepAlive: this.version === "1.1" ? !this.close : this.keepAliveToken && !this.close,
    };
    return request;
  }
}

// ---------------------------------------------------------------------------
// Checks of header values and chunk lines: run once per special header or
// chunk, not per byte.

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

/** 1 for the bytes of a reg-name (RFC 3986: unreserved, sub-delims, "%"). */
const REG_NAME_OK = new Uint8Array(128);
for (const c of "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=%") {
  REG_NAME_OK[c.charCodeAt(0)] = 1;
}

/**
 * Whether a Host field value is `uri-host [ ":" port ]` (RFC 9110 §7.2,
 * RFC 3986 §3.2.2): a reg-name or IPv4 address, or an IP literal in
 * brackets, then optional digits after a colon. Empty is valid (a request
 * whose target has no authority).
 */
function isValidHost(value: string): boolean {
  if (value === lastValidHost) return true; // interned: a steady client's Host
  if (!checkHost(value)) return false;
  lastValidHost = value;
  return true;
}

let lastValidHost = "";

function checkHost(value: string): boolean {
  const n = value.length;
  let i = 0;
  if (n > 0 && value.charCodeAt(0) === 91) { // "["
    const close = value.indexOf("]");
    if (close < 2) return false;
    for (let j = 1; j < close; j++) {
      const c = value.charCodeAt(j);
      const hex = (c >= 48 && c <= 58) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102) ||
        c === 46; // hex digits, ":" and "." (IPv4-mapped); IPvFuture is not accepted
      if (!hex) return false;
    }
    i = close + 1;
  } else {
    for (; i < n; i++) {
      const c = value.charCodeAt(i);
      if (c === 58) break; // ":"
      if (c >= 128 || REG_NAME_OK[c] === 0) return false;
    }
  }
  if (i === n) return true;
  if (value.charCodeAt(i) !== 58) return false;
  for (i++; i < n; i++) {
    const c = value.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/**
 * Check `chunk-ext` (RFC 9112 §7.1.1) in `buf[i, end)`, which starts right
 * after the chunk size: `*( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] )`,
 * ext-val a token or a quoted-string. Returns false when malformed.
 */
function isValidChunkExt(buf: Uint8Array, i: number, end: number): boolean {
  const ws = (b: number | undefined) => b === SP || b === HTAB;
  while (i < end) {
    while (i < end && ws(buf[i])) i++;
    if (i === end || buf[i] !== 59) return false; // ";" must follow (BWS alone is invalid)
    i++;
    while (i < end && ws(buf[i])) i++;
    const name = i;
    while (i < end && TOKEN_LOWER[buf[i]!] !== 0) i++;
    if (i === name) return false;
    let j = i;
    while (j < end && ws(buf[j])) j++;
    if (j < end && buf[j] === 61) { // "="
      i = j + 1;
      while (i < end && ws(buf[i])) i++;
      if (i < end && buf[i] === 34) { // quoted-string
        i++;
        for (;;) {
          if (i >= end) return false; // unbalanced quote
          const b = buf[i]!;
          if (b === 34) break;
          if (b === 92) { // quoted-pair
            i++;
            if (i >= end) return false;
            const q = buf[i]!;
            if (q !== HTAB && (q < 0x20 || q === 0x7f)) return false;
          } else if (b !== HTAB && (b < 0x20 || b === 0x7f)) {
            return false;
          }
          i++;
        }
        i++;
      } else {
        const v = i;
        while (i < end && TOKEN_LOWER[buf[i]!] !== 0) i++;
        if (i === v) return false;
      }
    } else if (j < end && buf[j] !== 59) {
      return false;
    } else if (j === end) {
      return j === i; // trailing whitespace after a name without ";" next is BWS with nothing after
    }
  }
  return true;
}

// ---------------------------------------------------------------------------
// Byte tables

const CR = 13;
const LF = 10;
const SP = 32;
const HTAB = 9;
const COLON = 58;

/** For a tchar (RFC 9110 token character): its lowercase form; 0 otherwise. */
const TOKEN_LOWER = new Uint8Array(256);
/** 1 for the bytes allowed in a field value: HTAB, SP, VCHAR, obs-text. */
const VALUE_OK = new Uint8Array(256);
/** 1 for the bytes allowed in a request target: VCHAR but "#" (no fragment: RFC 9112 §3.2). */
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
  if (b > 0x20 && b < 0x7f && b !== 0x23) TARGET_OK[b] = 1;
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
  ["host", "connection", "content-length", "transfer-encoding", "expect", "upgrade"].map((
    name,
  ) => [name, name]),
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
