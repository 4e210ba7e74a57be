/**
 * `upgradeWebSocket(request)`: a WebSocket on a request of ffinet's
 * `serve()`, with the shape of `Deno.upgradeWebSocket`; and the global
 * `Deno.upgradeWebSocket`, wrapped once so that it takes ffinet's requests
 * too (code written for it, like Hono's `hono/deno`, runs unchanged).
 *
 * @module
 */
import { isServeRequest, upgradeConnection } from "../upgrade.ts";
import { negotiateHandshake } from "./handshake.ts";
import type { WebSocketLimits } from "./limits.ts";
import type { PerMessageDeflateOptions } from "./permessage_deflate.ts";
import { createServerWebSocket, type ServerWebSocket } from "./websocket.ts";

/**
 * Options of {@linkcode upgradeWebSocket}: those of
 * `Deno.UpgradeWebSocketOptions`, and ffinet's limits and compression.
 *
 * @example
 * ```ts
 * import type { UpgradeWebSocketOptions } from "@ffinet/ffinet/http";
 * const options: UpgradeWebSocketOptions = { protocol: "chat", idleTimeout: 60 };
 * ```
 */
export interface UpgradeWebSocketOptions {
  /** The subprotocol to answer with (`Sec-WebSocket-Protocol`). */
  protocol?: string;
  /**
   * Seconds of silence before a ping, and again before the connection is
   * closed when no pong came; 0 disables it. Default 30. (Overrides
   * `limits.idleTimeout`.)
   */
  idleTimeout?: number;
  /** Message, fragment, backpressure and close limits. */
  limits?: WebSocketLimits;
  /**
   * permessage-deflate (RFC 7692): `true` or settings to accept a client's
   * offer. Default off, as with `Deno.upgradeWebSocket`.
   */
  compression?: boolean | PerMessageDeflateOptions;
}

/**
 * Upgrade a request of ffinet's `serve()` to a WebSocket: return `response`
 * from the handler; `socket` opens once the server has sent the 101.
 *
 * @throws {TypeError} When `request` is not a WebSocket handshake (naming the
 *   header), or did not come from ffinet's `serve()`.
 *
 * @example An echo server
 * ```ts
 * import { serve, upgradeWebSocket } from "@ffinet/ffinet/http";
 *
 * const server = serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
 *   if (req.headers.get("upgrade") !== "websocket") return new Response("ws only", { status: 426 });
 *   const { socket, response } = upgradeWebSocket(req, { idleTimeout: 60 });
 *   socket.onmessage = (e) => socket.send(e.data);
 *   return response;
 * });
 * await server.shutdown();
 * ```
 */
export function upgradeWebSocket(
  request: Request,
  options: UpgradeWebSocketOptions = {},
): { socket: ServerWebSocket; response: Response } {
  const { headers, limits, protocol, extensions, deflate } = negotiateHandshake(request, options);
  const { response, connection } = upgradeConnection(request, { headers });
  const url = request.url.replace(/^http/, "ws");
  const socket = createServerWebSocket(
    deflate !== undefined
      ? { connection, url, protocol, extensions, limits, deflate }
      : { connection, url, protocol, extensions, limits },
  );
  return { socket, response };
}

/** Marks the wrapped global (one wrap per thread, however often this loads). */
const WRAPPED = Symbol.for("ffinet.upgradeWebSocket");

/**
 * Make the global `Deno.upgradeWebSocket` take requests of ffinet's
 * `serve()` (with {@linkcode upgradeWebSocket}) and hand every other
 * request to Deno's own. Runs when this module loads; calling it again
 * changes nothing.
 *
 * @example
 * ```ts
 * import { installDenoUpgradeWebSocket } from "@ffinet/ffinet/websocket";
 * installDenoUpgradeWebSocket(); // already done when the module loaded
 * ```
 */
export function installDenoUpgradeWebSocket(): void {
  const original = Deno.upgradeWebSocket;
  // deno-lint-ignore no-explicit-any
  if (typeof original !== "function" || (original as any)[WRAPPED]) return;
  const wrapped = function upgradeWebSocketOnAnyServer(
    request: Request,
    options?: Deno.UpgradeWebSocketOptions,
  ): Deno.WebSocketUpgrade {
    if (isServeRequest(request)) {
      const ours = upgradeWebSocket(request, options ?? {});
      return { socket: ours.socket as unknown as WebSocket, response: ours.response };
    }
    return original.call(Deno, request, options);
  };
  Object.defineProperty(wrapped, WRAPPED, { value: true });
  Deno.upgradeWebSocket = wrapped;
}

installDenoUpgradeWebSocket();
