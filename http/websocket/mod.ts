/**
 * WebSocket (RFC 6455) on ffinet's `serve()`, with permessage-deflate
 * (RFC 7692) through zlib.
 *
 * - {@linkcode upgradeWebSocket}: the shape of `Deno.upgradeWebSocket`, a
 *   socket with the WHATWG `WebSocket` interface. Loading this module also
 *   makes the global `Deno.upgradeWebSocket` accept ffinet's requests
 *   (Deno.serve's requests still go to Deno's own), so code written for it,
 *   like Hono's `hono/deno` helper, runs unchanged.
 * - {@linkcode upgradeWithHandlers}: Bun's shape, one set of handlers per
 *   server (`open`, `message`, `close`, `drain`), `send()` returning the
 *   bytes sent or -1 for backpressure, topics with `subscribe`/`publish`.
 * - The protocol on its own: {@linkcode FrameParser} (every RFC 6455 rule,
 *   limits from {@linkcode WebSocketLimits}), {@linkcode encodeFrame}, the
 *   handshake ({@linkcode checkHandshake}, {@linkcode acceptKey}) and the
 *   negotiation of permessage-deflate.
 *
 * @example An echo server
 * ```ts
 * import { serve } from "@ffinet/ffinet/http";
 * import { upgradeWebSocket } from "@ffinet/ffinet/websocket";
 *
 * const server = serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
 *   const { socket, response } = upgradeWebSocket(req);
 *   socket.onmessage = (e) => socket.send(e.data);
 *   return response;
 * });
 * await server.shutdown();
 * ```
 *
 * @module
 */
export {
  HandlerWebSocket,
  publish,
  upgradeWithHandlers,
  type WebSocketHandlers,
} from "./handlers.ts";
export {
  installDenoUpgradeWebSocket,
  upgradeWebSocket,
  type UpgradeWebSocketOptions,
} from "./upgrade.ts";
export {
  ServerWebSocket,
  type ServerWebSocketInit,
  type WebSocketEventHandler,
} from "./websocket.ts";
export {
  DEFAULT_WEBSOCKET_LIMITS,
  type ResolvedWebSocketLimits,
  resolveWebSocketLimits,
  type WebSocketLimits,
} from "./limits.ts";
export {
  encodeClosePayload,
  encodeFrame,
  type EncodeFrameOptions,
  frameHeaderLength,
  isValidCloseCode,
  MAX_CONTROL_PAYLOAD,
  Opcode,
  writeFrameHeader,
} from "./frame.ts";
export {
  type FrameEvents,
  FrameParser,
  type FrameParserOptions,
  type MessageInflater,
} from "./frame_parser.ts";
export { acceptKey, checkHandshake } from "./handshake.ts";
export {
  createMessageDeflate,
  type DeflateAgreement,
  type MessageDeflate,
  negotiatePerMessageDeflate,
  type PerMessageDeflateOptions,
} from "./permessage_deflate.ts";
export type { RawConnection, UpgradedConnection } from "../upgrade.ts";
