/**
 * {@linkcode HttpParseError}: a request the parser refuses, with the status
 * to answer.
 *
 * @module
 */

/**
 * A malformed, oversized or unsupported request. `status` is the HTTP status
 * to answer with (400, 413, 431, 501 or 505) and `reason` says what was wrong.
 * The message reads `Cannot parse HTTP request: <reason>`.
 *
 * @example
 * ```ts
 * import { HttpParseError, HttpParser } from "@ffinet/ffinet/http";
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
   * The request's method when it was read before the error (e.g. `"HEAD"`:
   * the error response then has no body), else `""`.
   */
  readonly method: string;

  /**
   * Create the error for a request to answer with `status`.
   *
   * @param status The HTTP status code to answer with.
   * @param reason What was wrong with the request.
   * @param method The request's method, when known.
   */
  constructor(status: number, reason: string, method = "") {
    super(`Cannot parse HTTP request: ${reason}`);
    this.name = "HttpParseError";
    this.status = status;
    this.reason = reason;
    this.method = method;
  }
}
