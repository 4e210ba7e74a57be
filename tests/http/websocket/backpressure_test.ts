/**
 * Backpressure against a peer that never reads, for one `send()` larger
 * than `maxBufferedAmount`: the message goes out in fragments while the
 * queue stays within the limit, then the connection closes with the
 * configured code (1009 or 1008). The server's queue (`bufferedAmount`)
 * and its RSS stay bounded; the peer, once it reads, finds fragments and
 * the close frame, never the whole message. Both socket APIs, on real
 * sockets; and `bufferedAmount` exact across the fragments.
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import { serve } from "../../../http/mod.ts";
import {
  FrameParser,
  type HandlerWebSocket,
  resolveWebSocketLimits,
  upgradeWebSocket,
  upgradeWithHandlers,
} from "../../../http/websocket/mod.ts";
import { Session } from "../../../http/websocket/_session.ts";
import { readProcFile } from "../../../ffi/process.ts";
import { Recorder, SessionConnection } from "./_frames.ts";
import { WAIT_MS, waitFor } from "./_client.ts";
import { withFdCheck } from "../../_helpers.ts";

const LIMIT = 1024 * 1024;
/** Far past the limit and past any loopback socket buffer (a few MiB). */
const MESSAGE = 64 * 1024 * 1024;

function rssKiB(): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readProcFile("/proc/self/status"))?.[1] ?? NaN);
}

/** Close `conn` unless it is closed already. */
function closeQuietly(conn: Deno.TcpConn): void {
  try {
    conn.close();
  } catch { /* closed already */ }
}

