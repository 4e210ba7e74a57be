/**
 * A raw-bytes HTTP/1.1 client for the HTTP tests: it writes exactly the bytes
 * a test gives it and parses the responses itself (status line, headers,
 * `Content-Length` / chunked / close-delimited framing, HEAD and 1xx/204/304
 * without a body), so that a desynchronised or malformed response is a test
 * failure, not something a forgiving client papers over.
 *
 * @module
 */

const enc = new TextEncoder();
const dec = new TextDecoder();

/** One parsed response. */
export interface RawResponse {
  /** e.g. "HTTP/1.1". */
  version: string;
  status: number;
  reason: string;
  /** Header names lower-cased; repeated headers joined with ", ". */
  headers: Map<string, string>;
  /** Header lines in order, as received (name, value). */
  headerList: [string, string][];
  /** The decoded body (chunked framing removed). */
  body: Uint8Array<ArrayBuffer>;
  /** The body as text. */
  text: string;
  /** "length" | "chunked" | "close" | "none" */
  framing: string;
}

/** How a read that waits for the end of a connection ended. */
export type EndKind = "eof" | "reset" | "timeout";

/** A malformed response: the test must fail. */
export class MalformedResponse extends Error {}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b.slice();
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

function indexOfCrlfCrlf(buf: Uint8Array, from = 0): number {
  for (let i = from; i + 3 < buf.length; i++) {
    if (buf[i] === 13 && buf[i + 1] === 10 && buf[i + 2] === 13 && buf[i + 3] === 10) return i;
  }
  return -1;
}

function indexOfCrlf(buf: Uint8Array, from: number): number {
  for (let i = from; i + 1 < buf.length; i++) {
    if (buf[i] === 13 && buf[i + 1] === 10) return i;
  }
  return -1;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** The result of parsing one response from the front of a buffer. */
export type ParseStep =
  | { kind: "need-more" }
  | { kind: "response"; response: RawResponse; consumed: number };

/**
 * Parse one response from the front of `buf`. `headRequest` tells whether the
 * request it answers was HEAD; `eof` whether no more bytes will come (for a
 * close-delimited body). Throws {@linkcode MalformedResponse} on bad bytes.
 *
 * @example
 * ```ts
 * import { parseResponse } from "./_raw.ts";
 * const bytes = new TextEncoder().encode("HTTP/1.1 204 No Content\r\n\r\n");
 * const step = parseResponse(bytes, false, false); // { kind: "response", consumed: 27, ... }
 * ```
 */
export function parseResponse(buf: Uint8Array, headRequest: boolean, eof: boolean): ParseStep {
  const end = indexOfCrlfCrlf(buf);
  if (end < 0) {
    if (buf.length > 65536) throw new MalformedResponse("response head larger than 64 KiB");
    if (eof && buf.length > 0) {
      throw new MalformedResponse(`truncated response head: ${JSON.stringify(dec.decode(buf))}`);
    }
    return { kind: "need-more" };
  }
  const head = dec.decode(buf.subarray(0, end));
  const lines = head.split("\r\n");
  const statusLine = lines[0]!;
  const m = /^(HTTP\/1\.[01]) ([1-5][0-9][0-9]) ?([^\r\n]*)$/.exec(statusLine);
  if (!m) throw new MalformedResponse(`bad status line: ${JSON.stringify(statusLine)}`);
  const headers = new Map<string, string>();
  const headerList: [string, string][] = [];
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon <= 0) throw new MalformedResponse(`bad header line: ${JSON.stringify(line)}`);
    const name = line.slice(0, colon);
    if (!TOKEN.test(name)) throw new MalformedResponse(`bad header name: ${JSON.stringify(name)}`);
    const value = line.slice(colon + 1).trim();
    if (/[\r\n\0]/.test(value)) throw new MalformedResponse(`bad header value in ${name}`);
    headerList.push([name, value]);
    const key = name.toLowerCase();
    headers.set(key, headers.has(key) ? `${headers.get(key)}, ${value}` : value);
  }
  const status = Number(m[2]);
  let pos = end + 4;
  const make = (body: Uint8Array, framing: string, consumed: number): ParseStep => ({
    kind: "response",
    consumed,
    response: {
      version: m[1]!,
      status,
      reason: m[3]!,
      headers,
      headerList,
      body: new Uint8Array(body),
      text: dec.decode(body),
      framing,
    },
  });
  if (headRequest || (status >= 100 && status < 200) || status === 204 || status === 304) {
    return make(new Uint8Array(0), "none", pos);
  }
  const te = headers.get("transfer-encoding");
  const cl = headers.get("content-length");
  if (te !== undefined) {
    if (cl !== undefined) throw new MalformedResponse("both Transfer-Encoding and Content-Length");
    if (te.toLowerCase() !== "chunked") throw new MalformedResponse(`unexpected TE ${te}`);
    let body: Uint8Array = new Uint8Array(0);
    for (;;) {
      const lineEnd = indexOfCrlf(buf, pos);
      if (lineEnd < 0) {
        if (eof) throw new MalformedResponse("truncated chunked body (size line)");
        return { kind: "need-more" };
      }
      const sizeText = dec.decode(buf.subarray(pos, lineEnd));
      if (!/^[0-9a-fA-F]+$/.test(sizeText)) {
        throw new MalformedResponse(`bad chunk size line ${JSON.stringify(sizeText)}`);
      }
      const size = parseInt(sizeText, 16);
      pos = lineEnd + 2;
      if (size === 0) {
        // trailers until an empty line
        for (;;) {
          const tEnd = indexOfCrlf(buf, pos);
          if (tEnd < 0) {
            if (eof) throw new MalformedResponse("truncated chunked trailer");
            return { kind: "need-more" };
          }
          const empty = tEnd === pos;
          pos = tEnd + 2;
          if (empty) return make(body, "chunked", pos);
        }
      }
      if (buf.length < pos + size + 2) {
        if (eof) throw new MalformedResponse("truncated chunk data");
        return { kind: "need-more" };
      }
      body = concat(body, buf.subarray(pos, pos + size));
      if (buf[pos + size] !== 13 || buf[pos + size + 1] !== 10) {
        throw new MalformedResponse("chunk data not followed by CRLF");
      }
      pos += size + 2;
    }
  }
  if (cl !== undefined) {
    if (!/^[0-9]+$/.test(cl)) throw new MalformedResponse(`bad Content-Length ${cl}`);
    const n = Number(cl);
    if (buf.length < pos + n) {
      if (eof) throw new MalformedResponse(`truncated body: ${buf.length - pos} of ${n}`);
      return { kind: "need-more" };
    }
    return make(buf.slice(pos, pos + n), "length", pos + n);
  }
  // close-delimited
  if (!eof) return { kind: "need-more" };
  return make(buf.slice(pos), "close", buf.length);
}

