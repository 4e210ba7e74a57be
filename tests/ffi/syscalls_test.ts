import { assert, assertEquals, assertThrows } from "@std/assert";
import * as sys from "../../ffi/syscalls.ts";
import { AF, EFD, F, MSG, O, SHUT, SO, SOCK, SOL, TFD } from "../../ffi/constants.ts";
import {
  check,
  EADDRINUSE,
  EAGAIN,
  EBADF,
  ECONNREFUSED,
  EPIPE,
  Errno,
  errnoCell,
  ErrnoError,
} from "../../ffi/errno.ts";
import {
  decodeSockaddr,
  encodeSockaddr,
  SOCKADDR_STORAGE_SIZE,
  type SocketAddress,
} from "../../ffi/sockaddr.ts";
import { withFdCheck } from "../_helpers.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const LOOPBACK = encodeSockaddr({ family: "inet", address: "127.0.0.1", port: 0 });

function localAddress(fd: number): SocketAddress {
  const buf = new Uint8Array(SOCKADDR_STORAGE_SIZE);
  const len = new Uint32Array([buf.length]);
  check("getsockname", sys.getsockname(fd, buf, len));
  return decodeSockaddr(buf, len[0]!);
}

function peerAddress(fd: number): SocketAddress {
  const buf = new Uint8Array(SOCKADDR_STORAGE_SIZE);
  const len = new Uint32Array([buf.length]);
  check("getpeername", sys.getpeername(fd, buf, len));
  return decodeSockaddr(buf, len[0]!);
}

function text(buf: Uint8Array, n: number): string {
  assert(n >= 0, `call failed: ${n}`);
  return dec.decode(buf.subarray(0, n));
}

/** Close every fd in `fds` that is still open, ignoring EBADF. */
function closeAll(...fds: number[]): void {
  for (const fd of fds) if (fd >= 0) sys.close(fd);
}

/** A connected TCP pair over loopback plus its listener. */
function tcpPair(): { listener: number; client: number; server: number } {
  const listener = check("socket", sys.socket(AF.INET, SOCK.STREAM | SOCK.CLOEXEC, 0));
  let client = -1;
  try {
    check("bind", sys.bind(listener, LOOPBACK));
    check("listen", sys.listen(listener, 16));
    client = check("socket", sys.socket(AF.INET, SOCK.STREAM | SOCK.CLOEXEC, 0));
    check("connect", sys.connect(client, encodeSockaddr(localAddress(listener))));
    const server = check("accept4", sys.accept4(listener, null, null, SOCK.CLOEXEC));
    return { listener, client, server };
  } catch (e) {
    closeAll(listener, client);
    throw e;
  }
}

Deno.test("syscalls: a TCP loopback pair exchanges bytes every way", () =>
  withFdCheck(() => {
    const { listener, client, server } = tcpPair();
    try {
      assertEquals(peerAddress(server), localAddress(client));
      assertEquals(peerAddress(client), localAddress(server));
      const buf = new Uint8Array(64);

      assertEquals(sys.write(client, enc.encode("write")), 5);
      assertEquals(text(buf, sys.read(server, buf)), "write");

      assertEquals(sys.send(server, enc.encode("send!"), 5, MSG.NOSIGNAL), 5);
      assertEquals(text(buf, sys.recv(client, buf, buf.length, 0)), "send!");

      assertEquals(sys.sendto(client, enc.encode("sendto"), 6, 0, null), 6);
      const from = new Uint8Array(SOCKADDR_STORAGE_SIZE);
      const fromLen = new Uint32Array([from.length]);
      assertEquals(text(buf, sys.recvfrom(server, buf, buf.length, 0, from, fromLen)), "sendto");

      // len shorter than the buffer is honoured.
      assertEquals(sys.write(client, enc.encode("abcdef"), 3), 3);
      assertEquals(text(buf, sys.read(server, buf, 2)), "ab");
      assertEquals(sys.fionread(server), 1);
      assertEquals(text(buf, sys.recv(server, buf, buf.length, MSG.PEEK)), "c");
      assertEquals(text(buf, sys.read(server, buf)), "c");

      // Half-close: the peer reads EOF, the other direction still works.
      assertEquals(sys.shutdown(client, SHUT.WR), 0);
      assertEquals(sys.read(server, buf), 0);
      assertEquals(sys.write(server, enc.encode("still")), 5);
      assertEquals(text(buf, sys.read(client, buf)), "still");

      // Nothing queued on a non-blocking listener.
      assertEquals(sys.fcntl(listener, F.SETFL, O.NONBLOCK), 0);
      assertEquals(sys.accept4(listener, null, null, SOCK.CLOEXEC), -EAGAIN);
    } finally {
      closeAll(listener, client, server);
    }
  }));

