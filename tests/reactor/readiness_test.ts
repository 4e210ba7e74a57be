/**
 * Readiness decoding, from the table and from what the kernel reports for
 * real fds: peer shutdown (EPOLLRDHUP), hang-ups (EPOLLHUP), errors
 * (EPOLLERR) and TCP urgent data (EPOLLPRI).
 */
import { assert, assertEquals, assertStrictEquals } from "@std/assert";
import { EPOLL, MSG } from "../../ffi/constants.ts";
import { closeFd, pipe } from "../../ffi/fd.ts";
import { Socket } from "../../ffi/socket.ts";
import * as sys from "../../ffi/syscalls.ts";
import { Interest, Reactor, Readiness } from "../../reactor/mod.ts";
import { withFdCheck } from "../_helpers.ts";
import { bytes, runFor, tcpPair, text } from "./_util.ts";

/** Register `fd`, run until the first report, and return it. */
async function firstReport(reactor: Reactor, fd: number, interest: number): Promise<Readiness> {
  let got: Readiness | undefined;
  const reg = reactor.register(fd, interest, (ready) => {
    got ??= ready;
    reactor.stop();
  });
  try {
    await runFor(reactor, 2000);
  } finally {
    reg.deregister();
  }
  if (got === undefined) throw new Error(`no readiness reported for fd ${fd} within 2 s`);
  return got;
}

Deno.test("Readiness.of: one frozen, shared object per combination of bits", () => {
  const r = Readiness.of(EPOLL.IN | EPOLL.RDHUP);
  assertStrictEquals(r, Readiness.of(EPOLL.IN | EPOLL.RDHUP | EPOLL.ET)); // mode bits ignored
  assert(Object.isFrozen(r));
  assertEquals(r.bits, EPOLL.IN | EPOLL.RDHUP);
  assertEquals([r.readable, r.readClosed, r.hangup, r.writeClosed], [true, true, false, false]);
  assertEquals(r.toString(), "readable|readClosed");
  assertEquals(Readiness.of(0).toString(), "none");

  const hup = Readiness.of(EPOLL.HUP);
  assertEquals([hup.hangup, hup.readClosed, hup.writeClosed], [true, true, true]);
  const errOut = Readiness.of(EPOLL.ERR | EPOLL.OUT);
  assertEquals([errOut.error, errOut.writable, errOut.writeClosed], [true, true, true]);
  const errOnly = Readiness.of(EPOLL.ERR);
  assertEquals([errOnly.error, errOnly.writeClosed], [true, false]);
  assert(Readiness.of(EPOLL.PRI).priority);

  for (let bits = 0; bits < 64; bits++) {
    const raw = (bits & 0x1f) | ((bits & 0x20) << 8);
    assertEquals(Readiness.of(raw).bits, raw);
  }
});

Deno.test("EPOLLRDHUP: the peer's shutdown(SHUT_WR) reports readClosed (only when asked for)", () =>
  withFdCheck(async () => {
    await using reactor = new Reactor();
    const [a, b] = Socket.pair();
    try {
      b.shutdown("write");
      const asked = await firstReport(reactor, a.fd, Interest.READABLE | Interest.READ_CLOSED);
      assert(asked.readClosed, asked.toString());
      assert(asked.readable, "EOF is readable");
      assertEquals(asked.hangup, false, "a half-close is not a hang-up");
      assertEquals(asked.writeClosed, false);
      assertEquals(a.read(new Uint8Array(4)), 0, "and read() sees EOF");

      const notAsked = await firstReport(reactor, a.fd, Interest.READABLE);
      assertEquals(notAsked.toString(), "readable", "without READ_CLOSED only EOF-as-readable");
    } finally {
      a.close();
      b.close();
    }
  }));

