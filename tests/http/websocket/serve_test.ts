/**
 * WebSocket on `serve()` as a whole: Bun's shape (`serve({ websocket })`
 * with `server.upgrade(request, { data })`), the request predicate the
 * WebSocket layer relies on, and `shutdown()` closing upgraded sockets
 * with 1001 and waiting for them within the drain timeout.
 *
 * @module
 */
import { assert, assertEquals, assertThrows } from "@std/assert";
import {
  isServeRequest,
  serve,
  upgradeWebSocket,
  type WebSocketServer,
} from "../../../http/mod.ts";
import { RawClient, waitFor } from "./_client.ts";
import { withFdCheck } from "../../_helpers.ts";

/** A Deno WebSocket client that records what it gets. */
async function client(
  url: string,
): Promise<{ ws: WebSocket; got: string[]; closed: Promise<CloseEvent> }> {
  const ws = new WebSocket(url);
  const got: string[] = [];
  ws.onmessage = (e) => got.push(String(e.data));
  const closed = new Promise<CloseEvent>((r) => ws.onclose = r);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error(`cannot connect to ${url}`));
  });
  return { ws, got, closed };
}

Deno.test("serve({ websocket }) with server.upgrade(req, { data }): Bun's shape", async () => {
  await withFdCheck(async () => {
    const events: string[] = [];
    const errors: unknown[] = [];
    const server: WebSocketServer<{ name: string }> = serve<{ name: string }>({
      hostname: "127.0.0.1",
      port: 0,
      onListen() {},
      onError(e) {
        errors.push(e);
        return new Response("failed", { status: 500 });
      },
      websocket: {
        open(ws) {
          events.push(`open:${ws.data.name}`);
          ws.subscribe("room");
        },
        message(ws, m) {
          ws.publish("room", `${ws.data.name}: ${m}`);
          ws.send(`you said ${m}`);
        },
        close(ws, code) {
          events.push(`close:${ws.data.name}:${code}`);
        },
      },
      handler(req) {
        const path = new URL(req.url).pathname;
        if (path === "/nothing") return; // neither a Response nor an upgrade
        const name = new URL(req.url).searchParams.get("name") ?? "?";
        if (server.upgrade(req, { data: { name } })) return;
        return new Response(`plain ${path}`);
      },
    });
    try {
      const port = server.addr.port;
      // A plain request: upgrade() is false, the handler's Response goes out.
      using http = Deno.createHttpClient({});
      const plain = await fetch(`http://127.0.0.1:${port}/x`, { client: http });
      assertEquals(await plain.text(), "plain /x");
      const none = await fetch(`http://127.0.0.1:${port}/nothing`, { client: http });
      assertEquals([none.status, await none.text()], [500, "failed"]);
      assert(String(errors[0]).includes("server.upgrade"), String(errors[0]));
      // Two sockets with their own data; a publish reaches the other one.
      const a = await client(`ws://127.0.0.1:${port}/?name=ann`);
      const b = await client(`ws://127.0.0.1:${port}/?name=bob`);
      await waitFor(() => events.length === 2, "two opens");
      a.ws.send("hi");
      await waitFor(() => a.got.length === 1 && b.got.length === 1, "echo and publish");
      assertEquals(a.got, ["you said hi"]);
      assertEquals(b.got, ["ann: hi"]);
      a.ws.close(4001);
      b.ws.close(4002);
      await Promise.all([a.closed, b.closed]);
      await waitFor(() => events.length === 4, "two closes");
      assertEquals(events.sort(), ["close:ann:4001", "close:bob:4002", "open:ann", "open:bob"]);
      // Outside a handler, upgrade() of a foreign request is false.
      assertEquals(
        server.upgrade(new Request("http://x/", { headers: { upgrade: "websocket" } })),
        false,
      );
    } finally {
      await server.shutdown();
    }
  });
});

Deno.test("isServeRequest tells serve()'s requests; upgradeWebSocket's response is a 101", async () => {
  await withFdCheck(async () => {
    assertEquals(isServeRequest(new Request("http://localhost/")), false);
    assertEquals(isServeRequest({}), false);
    assertThrows(
      () =>
        upgradeWebSocket(new Request("http://localhost/", { headers: { upgrade: "websocket" } })),
      TypeError,
      "did not come from an ffinet serve() handler",
    );
    const seen: string[] = [];
    const server = serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
      seen.push(`serve:${isServeRequest(req)}`);
      const { socket, response } = upgradeWebSocket(req);
      seen.push(`status:${response.status}:${response.ok}`);
      socket.onmessage = (e) => socket.send(e.data);
      return response;
    });
    try {
      const c = await client(`ws://127.0.0.1:${server.addr.port}/`);
      c.ws.send("x");
      await waitFor(() => c.got.length === 1, "echo");
      c.ws.close();
      await c.closed;
      assertEquals(seen, ["serve:true", "status:101:false"]);
    } finally {
      await server.shutdown();
    }
  });
});

Deno.test("shutdown(): upgraded WebSockets close with 1001 (going away) and are waited for", async () => {
  await withFdCheck(async () => {
    const serverCloses: string[] = [];
    const server = serve<undefined>({
      hostname: "127.0.0.1",
      port: 0,
      onListen() {},
      websocket: {
        message(ws, m) {
          ws.send(m);
        },
        close(_ws, code) {
          serverCloses.push(`handlers:${code}`);
        },
      },
      handler(req) {
        if (new URL(req.url).pathname === "/deno") {
          const { socket, response } = upgradeWebSocket(req);
          socket.onclose = (e) => serverCloses.push(`deno:${e.code}`);
          return response;
        }
        if (server.upgrade(req)) return;
        return new Response("plain");
      },
    });
    const port = server.addr.port;
    const a = await client(`ws://127.0.0.1:${port}/deno`);
    const b = await client(`ws://127.0.0.1:${port}/bun`);
    let finished = false;
    const done = server.shutdown().then(() => finished = true);
    const [ca, cb] = await Promise.all([a.closed, b.closed]);
    assertEquals([ca.code, cb.code], [1001, 1001]);
    assertEquals([ca.reason, ca.wasClean], ["the server is shutting down", true]);
    await done;
    // The drain waited for both sockets: their server side closed first.
    assert(finished);
    assertEquals(serverCloses.sort(), ["deno:1001", "handlers:1001"]);
  });
});

Deno.test("shutdown(): a peer that never answers the close is cut at drainTimeoutMs", async () => {
  await withFdCheck(async () => {
    const server: WebSocketServer = serve<undefined>({
      hostname: "127.0.0.1",
      port: 0,
      onListen() {},
      drainTimeoutMs: 300,
      // The close handshake alone would wait a minute.
      websocket: { message() {}, limits: { closeTimeoutMs: 60_000 } },
      handler: (req) => server.upgrade(req) ? undefined : new Response("plain"),
    });
    const raw = await RawClient.open(server.addr.port);
    try {
      const t0 = Date.now();
      let finished = false;
      const done = server.shutdown().then(() => finished = true);
      await raw.waitCount(1);
      assertEquals(raw.log[0], "close:1001:the server is shutting down");
      // Not finished while the socket is open (before the drain timeout)...
      await new Promise((r) => setTimeout(r, 100));
      if (Date.now() - t0 < 250) assertEquals(finished, false);
      // ...and finished at the drain timeout, the connection cut.
      await done;
      const ms = Date.now() - t0;
      assert(ms >= 250 && ms < 5_000, `shutdown took ${ms} ms`);
      await raw.waitEof();
    } finally {
      await raw.close();
    }
  });
});
