/**
 * Differential: the same handler, calling the global
 * `Deno.upgradeWebSocket`, on `Deno.serve` (Deno's own WebSocket) and on
 * ffinet's `serve()` (the wrapped global): the 101 head, the frames on the
 * wire byte for byte, and the events the handler sees must match.
 *
 * Documented differences, asserted as such: an abrupt TCP close is reported
 * with code 1006 (RFC 6455 §7.1.5) where Deno reports 0; `socket.protocol`
 * is the subprotocol answered where Deno's stays ""; `socket.url` is the
 * request's `ws:` URL where Deno's is ""; an unmasked client frame fails
 * the connection with 1002 where Deno takes it.
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import { serve } from "../../../http/mod.ts";
import "../../../http/websocket/mod.ts";
import { encodeClosePayload, Opcode } from "../../../http/websocket/mod.ts";
import { clientFrame, rawFrame } from "./_frames.ts";
import { RawClient, waitFor } from "./_client.ts";
import { withFdCheck } from "../../_helpers.ts";

function handler(events: string[]): (req: Request) => Response {
  return (req) => {
    const url = new URL(req.url);
    let pair: Deno.WebSocketUpgrade;
    try {
      pair = Deno.upgradeWebSocket(req, url.searchParams.has("proto") ? { protocol: "chat" } : {});
    } catch (e) {
      return new Response((e as Error).name, { status: 400 });
    }
    const { socket, response } = pair;
    events.push(`created:${socket.readyState}:${socket.binaryType}`);
    try {
      socket.send("too early");
    } catch (e) {
      events.push(`early:${(e as DOMException).name}`);
    }
    socket.onopen = () => events.push(`open:${socket.readyState}:${socket.protocol}`);
    socket.onmessage = (e) => {
      const d = e.data as string | ArrayBuffer;
      const shown = typeof d === "string"
        ? (d.length > 100 ? `${d.length} chars` : d)
        : d.byteLength;
      events.push(`message:${shown}`);
      if (e.data === "close") socket.close(4000, "server says bye");
      else socket.send(e.data);
    };
    socket.onerror = () => events.push("error");
    socket.onclose = (e) => events.push(`close:${e.code}:${e.wasClean}:${e.reason}`);
    return response;
  };
}

interface Run {
  head: string[];
  received: number[];
  log: string[];
  events: string[];
}

/** Run `script` against both servers. */
async function both(
  path: string,
  script: (c: RawClient) => Promise<void>,
  settle: (events: string[]) => boolean,
): Promise<{ deno: Run; ours: Run }> {
  const runs: Run[] = [];
  for (const kind of ["deno", "ours"]) {
    const events: string[] = [];
    const server = kind === "deno"
      ? Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, handler(events))
      : serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, handler(events));
    try {
      const c = await RawClient.open((server.addr as Deno.NetAddr).port, {
        path,
        protocols: "superchat, chat",
      });
      try {
        await script(c);
        await waitFor(() => settle(events), `${kind} events (have ${events.join(" | ")})`);
      } finally {
        await c.close();
      }
      const head = c.head.split("\r\n").slice(1).map((l) => l.toLowerCase())
        .filter((l) => !l.startsWith("date:")).sort();
      runs.push({
        head: [c.head.split("\r\n")[0]!, ...head],
        received: c.received,
        log: c.log,
        events,
      });
    } finally {
      await server.shutdown();
    }
  }
  return { deno: runs[0]!, ours: runs[1]! };
}

Deno.test("differential: echo, pong and the client's close: same head, same bytes, same events", async () => {
  await withFdCheck(async () => {
    const { deno, ours } = await both("/?proto", async (c) => {
      await c.send(
        clientFrame(Opcode.Text, "hello"),
        clientFrame(Opcode.Binary, new Uint8Array([1, 2, 3])),
        clientFrame(Opcode.Ping, "p"),
        clientFrame(Opcode.Text, "x".repeat(70000)),
      );
      await c.waitCount(4);
      await c.send(clientFrame(Opcode.Close, encodeClosePayload(1000, "done")));
      await c.waitEof();
    }, (e) => e.some((x) => x.startsWith("close:")));
    assertEquals(ours.head, deno.head);
    assert(ours.head.includes("sec-websocket-protocol: chat"), ours.head.join());
    assertEquals(ours.log.map((l) => l.slice(0, 200)), deno.log.map((l) => l.slice(0, 200)));
    assertEquals(ours.log.length, 6); // 4 echoes, the close, the EOF
    assertEquals(ours.received, deno.received);
    // Deno's server socket never reports the subprotocol it answered with.
    assertEquals(ours.events.map((e) => e.replace("open:1:chat", "open:1:")), deno.events);
    assertEquals(ours.events, [
      "created:0:arraybuffer",
      "early:InvalidStateError",
      "open:1:chat",
      "message:hello",
      "message:3",
      "message:70000 chars",
      "close:1000:true:done",
    ]);
  });
});

