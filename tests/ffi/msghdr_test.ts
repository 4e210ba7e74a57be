import { CTRUNC_SKIP, skipped } from "./_emulation.ts";
import { assert, assertEquals, assertThrows } from "@std/assert";
import {
  CMSG_ALIGN,
  CMSG_LEN,
  CMSG_SPACE,
  CMSGHDR_SIZE,
  IOVEC_SIZE,
  IovecArray,
  Msghdr,
  MSGHDR_SIZE,
  readControlMessages,
  writeControlMessage,
} from "../../ffi/msghdr.ts";
import {
  MIN_CONTROL_SIZE,
  recvFds,
  recvFdsOrThrow,
  sendFds,
  sendFdsOrThrow,
} from "../../ffi/fd_passing.ts";
import { AF, MSG, SCM, SOCK, SOL } from "../../ffi/constants.ts";
import { EBADF, ErrnoError } from "../../ffi/errno.ts";
import { closeFd, isCloexec, isOpen, pipe } from "../../ffi/fd.ts";
import * as sys from "../../ffi/syscalls.ts";
import { decodeSockaddr, encodeSockaddr, SOCKADDR_STORAGE_SIZE } from "../../ffi/sockaddr.ts";
import { withFdCheck } from "../_helpers.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function unixPair(type: number = SOCK.STREAM): [number, number] {
  const fds = new Int32Array(2);
  assertEquals(sys.socketpair(AF.UNIX, type | SOCK.CLOEXEC, 0, fds), 0);
  return [fds[0]!, fds[1]!];
}

function readText(fd: number, max = 64): string {
  const buf = new Uint8Array(max);
  const n = sys.read(fd, buf);
  assert(n >= 0, `read failed: ${n}`);
  return dec.decode(buf.subarray(0, n));
}

Deno.test("msghdr: struct sizes and CMSG macros match 64-bit Linux", () => {
  assertEquals(IOVEC_SIZE, 16);
  assertEquals(MSGHDR_SIZE, 56);
  assertEquals(CMSGHDR_SIZE, 16);
  assertEquals(CMSG_ALIGN(0), 0);
  assertEquals(CMSG_ALIGN(1), 8);
  assertEquals(CMSG_ALIGN(8), 8);
  assertEquals(CMSG_ALIGN(12), 16);
  assertEquals(CMSG_LEN(0), 16);
  assertEquals(CMSG_LEN(4), 20);
  assertEquals(CMSG_SPACE(4), 24);
  assertEquals(CMSG_SPACE(8), 24);
  assertEquals(CMSG_SPACE(12), 32);
  assert(MIN_CONTROL_SIZE >= 64);
});

Deno.test("msghdr: control messages round trip through the codec", () => {
  const control = new Uint8Array(CMSG_SPACE(8) + CMSG_SPACE(4));
  control.fill(0xaa);
  const next = writeControlMessage(
    control,
    0,
    SOL.SOCKET,
    SCM.RIGHTS,
    new Uint8Array(new Int32Array([5, 6]).buffer),
  );
  assertEquals(next, 24);
  const view = new DataView(control.buffer);
  assertEquals(view.getBigUint64(0, true), 24n); // cmsg_len = CMSG_LEN(8)
  assertEquals(view.getInt32(8, true), SOL.SOCKET);
  assertEquals(view.getInt32(12, true), SCM.RIGHTS);
  assertEquals(view.getInt32(16, true), 5);
  assertEquals(view.getInt32(20, true), 6);
  assertEquals(writeControlMessage(control, next, 41, 50, new Uint8Array([1, 2, 3, 4])), 48);
  assertEquals(view.getBigUint64(24, true), 20n);
  assertEquals([...control.subarray(44, 48)], [0, 0, 0, 0]); // padding zeroed
  const msgs = readControlMessages(control, control.length);
  assertEquals(msgs.map((m) => [m.level, m.type, [...m.data]]), [
    [SOL.SOCKET, SCM.RIGHTS, [5, 0, 0, 0, 6, 0, 0, 0]],
    [41, 50, [1, 2, 3, 4]],
  ]);
  // A length that cuts the second message short stops the walk there.
  assertEquals(readControlMessages(control, 40).length, 1);
  assertThrows(
    () => writeControlMessage(control, 32, 1, 1, new Uint8Array(4)),
    RangeError,
    "Cannot write control message",
  );
});

