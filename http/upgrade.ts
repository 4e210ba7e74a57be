/**
 * Taking over a connection after `101 Switching Protocols`.
 *
 * @module
 */
import { ServerRequest } from "./_request.ts";
import { UPGRADES } from "./_conn.ts";

/**
 * A connection handed over by {@linkcode upgradeConnection}: the raw ffinet
 * `Connection` (set its `onData`/`onEnd`/`onClose`), and the bytes the
 * client sent after its request head that were already read.
 *
 * @example
 * ```ts
 * import type { UpgradedConnection } from "@ffinet/ffinet/http";
 * function echo({ conn, head }: UpgradedConnection): void {
 *   if (head.length > 0) conn.write(head);
 *   conn.onData = (data) => conn.write(data);
 * }
 * ```
 */
export interface UpgradedConnection {
  /**
   * The connection (ffinet's reactor `Connection`), now the caller's: the
   * server no longer reads or writes it.
   */
  conn: RawConnection;
  /** Bytes received after the request head (a copy; may be empty). */
  head: Uint8Array;
  /**
   * Make the server's `shutdown()` wait for this connection: `goingAway`
   * runs when the drain begins (the protocol's polite close, like a
   * WebSocket's 1001), the connection is aborted at the drain timeout, and
   * the returned function is to be called once the connection is closed.
   * A connection never held is not waited for.
   */
  hold(goingAway: () => void): () => void;
}

/**
 * Whether `request` is one that ffinet's `serve()` gave a handler (and so
 * may be upgraded with {@linkcode upgradeConnection}).
 *
 * @example
 * ```ts
 * import { isServeRequest } from "@ffinet/ffinet/http";
 * console.log(isServeRequest(new Request("http://localhost/"))); // false
 * ```
 */
export function isServeRequest(request: unknown): request is Request {
  return request instanceof ServerRequest;
}

/**
 * The part of ffinet's reactor `Connection` an upgraded protocol uses (the
 * object is the `Connection` itself).
 *
 * @example
 * ```ts
 * import type { RawConnection } from "@ffinet/ffinet/http";
 * function greet(conn: RawConnection): void {
 *   conn.write(new TextEncoder().encode("hi"));
 *   conn.onData = (data) => conn.write(data);
 * }
 * ```
 */
export interface RawConnection {
  /** Called with each chunk read; the view is only valid during the call. */
  onData: ((data: Uint8Array, conn: RawConnection) => void) | undefined;
  /** Called when the peer has finished sending (EOF). */
  onEnd: ((conn: RawConnection) => void) | undefined;
  /** Called when the output queue empties after `write()` returned false. */
  onDrain: ((conn: RawConnection) => void) | undefined;
  /** Called once when the connection is closed. */
  onClose: ((conn: RawConnection, error?: Error) => void) | undefined;
  /** `"open"`, `"ending"`, `"closing"` or `"closed"`. */
  readonly state: string;
  /** Bytes queued for sending. */
  readonly writableLength: number;
  /** Send bytes; false once the high-water mark is queued (wait for `onDrain`). */
  write(data: Uint8Array): boolean;
  /** Stop reading until `resume()`. */
  pause(): void;
  /** Read again after `pause()`. */
  resume(): void;
  /** Half-close after the queue is flushed. */
  end(): void;
  /** Flush, then close. */
  close(): void;
  /** Close at once with a reset. */
  abort(error?: Error): void;
}

/** Options for {@linkcode upgradeConnection}. */
export interface UpgradeOptions {
  /** Header fields for the 101 response (e.g. `sec-websocket-accept`). */
  headers?: HeadersInit;
}

/**
 * Upgrade the connection of `request` (a request given to a `serve()`
 * handler): return `response` from the handler; the server sends
 * `101 Switching Protocols` with `headers` (plus `connection: upgrade` and the
 * request's `upgrade` token), stops using the connection, and resolves
 * `connection` with it. Responses to earlier pipelined requests leave first.
 * Requests after the upgrade request on the connection belong to the new
 * protocol (they arrive in `head`).
 *
 * @throws {TypeError} When `request` did not come from this server.
 *
 * @example An echo protocol after 101
 * ```ts
 * import { serve, upgradeConnection } from "@ffinet/ffinet/http";
 *
 * const server = serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
 *   const { response, connection } = upgradeConnection(req);
 *   connection.then(({ conn, head }) => {
 *     if (head.length > 0) conn.write(head);
 *     conn.onData = (data) => conn.write(data);
 *   });
 *   return response;
 * });
 * await server.shutdown();
 * ```
 */
export function upgradeConnection(
  request: Request,
  options: UpgradeOptions = {},
): { response: Response; connection: Promise<UpgradedConnection> } {
  if (!(request instanceof ServerRequest)) {
    throw new TypeError("Cannot upgrade: the request did not come from an ffinet serve() handler");
  }
  // 101 as Deno's upgrade responses (a middleware may look); the Response
  // constructor refuses it, so the status is set on the object.
  const response = new Response(null, { status: 200 });
  Object.defineProperties(response, {
    status: { value: 101 },
    ok: { value: false },
  });
  const headers = new Headers(options.headers);
  let resolve!: (u: UpgradedConnection) => void;
  let reject!: (e: Error) => void;
  const connection = new Promise<UpgradedConnection>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Unhandled if nobody listens and the upgrade fails: that is fine.
  connection.catch(() => {});
  UPGRADES.set(response, { request, headers, resolve, reject, used: false });
  return { response, connection };
}