Deno.test("differential: the server closes with a code and a reason", async () => {
  await withFdCheck(async () => {
    const { deno, ours } = await both("/", async (c) => {
      await c.send(clientFrame(Opcode.Text, "close"));
      await c.waitCount(1);
      await c.send(clientFrame(Opcode.Close, encodeClosePayload(4000)));
      await c.waitEof();
    }, (e) => e.some((x) => x.startsWith("close:")));
    assertEquals(ours.head, deno.head);
    assertEquals(ours.log, deno.log);
    assertEquals(ours.received, deno.received);
    assertEquals(ours.events, deno.events);
    assertEquals(ours.log[0], "close:4000:server says bye");
  });
});

Deno.test("differential: an abrupt TCP close: error then close (1006 here, 0 on Deno)", async () => {
  await withFdCheck(async () => {
    const { deno, ours } = await both("/", async (c) => {
      await c.send(clientFrame(Opcode.Text, "hi"));
      await c.waitCount(1);
      await c.close();
    }, (e) => e.some((x) => x.startsWith("close:")));
    const normal = (events: string[]) =>
      events.map((e) => e.replace(/^close:(0|1006):/, "close:ABRUPT:"));
    assertEquals(normal(ours.events), normal(deno.events));
    assertEquals(ours.events.slice(-2), ["error", "close:1006:false:"]);
  });
});

Deno.test("a protocol violation (an unmasked frame) fails with 1002; what Deno.serve does is printed", async () => {
  await withFdCheck(async () => {
    const results: string[] = [];
    for (const kind of ["deno", "ours"]) {
      const events: string[] = [];
      const server = kind === "deno"
        ? Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, handler(events))
        : serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, handler(events));
      try {
        const c = await RawClient.open((server.addr as Deno.NetAddr).port);
        try {
          await c.send(rawFrame(1, "not masked", { masked: false }));
          await waitFor(() => c.log.includes("eof"), "eof", 2000).catch(() => {});
          results.push(c.log.join(" | ") || "(nothing)");
        } finally {
          await c.close();
        }
        await waitFor(() => events.some((x) => x.startsWith("close:")), "the close event");
      } finally {
        await server.shutdown();
      }
    }
    console.log(`an unmasked frame: Deno.serve answered ${results[0]}; ffinet ${results[1]}`);
    assertEquals(results[1], "close:1002: | eof");
  });
});

Deno.test("differential: handshakes Deno refuses are refused here too (TypeError)", async () => {
  await withFdCheck(async () => {
    const results: string[][] = [];
    for (const kind of ["deno", "ours"]) {
      const events: string[] = [];
      const server = kind === "deno"
        ? Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, handler(events))
        : serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, handler(events));
      const port = (server.addr as Deno.NetAddr).port;
      const got: string[] = [];
      try {
        for (
          const headers of [
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n", // no key
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n", // no upgrade
            "Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n", // no connection
          ]
        ) {
          const conn = await Deno.connect({ hostname: "127.0.0.1", port });
          try {
            await conn.write(
              new TextEncoder().encode(`GET / HTTP/1.1\r\nHost: x\r\n${headers}\r\n`),
            );
            const buf = new Uint8Array(4096);
            const n = await conn.read(buf);
            const text = new TextDecoder().decode(buf.subarray(0, n ?? 0));
            got.push(`${text.split("\r\n")[0]} ${text.split("\r\n\r\n")[1]}`);
          } finally {
            conn.close();
          }
        }
      } finally {
        await server.shutdown();
      }
      results.push(got);
    }
    assertEquals(results[1], results[0]);
    assertEquals(results[1]![0], "HTTP/1.1 400 Bad Request TypeError");
  });
});
