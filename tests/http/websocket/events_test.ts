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