Deno.test("syscalls: accept4 reports the peer's address", () =>
  withFdCheck(() => {
    const listener = check("socket", sys.socket(AF.INET, SOCK.STREAM | SOCK.CLOEXEC, 0));
    const client = check("socket", sys.socket(AF.INET, SOCK.STREAM | SOCK.CLOEXEC, 0));
    let server = -1;
    try {
      check("bind", sys.bind(listener, LOOPBACK));
      check("listen", sys.listen(listener, 1));
      check("connect", sys.connect(client, encodeSockaddr(localAddress(listener))));
      const addr = new Uint8Array(SOCKADDR_STORAGE_SIZE);
      const len = new Uint32Array([addr.length]);
      server = check("accept4", sys.accept4(listener, addr, len, SOCK.CLOEXEC | SOCK.NONBLOCK));
      assertEquals(decodeSockaddr(addr, len[0]!), localAddress(client));
      assertEquals(sys.fcntl(server, F.GETFL, 0) & O.NONBLOCK, O.NONBLOCK);
      assertEquals(sys.fcntl(server, F.GETFD, 0) & F.FD_CLOEXEC, F.FD_CLOEXEC);
      assertEquals(sys.read(server, new Uint8Array(4)), -EAGAIN);
    } finally {
      closeAll(listener, client, server);
    }
  }));

Deno.test("syscalls: UDP sendto/recvfrom carry addresses", () =>
  withFdCheck(() => {
    const a = check("socket", sys.socket(AF.INET, SOCK.DGRAM | SOCK.CLOEXEC, 0));
    const b = check("socket", sys.socket(AF.INET, SOCK.DGRAM | SOCK.CLOEXEC, 0));
    try {
      check("bind", sys.bind(a, LOOPBACK));
      check("bind", sys.bind(b, LOOPBACK));
      const data = enc.encode("datagram");
      assertEquals(sys.sendto(b, data, data.length, 0, encodeSockaddr(localAddress(a))), 8);
      const buf = new Uint8Array(64);
      const from = new Uint8Array(SOCKADDR_STORAGE_SIZE);
      const fromLen = new Uint32Array([from.length]);
      assertEquals(text(buf, sys.recvfrom(a, buf, buf.length, 0, from, fromLen)), "datagram");
      assertEquals(fromLen[0], 16);
      assertEquals(decodeSockaddr(from, fromLen[0]!), localAddress(b));
      assertEquals(sys.recvfrom(a, buf, buf.length, MSG.DONTWAIT, null, null), -EAGAIN);
    } finally {
      closeAll(a, b);
    }
  }));

Deno.test("syscalls: a Unix socketpair exchanges bytes; EPIPE without SIGPIPE", () =>
  withFdCheck(() => {
    const fds = new Int32Array(2);
    assertEquals(sys.socketpair(AF.UNIX, SOCK.STREAM | SOCK.CLOEXEC, 0, fds), 0);
    const [x, y] = [fds[0]!, fds[1]!];
    try {
      const buf = new Uint8Array(64);
      assertEquals(sys.write(x, enc.encode("hello")), 5);
      assertEquals(sys.fionread(y), 5);
      assertEquals(text(buf, sys.recv(y, buf, 2, 0)), "he");
      assertEquals(text(buf, sys.read(y, buf)), "llo");
      assertEquals(sys.send(y, enc.encode("back"), 4, 0), 4);
      assertEquals(text(buf, sys.recvfrom(x, buf, buf.length, 0, null, null)), "back");
      assertEquals(sys.sendto(y, enc.encode("to"), 2, 0, null), 2);
      assertEquals(text(buf, sys.read(x, buf)), "to");
      assertEquals(sys.recv(x, buf, buf.length, MSG.DONTWAIT), -EAGAIN);
    } finally {
      sys.close(y);
    }
    try {
      assertEquals(sys.send(x, enc.encode("gone"), 4, MSG.NOSIGNAL), -EPIPE);
      assertEquals(sys.read(x, new Uint8Array(4)), 0);
    } finally {
      sys.close(x);
    }
  }));

