/**
 * The types of the low-level entry point, {@linkcode RawHandler | serveRaw()}:
 * a parsed request view and a response writer, no `Request` or `Response`
 * objects.
 *
 * @module
 */
import type { HttpRequest } from "./parser.ts";
import type { ServeOptions } from "./types.ts";

/**
 * Header fields for a raw response: a record or `[name, value]` pairs.
 *
 * @example
 * ```ts
 * import type { RawHeaders } from "./raw_types.ts";
 * const headers: RawHeaders = [["cache-control", "no-store"]];
 * ```
 */
export type RawHeaders =
  | Readonly<Record<string, string>>
  | ReadonlyArray<readonly [string, string]>;

/**
 * Writes the response to one request of {@linkcode RawHandler}. Exactly one
 * of `send`/`sendPrebuilt` must be called, now or later; responses leave in
 * request order whatever order they are given in.
 *
 * @example
 * ```ts
 * import type { RawResponder } from "./raw_types.ts";
 * function notFound(res: RawResponder): void {
 *   res.send(404, "no such page\n");
 * }
 * ```
 */
export interface RawResponder {
  /** Whether the connection stays open after this response. */
  readonly keepAlive: boolean;
  /**
   * Answer with `status`, `body` (a string goes out as UTF-8) and headers.
   * `Date`, `Content-Length` and `Connection` are added; a `HEAD` request
   * gets the head only.
   */
  send(
    status: number,
    body?: string | Uint8Array,
    options?: { contentType?: string; headers?: RawHeaders },
  ): void;
  /**
   * Answer with a response built once (see `prebuilt()`): its bytes are
   * reused as they are, with the `Date` of the current second.
   */
  sendPrebuilt(response: PrebuiltResponseLike): void;
}

/**
 * A response serialized ahead of time; made by `prebuilt()` in `raw.ts`.
 *
 * @example
 * ```ts
 * import type { PrebuiltResponseLike } from "./raw_types.ts";
 * function size(p: PrebuiltResponseLike): number {
 *   return p.bytes(true, "1.1").length;
 * }
 * ```
 */
export interface PrebuiltResponseLike {
  /** The whole response for a kept-alive (or closing) connection of that version. */
  bytes(keepAlive: boolean, version: "1.0" | "1.1"): Uint8Array;
}

/**
 * A low-level handler: a parsed request (body buffered in full, up to
 * `maxBodyBytes`) and its responder. It returns nothing; it may answer later.
 *
 * @example
 * ```ts
 * import type { RawHandler } from "./raw_types.ts";
 * const handler: RawHandler = (req, res) => res.send(200, `${req.method} ${req.target}\n`);
 * ```
 */
export type RawHandler = (request: HttpRequest, response: RawResponder) => void;

/**
 * Options of `serveRaw()`: those of `serve()` (except `onError`, `workers`)
 * and the opt-in fast paths.
 *
 * @example
 * ```ts
 * import type { RawServeOptions } from "./raw_types.ts";
 * const options: RawServeOptions = { port: 0, repeatedHeadMemo: true };
 * ```
 */
export interface RawServeOptions extends Omit<ServeOptions, "onError" | "workers"> {
  /**
   * Answer a request head byte-identical to the connection's previous one
   * after a single comparison, reusing the parsed request (benchmarks,
   * pollers). Default false.
   */
  repeatedHeadMemo?: boolean;
  /** Called when a handler throws (the request gets a 500). Default: logs it. */
  onError?: (error: unknown) => void;
}
