/**
 * `Socket` (ffi/socket.ts) on its own: creation flags, the TCP, UDP and
 * Unix paths over loopback, EAGAIN as `null`, EOF, errors named by call and
 * errno, and ownership (close once, release, dispose). The syscalls under it
 * are tested in `syscalls_test.ts`; sockaddr codecs in `sockaddr_test.ts`.
 */
import { assert, assertEquals, assertInstanceOf, assertThrows } from "@std/assert";
import { ErrnoError } from "../../ffi/errno.ts";
import type { InetAddress, SocketAddress } from "../../ffi/sockaddr.ts";
import { Socket } from "../../ffi/socket.ts";
import { readProcFile } from "../../ffi/process.ts";
import * as sys from "../../ffi/syscalls.ts";
import { listFds, waitFor, withFdCheck } from "../_helpers.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** The `flags:` of /proc/self/fdinfo/FD (octal open flags), read through libc as Deno refuses /proc/self. */
function fdFlags(fd: number): number {
  const m = /^flags:\s+([0-7]+)$/m.exec(readProcFile(`/proc/self/fdinfo/${fd}`));
  if (m === null) throw new Error(`no flags for fd ${fd}`);
  return parseInt(m[1]!, 8);
}
const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;

/** Retry `op` until it gives non-null (a non-blocking call that said EAGAIN). */
async function until<T>(op: () => T | null, what: string): Promise<T> {
  let got: T | null = null;
  await waitFor(() => (got = op()) !== null, 5000, what);
  return got!;
}

/** A TCP listener on an ephemeral loopback port of `family`. */
function tcpListener(family: "inet" | "inet6"): Socket {
  const s = Socket.create(family, "stream");
  s.bind(
    family === "inet"
      ? { family, address: "127.0.0.1", port: 0 }
      : { family, address: "::1", port: 0 },
  );
  s.listen();
  return s;
}

Deno.test("Socket: created SOCK_NONBLOCK | SOCK_CLOEXEC by default; each can be turned off", () =>
  withFdCheck(() => {
    using a = Socket.create("inet", "stream");
    assertEquals(fdFlags(a.fd) & (O_NONBLOCK | O_CLOEXEC), O_NONBLOCK | O_CLOEXEC);
    using b = Socket.create("inet", "dgram", { nonblocking: false });
    assertEquals(fdFlags(b.fd) & (O_NONBLOCK | O_CLOEXEC), O_CLOEXEC);
    using c = Socket.create("unix", "stream", { cloexec: false });
    assertEquals(fdFlags(c.fd) & (O_NONBLOCK | O_CLOEXEC), O_NONBLOCK);
    const [p, q] = Socket.pair("seqpacket");
    assertEquals(fdFlags(p.fd) & (O_NONBLOCK | O_CLOEXEC), O_NONBLOCK | O_CLOEXEC);
    p.close();
    q.close();
  }));

for (const family of ["inet", "inet6"] as const) {
  Deno.test(`Socket: TCP over ${family} loopback: connect, accept, write, read, shutdown, EOF`, () =>
    withFdCheck(async () => {
      using listener = tcpListener(family);
      assertEquals(listener.accept(), null, "accept() with nobody waiting is null (EAGAIN)");
      const addr = listener.localAddress() as InetAddress;
      assertEquals(addr.family, family);
      assert(addr.port > 0);
      using client = Socket.create(family, "stream");
      const state = client.connect(addr);
      assert(state === "connected" || state === "in-progress", state);
      using server = await until(() => listener.accept(), "the connection to arrive");
      client.takeError(); // connected: no SO_ERROR
      assertEquals(server.remoteAddress(), client.localAddress());
      assertEquals(client.remoteAddress(), server.localAddress());
      assertEquals(server.read(new Uint8Array(8)), null, "read() with no data is null");

      assertEquals(client.write(enc.encode("hello")), 5);
      const buf = new Uint8Array(16);
      const n = await until(() => server.read(buf), "the bytes");
      assertEquals(dec.decode(buf.subarray(0, n)), "hello");

      client.shutdown("write");
      assertEquals(await until(() => server.read(buf), "EOF"), 0, "EOF is 0");
      assertEquals(server.write(enc.encode("still open")), 10, "the other direction works");
      const m = await until(() => client.read(buf), "the reply");
      assertEquals(dec.decode(buf.subarray(0, m)), "still open");
    }));
}

Deno.test("Socket: UDP sendTo/receiveFrom carry the sender's address; null when empty", () =>
  withFdCheck(async () => {
    using a = Socket.create("inet", "dgram");
    using b = Socket.create("inet", "dgram");
    a.bind({ family: "inet", address: "127.0.0.1", port: 0 });
    b.bind({ family: "inet", address: "127.0.0.1", port: 0 });
    assertEquals(b.receiveFrom(new Uint8Array(8)), null);
    assertEquals(a.sendTo(enc.encode("datagram"), b.localAddress()), 8);
    const buf = new Uint8Array(64);
    const got = await until(() => b.receiveFrom(buf), "the datagram");
    assertEquals(got.bytes, 8);
    assertEquals(dec.decode(buf.subarray(0, 8)), "datagram");
    assertEquals(got.from, a.localAddress());
    // Connected: sendTo without an address goes to the peer.
    a.connect(b.localAddress());
    assertEquals(a.sendTo(enc.encode("again")), 5);
    const again = await until(() => b.receiveFrom(buf), "the second datagram");
    assertEquals(dec.decode(buf.subarray(0, again.bytes)), "again");
  }));

