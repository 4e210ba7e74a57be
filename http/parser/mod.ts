/**
 * The HTTP/1.1 request parser as one independent module: bytes in, parsed
 * requests (or an {@linkcode HttpParseError} with the status to answer) out,
 * with no socket, reactor or server behind it. Its limits and their
 * defaults are defined once, in `limits.ts`; `serve()` and `serveRaw()`
 * resolve theirs with the same {@linkcode parserLimits}.
 *
 * @example
 * ```ts
 * import { HttpParser } from "@ffinet/ffinet/http";
 *
 * const parser = new HttpParser({ maxHeaderCount: 50 });
 * parser.feed(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
 * console.log(parser.next()?.target); // "/"
 * ```
 *
 * @module
 */
export { HttpHeaders } from "../headers.ts";
export {
  DEFAULT_MAX_BODY_BYTES,
  DEFAULT_MAX_HEADER_BYTES,
  DEFAULT_MAX_HEADER_COUNT,
  DEFAULT_MAX_STREAMED_BODY_BYTES,
  DEFAULT_MAX_TARGET_BYTES,
  type HttpParserOptions,
  MAX_CHUNK_LINE_BYTES,
  MAX_METHOD_BYTES,
  type ParserLimits,
  parserLimits,
} from "./limits.ts";
export { HttpParseError } from "./parse_error.ts";
export { HttpParser } from "./parser.ts";
export type { HttpRequest, HttpVersion } from "./request.ts";
