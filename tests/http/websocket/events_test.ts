/**
 * The Deno-shaped socket makes a `MessageEvent` per message only once a
 * `message` listener exists (by `onmessage` or `addEventListener`): a
 * socket nobody listens to costs no event object per message. Checked by
 * counting the global `MessageEvent` constructions on a real connection.
 *
 * @module
 */
import { assertEquals } from "@std/assert";
import { serve } from "../../../http/mod.ts";
import { Opcode, type ServerWebSocket, upgradeWebSocket } from "../../../http/websocket/mod.ts";
import { RawClient, waitFor } from "./_client.ts";
import { clientFrame } from "./_frames.ts";
import { withFdCheck } from "../../_helpers.ts";

Deno.test("events: no MessageEvent is made until a message listener exists; then one per message", async () => {
  await withFdCheck(async () => {
    const Original = globalThis.MessageEvent;
    let made = 0;
    class CountedMessageEvent<T> extends Original<T> {
      constructor(type: string, init?: MessageEventInit<T>) {
        super(type, init);
        made++;
      }
    }
    globalThis.MessageEvent = CountedMessageEvent as typeof MessageEvent;
    let socket: ServerWebSocket | undefined;
    const server = serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
      const up = upgradeWebSocket(req, { idleTimeout: 0 });
      socket = up.socket;
      return up.response;
    });
    const client = await RawClient.open((server.addr as Deno.NetAddr).port);
    try {
      await waitFor(() => socket?.readyState === 1, "the socket's open");
      const text = (s: string) => clientFrame(Opcode.Text, s);
      // Nobody listens: three messages, no event.
      await client.conn.write(text("a"));
      await client.conn.write(text("b"));
      await client.conn.write(text("c"));
      // A ping after them: its pong proves the server has read past the three.
      await client.conn.write(clientFrame(Opcode.Ping, new Uint8Array([7])));
      await waitFor(() => client.log.includes("pong:7"), "the pong");
      assertEquals(made, 0);
      // A listener: one event per message, with the data.
      const got: string[] = [];
      socket!.addEventListener("message", (e) => got.push((e as MessageEvent).data));
      await client.conn.write(text("d"));
      await client.conn.write(text("e"));
      await waitFor(() => got.length === 2, "two messages");
      assertEquals(got, ["d", "e"]);
      assertEquals(made, 2);
    } finally {
      globalThis.MessageEvent = Original;
      await client.close();
      await server.shutdown();
    }
  });
});

Deno.test("events: an on… handler keeps the place of its first assignment among the listeners; the state constants are the prototype's", async () => {
  await withFdCheck(async () => {
    let socket: ServerWebSocket | undefined;
    const server = serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
      const up = upgradeWebSocket(req, { idleTimeout: 0 });
      socket = up.socket;
      return up.response;
    });
    const client = await RawClient.open((server.addr as Deno.NetAddr).port);
    try {
      await waitFor(() => socket?.readyState === 1, "the socket's open");
      const ws = socket!;
      // As WHATWG's WebSocket: the constants live on the prototype, not on each socket.
      assertEquals([ws.CONNECTING, ws.OPEN, ws.CLOSING, ws.CLOSED], [0, 1, 2, 3]);
      assertEquals(Object.hasOwn(ws, "OPEN"), false);
      const calls: string[] = [];
      ws.addEventListener("message", (e) => calls.push(`a:${(e as MessageEvent).data}`));
      ws.onmessage = function (e) {
        assertEquals(this, ws);
        assertEquals(e.target, ws);
        calls.push(`h1:${e.data}`);
      };
      ws.addEventListener("message", (e) => calls.push(`b:${(e as MessageEvent).data}`));
      await client.conn.write(clientFrame(Opcode.Text, "1"));
      await waitFor(() => calls.length === 3, "three calls");
      // Replaced, cleared and set again: still one call per message, in the first place.
      ws.onmessage = (e) => calls.push(`h2:${e.data}`);
      ws.onmessage = null;
      assertEquals(ws.onmessage, null);
      await client.conn.write(clientFrame(Opcode.Text, "2"));
      await waitFor(() => calls.length === 5, "two more calls");
      const h3 = (e: MessageEvent) => calls.push(`h3:${e.data}`);
      ws.onmessage = h3;
      assertEquals(ws.onmessage, h3);
      await client.conn.write(clientFrame(Opcode.Text, "3"));
      await waitFor(() => calls.length === 8, "three more calls");
      assertEquals(calls, ["a:1", "h1:1", "b:1", "a:2", "b:2", "a:3", "h3:3", "b:3"]);
    } finally {
      await client.close();
      await server.shutdown();
    }
  });
});
