/**
 * The request parser's limits and their defaults, defined here once:
 * {@linkcode HttpParser}, `serve()` and `serveRaw()` all resolve their
 * options with {@linkcode parserLimits}, so one table holds every default,
 * every accepted range and the status each limit answers with.
 *
 * | option           | default                          | range            | over it |
 * | ---------------- | -------------------------------- | ---------------- | ------- |
 * | `maxHeaderBytes` | 16 KiB (16384)                   | 16 to 2^24       | 431     |
 * | `maxHeaderCount` | 100                              | 1 to 65536       | 431     |
 * | `maxTargetBytes` | 8 KiB (8192)                     | 1 to 2^24        | 414     |
 * | `maxBodyBytes`   | 1 MiB buffered, no limit streamed | 1 to 2^53 - 1   | 413     |
 *
 * Fixed limits: a method longer than {@linkcode MAX_METHOD_BYTES} is a 501
 * (a method no server implements), a chunk-size line longer than
 * {@linkcode MAX_CHUNK_LINE_BYTES} a 400.
 *
 * @module
 */
import { integerOption } from "../../ffi/validate.ts";

/**
 * The default limit on the size of a request head (request line, header
 * lines, the empty line): 16 KiB. Also bounds a chunked body's trailers.
 *
 * @example
 * ```ts
 * import { DEFAULT_MAX_HEADER_BYTES } from "./limits.ts";
 * console.log(DEFAULT_MAX_HEADER_BYTES); // 16384
 * ```
 */
export const DEFAULT_MAX_HEADER_BYTES = 16 * 1024;

/**
 * The default limit on the number of header fields in a request head: 100
 * (as hyper, under Deno.serve). A handler that iterates `req.headers` pays
 * per field, so a head of many tiny fields is refused with 431.
 *
 * @example
 * ```ts
 * import { DEFAULT_MAX_HEADER_COUNT } from "./limits.ts";
 * console.log(DEFAULT_MAX_HEADER_COUNT); // 100
 * ```
 */
export const DEFAULT_MAX_HEADER_COUNT = 100;

/**
 * The default limit on the length of a request target: 8 KiB.
 *
 * @example
 * ```ts
 * import { DEFAULT_MAX_TARGET_BYTES } from "./limits.ts";
 * console.log(DEFAULT_MAX_TARGET_BYTES); // 8192
 * ```
 */
export const DEFAULT_MAX_TARGET_BYTES = 8 * 1024;

/**
 * The default limit on a request body held in memory
 * ({@linkcode HttpParser.prototype.next}, `serveRaw()`): 1 MiB.
 *
 * @example
 * ```ts
 * import { DEFAULT_MAX_BODY_BYTES } from "./limits.ts";
 * console.log(DEFAULT_MAX_BODY_BYTES); // 1048576
 * ```
 */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

/**
 * The default limit on a request body streamed to a handler (`serve()`,
 * as Deno.serve): none.
 *
 * @example
 * ```ts
 * import { DEFAULT_MAX_STREAMED_BODY_BYTES } from "./limits.ts";
 * console.log(DEFAULT_MAX_STREAMED_BODY_BYTES === Number.MAX_SAFE_INTEGER); // true
 * ```
 */
export const DEFAULT_MAX_STREAMED_BODY_BYTES: number = Number.MAX_SAFE_INTEGER;

/**
 * The longest method accepted: 32 bytes (the longest registered method,
 * `UPDATEREDIRECTREF`, has 17). A longer one is a 501: no server implements
 * it, and its length must not be mistaken for a long target (414).
 *
 * @example
 * ```ts
 * import { MAX_METHOD_BYTES } from "./limits.ts";
 * console.log(MAX_METHOD_BYTES); // 32
 * ```
 */
export const MAX_METHOD_BYTES = 32;

/**
 * The longest chunk-size line (size and extensions, CRLF included)
 * accepted: 4 KiB; a longer one is a 400.
 *
 * @example
 * ```ts
 * import { MAX_CHUNK_LINE_BYTES } from "./limits.ts";
 * console.log(MAX_CHUNK_LINE_BYTES); // 4096
 * ```
 */
