/**
 * The handler-shaped API (`upgradeWithHandlers`, Bun's shape): open,
 * message, close and drain handlers with `ws.data`; `send()`'s return
 * values (bytes sent, -1 for backpressure, 0 once closed); topics with
 * subscribe / publish / unsubscribe-on-close; argument checks.
 *
 * @module
 */
import { assert, assertEquals, assertThrows } from "@std/assert";
import { serve } from "../../../http/mod.ts";
import {
  type HandlerWebSocket,
  Opcode,
  publish,
  upgradeWithHandlers,
  type WebSocketHandlers,
} from "../../../http/websocket/mod.ts";
import { clientFrame } from "./_frames.ts";
import { RawClient, waitFor } from "./_client.ts";
import { withFdCheck } from "../../_helpers.ts";

function startServer<T>(
  handlers: WebSocketHandlers<T>,
  data: (req: Request) => T,
): { port: number; close(): Promise<void> } {
  const server = serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req) => upgradeWithHandlers(req, handlers, { data: data(req) }),
  );
  return { port: (server.addr as Deno.NetAddr).port, close: () => server.shutdown() };
}

Deno.test("handlers: open, message, close with ws.data; send returns the frame's bytes, 0 once closed", async () => {
  await withFdCheck(async () => {
    const events: string[] = [];
    const returns: number[] = [];
    let closedSocket: HandlerWebSocket<{ id: string }> | undefined;
    const server = startServer<{ id: string }>({
      open: (ws) => events.push(`open:${ws.data.id}:${ws.readyState}`),
      message(ws, m) {
        events.push(`message:${typeof m === "string" ? m : `bytes ${m.length}`}`);
        returns.push(ws.send(m));
        returns.push(ws.send(new Uint8Array([1, 2, 3]).subarray(1)));
      },
      close(ws, code, reason) {
        events.push(`close:${code}:${reason}`);
        closedSocket = ws;
      },
      idleTimeout: 0,
    }, (req) => ({ id: new URL(req.url).searchParams.get("id") ?? "?" }));
    try {
      const c = await RawClient.open(server.port, { path: "/?id=42" });
      await c.send(clientFrame(Opcode.Text, "héllo"));
      await c.waitCount(2);
      assertEquals(c.log, ["text:héllo", "binary:2,3"]);
      await c.send(clientFrame(Opcode.Close, new Uint8Array([0x0f, 0xa0, 0x62, 0x79, 0x65])));
      await c.waitEof();
      await c.close();
      await waitFor(() => closedSocket !== undefined, "the close handler");
      assertEquals(events, ["open:42:1", "message:héllo", "close:4000:bye"]);
      assertEquals(returns, [2 + 6, 2 + 2]);
      assertEquals(closedSocket!.send("late"), 0);
      assertEquals(closedSocket!.readyState, 3);
    } finally {
      await server.close();
    }
  });
});

Deno.test("handlers: subscribe / publish reach the other subscribers; a closed socket leaves its topics", async () => {
  await withFdCheck(async () => {
    const counts: number[] = [];
    const server = startServer<string>({
      open: (ws) => ws.subscribe("room"),
      message(ws, m) {
        if (m === "leave") ws.unsubscribe("room");
        else counts.push(ws.publish("room", `${ws.data}: ${m}`));
      },
      idleTimeout: 0,
    }, (req) => new URL(req.url).searchParams.get("name") ?? "?");
    try {
      const a = await RawClient.open(server.port, { path: "/?name=a" });
      const b = await RawClient.open(server.port, { path: "/?name=b" });
      const c = await RawClient.open(server.port, { path: "/?name=c" });
      await new Promise((r) => setTimeout(r, 50)); // the open handlers ran
      await a.send(clientFrame(Opcode.Text, "hi all"));
      await b.waitCount(1);
      await c.waitCount(1);
      assertEquals([b.log[0], c.log[0]], ["text:a: hi all", "text:a: hi all"]);
      await c.send(clientFrame(Opcode.Text, "leave"));
      await b.close(); // abrupt: b leaves its topics when it closes
      await new Promise((r) => setTimeout(r, 100));
      await a.send(clientFrame(Opcode.Text, "anyone?"));
      await waitFor(() => counts.length === 2, "two publishes");
      assertEquals(counts, [2, 0]);
      assertEquals(a.log, []); // the publisher never gets its own message
      assertEquals(publish("room", "from the server"), 1); // a is still there
      await a.waitCount(1);
      assertEquals(a.log, ["text:from the server"]);
      await a.close();
      await c.close();
    } finally {
      await server.close();
    }
  });
});

Deno.test("handlers: send returns -1 under backpressure and drain follows when the peer reads", async () => {
  await withFdCheck(async () => {
    let lastReturn = 0;
    let sends = 0;
    let drained = 0;
    const server = startServer<undefined>({
      open(ws) {
        const chunk = new Uint8Array(64 * 1024);
        while (sends < 2000) {
          sends++;
          lastReturn = ws.send(chunk);
          if (lastReturn === -1) break;
        }
      },
      message() {},
      drain: () => drained++,
      idleTimeout: 0,
      limits: { maxBufferedAmount: 64 << 20 },
    }, () => undefined);
    try {
      // Shake hands, but read nothing until the server has seen backpressure.
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
      await conn.write(new TextEncoder().encode(
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
      ));
      await waitFor(() => lastReturn === -1, "a send returning -1");
      assert(sends < 2000);
      let total = 0;
      const reading = (async () => {
        const buf = new Uint8Array(1 << 16);
        for (;;) {
          const n = await conn.read(buf).catch(() => null);
          if (n === null) return;
          total += n;
        }
      })();
      await waitFor(() => drained === 1, "the drain handler");
      assert(total > 0);
      conn.close();
      await reading;
    } finally {
      await server.close();
    }
  });
});

Deno.test("handlers: refused upgrades and bad close arguments throw, the socket stays open", async () => {
  assertThrows(
    () => upgradeWithHandlers(new Request("http://a/"), { message() {} }),
    TypeError,
    "Cannot upgrade to WebSocket",
  );
  await withFdCheck(async () => {
    const thrown: string[] = [];
    const server = startServer<undefined>({
      message(ws) {
        for (const [code, reason] of [[1005, ""], [999, ""], [1000, "x".repeat(124)]] as const) {
          try {
            ws.close(code, reason);
          } catch (e) {
            thrown.push((e as Error).name);
          }
        }
        ws.send(`still ${ws.readyState}`);
        ws.close(1000);
      },
      idleTimeout: 0,
    }, () => undefined);
    try {
      const c = await RawClient.open(server.port);
      await c.send(clientFrame(Opcode.Text, "go"));
      await c.waitCount(2);
      assertEquals(c.log, ["text:still 1", "close:1000:"]);
      assertEquals(thrown, ["RangeError", "RangeError", "RangeError"]);
      await c.close();
    } finally {
      await server.close();
    }
  });
});
