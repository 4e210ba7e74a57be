/**
 * The types and default limits of the request parser: a parsed request
 * ({@linkcode HttpRequest}), the parser's options and its defaults.
 *
 * @module
 */
import type { HttpHeaders } from "./headers.ts";

/**
 * The default limit on the size of a request head: 8 KiB.
 *
 * @example
 * ```ts
 * import { DEFAULT_MAX_HEADER_BYTES } from "./request_head.ts";
 * console.log(DEFAULT_MAX_HEADER_BYTES); // 8192
 * ```
 */
export const DEFAULT_MAX_HEADER_BYTES = 8192;

/**
 * The default limit on the size of a request body: 1 MiB.
 *
 * @example
 * ```ts
 * import { DEFAULT_MAX_BODY_BYTES } from "./request_head.ts";
 * console.log(DEFAULT_MAX_BODY_BYTES); // 1048576
 * ```
 */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

/**
 * The default limit on the length of a request target: 8 KiB.
 *
 * @example
 * ```ts
 * import { DEFAULT_MAX_TARGET_BYTES } from "./request_head.ts";
 * console.log(DEFAULT_MAX_TARGET_BYTES); // 8192
 * ```
 */
export const DEFAULT_MAX_TARGET_BYTES = 8192;

/**
 * The HTTP version of a parsed request.
 *
 * @example
 * ```ts
 * import type { HttpVersion } from "./request_head.ts";
 * const v: HttpVersion = "1.1";
 * ```
 */
export type HttpVersion = "1.0" | "1.1";

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
  /**
   * The longest request target accepted; longer ones fail with 414 (when
   * within `maxHeaderBytes`; a longer request line is a 431).
   * Default {@linkcode DEFAULT_MAX_TARGET_BYTES}.
   */
  maxTargetBytes?: number;
  /** Remember the last bodiless head to answer an identical one at once. Default false. */
  memo?: boolean;
}

/**
 * A parsed request (or, from {@linkcode HttpParser.prototype.nextHead}, its
 * head).
 *
 * @example
 * ```ts
 * import type { HttpRequest } from "./request_head.ts";
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