Deno.test("syscalls: bind on a used port is EADDRINUSE by name", () =>
  withFdCheck(() => {
    const a = check("socket", sys.socket(AF.INET, SOCK.STREAM | SOCK.CLOEXEC, 0));
    const b = check("socket", sys.socket(AF.INET, SOCK.STREAM | SOCK.CLOEXEC, 0));
    try {
      check("bind", sys.bind(a, LOOPBACK));
      check("listen", sys.listen(a, 1));
      const used = encodeSockaddr(localAddress(a));
      const r = sys.bind(b, used);
      assertEquals(r, -EADDRINUSE);
      const e = assertThrows(() => check("bind", r), ErrnoError);
      assertEquals(e.code, "EADDRINUSE");
      assertEquals(e.errno, Errno.EADDRINUSE);
      assertEquals(e.syscall, "bind");
      assertEquals(e.message, "Cannot bind: EADDRINUSE (Address already in use)");
    } finally {
      closeAll(a, b);
    }
  }));

Deno.test("syscalls: connect to a closed port is ECONNREFUSED", () =>
  withFdCheck(() => {
    const probe = check("socket", sys.socket(AF.INET, SOCK.STREAM | SOCK.CLOEXEC, 0));
    check("bind", sys.bind(probe, LOOPBACK));
    const addr = encodeSockaddr(localAddress(probe));
    sys.close(probe); // the port is now free and nobody listens on it
    const c = check("socket", sys.socket(AF.INET, SOCK.STREAM | SOCK.CLOEXEC, 0));
    try {
      assertEquals(sys.connect(c, addr), -ECONNREFUSED);
    } finally {
      sys.close(c);
    }
  }));

Deno.test("syscalls: EBADF for close(-1) and for a closed fd", () =>
  withFdCheck(() => {
    assertEquals(sys.close(-1), -EBADF);
    const fds = new Int32Array(2);
    assertEquals(sys.pipe2(fds, O.CLOEXEC), 0);
    sys.close(fds[0]!);
    sys.close(fds[1]!);
    const buf = new Uint8Array(4);
    assertEquals(sys.read(fds[0]!, buf), -EBADF);
    assertEquals(sys.write(fds[1]!, buf), -EBADF);
    assertEquals(sys.close(fds[0]!), -EBADF);
    assertEquals(sys.fcntl(fds[0]!, F.GETFD, 0), -EBADF);
    assertEquals(sys.fionread(fds[0]!), -EBADF);
    assertEquals(
      assertThrows(() => check("read", sys.read(fds[0]!, buf)), ErrnoError).code,
      "EBADF",
    );
  }));

Deno.test("syscalls: socket with an unknown family is EAFNOSUPPORT by name", () => {
  const r = sys.socket(99, SOCK.STREAM, 0);
  assertEquals(r, -Errno.EAFNOSUPPORT!);
  const e = assertThrows(() => check("socket", r), ErrnoError);
  assertEquals(e.code, "EAFNOSUPPORT");
  assertEquals(e.errno, 97);
});

