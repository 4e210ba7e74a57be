/**
 * Benchmark server: a WebSocket echo on ffinet's `serve()` with
 * `upgradeWebSocket` (the same handler as `../shared/bench/ws/deno_ws.ts`
 * on `Deno.upgradeWebSocket`). With `--global` the handler calls the global
 * `Deno.upgradeWebSocket` (the path Hono's `hono/deno` takes); with
 * `--handlers` it runs on `upgradeWithHandlers` (Bun's handler shape, no
 * event objects). `--deflate` accepts permessage-deflate offers (defaults:
 * no context takeover, level 1, messages of 32 bytes and more compressed).
 * `--deno-serve` runs the same handler on `Deno.serve` and Deno's own
 * `Deno.upgradeWebSocket` (the reference; needs `--allow-net`).
 *
 *     deno run --allow-ffi --allow-env --allow-read bench/ws_echo.ts --port 8000 [--global | --handlers | --deno-serve] [--deflate]
 *
 * Prints `listening on HOST:PORT` once it accepts connections.
 *
 * @module
 */
import { serve } from "../http/serve.ts";
import { upgradeWebSocket, upgradeWithHandlers } from "../http/websocket/mod.ts";
import { parseArgs } from "../examples/_args.ts";

const args = parseArgs(Deno.args, {
  usage: "ws_echo.ts [--host H] [--port P] [--global | --handlers | --deno-serve] [--deflate]",
  defaults: { host: "127.0.0.1", port: 8000 },
  booleans: ["global", "handlers", "deno-serve", "deflate"],
  strings: {},
});
const compression = args.booleans.has("deflate");
const upgrade = args.booleans.has("global") || args.booleans.has("deno-serve")
  ? (req: Request) => Deno.upgradeWebSocket(req)
  : (req: Request) => upgradeWebSocket(req, { compression });
const echo = {
  message: (ws: { send(m: string | Uint8Array): number }, m: string | Uint8Array) =>
    void ws.send(m),
  perMessageDeflate: compression,
};
const handlers = args.booleans.has("handlers");
const options = {
  hostname: args.host,
  port: args.port,
  onListen: (addr: Deno.Addr) => {
    if ("hostname" in addr) console.log(`listening on ${addr.hostname}:${addr.port}`);
  },
};
const handler = (req: Request): Response => {
  if (req.headers.get("upgrade") !== "websocket") return new Response("no", { status: 400 });
  if (handlers) return upgradeWithHandlers(req, echo);
  const { socket, response } = upgrade(req);
  socket.onmessage = (e) => socket.send(e.data);
  return response;
};
if (args.booleans.has("deno-serve")) Deno.serve(options, handler);
else serve(options, handler);
