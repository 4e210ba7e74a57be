/**
 * Output helpers for the server (private): a growable batch buffer that a
 * connection's responses are serialized into and sent with one write, and
 * cached response heads.
 *
 * @module
 */
import { httpDate, STATUS_TEXT } from "./response.ts";

const encoder = new TextEncoder();

/** A growable byte buffer. */
export class OutBuffer {
  buf: Uint8Array;
  len = 0;

  constructor(size = 16 * 1024) {
    this.buf = new Uint8Array(size);
  }

  reserve(n: number): void {
    const needed = this.len + n;
    if (needed <= this.buf.length) return;
    const grown = new Uint8Array(Math.max(needed, this.buf.length * 2));
    grown.set(this.buf.subarray(0, this.len), 0);
    this.buf = grown;
  }

  bytes(b: Uint8Array): void {
    this.reserve(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
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

  /** Append `s` as UTF-8. */
  utf8(s: string): void {
    this.reserve(s.length * 3);
    this.len += encoder.encodeInto(s, this.buf.subarray(this.len)).written;
  }

  /** A copy of the content. */
  take(): Uint8Array {
    return this.buf.slice(0, this.len);
  }

  view(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }

  clear(): void {
    this.len = 0;
    if (this.buf.length > 1024 * 1024) this.buf = new Uint8Array(16 * 1024);
  }
}

let lastString = "";
let lastBytes = new Uint8Array(0);

/** `s` as UTF-8 (the last string's bytes are kept: a handler's constant body costs nothing). */
export function utf8(s: string): Uint8Array {
  if (s === lastString) return lastBytes;
  const bytes = encoder.encode(s);
  if (s.length <= 4096) {
    lastString = s;
    lastBytes = bytes;
  }
  return bytes;
}

/** Whether a status never has a body (1xx, 204, 304). */
export function bodiless(status: number): boolean {
  return status < 200 || status === 204 || status === 304;
}

/** How the connection goes on after a response. */
export const KEEP = 0; // HTTP/1.1 keep-alive: nothing to say
export const KEEP_10 = 1; // HTTP/1.0 keep-alive: `connection: keep-alive`
export const CLOSE = 2; // `connection: close`

/** Body framing of a response head. */
export const NO_BODY = -1; // no framing header at all (1xx, 204, 304)
export const CHUNKED = -2; // transfer-encoding: chunked
export const UNTIL_CLOSE = -3; // HTTP/1.0 stream: no framing, close ends it

const CONNECTION_LINES = ["", "connection: keep-alive\r\n", "connection: close\r\n"];
let dateSecond = -1;
let dateLine = "";
const headCache = new Map<string, Uint8Array>();

/**
 * Renew the `date` line when the second changed (`now`: the wall clock in
 * ms, default `Date.now()`). Called once per batch of responses (not per
 * response); {@linkcode dateHeader} returns what it found.
 */
export function refreshDate(now: number = Date.now()): void {
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateLine = `date: ${httpDate(now)}\r\n`;
    headCache.clear();
    lastHead = EMPTY;
  }
}

/** The `date` line as of the last {@linkcode refreshDate}. */
export function dateHeader(): string {
  if (dateSecond < 0) refreshDate();
  return dateLine;
}

/** The status line. */
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

// The last head made by simpleHead (a steady stream of equal responses).
const EMPTY = new Uint8Array(0);
let lastStatus = 0;
let lastLength = -1;
let lastConn = -1;
let lastType: string | null = null;
let lastHead: Uint8Array = EMPTY;

function latin1Bytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/**
 * The bytes of a head with only a content type besides what the server adds
 * (the `Response` fast path), cached for the current second: do not modify.
 */
export function simpleHead(
  status: number,
  contentType: string | null,
  length: number,
  conn: number,
): Uint8Array {
  if (
    status === lastStatus && length === lastLength && conn === lastConn &&
    contentType === lastType && lastHead !== EMPTY
  ) return lastHead;
  const date = dateHeader();
  const key = `${status}|${length}|${conn}|${contentType}`;
  let head = headCache.get(key);
  if (head === undefined) {
    head = latin1Bytes(
      statusLine(status, "") +
        (contentType === null ? "" : `content-type: ${contentType}\r\n`) + date +
        framing(length) + CONNECTION_LINES[conn]! + "\r\n",
    );
    if (headCache.size < 256) headCache.set(key, head);
  }
  lastStatus = status;
  lastLength = length;
  lastConn = conn;
  lastType = contentType;
  lastHead = head;
  return head;
}

/**
 * A head from a status, the text of the caller's header lines (each ending
 * in CRLF), and the server's own fields.
 */
export function fullHead(
  status: number,
  statusText: string,
  lines: string,
  hasDate: boolean,
  length: number,
  conn: number,
): string {
  return statusLine(status, statusText) + lines + (hasDate ? "" : dateHeader()) +
    framing(length) + CONNECTION_LINES[conn]! + "\r\n";
}