/** A client that shakes hands and then reads nothing until told to. */
async function openNonReading(port: number): Promise<Deno.TcpConn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(new TextEncoder().encode(
    `GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  ));
  // Read exactly the 101 head: the frames after it stay in the socket.
  const head: number[] = [];
  const one = new Uint8Array(1);
  while (!(head.length >= 4 && head.slice(-4).join() === "13,10,13,10")) {
    const n = await conn.read(one);
    assert(n !== null, "the server closed before its 101");
    head.push(one[0]!);
  }
  assert(new TextDecoder().decode(new Uint8Array(head)).startsWith("HTTP/1.1 101"));
  return conn;
}

/**
 * What the server sent after the 101, parsed as a client would, up to its
 * close frame, its FIN, or `WAIT_MS` (then the connection is closed here).
 */
async function readAll(conn: Deno.TcpConn): Promise<{ log: string[]; bytes: number }> {
  const rec = new Recorder();
  const parser = new FrameParser(rec, {
    role: "client",
    limits: { maxMessageSize: 2 * MESSAGE },
  });
  const buf = new Uint8Array(1 << 20);
  let bytes = 0;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    closeQuietly(conn);
  }, WAIT_MS);
  try {
    while (!parser.done) {
      let n: number | null;
      try {
        n = await conn.read(buf);
      } catch {
        rec.log.push(timedOut ? "timeout" : "reset");
        break;
      }
      if (n === null) break;
      bytes += n;
      parser.push(buf.subarray(0, n));
    }
  } finally {
    clearTimeout(timer);
  }
  return { log: rec.log, bytes };
}

interface Outcome {
  returned: number;
  bufferedAfterSend: number;
  rssGrowthKiB: number;
  closeCode: number;
  wasClean: boolean | undefined;
  log: string[];
  bytes: number;
}

/**
 * One oversized send to a client that does not read, on the API `kind`;
 * then the client reads everything.
 */
async function oversizedSend(kind: "deno" | "handlers", code: 1008 | 1009): Promise<Outcome> {
  const payload = new Uint8Array(MESSAGE).fill(0x5a); // touched: counted in RSS before the send
  const limits = { maxBufferedAmount: LIMIT, backpressureCloseCode: code, closeTimeoutMs: 5000 };
  let result: Partial<Outcome> = {};
  let send: (() => void) | undefined;
  const server = serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    if (kind === "handlers") {
      return upgradeWithHandlers(req, {
        limits,
        idleTimeout: 0,
        open(ws: HandlerWebSocket<undefined>) {
          send = () => {
            const before = rssKiB();
            result.returned = ws.send(payload);
            result.bufferedAfterSend = ws.bufferedAmount;
            result.rssGrowthKiB = rssKiB() - before;
          };
        },
        message() {},
        close(_ws, c) {
          result.closeCode = c;
        },
      });
    }
    const { socket, response } = upgradeWebSocket(req, { limits, idleTimeout: 0 });
    socket.onopen = () => {
      send = () => {
        const before = rssKiB();
        socket.send(payload);
        result.returned = socket.readyState;
        result.bufferedAfterSend = socket.bufferedAmount;
        result.rssGrowthKiB = rssKiB() - before;
      };
    };
    socket.onclose = (e) => {
      result.closeCode = e.code;
      result.wasClean = e.wasClean;
    };
    return response;
  });
  const conn = await openNonReading((server.addr as Deno.NetAddr).port);
  try {
    await waitFor(() => send !== undefined, "the socket's open");
    send!();
    // Now read: the fragments, the close frame, then the server's FIN.
    const { log, bytes } = await readAll(conn);
    closeQuietly(conn);
    await waitFor(() => result.closeCode !== undefined, "the server's close");
    result = { ...result, log, bytes };
  } finally {
    closeQuietly(conn);
    await server.shutdown();
  }
  return result as Outcome;
}

for (const kind of ["deno", "handlers"] as const) {
  for (const code of [1009, 1008] as const) {
    Deno.test(`backpressure (${kind}): one send of 64 MiB to a client that never reads queues at most the limit, then ${code}`, async () => {
      await withFdCheck(async () => {
        const r = await oversizedSend(kind, code);
        // The queue: what was not handed to the kernel stays within the limit + 10 %.
        assert(
          r.bufferedAfterSend <= LIMIT * 1.1,
          `bufferedAmount after the send: ${r.bufferedAfterSend}`,
        );
        // Memory: the message was not copied into the queue (that would be ~60 MiB).
        assert(r.rssGrowthKiB < 16 * 1024, `RSS grew by ${r.rssGrowthKiB} KiB during the send`);
        if (kind === "handlers") assertEquals(r.returned, 0); // dropped
        else assertEquals(r.returned, 2); // CLOSING at once
        assertEquals(r.closeCode, code);
        if (kind === "deno") assertEquals(r.wasClean, false);
        // On the wire: fragments, then the close frame with the code; no whole message.
        const close = r.log.find((l) => l.startsWith("close:") || l.startsWith("fail:"));
        assertEquals(close, `close:${code}:`, `the client saw ${r.log.slice(-3).join(" ")}`);
        assert(!r.log.some((l) => l.startsWith("binary:")), "the whole message arrived");
        assert(r.bytes < MESSAGE / 2, `the client received ${r.bytes} bytes`);
      });
    });
  }
}

Deno.test("backpressure: an oversized send is fragmented up to the limit, bufferedAmount counts exactly the fragments queued, then the close frame", () => {
  const conn = new SessionConnection(0);
  const errors: string[] = [];
  const session = new Session(
    conn,
    resolveWebSocketLimits({ idleTimeout: 0, maxBufferedAmount: 4096 }),
    { message() {}, drain() {}, error: (m) => errors.push(m), closed() {} },
  );
  session.start(new Uint8Array(0));
  assertEquals(session.send(new Uint8Array(2000).fill(1)), 0); // one frame of 2 + 2 + 2000
  assertEquals(conn.queued, 2004);
  // 3000 more cannot all be queued: fragments of 4096 / 8 = 512 bytes (516 framed)
  // go while the queue stays within 4096: four of them (2004 + 4 × 516 = 4068).
  assertEquals(session.send(new Uint8Array(3000).fill(2)), -1);
  assertEquals(session.bufferedAmount, 2000 + 4 * 512);
  assertEquals(errors.length, 1);
  assert(/over 4096 bytes queued/.test(errors[0]!), errors[0]);
  assertEquals(session.state, 2); // CLOSING
  assertEquals(conn.state, "ending");
  // The queue: the first message, four fragments, and the close frame (4 bytes).
  assertEquals(conn.queued, 4068 + 4);
  assert(conn.queued <= 4096 + 125);
  const log = conn.received();
  assertEquals(log.length, 2);
  assert(log[0]!.startsWith("binary:1,1,"), "the first message arrives whole");
  assertEquals(log[1], "close:1009:"); // the fragments make no message
  // The wire bytes of the fragments: binary without FIN, then continuations without FIN.
  const wire = conn.bytes();
  assertEquals([wire[2004], wire[2005], wire[2006], wire[2007]], [0x02, 126, 2, 0]);
  assertEquals([wire[2004 + 516], wire[2004 + 516 + 1]], [0x00, 126]);
  conn.close();
});

Deno.test("backpressure: a message over the limit to an empty queue goes out whole when the kernel takes it", () => {
  // A connection whose kernel takes everything: nothing is ever queued.
  const conn = new SessionConnection();
  const session = new Session(
    conn,
    resolveWebSocketLimits({ idleTimeout: 0, maxBufferedAmount: 4096 }),
    { message() {}, drain() {}, error() {}, closed() {} },
  );
  session.start(new Uint8Array(0));
  assertEquals(session.send("x".repeat(10_000)), 0);
  assertEquals(session.state, 1); // still open
  assertEquals(session.lastFrameBytes, 10_000 + 20 * 4); // 20 fragments of at most 512 (4-byte headers)
  assertEquals(session.bufferedAmount, 0);
  assertEquals(conn.received(), [`text:${"x".repeat(10_000)}`]);
  session.close(1000);
  conn.close();
});
