/**
 * An unchanged Hono app using `upgradeWebSocket` from `hono/deno` (which
 * calls the global `Deno.upgradeWebSocket`) runs on ffinet's `serve()`:
 * importing "@ffinet/ffinet/http" alone wraps the global; the same app still
 * runs on `Deno.serve`, whose requests the wrapped global hands to Deno's
 * own. Its middleware sees the upgrade response's status, 101, on both.
 *
 * @module
 */
import { assertEquals } from "@std/assert";
import { Hono } from "npm:hono@4.13.19";
import { upgradeWebSocket } from "npm:hono@4.13.19/deno";
import { serve } from "../../../http/mod.ts";
import { waitFor } from "./_client.ts";
import { withFdCheck } from "../../_helpers.ts";

function makeApp(events: string[]): Hono {
  const app = new Hono();
  app.use("*", async (c, next) => {
    // Read before: after an upgrade Deno.serve's request is closed.
    const upgrade = c.req.header("upgrade") !== undefined;
    await next();
    if (upgrade) events.push(`middleware:${c.res.status}`);
    else if (c.res.status !== 101) c.header("x-app", "hono");
  });
  app.get("/", (c) => c.text("plain route"));
  app.get(
    "/ws/:room",
    upgradeWebSocket((c) => {
      const room = c.req.param("room");
      return {
        onOpen(_evt, ws) {
          events.push(`open:${room}:${ws.readyState}`);
          ws.send(`welcome to ${room}`);
        },
        onMessage(evt, ws) {
          ws.send(`${room} echo: ${evt.data}`);
          if (evt.data === "bye") ws.close(4000, "see you");
        },
        onClose(evt) {
          events.push(`close:${room}:${(evt as CloseEvent).code}`);
        },
      };
    }),
  );
  return app;
}

async function talk(port: number): Promise<{ got: string[]; code: number; reason: string }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws/lobby`);
  const got: string[] = [];
  ws.onmessage = (e) => got.push(String(e.data));
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error("client error"));
  });
  ws.send("hi");
  await waitFor(() => got.length === 2, "2 messages");
  const closed = new Promise<CloseEvent>((r) => ws.onclose = r);
  ws.send("bye");
  const ev = await closed;
  return { got, code: ev.code, reason: ev.reason };
}

Deno.test("hono: upgradeWebSocket from hono/deno, unchanged, on serve() and on Deno.serve", async () => {
  await withFdCheck(async () => {
    const ffinetEvents: string[] = [];
    const denoEvents: string[] = [];
    const ours = serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      makeApp(ffinetEvents).fetch,
    );
    const deno = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      makeApp(denoEvents).fetch,
    );
    try {
      const ourPort = (ours.addr as Deno.NetAddr).port;
      const expected = {
        got: ["welcome to lobby", "lobby echo: hi", "lobby echo: bye"],
        code: 4000,
        reason: "see you",
      };
      const a = await talk(ourPort);
      const b = await talk(deno.addr.port);
      assertEquals(a, expected);
      assertEquals(b, expected);
      await waitFor(() => ffinetEvents.length === 3 && denoEvents.length === 3, "server events");
      assertEquals(ffinetEvents, ["middleware:101", "open:lobby:1", "close:lobby:4000"]);
      assertEquals(denoEvents, ffinetEvents);
      // Plain routes of the same app are untouched.
      using client = Deno.createHttpClient({});
      const r = await fetch(`http://127.0.0.1:${ourPort}/`, { client });
      assertEquals([await r.text(), r.headers.get("x-app")], ["plain route", "hono"]);
    } finally {
      await ours.shutdown();
      await deno.shutdown();
    }
  });
});
