/**
 * The request head (private part of the parser): the request line and header
 * lines of one request, validated and hashed in one pass, and the framing
 * the head announces. The parser (`parser.ts`) finds the lines and runs the
 * framing; this holds the fields of the request being parsed.
 *
 * @module
 */
import {
  COLON,
  CR,
  FNV_OFFSET,
  FNV_PRIME,
  HTAB,
  intern,
  internLower,
  LF,
  SP,
  TARGET_OK,
  TOKEN_LOWER,
  VALUE_OK,
} from "./_tables.ts";
import { isValidHost, listElements, parseContentLength } from "./_values.ts";
import { HttpHeaders } from "../headers.ts";
import { MAX_METHOD_BYTES, type ParserLimits } from "./limits.ts";
import { HttpParseError } from "./parse_error.ts";
import type { HttpRequest, HttpVersion } from "./request.ts";

/** The head announces no body. */
export const NONE = 0;
/** The head announces a Content-Length body. */
export const LENGTH = 1;
/** The head announces a chunked body. */
export const CHUNKED = 2;

const EMPTY = new Uint8Array(0);
const SLASH = 47;
const HASH = 35;
/** The reason of the 501 for a method over the limit. */
export const METHOD_TOO_LONG = `method is longer than ${MAX_METHOD_BYTES} bytes (not implemented)`;
/** 1 for the bytes of a URI scheme (RFC 3986 §3.1): ALPHA, DIGIT, "+", "-", ".". */
const SCHEME_OK = new Uint8Array(128);
for (const c of "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.") {
  SCHEME_OK[c.charCodeAt(0)] = 1;
}

/** The head of the request being parsed. */
export class HeadParser {
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
