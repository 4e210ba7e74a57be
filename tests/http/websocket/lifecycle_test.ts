/**
 * The socket's lifecycle on `serve()`: backpressure against a client that
 * never reads (bounded memory, then 1009 or 1008), the exact
 * `bufferedAmount`, keep-alive pings and the idle timeout, the close
 * timeout, `close()` argument checks and a close before open, blob sends
 * kept in order, `binaryType`, and refused upgrades.
 *
 * @module
 */
import { assert, assertEquals, assertThrows } from "@std/assert";
import { serve } from "../../../http/mod.ts";
import {
  encodeClosePayload,
  Opcode,
  resolveWebSocketLimits,
  type ServerWebSocket,
  upgradeWebSocket,
  type UpgradeWebSocketOptions,
} from "../../../http/websocket/mod.ts";
import { Session } from "../../../http/websocket/_session.ts";
import { clientFrame, SessionConnection } from "./_frames.ts";
import { RawClient, startEchoServer, waitFor } from "./_client.ts";
import { withFdCheck } from "../../_helpers.ts";

/** A server whose handler hands each socket to `onSocket`. */
function startServer(
  options: UpgradeWebSocketOptions,
  onSocket: (socket: ServerWebSocket) => void,
): { port: number; close(): Promise<void> } {
  const server = serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const { socket, response } = upgradeWebSocket(req, options);
    onSocket(socket);
    return response;
  });
  return { port: (server.addr as Deno.NetAddr).port, close: () => server.shutdown() };
}

/** A client that shakes hands and then never reads. */
async function openNonReading(port: number): Promise<Deno.TcpConn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(new TextEncoder().encode(
    `GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  ));
  const buf = new Uint8Array(160); // the 101 head is shorter: nothing else is read
  const n = await conn.read(buf);
  assert(n !== null && new TextDecoder().decode(buf.subarray(0, n)).startsWith("HTTP/1.1 101"));
  return conn;
}

for (const code of [1009, 1008] as const) {
  Deno.test(`backpressure: a client that never reads cannot grow the queue past the limit + 10 %; then ${code}`, async () => {
    await withFdCheck(async () => {
      const limit = 1024 * 1024;
      let maxBuffered = 0;
      let sends = 0;
      let closeEvent: CloseEvent | undefined;
      const server = startServer(
        { limits: { maxBufferedAmount: limit, backpressureCloseCode: code, closeTimeoutMs: 300 } },
        (socket) => {
          socket.onopen = () => {
            const chunk = new Uint8Array(64 * 1024).fill(7);
            const pump = () => {
              // Send until the socket gives up (at most 256 MiB: far past any kernel buffer).
              while (socket.readyState === 1 && sends < 4096) {
                socket.send(chunk);
                sends++;
                maxBuffered = Math.max(maxBuffered, socket.bufferedAmount);
                if (sends % 16 === 0) return void setTimeout(pump, 0);
              }
            };
            pump();
          };
          socket.onclose = (e) => closeEvent = e;
        },
      );
      const conn = await openNonReading(server.port);
      try {
        await waitFor(() => closeEvent !== undefined, "the server's close");
        assertEquals(closeEvent!.code, code);
        assertEquals(closeEvent!.wasClean, false);
        assert(maxBuffered <= limit * 1.1, `bufferedAmount reached ${maxBuffered}`);
        assert(maxBuffered > 0, "the queue never filled: the test did not test");
        assert(sends < 4096, "the server never stopped sending");
      } finally {
        conn.close();
        await server.close();
      }
    });
  });
}

Deno.test("bufferedAmount is exact: application bytes not yet handed to the kernel, frame by frame", () => {
  const conn = new SessionConnection(0);
  const session = new Session(conn, resolveWebSocketLimits({ idleTimeout: 0 }), {
    message() {},
    drain() {},
    error() {},
    closed() {},
  });
  session.start(new Uint8Array(0));
  session.send(new Uint8Array(100)); // frame: 2 + 100
  session.send("héllo"); // frame: 2 + 6
  session.send(new Uint8Array(1000)); // frame: 4 + 1000
  assertEquals(session.bufferedAmount, 1106);
  conn.drain(1); // inside the first frame's header: nothing of its payload is out
  assertEquals(session.bufferedAmount, 1106);
  conn.drain(51); // 50 payload bytes of the first frame are out
  assertEquals(session.bufferedAmount, 1056);
  conn.drain(50); // the first frame is out
  assertEquals(session.bufferedAmount, 1006);
  session.ping(new Uint8Array(5)); // control frames are not application data
  assertEquals(session.bufferedAmount, 1006);
  conn.drain(8 + 4 + 1000);
  assertEquals(session.bufferedAmount, 0);
  conn.drain(7);
  assertEquals(session.bufferedAmount, 0);
  session.close(1000);
  conn.close();
});

Deno.test("idle timeout: a silent client is pinged, then closed (1006); a client that answers stays", async () => {
  await withFdCheck(async () => {
    const server = startEchoServer({ idleTimeout: 1 });
    try {
      const silent = await RawClient.open(server.port);
      const ws = new WebSocket(`ws://127.0.0.1:${server.port}/`); // Deno's client answers pings
      await new Promise((r) => ws.onopen = r);
      const t0 = Date.now();
      await silent.waitEof();
      const elapsed = Date.now() - t0;
      assertEquals(silent.log[0], "ping:");
      assert(elapsed >= 1500, `closed after ${elapsed} ms`);
      await waitFor(() => server.events.includes("close:1006:false"), "the 1006 close");
      assert(server.events.some((e) => e.startsWith("error:") && e.includes("idleTimeout")));
      assertEquals(ws.readyState, WebSocket.OPEN);
      const closed = new Promise((r) => ws.onclose = r);
      ws.close();
      await closed;
      await silent.close();
    } finally {
      await server.close();
    }
  });
});

