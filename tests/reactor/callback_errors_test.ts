/**
 * Errors thrown by user callbacks: they never stop the reactor or kill the
 * process. They go to the listener's `onError`, else the reactor's, else
 * one `console.error` line naming the registration; the connection at fault
 * is closed and the others keep being served. Writing to a closed
 * connection is a coded `BadResource` error.
 */
import { assert, assertEquals, assertInstanceOf, assertThrows } from "@std/assert";
import type { InetAddress } from "../../ffi/sockaddr.ts";
import { Socket } from "../../ffi/socket.ts";
import {
  connect,
  Connection,
  DatagramSocket,
  Listener,
  Reactor,
  type Registration,
} from "../../reactor/mod.ts";
import { waitFor, withFdCheck } from "../_helpers.ts";
import { bytes, text } from "./_util.ts";

/** A server whose handler throws NotCapable on "boom" and echoes anything else. */
function throwingEcho(conn: Connection): void {
  conn.onData = (data) => {
    if (text(data).includes("boom")) throw new Deno.errors.NotCapable("handler refused: boom");
    conn.write(data);
  };
}

interface Client {
  conn: Connection;
  got: string;
  closed: boolean;
  error: Error | undefined;
}

async function client(reactor: Reactor, port: number): Promise<Client> {
  const conn = await connect(reactor, { host: "127.0.0.1", port });
  const c: Client = { conn, got: "", closed: false, error: undefined };
  conn.onData = (d) => c.got += text(d);
  conn.onClose = (_conn, error) => {
    c.closed = true;
    c.error = error;
  };
  return c;
}

async function scenario(
  reactor: Reactor,
  listenerOnError?: (error: unknown, conn?: Connection) => void,
): Promise<void> {
  const running = reactor.run();
  try {
    using listener = Listener.listen(
      reactor,
      {
        host: "127.0.0.1",
        port: 0,
        ...(listenerOnError === undefined ? {} : { onError: listenerOnError }),
      },
      throwingEcho,
    );
    const port = (listener.address() as InetAddress).port;
    const good1 = await client(reactor, port);
    const bad = await client(reactor, port);
    const good2 = await client(reactor, port);
    good1.conn.write(bytes("one;"));
    await waitFor(() => good1.got === "one;", 3000, "the first echo");
    bad.conn.write(bytes("boom"));
    await waitFor(() => bad.closed, 3000, "the faulty connection to close");
    // The others are still served, and new connections are accepted.
    good1.conn.write(bytes("two;"));
    good2.conn.write(bytes("three;"));
    const late = await client(reactor, port);
    late.conn.write(bytes("four;"));
    await waitFor(
      () => good1.got === "one;two;" && good2.got === "three;" && late.got === "four;",
      3000,
      "echoes after the error",
    );
    assert(!good1.closed && !good2.closed && !late.closed);
    assertEquals(listener.stats.accepted, 4);
    for (const c of [good1, good2, late]) c.conn.close();
    await waitFor(() => reactor.stats.registrations === 1, 3000, "connections to close");
  } finally {
    reactor.stop();
    await running;
  }
}

Deno.test("callback errors: a NotCapable thrown in one onData closes only that connection (reactor onError)", () =>
  withFdCheck(async () => {
    const errors: [unknown, Registration<unknown> | undefined][] = [];
    await using reactor = new Reactor({ onError: (e, reg) => errors.push([e, reg]) });
    await scenario(reactor);
    assertEquals(errors.length, 1);
    assertInstanceOf(errors[0]![0], Deno.errors.NotCapable);
    assert(errors[0]![1] !== undefined, "the error came without its registration");
  }));

Deno.test("callback errors: the listener's onError gets the error and the connection at fault", () =>
  withFdCheck(async () => {
    const reactorErrors: unknown[] = [];
    await using reactor = new Reactor({ onError: (e) => reactorErrors.push(e) });
    const seen: [unknown, Connection | undefined][] = [];
    await scenario(reactor, (e, conn) => seen.push([e, conn]));
    assertEquals(reactorErrors, []);
    assertEquals(seen.length, 1);
    assertInstanceOf(seen[0]![0], Deno.errors.NotCapable);
    assertEquals(seen[0]![1]?.state, "closed");
  }));