Deno.test("msghdr: IovecArray encodes lengths and addresses of slices", () => {
  const data = new Uint8Array(100);
  const iov = new IovecArray([
    data,
    { data, offset: 10, length: 5 },
    { data, offset: 90 },
    new Uint8Array(0),
  ]);
  assertEquals(iov.count, 4);
  assertEquals(iov.buffer.byteLength, 4 * IOVEC_SIZE);
  assertEquals(iov.totalLength, 100 + 5 + 10);
  const view = new DataView(iov.buffer.buffer, iov.buffer.byteOffset);
  const base = view.getBigUint64(0, true);
  assert(base !== 0n);
  assertEquals(view.getBigUint64(8, true), 100n);
  assertEquals(view.getBigUint64(16, true) - base, 10n);
  assertEquals(view.getBigUint64(24, true), 5n);
  assertEquals(view.getBigUint64(32, true) - base, 90n);
  assertEquals(view.getBigUint64(40, true), 10n);
  assertEquals(view.getBigUint64(56, true), 0n);
  assertEquals(iov.chunks.map((c) => c.byteLength), [100, 5, 10, 0]);

  assertThrows(() => new IovecArray([{ data, offset: 95, length: 6 }]), RangeError, "chunk 0");
  assertThrows(() => new IovecArray([{ data, offset: -1 }]), RangeError);
  assertThrows(() => new IovecArray([{ data, offset: 101 }]), RangeError);
  assertThrows(() => new IovecArray(new Array(1025).fill(data)), RangeError, "IOV_MAX");
});

Deno.test("msghdr: writev/readv round trip several chunks with offsets", () =>
  withFdCheck(() => {
    const [r, w] = pipe();
    try {
      const out = new IovecArray([
        enc.encode("ab"),
        { data: enc.encode("xxcdyy"), offset: 2, length: 2 },
        new Uint8Array(0),
        { data: enc.encode("efg"), offset: 0 },
        { data: enc.encode("__hij"), offset: 2 },
      ]);
      assertEquals(out.writev(w), 10);
      // The raw syscall with the encoded buffer works the same way.
      const raw = new IovecArray([enc.encode("KL"), enc.encode("M")]);
      assertEquals(sys.writev(w, raw), 3);

      const a = new Uint8Array(3);
      const big = new Uint8Array(16).fill(0x2e); // "."
      const c = new Uint8Array(4);
      const inp = new IovecArray([a, { data: big, offset: 5, length: 6 }, c]);
      assertEquals(inp.totalLength, 13);
      assertEquals(inp.readv(r), 13);
      assertEquals(dec.decode(a), "abc");
      assertEquals(dec.decode(big), ".....defghi.....");
      assertEquals(dec.decode(c), "jKLM");
      closeFd(w);
      assertEquals(new IovecArray([a]).readv(r), 0); // EOF
      assertEquals(new IovecArray([a]).readv(w), -EBADF);
    } finally {
      closeFd(r);
      if (isOpen(w)) closeFd(w);
    }
  }));

Deno.test("msghdr: pass a pipe's read end over a socketpair and read through it", () =>
  withFdCheck(() => {
    const [s0, s1] = unixPair();
    const [r, w] = pipe();
    try {
      assertEquals(sendFds(s0, [r], enc.encode("fd!")), 3);
      const buf = new Uint8Array(16);
      const got = recvFds(s1, buf, 4);
      assertEquals(got.bytes, 3);
      assertEquals(got.truncated, false);
      assertEquals(dec.decode(buf.subarray(0, 3)), "fd!");
      assertEquals(got.fds.length, 1);
      const received = got.fds[0]!;
      try {
        assert(received !== r);
        assert(isCloexec(received), "received fds are close-on-exec");
        closeFd(r); // the received duplicate keeps the pipe open
        assertEquals(sys.write(w, enc.encode("through the passed fd")), 21);
        assertEquals(readText(received), "through the passed fd");
      } finally {
        closeFd(received);
      }
    } finally {
      if (isOpen(r)) closeFd(r);
      closeFd(w);
      closeFd(s0);
      closeFd(s1);
    }
  }));

Deno.test("msghdr: several fds, no fds, and the throwing variants", () =>
  withFdCheck(() => {
    const [s0, s1] = unixPair(SOCK.SEQPACKET);
    const [r, w] = pipe();
    try {
      assertEquals(sendFdsOrThrow(s0, [r, w, r], enc.encode("3")), 1);
      const got = recvFdsOrThrow(s1, new Uint8Array(8), 3);
      assertEquals(got.bytes, 1);
      assertEquals(got.fds.length, 3);
      assertEquals(new Set(got.fds).size, 3);
      for (const fd of got.fds) closeFd(fd);

      assertEquals(sendFds(s0, [], enc.encode("plain")), 5);
      const plain = recvFds(s1, new Uint8Array(8), 2);
      assertEquals(plain, { bytes: 5, fds: [], truncated: false });

      assertThrows(() => sendFds(s0, [r], new Uint8Array(0)), RangeError, "at least one byte");
      assertThrows(() => sendFds(s0, [-1], enc.encode("x")), RangeError);
      assertThrows(() => sendFds(s0, new Array(254).fill(r), enc.encode("x")), RangeError);
      assertThrows(() => recvFds(s1, new Uint8Array(1), -1), RangeError);
    } finally {
      for (const fd of [r, w, s0, s1]) closeFd(fd);
    }
    assertEquals(recvFds(s1, new Uint8Array(8), 1).bytes, -EBADF);
    const e = assertThrows(() => recvFdsOrThrow(s1, new Uint8Array(8), 1), ErrnoError);
    assertEquals(e.code, "EBADF");
    assertEquals(e.syscall, "recvmsg");
    const e2 = assertThrows(() => sendFdsOrThrow(s0, [], enc.encode("x")), ErrnoError);
    assertEquals(e2.code, "EBADF");
  }));