Deno.test("close timeout: a client that never answers our close is reset after closeTimeoutMs", async () => {
  await withFdCheck(async () => {
    let closeEvent: CloseEvent | undefined;
    const errors: string[] = [];
    const server = startServer({ limits: { closeTimeoutMs: 300 } }, (socket) => {
      socket.onopen = () => socket.close(4000, "go away");
      socket.onerror = (e) => errors.push((e as ErrorEvent).message);
      socket.onclose = (e) => closeEvent = e;
    });
    const c = await RawClient.open(server.port);
    try {
      await c.waitEof();
      assertEquals(c.log[0], "close:4000:go away");
      await waitFor(() => closeEvent !== undefined, "the close event");
      assertEquals([closeEvent!.code, closeEvent!.wasClean], [4000, false]);
      assertEquals(errors.length, 1);
    } finally {
      await c.close();
      await server.close();
    }
  });
});

Deno.test("close(): code and reason checked; a close before open is sent right after the 101", async () => {
  await withFdCheck(async () => {
    const checks: string[] = [];
    const server = startServer({}, (socket) => {
      for (const code of [999, 1004, 1005, 1006, 1015, 2000, 5000, 1000.5]) {
        try {
          socket.close(code);
        } catch (e) {
          checks.push((e as DOMException).name);
        }
      }
      try {
        socket.close(1000, "é".repeat(62)); // 124 bytes
      } catch (e) {
        checks.push((e as DOMException).name);
      }
      socket.close(3001, "early"); // CONNECTING: sent once open
      assertEquals(socket.readyState, 2);
      socket.send("dropped"); // CLOSING: dropped without an error, as with Deno
    });
    const c = await RawClient.open(server.port);
    try {
      await c.waitCount(1);
      assertEquals(c.log, ["close:3001:early"]);
      await c.send(clientFrame(Opcode.Close, encodeClosePayload(3001)));
      await c.waitEof();
      assertEquals(checks, [...Array(8).fill("InvalidAccessError"), "SyntaxError"]);
    } finally {
      await c.close();
      await server.close();
    }
  });
});

Deno.test("send(): a Blob keeps its place in line; binaryType 'blob' delivers Blobs", async () => {
  await withFdCheck(async () => {
    const received: string[] = [];
    const server = startServer({}, (socket) => {
      socket.binaryType = "blob";
      socket.onmessage = async (e) => {
        received.push(e.data instanceof Blob ? `blob:${await e.data.text()}` : String(e.data));
        if (received.length === 1) {
          socket.send("a");
          socket.send(new Blob(["b"]));
          socket.send(new Uint16Array([0x6363]).subarray(0, 1));
          socket.send(new TextEncoder().encode("d").buffer);
          assert(socket.bufferedAmount >= 1); // the blob and what follows wait in line
        }
      };
    });
    const c = await RawClient.open(server.port);
    try {
      await c.send(clientFrame(Opcode.Binary, new TextEncoder().encode("x")));
      await c.waitCount(4);
      assertEquals(c.log, ["text:a", "binary:98", "binary:99,99", "binary:100"]);
      assertEquals(received, ["blob:x"]);
      await c.send(clientFrame(Opcode.Close, encodeClosePayload(1000)));
      await c.waitEof();
    } finally {
      await c.close();
      await server.close();
    }
  });
});

Deno.test("upgradeWebSocket refuses: a request not from serve(), a non-handshake, an unoffered protocol", async () => {
  const handshake = {
    upgrade: "websocket",
    connection: "Upgrade",
    "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
    "sec-websocket-version": "13",
  };
  const e = assertThrows(
    () => upgradeWebSocket(new Request("http://a/", { headers: handshake })),
    TypeError,
  );
  assert(e.message.startsWith("Cannot upgrade to WebSocket"));
  await withFdCheck(async () => {
    const messages: string[] = [];
    const server = serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
      try {
        return upgradeWebSocket(req, { protocol: "chat" }).response;
      } catch (err) {
        messages.push((err as Error).message);
        return new Response("no", { status: 400 });
      }
    });
    const port = (server.addr as Deno.NetAddr).port;
    try {
      using client = Deno.createHttpClient({});
      const r = await fetch(`http://127.0.0.1:${port}/`, { client });
      assertEquals([r.status, await r.text()], [400, "no"]);
      await RawClient.open(port).then(() => assert(false), () => {});
      assertEquals(messages, [
        "Cannot upgrade to WebSocket: the 'upgrade' header does not contain 'websocket'",
        "Cannot upgrade to WebSocket: protocol 'chat' is not in the request's protocol list",
      ]);
    } finally {
      await server.shutdown();
    }
  });
});
