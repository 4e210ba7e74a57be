/**
 * `ErrnoError` is also an instance of the matching `Deno.errors` class (as
 * Deno's own calls throw), keeping `code`, `errno` and `syscall`: checked
 * for every mapped errno, and on real failures (a reset connection, a busy
 * port, a refused connect).
 *
 * @module
 */
import { assert, assertEquals, assertInstanceOf } from "@std/assert";
import { ErrnoError } from "../../ffi/errno.ts";
import { connect, type Connection, Listener, Reactor } from "../../reactor/mod.ts";
import type { InetAddress } from "../../ffi/sockaddr.ts";
import { serve } from "../../http/mod.ts";

type ErrorClass = new (message?: string) => Error;
const MAPPED: [number, string, ErrorClass][] = [
  [1, "EPERM", Deno.errors.PermissionDenied],
  [2, "ENOENT", Deno.errors.NotFound],
  [4, "EINTR", Deno.errors.Interrupted],
  [11, "EAGAIN", Deno.errors.WouldBlock],
  [13, "EACCES", Deno.errors.PermissionDenied],
  [17, "EEXIST", Deno.errors.AlreadyExists],
  [32, "EPIPE", Deno.errors.BrokenPipe],
  [98, "EADDRINUSE", Deno.errors.AddrInUse],
  [99, "EADDRNOTAVAIL", Deno.errors.AddrNotAvailable],
  [101, "ENETUNREACH", Deno.errors.NetworkUnreachable],
  [103, "ECONNABORTED", Deno.errors.ConnectionAborted],
  [104, "ECONNRESET", Deno.errors.ConnectionReset],
  [107, "ENOTCONN", Deno.errors.NotConnected],
  [110, "ETIMEDOUT", Deno.errors.TimedOut],
  [111, "ECONNREFUSED", Deno.errors.ConnectionRefused],
];

/** `e` as an ErrnoError, or a failed test. */
function asErrno(e: unknown): ErrnoError {
  if (!(e instanceof ErrnoError)) throw new Error(`Expected an ErrnoError, got ${e}`);
  return e;
}

/** The Deno.errors classes `e` is an instance of, by name. */
function denoClasses(e: unknown): string[] {
  return Object.entries(Deno.errors).filter(([, C]) => e instanceof C).map(([name]) => name);
}

Deno.test("errno classes: each mapped errno is its Deno.errors class and still an ErrnoError", () => {
  for (const [errno, code, Class] of MAPPED) {
    const e = new ErrnoError("call", errno, { detail: "d" });
    assertInstanceOf(e, Class, code);
    assertEquals(denoClasses(e), [Class.name], code);
    assert(e instanceof ErrnoError, `${code} is an ErrnoError`);
    assertInstanceOf(e, Error);
    assertEquals([e.code, e.errno, e.syscall, e.name], [code, errno, "call", "ErrnoError"]);
    assertEquals(e.constructor, ErrnoError);
    assert(e.message.startsWith(`Cannot call: ${code} (`), e.message);
    assert(typeof e.stack === "string" && e.stack.includes("Cannot call"));
  }
});

Deno.test("errno classes: an errno without a Deno class is a plain ErrnoError; others are not ErrnoErrors", () => {
  const e = new ErrnoError("ioctl", 22); // EINVAL
  assertEquals(denoClasses(e), []);
  assert(e instanceof ErrnoError);
  assertEquals(Object.getPrototypeOf(e), ErrnoError.prototype);
  assert(!(new Error("x") instanceof ErrnoError));
  assert(!(new Deno.errors.AddrInUse("x") instanceof ErrnoError));
  const notObjects: unknown[] = [null, "x", 98];
  for (const v of notObjects) assert(!(v instanceof ErrnoError));
  // A subclass keeps its own prototype chain.
  class Sub extends ErrnoError {}
  const s = new Sub("recv", 104);
  assert(s instanceof Sub && s instanceof ErrnoError);
  assert(!(new ErrnoError("recv", 104) instanceof Sub));
});

Deno.test("errno classes: a reset connection closes with a Deno.errors.ConnectionReset", async () => {
  const reactor = new Reactor();
  const running = reactor.run();
  try {
    // The server resets every connection it accepts (SO_LINGER 0).
    using listener = Listener.listen(
      reactor,
      { host: "127.0.0.1", port: 0 },
      (conn) => {
        conn.onData = () => conn.abort();
      },
    );
    const { port } = listener.address() as InetAddress;
    const conn: Connection = await connect(reactor, { host: "127.0.0.1", port }, {
      timeoutMs: 5_000,
    });
    const closed = new Promise<Error | undefined>((resolve) => {
      conn.onData = () => {};
      conn.onClose = (_c, error) => resolve(error);
    });
    conn.write(new TextEncoder().encode("x"));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const error = await Promise.race([
      closed,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("no close within 10 s")), 10_000);
      }),
    ]);
    clearTimeout(timer);
    assertInstanceOf(error, Deno.errors.ConnectionReset);
    const e = asErrno(error);
    assertEquals([e.code, e.errno], ["ECONNRESET", 104]);
    assert(e.syscall.length > 0);
  } finally {
    reactor.stop();
    await running;
    reactor.close();
  }
});

Deno.test("errno classes: serve() on a busy port throws Deno.errors.AddrInUse with code, errno, syscall", async () => {
  const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    let caught: unknown;
    try {
      const s = serve(
        { hostname: "127.0.0.1", port: busy.addr.port, onListen() {} },
        () => new Response(),
      );
      await s.shutdown();
    } catch (e) {
      caught = e;
    }
    assertInstanceOf(caught, Deno.errors.AddrInUse);
    const e = asErrno(caught);
    assertEquals([e.code, e.errno, e.syscall], ["EADDRINUSE", 98, "bind"]);
  } finally {
    busy.close();
  }
});

Deno.test("errno classes: a refused connect is a Deno.errors.ConnectionRefused", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = l.addr.port;
  l.close(); // nothing listens there now
  const reactor = new Reactor();
  const running = reactor.run();
  try {
    let caught: unknown;
    try {
      (await connect(reactor, { host: "127.0.0.1", port }, { timeoutMs: 5_000 })).close();
    } catch (e) {
      caught = e;
    }
    assertInstanceOf(caught, Deno.errors.ConnectionRefused);
    assertEquals(asErrno(caught).code, "ECONNREFUSED");
  } finally {
    reactor.stop();
    await running;
    reactor.close();
  }
});