Deno.test("syscalls: pipe2 with O_NONBLOCK, fionread on a pipe", () =>
  withFdCheck(() => {
    const fds = new Int32Array(2);
    assertEquals(sys.pipe2(fds, O.NONBLOCK | O.CLOEXEC), 0);
    const [r, w] = [fds[0]!, fds[1]!];
    try {
      assert(r >= 0 && w >= 0 && r !== w);
      assertEquals(sys.fcntl(r, F.GETFL, 0) & O.NONBLOCK, O.NONBLOCK);
      assertEquals(sys.fcntl(w, F.GETFD, 0) & F.FD_CLOEXEC, F.FD_CLOEXEC);
      const buf = new Uint8Array(16);
      assertEquals(sys.read(r, buf), -EAGAIN);
      assertEquals(sys.fionread(r), 0);
      assertEquals(sys.write(w, enc.encode("pipe!")), 5);
      assertEquals(sys.fionread(r), 5);
      assertEquals(text(buf, sys.read(r, buf)), "pipe!");
    } finally {
      closeAll(r, w);
    }
  }));

Deno.test("syscalls: socket options round trip", () =>
  withFdCheck(() => {
    const fd = check("socket", sys.socket(AF.INET, SOCK.STREAM | SOCK.CLOEXEC, 0));
    try {
      const one = new Uint8Array(new Int32Array([1]).buffer);
      assertEquals(sys.setsockopt(fd, SOL.SOCKET, SO.REUSEADDR, one), 0);
      const value = new Uint8Array(4);
      const len = new Uint32Array([4]);
      assertEquals(sys.getsockopt(fd, SOL.SOCKET, SO.REUSEADDR, value, len), 0);
      assertEquals(len[0], 4);
      assertEquals(new DataView(value.buffer).getInt32(0, true), 1);
      len[0] = 4;
      assertEquals(sys.getsockopt(fd, SOL.SOCKET, SO.TYPE, value, len), 0);
      assertEquals(new DataView(value.buffer).getInt32(0, true), SOCK.STREAM);
      assertEquals(sys.setsockopt(fd, SOL.SOCKET, 9999, one), -Errno.ENOPROTOOPT!);
    } finally {
      sys.close(fd);
    }
  }));

Deno.test("syscalls: eventfd and timerfd", () =>
  withFdCheck(() => {
    const efd = sys.eventfd(2, EFD.NONBLOCK | EFD.CLOEXEC);
    const tfd = sys.timerfd_create(TFD.CLOCK_MONOTONIC, TFD.NONBLOCK | TFD.CLOEXEC);
    try {
      assert(efd >= 0 && tfd >= 0);
      const counter = new BigUint64Array(1);
      const bytes = new Uint8Array(counter.buffer);
      assertEquals(sys.read(efd, bytes), 8);
      assertEquals(counter[0], 2n);
      assertEquals(sys.read(efd, bytes), -EAGAIN);
      assertEquals(sys.read(tfd, bytes), -EAGAIN);
      // Fire once after 1 ns, then poll for the expiration count.
      assertEquals(sys.timerfd_settime(tfd, 0, new BigInt64Array([0n, 0n, 0n, 1n])), 0);
      const end = Date.now() + 1000;
      let n = sys.read(tfd, bytes);
      while (n === -EAGAIN && Date.now() < end) n = sys.read(tfd, bytes);
      assertEquals(n, 8);
      assertEquals(counter[0], 1n);
    } finally {
      closeAll(efd, tfd);
    }
  }));

Deno.test("syscalls: the wrapper captures errno before later code can clobber it", () => {
  const r = sys.close(-1); // fails with EBADF; the wrapper read errno at once
  // Allocation and other failing calls in between overwrite the thread's errno...
  const junk: Uint8Array[] = [];
  for (let i = 0; i < 2000; i++) junk.push(new Uint8Array(4096));
  for (let i = 0; i < 100; i++) sys.socket(99, SOCK.STREAM, 0); // sets errno = EAFNOSUPPORT
  assertEquals(junk.length, 2000);
  assertEquals(errnoCell[0], Errno.EAFNOSUPPORT);
  // ...but the returned code still names the original failure.
  assertEquals(r, -EBADF);
  const e = assertThrows(() => check("close", r), ErrnoError);
  assertEquals(e.code, "EBADF");
  assertEquals(e.message, "Cannot close: EBADF (Bad file descriptor)");
});