/**
 * A raw TCP client on 127.0.0.1.
 *
 * @example
 * ```ts
 * import { RawClient, request } from "./_raw.ts";
 * async function hello(port: number): Promise<string | undefined> {
 *   using c = await RawClient.connect(port);
 *   await c.write(request("GET", "/"));
 *   return (await c.readResponse())?.text;
 * }
 * ```
 */
export class RawClient {
  #conn: Deno.TcpConn;
  #buf: Uint8Array = new Uint8Array(0);
  #eof = false;
  #closed = false;
  /** Set when a read failed with ECONNRESET. */
  reset = false;

  private constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
  }

  /** Connect to 127.0.0.1:port. */
  static async connect(port: number, hostname = "127.0.0.1"): Promise<RawClient> {
    return new RawClient(await Deno.connect({ hostname, port }));
  }

  /** The underlying connection. */
  get conn(): Deno.TcpConn {
    return this.#conn;
  }

  /** Bytes received and not yet parsed. */
  get pending(): Uint8Array {
    return this.#buf;
  }

  /** Whether the peer closed (EOF seen). */
  get eof(): boolean {
    return this.#eof;
  }

  /** Write all of `data` (string as UTF-8/latin1-safe ASCII). */
  async write(data: string | Uint8Array): Promise<void> {
    const bytes = typeof data === "string" ? enc.encode(data) : data;
    let off = 0;
    while (off < bytes.length) off += await this.#conn.write(bytes.subarray(off));
  }

  /** Half-close: no more bytes from us. */
  async closeWrite(): Promise<void> {
    await this.#conn.closeWrite();
  }

  /**
   * Read more bytes into the buffer, waiting at most `timeoutMs`. Returns
   * "data", "eof", "reset" or "timeout". On timeout the connection is closed
   * (a pending read cannot be cancelled otherwise).
   */
  async fill(timeoutMs: number): Promise<"data" | EndKind> {
    if (this.#eof) return "eof";
    if (this.#closed) return "timeout";
    const chunk = new Uint8Array(65536);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((r) => {
      timer = setTimeout(() => r("timeout"), timeoutMs);
    });
    const read = this.#conn.read(chunk).then(
      (n) => n,
      (e) => {
        if (e instanceof Deno.errors.ConnectionReset) return "reset" as const;
        if (e instanceof Deno.errors.BadResource || e instanceof Deno.errors.Interrupted) {
          return "closed" as const;
        }
        throw e;
      },
    );
    const r = await Promise.race([read, timeout]);
    clearTimeout(timer);
    if (r === "timeout") {
      this.close();
      await read.catch(() => {});
      return "timeout";
    }
    if (r === "reset") {
      this.reset = true;
      this.#eof = true;
      return "reset";
    }
    if (r === "closed") return "timeout";
    if (r === null) {
      this.#eof = true;
      return "eof";
    }
    this.#buf = concat(this.#buf, chunk.subarray(0, r));
    return "data";
  }

  /**
   * Read and parse the next response. Returns null when the connection ended
   * (EOF or reset) with nothing buffered; throws on timeout, on a malformed
   * response and on a connection that ends mid-response.
   */
  async readResponse(
    opts: { head?: boolean; timeoutMs?: number } = {},
  ): Promise<RawResponse | null> {
    const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
    for (;;) {
      const step = parseResponse(this.#buf, opts.head ?? false, this.#eof);
      if (step.kind === "response") {
        this.#buf = this.#buf.slice(step.consumed);
        return step.response;
      }
      if (this.#eof) {
        if (this.#buf.length === 0) return null;
        throw new MalformedResponse("connection ended mid-response");
      }
      const left = deadline - Date.now();
      if (left <= 0 || (await this.fill(left)) === "timeout") {
        throw new Error(
          `Timed out waiting for a response; buffered: ${JSON.stringify(dec.decode(this.#buf))}`,
        );
      }
    }
  }

  /**
   * Wait until the peer closes: "eof" (FIN), "reset" (RST) or "timeout".
   * Any bytes that arrive meanwhile stay in `pending`.
   */
  async waitEnd(timeoutMs: number): Promise<EndKind> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.reset) return "reset";
      if (this.#eof) return "eof";
      const left = deadline - Date.now();
      if (left <= 0) return "timeout";
      const r = await this.fill(left);
      if (r !== "data") return r;
    }
  }

  /** Close (idempotent). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch { /* already closed */ }
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * `value`, or a failed assertion naming `what` when it is null (narrows the type).
 *
 * @example
 * ```ts
 * import { must } from "./_raw.ts";
 * const n: number = must([1, 2].find((x) => x > 1), "an element above 1");
 * ```
 */
