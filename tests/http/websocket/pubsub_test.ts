/**
 * Pub/sub on one thread: a publish's frame is built once and handed to
 * every subscriber's connection, so these tests check the bytes each
 * subscriber gets (text, binary, the three header sizes, a compressing
 * subscriber that frames the message itself), that every subscriber gets
 * every message once and in order, and that a subscriber that never reads
 * is closed with the configured backpressure code (1008 or 1009) at the
 * limit while the others keep getting every message, even when a handler
 * unsubscribes another socket in the middle of a publish.
 *
 * @module
 */
import { assert, assertEquals, assertLessOrEqual } from "@std/assert";
import { type HandlerWebSocket, publish, serve, upgradeWithHandlers } from "../../../http/mod.ts";
import type { WebSocketHandlers } from "../../../http/mod.ts";
import type { MessageInflater } from "../../../http/websocket/mod.ts";
import zlib from "node:zlib";
import { Buffer } from "node:buffer";
import { RawClient, waitFor } from "./_client.ts";
import { concat } from "./_frames.ts";
import { withFdCheck } from "../../_helpers.ts";

const HANDSHAKE = new TextEncoder().encode(
  "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
);

const TAIL = [0, 0, 0xff, 0xff];

/** A client-side inflater (Node's zlib) counting the compressed messages. */
function countingInflater(): MessageInflater & { compressed: number } {
  let parts: Uint8Array[] = [];
  return {
    compressed: 0,
    inflate(input) {
      parts.push(input.slice());
      if (input.length !== 4 || !input.every((b, i) => b === TAIL[i])) return new Uint8Array(0);
      const out = zlib.inflateRawSync(Buffer.from(concat(...parts)), {
        finishFlush: zlib.constants.Z_SYNC_FLUSH,
      });
      parts = [];
      this.compressed++;
      return new Uint8Array(out);
    },
    endMessage() {},
  };
}

function startServer(handlers: WebSocketHandlers<number>): {
  port: number;
  sockets: HandlerWebSocket<number>[];
  close(): Promise<void>;
} {
  const sockets: HandlerWebSocket<number>[] = [];
  let next = 0;
  const open = handlers.open;
  const server = serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req) =>
      upgradeWithHandlers(req, {
        ...handlers,
        open(ws) {
          sockets.push(ws);
          open?.(ws);
        },
      }, { data: next++ }),
  );
  return {
    port: (server.addr as Deno.NetAddr).port,
    sockets,
    close: () => server.shutdown(),
  };
}

/**
 * A subscriber that reads every frame (server frames are unmasked) and
 * keeps the text messages, or, while `reading` is false, reads nothing.
 */
class Subscriber {
  readonly texts: string[] = [];
  closeCode = 0;
  eof = false;
  #buf = new Uint8Array(0);
  #reading: Promise<void> | undefined;

  private constructor(readonly conn: Deno.TcpConn) {}

  static async open(port: number, read: boolean): Promise<Subscriber> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(HANDSHAKE);
    const s = new Subscriber(conn);
    if (read) s.read();
    return s;
  }

  /** Start reading: the 101 head, then frames, until EOF. */
  read(): void {
    this.#reading ??= (async () => {
      const chunk = new Uint8Array(1 << 16);
      let head = true;
      try {
        for (;;) {
          const n = await this.conn.read(chunk);
          if (n === null) break;
          let data = chunk.subarray(0, n);
          if (head) {
            this.#append(data);
            const text = new TextDecoder().decode(this.#buf);
            const end = text.indexOf("\r\n\r\n");
            if (end < 0) continue;
            assert(text.startsWith("HTTP/1.1 101 "), text);
            head = false;
            data = this.#buf.slice(end + 4);
            this.#buf = new Uint8Array(0);
          }
          this.#append(data);
          this.#frames();
        }
      } catch { /* reset */ }
      this.eof = true;
    })();
  }

  #append(data: Uint8Array): void {
    const grown = new Uint8Array(this.#buf.length + data.length);
    grown.set(this.#buf);
    grown.set(data, this.#buf.length);
    this.#buf = grown;
  }

  #frames(): void {
    const b = this.#buf;
    let off = 0;
    for (;;) {
      if (b.length - off < 2) break;
      let len = b[off + 1]! & 0x7f;
      let hdr = 2;
      if (len === 126) {
        if (b.length - off < 4) break;
        len = b[off + 2]! << 8 | b[off + 3]!;
        hdr = 4;
      } else if (len === 127) {
        if (b.length - off < 10) break;
        len = Number(new DataView(b.buffer, b.byteOffset + off + 2, 8).getBigUint64(0));
        hdr = 10;
      }
      if (b.length - off < hdr + len) break;
      const op = b[off]! & 0x0f;
      const payload = b.subarray(off + hdr, off + hdr + len);
      if ((b[off]! & 0xf0) !== 0x80) this.texts.push(`not a whole, plain frame: ${b[off]}`);
      else if (op === 1) this.texts.push(new TextDecoder().decode(payload.subarray(0, 16)));
      else if (op === 8) this.closeCode = payload[0]! << 8 | payload[1]!;
      off += hdr + len;
    }
    this.#buf = b.slice(off);
  }

  async close(): Promise<void> {
    try {
      this.conn.close();
    } catch { /* closed */ }
    await this.#reading;
  }
}