Deno.test("EPOLLRDHUP over loopback TCP: shutdown('write') by the client", () =>
  withFdCheck(async () => {
    await using reactor = new Reactor();
    const [client, server] = await tcpPair();
    try {
      client.write(bytes("last words"));
      client.shutdown("write");
      const ready = await firstReport(reactor, server.fd, Interest.READABLE | Interest.READ_CLOSED);
      assert(ready.readable && ready.readClosed && !ready.hangup, ready.toString());
      const buf = new Uint8Array(64);
      assertEquals(text(buf, server.read(buf)!), "last words");
      assertEquals(server.read(buf), 0);
      // The other direction still works after a half-close.
      server.write(bytes("reply"));
      const back = await firstReport(reactor, client.fd, Interest.READABLE);
      assert(back.readable);
      assertEquals(text(buf, client.read(buf)!), "reply");
    } finally {
      client.close();
      server.close();
    }
  }));

Deno.test("EPOLLHUP: the read end of a pipe whose writer closed reports hangup/readClosed", () =>
  withFdCheck(async () => {
    await using reactor = new Reactor();
    const [r, w] = pipe({ nonblock: true });
    try {
      closeFd(w);
      const ready = await firstReport(reactor, r, Interest.READABLE);
      assert(ready.hangup, ready.toString());
      assert(ready.readClosed);
      assertEquals(ready.error, false);
      assertEquals(sys.read(r, new Uint8Array(4)), 0);
    } finally {
      closeFd(r);
    }
  }));

Deno.test("EPOLLERR: the write end of a pipe whose reader closed reports error/writeClosed", () =>
  withFdCheck(async () => {
    await using reactor = new Reactor();
    const [r, w] = pipe({ nonblock: true });
    try {
      closeFd(r);
      const ready = await firstReport(reactor, w, Interest.WRITABLE);
      assert(ready.error, ready.toString());
      assert(ready.writeClosed);
      assertEquals(ready.readClosed, false);
      // ERR is reported even when only an unrelated event was asked for.
      const unasked = await firstReport(reactor, w, Interest.PRIORITY);
      assert(unasked.error, unasked.toString());
    } finally {
      closeFd(w);
    }
  }));

Deno.test("EPOLLHUP on a socketpair whose peer closed: hangup, readClosed, writeClosed", () =>
  withFdCheck(async () => {
    await using reactor = new Reactor();
    const [a, b] = Socket.pair();
    try {
      b.close();
      const ready = await firstReport(reactor, a.fd, Interest.READABLE | Interest.READ_CLOSED);
      assert(ready.hangup && ready.readClosed && ready.writeClosed, ready.toString());
    } finally {
      a.close();
    }
  }));

Deno.test("EPOLLERR|EPOLLHUP on a TCP connection reset by the peer (SO_LINGER 0)", () =>
  withFdCheck(async () => {
    await using reactor = new Reactor();
    const [client, server] = await tcpPair();
    try {
      client.setOption("linger", { seconds: 0 });
      client.close(); // sends RST
      const ready = await firstReport(reactor, server.fd, Interest.READABLE | Interest.READ_CLOSED);
      assert(ready.error, ready.toString());
      assert(ready.hangup && ready.readClosed);
      assertEquals(server.getOption("error"), 104 /* ECONNRESET */);
    } finally {
      server.close();
    }
  }));

Deno.test("EPOLLPRI: TCP urgent data sent with MSG_OOB reports priority", () =>
  withFdCheck(async () => {
    await using reactor = new Reactor();
    const [client, server] = await tcpPair();
    try {
      const oob = bytes("!");
      assertEquals(sys.send(client.fd, oob, 1, MSG.OOB), 1);
      const ready = await firstReport(reactor, server.fd, Interest.PRIORITY);
      assert(ready.priority, ready.toString());
      const buf = new Uint8Array(4);
      assertEquals(sys.recv(server.fd, buf, buf.length, MSG.OOB), 1);
      assertEquals(text(buf, 1), "!");
    } finally {
      client.close();
      server.close();
    }
  }));
