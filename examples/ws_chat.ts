/**
 * A WebSocket chat room on `serve()`: open `/` in several browser tabs
 * (the page is served at `/`) and type. Each message goes to everyone else
 * in the room through a topic (`subscribe` / `publish`), with
 * permessage-deflate when the browser offers it.
 *
 *     deno run --allow-ffi examples/ws_chat.ts --host 127.0.0.1 --port 9003
 *
 * @module
 */
import { serve, type WebSocketServer } from "../http/mod.ts";
import { parseArgs } from "./_args.ts";

const args = parseArgs(Deno.args, {
  usage: "ws_chat.ts [--host H] [--port P]",
  defaults: { host: "127.0.0.1", port: 9003 },
});

const PAGE = `<!doctype html>
<meta charset="utf-8"><title>ffinet chat</title>
<ul id="log"></ul>
<form id="f"><input id="m" autocomplete="off" autofocus><button>Send</button></form>
<script>
  const log = document.getElementById("log");
  const show = (text) => log.appendChild(document.createElement("li")).textContent = text;
  const ws = new WebSocket(location.href.replace(/^http/, "ws") + "chat");
  ws.onmessage = (e) => show(e.data);
  ws.onclose = (e) => show("closed: " + e.code);
  document.getElementById("f").onsubmit = (e) => {
    e.preventDefault();
    const m = document.getElementById("m");
    ws.send(m.value);
    show("me: " + m.value);
    m.value = "";
  };
</script>`;

let visitors = 0;
const server: WebSocketServer<{ name: string }> = serve<{ name: string }>({
  hostname: args.host,
  port: args.port,
  onListen: (addr) => {
    if ("port" in addr) console.log(`chat on http://${addr.hostname}:${addr.port}/`);
  },
  // Bun's shape: one set of handlers for every socket `server.upgrade()` makes.
  websocket: {
    open(ws) {
      ws.subscribe("room");
      ws.publish("room", `${ws.data.name} joined`);
    },
    message(ws, message) {
      if (typeof message === "string") ws.publish("room", `${ws.data.name}: ${message}`);
    },
    close(ws) {
      ws.publish("room", `${ws.data.name} left`);
    },
    perMessageDeflate: true,
    limits: { maxMessageSize: 64 * 1024 },
  },
  handler(req) {
    const { pathname } = new URL(req.url);
    if (pathname === "/chat" && server.upgrade(req, { data: { name: `guest${++visitors}` } })) {
      return;
    }
    if (pathname === "/") return new Response(PAGE, { headers: { "content-type": "text/html" } });
    return new Response("not found", { status: 404 });
  },
});