Deno.test("pub/sub: every subscriber gets each publish once, in order, byte for byte (text, binary, 3 header sizes, compression)", async () => {
  await withFdCheck(async () => {
    const server = startServer({
      open: (ws) => ws.subscribe("room"),
      message() {},
      idleTimeout: 0,
      perMessageDeflate: { threshold: 0 },
    });
    const clients: RawClient[] = [];
    try {
      for (let i = 0; i < 12; i++) clients.push(await RawClient.open(server.port));
      const inflater = countingInflater();
      const deflated = await RawClient.open(server.port, {
        extensions: "permessage-deflate",
        inflater,
      });
      assert(/permessage-deflate/i.test(deflated.head), deflated.head);
      clients.push(deflated);
      await waitFor(() => server.sockets.length === clients.length, "every open handler");
      const big = new Uint8Array(70_000).map((_, i) => i * 7);
      const expected: string[] = [];
      const counts: number[] = [];
      for (let i = 0; i < 40; i++) {
        counts.push(publish("room", `t${i}`));
        expected.push(`text:t${i}`);
        const bytes = new Uint8Array([i, 255 - i, 0]);
        counts.push(publish("room", bytes.buffer));
        expected.push(`binary:${i},${255 - i},0`);
      }
      const text300 = "é€".repeat(100); // 500 UTF-8 bytes: a 4-byte header
      counts.push(publish("room", text300));
      expected.push(`text:${text300}`);
      // A view of a larger buffer: only the view goes out (an 8-byte header).
      counts.push(publish("room", new DataView(big.buffer, 1, 69_999)));
      expected.push(`binary:${Array.from(big.subarray(1)).join(",")}`);
      assertEquals(counts, expected.map(() => clients.length));
      for (const c of clients) await c.waitCount(expected.length);
      for (const c of clients) assertEquals(c.log, expected);
      // The exact bytes of the first frames of a plain subscriber.
      assertEquals(clients[0]!.received.slice(0, 9), [0x81, 2, 0x74, 0x30, 0x82, 3, 0, 255, 0]);
      // The compressing subscriber's messages were each compressed for it alone.
      assertEquals(inflater.compressed, expected.length);
      for (const c of clients) await c.close();
    } finally {
      await server.close();
    }
  });
});

for (const code of [1008, 1009] as const) {
  Deno.test(`pub/sub: a subscriber that never reads is closed with ${code} at the limit; the others get every message in order, even when a handler unsubscribes mid-publish`, async () => {
    await withFdCheck(async () => {
      const limit = 256 * 1024;
      const events: string[] = [];
      let first: HandlerWebSocket<number> | undefined;
      const server = startServer({
        open(ws) {
          first ??= ws;
          ws.subscribe("room");
        },
        message() {},
        error(ws, message) {
          events.push(`error:${ws.data}:${message.slice(0, 24)}`);
          // In the middle of the publish: the first subscriber leaves.
          first!.unsubscribe("room");
        },
        close: (ws, c) => events.push(`close:${ws.data}:${c}`),
        idleTimeout: 0,
        // The slow subscriber never answers the close: its close handler runs when
        // closeTimeoutMs resets it. 2 s (not the 5 s default): the slow one has read
        // all it was sent (within a few ms) long before that reset.
        limits: { maxBufferedAmount: limit, backpressureCloseCode: code, closeTimeoutMs: 2000 },
      });
      const subs: Subscriber[] = [];
      try {
        // The order of subscription is the order of the walk: the first
        // subscriber, the one that never reads, then the others.
        const order = [true, false, true, true, true];
        for (const read of order) {
          subs.push(await Subscriber.open(server.port, read));
          await waitFor(() => server.sockets.length === subs.length, "its open handler");
        }
        const slow = subs[1]!;
        const fast = subs.filter((s) => s !== slow);
        const slowWs = server.sockets[1]!;
        const pad = "x".repeat(32 * 1024);
        let sent = 0;
        let failedAt = -1;
        let peak = 0;
        while (failedAt < 0 && sent < 4000) {
          for (let k = 0; k < 8 && failedAt < 0; k++) {
            publish("room", `m${String(sent).padStart(6, "0")}:${pad}`);
            sent++;
            if (slowWs.readyState !== 1) failedAt = sent - 1;
            else peak = Math.max(peak, slowWs.bufferedAmount);
          }
          // The readers keep up with every publish: the slow one holds nobody back.
          const want = sent;
          await waitFor(
            () => fast.slice(1).every((s) => s.texts.length === want),
            `publish ${want - 1} at every reader`,
          );
        }
        assert(failedAt >= 0, `the slow subscriber was never closed after ${sent} publishes`);
        assertLessOrEqual(peak, limit * 1.1, "bufferedAmount stays within the limit + 10 %");
        assertEquals(events[0], "error:1:the peer does not read: ");
        // Every reader but the first got every message once, in order: the
        // walk went on past the first subscriber's leaving.
        const all = Array.from(
          { length: sent },
          (_, i) => `m${String(i).padStart(6, "0")}:xxxxxxxx`,
        );
        for (const s of fast.slice(1)) assertEquals(s.texts, all);
        // The first left during publish `failedAt` (after getting it): no more after that.
        await new Promise((r) => setTimeout(r, 100));
        assertEquals(fast[0]!.texts, all.slice(0, failedAt + 1));
        // The slow one, reading at last: what was queued, then the close code.
        slow.read();
        await waitFor(() => slow.eof || slow.closeCode !== 0, "the slow subscriber's close");
        assertEquals(slow.closeCode, code);
        assertEquals(slow.texts, all.slice(0, slow.texts.length));
        assert(slow.texts.length < failedAt + 1, "the message past the limit was not queued");
        await waitFor(() => events.includes(`close:1:${code}`), `the close handler (${events})`);
        // After it all, a publish still reaches each remaining subscriber once.
        assertEquals(publish("room", "after"), 3);
      } finally {
        for (const s of subs) await s.close();
        await server.close();
      }
    });
  });
}
