/**
 * The session's output while it parses a chunk: the frames its handlers
 * send go to the connection in one write once the chunk is parsed (one
 * `send` for a batch of messages), in order with control frames and the
 * close, with `bufferedAmount` exact throughout and the backpressure limit
 * still counting them. Run on a connection double that records each
 * `write()` (the session is the unit under test; the real socket path is
 * covered by the other tests of this folder).
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import { Session, type SessionHooks } from "../../../http/websocket/_session.ts";
import { Opcode, resolveWebSocketLimits } from "../../../http/websocket/mod.ts";
import { clientFrame, concat, SessionConnection } from "./_frames.ts";

function echoSession(
  conn: SessionConnection,
  onMessage: (data: string | Uint8Array, session: Session) => void,
  limits = {},
): Session {
  const hooks: SessionHooks = {
    message: (data) => onMessage(data, session),
    drain() {},
    error() {},
    closed() {},
  };
  const session = new Session(
    conn,
    resolveWebSocketLimits({ idleTimeout: 0, ...limits }),
    hooks,
  );
  session.start(new Uint8Array(0));
  return session;
}

Deno.test("session: 16 messages in one chunk are echoed in one write, in order with the pong; bufferedAmount counts the batch", () => {
  const conn = new SessionConnection();
  const seen: number[] = [];
  echoSession(conn, (data, session) => {
    session.send(data);
    // The echoes wait in the batch: they count until the connection has them.
    seen.push(session.bufferedAmount);
  });
  const frames = [];
  for (let i = 0; i < 8; i++) frames.push(clientFrame(Opcode.Text, `message ${i}`));
  frames.push(clientFrame(Opcode.Ping, new Uint8Array([9])));
  for (let i = 8; i < 16; i++) frames.push(clientFrame(Opcode.Text, `message ${i}`));
  conn.onData!(concat(...frames), conn);
  assertEquals(conn.writes.length, 1, "one write for the whole chunk");
  const expected = [];
  for (let i = 0; i < 8; i++) expected.push(`text:message ${i}`);
  expected.push("pong:9");
  for (let i = 8; i < 16; i++) expected.push(`text:message ${i}`);
  assertEquals(conn.received(), expected);
  assertEquals(seen, Array.from({ length: 16 }, (_, i) => 9 * (i + 1) + (i >= 10 ? i - 9 : 0)));
});

Deno.test("session: a batch the kernel takes only in part leaves bufferedAmount exact, frame by frame", () => {
  // The kernel takes the first two echoes (2 + 5 bytes each) and 3 bytes of the third.
  const conn = new SessionConnection(7 * 2 + 3);
  let session!: Session;
  echoSession(conn, (data, s) => {
    session = s;
    s.send(data);
  });
  const frames = ["aaaaa", "bbbbb", "ccccc", "ddddd"].map((t) => clientFrame(Opcode.Text, t));
  conn.onData!(concat(...frames), conn);
  assertEquals(conn.writes.length, 1);
  // 3 of the third echo's 7 bytes went (its 2-byte header and 1 payload byte):
  // 4 of its payload bytes are unsent, and all 5 of the fourth's.
  assertEquals(session.bufferedAmount, 4 + 5);
});

Deno.test("session: a close sent while parsing follows the echoes already batched", () => {
  const conn = new SessionConnection();
  echoSession(conn, (data, session) => {
    session.send(data);
    if (data === "last") session.close(1000, "done");
  });
  conn.onData!(
    concat(clientFrame(Opcode.Text, "one"), clientFrame(Opcode.Text, "last")),
    conn,
  );
  assertEquals(conn.received(), ["text:one", "text:last", "close:1000:done"]);
  assertEquals(conn.state, "open"); // waiting for the peer's close
  conn.close(); // (clears the close timer)
});

Deno.test("session: a message over a small limit sent while parsing still goes out whole when the kernel takes it", () => {
  const conn = new SessionConnection();
  const errors: string[] = [];
  const hooks: SessionHooks = {
    message: () => {
      assertEquals(session.send(new Uint8Array(3000).fill(7)), 0);
    },
    drain() {},
    error: (m) => errors.push(m),
    closed() {},
  };
  const session = new Session(
    conn,
    resolveWebSocketLimits({ idleTimeout: 0, maxBufferedAmount: 1024 }),
    hooks,
  );
  session.start(new Uint8Array(0));
  conn.onData!(clientFrame(Opcode.Text, "go"), conn);
  assertEquals(errors, []);
  assertEquals(session.state, 1);
  // Fragments of 1024 / 8 bytes, gathered up to half the limit per write.
  assert(conn.writes.length > 1, `${conn.writes.length} writes`);
  assert(conn.writes.every((w) => w.length <= 512), "a write past half the limit");
  const log = conn.received();
  assertEquals(log.length, 1);
  assertEquals(log[0], `binary:${Array(3000).fill(7).join(",")}`);
});