export const MAX_CHUNK_LINE_BYTES = 4096;

/**
 * Options for {@linkcode HttpParser}: its limits (see the table in this
 * module's doc) and the memo.
 *
 * @example
 * ```ts
 * import { HttpParser, type HttpParserOptions } from "@ffinet/ffinet/http";
 * const options: HttpParserOptions = { maxHeaderBytes: 4096, maxBodyBytes: 65536 };
 * const parser = new HttpParser(options);
 * ```
 */
export interface HttpParserOptions {
  /**
   * The largest request head (request line, header lines and the empty line,
   * CRLFs included) accepted; larger ones fail with 431. Also bounds the
   * trailers of a chunked body. Default 16384 (16 KiB).
   */
  maxHeaderBytes?: number;
  /** The most header fields a request head may have; more fail with 431. Default 100. */
  maxHeaderCount?: number;
  /**
   * The largest request body accepted; larger ones fail with 413.
   * Default 1 MiB.
   */
  maxBodyBytes?: number;
  /**
   * The longest request target accepted; longer ones fail with 414 (when
   * within `maxHeaderBytes`; a longer request line is a 431).
   * Default 8192 (8 KiB).
   */
  maxTargetBytes?: number;
  /** Remember the last bodiless head to answer an identical one at once. Default false. */
  memo?: boolean;
}

/**
 * Resolved parser limits: every one present and checked.
 *
 * @example
 * ```ts
 * import { type ParserLimits, parserLimits } from "./limits.ts";
 * const limits: ParserLimits = parserLimits("serve", { maxHeaderCount: 50 });
 * console.log(limits.maxHeaderCount, limits.maxHeaderBytes); // 50 16384
 * ```
 */
export interface ParserLimits {
  /** See {@linkcode HttpParserOptions.maxHeaderBytes}. */
  readonly maxHeaderBytes: number;
  /** See {@linkcode HttpParserOptions.maxHeaderCount}. */
  readonly maxHeaderCount: number;
  /** See {@linkcode HttpParserOptions.maxTargetBytes}. */
  readonly maxTargetBytes: number;
  /** See {@linkcode HttpParserOptions.maxBodyBytes}. */
  readonly maxBodyBytes: number;
}

/**
 * Check the limits in `options` and apply the defaults. `bodyDefault` is
 * {@linkcode DEFAULT_MAX_BODY_BYTES} where the body is held in memory and
 * {@linkcode DEFAULT_MAX_STREAMED_BODY_BYTES} where it streams.
 *
 * @param action What the caller was doing, for the error message ("serve").
 * @param options The caller's options (only the four limits are read).
 * @param bodyDefault The default of `maxBodyBytes`.
 * @throws {RangeError} "Cannot <action>: <name> <value> is not an integer
 * from <min> to <max>".
 *
 * @example
 * ```ts
 * import { DEFAULT_MAX_STREAMED_BODY_BYTES, parserLimits } from "./limits.ts";
 * parserLimits("serve", {}, DEFAULT_MAX_STREAMED_BODY_BYTES).maxBodyBytes; // 2^53 - 1
 * ```
 */
export function parserLimits(
  action: string,
  options: HttpParserOptions,
  bodyDefault: number = DEFAULT_MAX_BODY_BYTES,
): ParserLimits {
  return {
    maxHeaderBytes: integerOption(
      action,
      "maxHeaderBytes",
      options.maxHeaderBytes,
      DEFAULT_MAX_HEADER_BYTES,
      16,
      2 ** 24,
    ),
    maxHeaderCount: integerOption(
      action,
      "maxHeaderCount",
      options.maxHeaderCount,
      DEFAULT_MAX_HEADER_COUNT,
      1,
      65536,
    ),
    maxTargetBytes: integerOption(
      action,
      "maxTargetBytes",
      options.maxTargetBytes,
      DEFAULT_MAX_TARGET_BYTES,
      1,
      2 ** 24,
    ),
    maxBodyBytes: integerOption(
      action,
      "maxBodyBytes",
      options.maxBodyBytes,
      bodyDefault,
      1,
      Number.MAX_SAFE_INTEGER,
    ),
  };
}