Deno.test("Socket: a Unix path listener: connect is immediate, the names read back", () =>
  withFdCheck(async () => {
    const dir = Deno.makeTempDirSync({ prefix: "ffinet-socket-" });
    try {
      const path = `${dir}/s.sock`;
      using listener = Socket.create("unix", "stream");
      listener.bind({ family: "unix", path });
      listener.listen(8);
      assertEquals(listener.localAddress(), { family: "unix", path } as SocketAddress);
      using client = Socket.create("unix", "stream");
      assertEquals(client.connect({ family: "unix", path }), "connected");
      using server = await until(() => listener.accept(), "the connection");
      assertEquals((client.remoteAddress() as { path: string }).path, path);
      assertEquals((server.remoteAddress() as { path: string }).path, "", "an unnamed peer");
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  }));

Deno.test("Socket: a closed peer: write is EPIPE by name (no SIGPIPE), read is EOF", () =>
  withFdCheck(() => {
    const [a, b] = Socket.pair();
    b.close();
    assertEquals(a.read(new Uint8Array(4)), 0);
    const e = assertThrows(() => a.write(enc.encode("x")), ErrnoError);
    assertEquals([e.syscall, e.code], ["send", "EPIPE"]);
    a.close();
  }));

Deno.test("Socket: errors name the call, the errno and the address", () =>
  withFdCheck(async () => {
    using taken = tcpListener("inet");
    const addr = taken.localAddress() as InetAddress;
    using second = Socket.create("inet", "stream");
    const inUse = assertThrows(() => second.bind(addr), ErrnoError);
    assertEquals([inUse.syscall, inUse.code], ["bind", "EADDRINUSE"]);
    assert(inUse.message.startsWith("Cannot bind: EADDRINUSE"), inUse.message);
    assert(inUse.message.includes(`127.0.0.1:${addr.port}`), inUse.message);

    // A refused non-blocking connect surfaces through takeError() as ECONNREFUSED.
    using probe = tcpListener("inet");
    const closedPort = (probe.localAddress() as InetAddress).port;
    probe.close();
    using client = Socket.create("inet", "stream");
    let refused: unknown;
    try {
      if (
        client.connect({ family: "inet", address: "127.0.0.1", port: closedPort }) !== "connected"
      ) {
        await waitFor(
          () => {
            try {
              client.takeError();
              return false;
            } catch (e) {
              refused = e;
              return true;
            }
          },
          5000,
          "the connect to fail",
        );
      }
    } catch (e) {
      refused = e; // refused synchronously
    }
    assertInstanceOf(refused, ErrnoError);
    assertEquals((refused as ErrnoError).code, "ECONNREFUSED");
    assertEquals((refused as ErrnoError).syscall, "connect");

    assertThrows(() => Socket.create("ipx" as "inet", "stream"), TypeError, 'unknown family "ipx"');
    assertThrows(() => Socket.create("inet", "raw" as "stream"), TypeError, 'unknown type "raw"');
    assertThrows(() => taken.listen(-1), RangeError, "backlog");
    assertThrows(() => new Socket(-1), RangeError, "fd");
    assertThrows(() => new Socket(1.5), RangeError, "fd");
  }));

Deno.test("Socket: close once (idempotent), fd after close throws, release and dispose", () =>
  withFdCheck(() => {
    const before = listFds().size;
    const s = Socket.create("inet", "stream");
    const fd = s.fd;
    assertEquals(s.closed, false);
    s.close();
    assertEquals(s.closed, true);
    s.close(); // does nothing: the number may already belong to someone else
    assertThrows(() => s.fd, Error, "closed");
    assertThrows(() => s.bind({ family: "inet", address: "127.0.0.1", port: 0 }), Error, "closed");
    assertEquals(listFds().has(fd), false);

    const owned = Socket.create("inet", "stream");
    const raw = owned.release();
    assertEquals(owned.closed, true);
    owned.close(); // released: does not close raw
    assert(listFds().has(raw), "release() closed the fd");
    assertEquals(sys.close(raw), 0);

    {
      using _scoped = Socket.create("inet6", "stream");
      assertEquals(listFds().size, before + 1);
    }
    assertEquals(listFds().size, before);
  }));

Deno.test("Socket: setOption chains, getOption reads back", () =>
  withFdCheck(() => {
    using s = Socket.create("inet", "stream");
    assertEquals(s.setOption("noDelay", true).setOption("keepAlive", true), s);
    assertEquals(s.getOption("noDelay"), true);
    assertEquals(s.getOption("keepAlive"), true);
    s.setOption("noDelay", false);
    assertEquals(s.getOption("noDelay"), false);
    assertEquals(s.getOption("error"), 0);
  }));
