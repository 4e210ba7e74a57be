/**
 * What the request parser produces: a parsed request
 * ({@linkcode HttpRequest}) and its version ({@linkcode HttpVersion}).
 *
 * @module
 */
import type { HttpHeaders } from "../headers.ts";

/**
 * The HTTP version of a parsed request.
 *
 * @example
 * ```ts
 * import type { HttpVersion } from "@ffinet/ffinet/http";
 * const v: HttpVersion = "1.1";
 * ```
 */
export type HttpVersion = "1.0" | "1.1";

/**
 * A parsed request (or, from {@linkcode HttpParser.prototype.nextHead}, its
 * head).
 *
 * @example
 * ```ts
 * import type { HttpRequest } from "@ffinet/ffinet/http";
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
   * The body (de-chunked) from {@linkcode HttpParser.prototype.next}; always
   * empty from `nextHead`. Owned by the request: it is never a view of the
   * bytes passed to {@linkcode HttpParser.prototype.feed}. Empty bodies share
   * one zero-length array.
   */
  readonly body: Uint8Array;
  /**
   * The body's framing: its `Content-Length` (0: no body), or -1 for a
   * chunked body.
   */
  readonly bodyLength: number;
  /** Whether the request carries `Expect: 100-continue`. */
  readonly expectContinue: boolean;
  /** Whether the request asks for a protocol upgrade (`Upgrade` and `Connection: upgrade`). */
  readonly upgrade: boolean;
  /**
   * Whether the connection may carry another request after this one:
   * HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with
   * `Connection: keep-alive` (and no `close`).
   */
  readonly keepAlive: boolean;
}
