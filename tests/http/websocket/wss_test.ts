/**
 * `wss://`: WebSocket over `serve({ cert, key })`. Node's `ws` client
 * (npm), trusting the test CA, talks to both WebSocket shapes through TLS:
 * echo of text and bytes, permessage-deflate negotiated, and the server's
 * `shutdown()` closing with 1001.
 *
 * @module
 */
import { assertEquals } from "@std/assert";
import WS from "npm:ws@8.18.3";
import { serve, upgradeWebSocket, type WebSocketServer } from "../../../http/mod.ts";
import { makePki } from "../../tls/_certs.ts";
import "../../tls/_server.ts"; // libssl loaded outside the tests (sanitizers)
import { waitFor } from "./_client.ts";

Deno.test("wss://: Node's ws over serve({ cert, key }), both shapes, compression, shutdown 1001", async () => {
  const pki = await makePki();
  const server: WebSocketServer = serve<undefined>({
    hostname: "127.0.0.1",
    port: 0,
    onListen() {},
    cert: pki.cert,
    key: pki.key,
    websocket: {
      message: (ws, m) => ws.send(typeof m === "string" ? `bun:${m}` : m),
      perMessageDeflate: true,
    },
    handler(req) {
      if (new URL(req.url).pathname === "/deno") {
        const { socket, response } = upgradeWebSocket(req, { compression: true });
        socket.onmessage = (e) =>
          socket.send(typeof e.data === "string" ? `deno:${e.data}` : e.data);
        return response;
      }
      if (server.upgrade(req)) return;
      return new Response("plain");
    },
  });
  const clients: WS[] = [];
  try {
    for (const path of ["/deno", "/bun"]) {
      const ws = new WS(`wss://localhost:${server.addr.port}${path}`, {
        ca: pki.caCert,
        perMessageDeflate: true,
      });
      clients.push(ws);
      await new Promise<void>((resolve, reject) => {
        ws.on("open", () => resolve());
        ws.on("error", reject);
      });
      const got: unknown[] = [];
      ws.on(
        "message",
        (data: Uint8Array, binary: boolean) =>
          got.push(binary ? Array.from(data) : new TextDecoder().decode(data)),
      );
      const big = "over TLS, compressed ".repeat(5000);
      ws.send("hi");
      ws.send(new Uint8Array([0, 1, 2, 255]));
      ws.send(big);
      await waitFor(() => got.length === 3, `3 echoes on ${path}`);
      const tag = path.slice(1);
      assertEquals(got, [`${tag}:hi`, [0, 1, 2, 255], `${tag}:${big}`]);
      assertEquals(ws.extensions, "permessage-deflate");
    }
    const codes = clients.map((ws) =>
      new Promise<number>((r) => ws.on("close", (code: number) => r(code)))
    );
    await server.shutdown();
    assertEquals(await Promise.all(codes), [1001, 1001]);
  } finally {
    for (const ws of clients) ws.terminate();
    await server.shutdown();
    await pki.remove();
  }
});