export function must<T>(value: T | null | undefined, what: string): T {
  if (value === null || value === undefined) throw new Error(`Expected ${what}, got ${value}`);
  return value;
}

/**
 * Build a request head + body from parts.
 *
 * @example
 * ```ts
 * import { request } from "./_raw.ts";
 * const text = request("POST", "/echo", { "content-length": "2" }, "hi");
 * ```
 */
export function request(
  method: string,
  target: string,
  headers: Record<string, string> = {},
  body = "",
  version = "HTTP/1.1",
): string {
  const h: Record<string, string> = { host: "127.0.0.1", ...headers };
  let s = `${method} ${target} ${version}\r\n`;
  for (const [k, v] of Object.entries(h)) {
    if (v === "") continue;
    s += `${k}: ${v}\r\n`;
  }
  return s + "\r\n" + body;
}

/**
 * Send `data` on a new connection to 127.0.0.1:`port` and read until the
 * server closes it (10 s at most); the text read.
 *
 * @example
 * ```ts
 * import { exchange } from "./_raw.ts";
 * const text = await exchange(8080, "GET / HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n");
 * ```
 */
export async function exchange(port: number, data: string | Uint8Array): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const bytes = typeof data === "string" ? enc.encode(data) : data;
    for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
    let out = "";
    const buf = new Uint8Array(65536);
    let id: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((r) => {
      id = setTimeout(() => r("timeout"), 10_000);
    });
    try {
      for (;;) {
        const n = await Promise.race([conn.read(buf), timeout]);
        if (n === "timeout") throw new Error(`no EOF within 10 s; got ${JSON.stringify(out)}`);
        if (n === null) break;
        out += dec.decode(buf.subarray(0, n));
      }
    } finally {
      clearTimeout(id);
    }
    return out;
  } finally {
    conn.close();
  }
}

/**
 * Resident set size in KiB, from the text of a /proc/<pid>/status file.
 *
 * @example
 * ```ts
 * import { rssKiB } from "./_raw.ts";
 * const kib = rssKiB("Name:\tdeno\nVmRSS:\t  1234 kB\n"); // 1234
 * ```
 */
export function rssKiB(statusText: string): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(statusText);
  if (!m) throw new Error("Cannot read VmRSS: not in the status text");
  return Number(m[1]);
}
