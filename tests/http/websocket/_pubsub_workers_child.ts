/**
 * The main module for pubsub_workers_test.ts: `serve({ workers: 2 })` with
 * Bun-shaped WebSocket handlers; every socket subscribes to "room", is told
 * which Worker holds it (`worker:<name>`), and what it sends (text or
 * binary) is published to "room"; should publishing take the message's
 * bytes away from the handler, the sender is told `detached`.
 *
 *     _pubsub_workers_child.ts PORT
 *
 * @module
 */
import { isServeWorker, serve, type WebSocketServer } from "../../../http/mod.ts";

const port = Number(Deno.args[0] ?? 0);
// deno-lint-ignore no-explicit-any
const name: string = isServeWorker() ? String((globalThis as any).name) : "main";

const server: WebSocketServer = serve<undefined>({
  hostname: "127.0.0.1",
  port,
  workers: 2,
  drainOnSignals: true,
  onListen(addr) {
    if (addr.transport === "tcp") console.log(`listening on ${addr.port} (${name})`);
  },
  websocket: {
    open(ws) {
      ws.subscribe("room");
      ws.send(`worker:${name}`);
    },
    message(ws, m) {
      const size = typeof m === "string" ? m.length : m.byteLength;
      ws.publish("room", m);
      // The message stays the handler's: publishing neither moves nor changes it.
      if ((typeof m === "string" ? m.length : m.byteLength) !== size) ws.send("detached");
    },
  },
  handler(req) {
    if (server.upgrade(req)) return;
    return new Response(name);
  },
});