Deno.test("msghdr: more fds than maxFds are all closed and reported truncated", () =>
  withFdCheck(() => {
    const [s0, s1] = unixPair();
    const [r, w] = pipe();
    try {
      assertEquals(sendFds(s0, [r, w, r], enc.encode("abc")), 3);
      const buf = new Uint8Array(8);
      const got = recvFds(s1, buf, 1);
      assertEquals(got, { bytes: 3, fds: [], truncated: true });
      assertEquals(dec.decode(buf.subarray(0, 3)), "abc");
    } finally {
      for (const fd of [r, w, s0, s1]) closeFd(fd);
    }
  }));

const CTRUNC_TEST = "msghdr: a control buffer too small for the fds sets MSG_CTRUNC";
Deno.test({
  name: CTRUNC_TEST,
  ignore: skipped(CTRUNC_TEST, CTRUNC_SKIP),
  fn: () => ctruncTest(),
});

const ctruncTest = () =>
  withFdCheck(() => {
    const [s0, s1] = unixPair();
    const [r, w] = pipe();
    const many = new Array(20).fill(r);
    try {
      // 20 fds need CMSG_SPACE(80) = 96 bytes; recvFds(…, 2) offers only 64,
      // so the kernel installs 12, drops 8 and sets MSG_CTRUNC.
      assertEquals(sendFds(s0, many, enc.encode("x")), 1);
      const got = recvFds(s1, new Uint8Array(4), 2);
      assertEquals(got, { bytes: 1, fds: [], truncated: true });

      // The same through the raw codec, to see the flag and what arrived.
      assertEquals(sendFds(s0, many, enc.encode("y")), 1);
      const control = new Uint8Array(64);
      const buf = new Uint8Array(4);
      const msg = new Msghdr({ iov: new IovecArray([buf]), control });
      assertEquals(msg.recvmsg(s1, MSG.CMSG_CLOEXEC), 1);
      assert((msg.flags & MSG.CTRUNC) !== 0, "MSG_CTRUNC set");
      const cmsgs = msg.controlMessages();
      assertEquals(cmsgs.length, 1);
      assertEquals(cmsgs[0]!.data.byteLength, 12 * 4);
      const view = new DataView(cmsgs[0]!.data.buffer, cmsgs[0]!.data.byteOffset);
      for (let i = 0; i < 12; i++) closeFd(view.getInt32(i * 4, true));
    } finally {
      for (const fd of [r, w, s0, s1]) closeFd(fd);
    }
  });

Deno.test("msghdr: msg_name receives the sender's address of a UDP datagram", () =>
  withFdCheck(() => {
    const a = sys.socket(AF.INET, SOCK.DGRAM | SOCK.CLOEXEC, 0);
    const b = sys.socket(AF.INET, SOCK.DGRAM | SOCK.CLOEXEC, 0);
    try {
      assertEquals(
        sys.bind(a, encodeSockaddr({ family: "inet", address: "127.0.0.1", port: 0 })),
        0,
      );
      assertEquals(
        sys.bind(b, encodeSockaddr({ family: "inet", address: "127.0.0.1", port: 0 })),
        0,
      );
      const addr = new Uint8Array(SOCKADDR_STORAGE_SIZE);
      const len = new Uint32Array([addr.length]);
      assertEquals(sys.getsockname(a, addr, len), 0);
      const aAddr = addr.slice(0, len[0]);
      len[0] = addr.length;
      assertEquals(sys.getsockname(b, addr, len), 0);
      const bPort = decodeSockaddr(addr, len[0]!);

      const out = new Msghdr({ name: aAddr, iov: new IovecArray([enc.encode("dgram")]) });
      assertEquals(out.sendmsg(b, 0), 5);

      const name = new Uint8Array(SOCKADDR_STORAGE_SIZE);
      const buf = new Uint8Array(16);
      const msg = new Msghdr({ name, iov: new IovecArray([buf]) });
      assertEquals(msg.recvmsg(a, 0), 5);
      assertEquals(dec.decode(buf.subarray(0, 5)), "dgram");
      assertEquals(msg.nameLength, 16);
      assertEquals(msg.flags, 0);
      assertEquals(decodeSockaddr(name, msg.nameLength), bPort);
    } finally {
      closeFd(a);
      closeFd(b);
    }
  }));