Deno.test("callback errors: with no onError anywhere, one console.error line names the registration", () =>
  withFdCheck(async () => {
    await using reactor = new Reactor();
    const logged: unknown[][] = [];
    const original = console.error;
    console.error = (...args: unknown[]) => logged.push(args);
    try {
      await scenario(reactor);
    } finally {
      console.error = original;
    }
    assertEquals(logged.length, 1, `logged ${logged.length} times`);
    assert(String(logged[0]![0]).includes("fd "), String(logged[0]![0]));
    assertInstanceOf(logged[0]![1], Deno.errors.NotCapable);
  }));

Deno.test("callback errors: a throwing onConnection aborts that connection; the listener goes on", () =>
  withFdCheck(async () => {
    const errors: unknown[] = [];
    await using reactor = new Reactor({ onError: (e) => errors.push(e) });
    const running = reactor.run();
    try {
      let n = 0;
      using listener = Listener.listen(reactor, { host: "127.0.0.1", port: 0 }, (conn) => {
        if (++n === 1) throw new Error("first connection refused");
        throwingEcho(conn);
      });
      const port = (listener.address() as InetAddress).port;
      // Aborted at once: the client sees the RST either in connect() or as a close.
      try {
        const first = await client(reactor, port);
        await waitFor(() => first.closed, 3000, "the first connection to be aborted");
      } catch (e) {
        assertEquals((e as { code?: string }).code, "ECONNRESET");
      }
      const second = await client(reactor, port);
      second.conn.write(bytes("ok"));
      await waitFor(() => second.got === "ok", 3000, "the second echo");
      assertEquals(errors.length, 1);
      assertEquals((errors[0] as Error).message, "first connection refused");
      second.conn.close();
      await waitFor(() => reactor.stats.registrations === 1, 3000, "connections to close");
    } finally {
      reactor.stop();
      await running;
    }
  }));

Deno.test("write to a closed, closing or ending connection throws BadResource, not a plain Error", () =>
  withFdCheck(async () => {
    await using reactor = new Reactor();
    for (const how of ["close", "end", "abort"] as const) {
      const [a, b] = Socket.pair();
      const conn = new Connection(reactor, a);
      conn[how]();
      const e = assertThrows(() => conn.write(bytes("late")), Deno.errors.BadResource);
      assertEquals(e.name, "BadResource");
      assert(e.message.startsWith("Cannot write: the connection is"), e.message);
      assertThrows(() => conn.sendFds([0], bytes("x")), Deno.errors.BadResource);
      conn.abort();
      b.close();
    }
  }));

Deno.test("callback errors: a throwing onMessage goes to the datagram socket's onError; it keeps receiving", () =>
  withFdCheck(async () => {
    await using reactor = new Reactor({ onError: (e) => reactorErrors.push(e) });
    const reactorErrors: unknown[] = [];
    const running = reactor.run();
    try {
      using server = DatagramSocket.open(reactor, { bind: { host: "127.0.0.1", port: 0 } });
      using sender = DatagramSocket.open(reactor, { connect: server.address() });
      const errors: unknown[] = [];
      const got: string[] = [];
      server.onError = (e) => errors.push(e);
      server.onMessage = (data) => {
        if (text(data) === "bad") throw new Error("cannot handle bad");
        got.push(text(data));
      };
      sender.send(bytes("bad"));
      sender.send(bytes("good"));
      await waitFor(() => got.length === 1 && errors.length === 1, 3000, "both datagrams");
      assertEquals(got, ["good"]);
      assertEquals((errors[0] as Error).message, "cannot handle bad");
      assertEquals(reactorErrors, []);
    } finally {
      reactor.stop();
      await running;
    }
  }));
