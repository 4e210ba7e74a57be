/**
 * `writevChunks` (ffi/writev.ts): one `sendmsg(2)` with MSG_NOSIGNAL over a
 * queue of chunks. Byte order across many chunks and the 64-chunk cap, EPIPE
 * without SIGPIPE to a peer that is gone, and ENOTSOCK for a pipe.
 */
import { assert, assertEquals } from "@std/assert";
import * as sys from "../../ffi/syscalls.ts";
import { AF, O, SOCK } from "../../ffi/constants.ts";
import { EAGAIN, EPIPE } from "../../ffi/errno.ts";
import { WRITEV_MAX_CHUNKS, writevChunks } from "../../ffi/writev.ts";
import { sleep, withFdCheck } from "../_helpers.ts";

const ENOTSOCK = 88; // Linux, all architectures

function unixPair(): [number, number] {
  const fds = new Int32Array(2);
  assertEquals(sys.socketpair(AF.UNIX, SOCK.STREAM | SOCK.NONBLOCK | SOCK.CLOEXEC, 0, fds), 0);
  return [fds[0]!, fds[1]!];
}

function drain(fd: number): Uint8Array {
  const parts: number[] = [];
  const buf = new Uint8Array(65536);
  for (;;) {
    const n = sys.read(fd, buf, buf.length);
    if (n === -EAGAIN || n === 0) break;
    assert(n > 0, `read: ${n}`);
    parts.push(...buf.subarray(0, n));
  }
  return new Uint8Array(parts);
}

Deno.test("writevChunks: sends up to WRITEV_MAX_CHUNKS chunks in order, skipping firstOffset", () =>
  withFdCheck(() => {
    const [a, b] = unixPair();
    try {
      // Small chunks (on V8's movable heap) and larger ones, mixed, plus empty ones.
      const chunks: Uint8Array[] = [];
      for (let i = 0; i < WRITEV_MAX_CHUNKS + 6; i++) {
        const size = i % 5 === 4 ? 0 : i % 3 === 0 ? 300 : 1 + (i % 7);
        chunks.push(new Uint8Array(size).fill(i + 1));
      }
      const expected: number[] = [];
      for (let i = 1; i < 1 + WRITEV_MAX_CHUNKS; i++) {
        expected.push(...(i === 1 ? chunks[i]!.subarray(1) : chunks[i]!));
      }
      const n = writevChunks(a, chunks, 1, 1);
      assertEquals(n, expected.length, "one call sends chunks[1..64], no more");
      assertEquals(drain(b), new Uint8Array(expected));
    } finally {
      sys.close(a);
      sys.close(b);
    }
  }));

Deno.test("writevChunks: to a peer that is gone gives -EPIPE and no SIGPIPE", () =>
  withFdCheck(async () => {
    let sigpipes = 0;
    const onSigpipe = () => sigpipes++;
    Deno.addSignalListener("SIGPIPE", onSigpipe);
    const [a, b] = unixPair();
    try {
      sys.close(b);
      const queue = ["one ", "two ", "three"].map((t) => new TextEncoder().encode(t));
      assertEquals(writevChunks(a, queue, 0, 0), -EPIPE);
      await sleep(100); // a SIGPIPE would be delivered by now
      assertEquals(sigpipes, 0, "the process got SIGPIPE");
    } finally {
      sys.close(a);
      Deno.removeSignalListener("SIGPIPE", onSigpipe);
    }
  }));

Deno.test("writevChunks: a pipe is not a socket: -ENOTSOCK, nothing written", () =>
  withFdCheck(() => {
    const fds = new Int32Array(2);
    assertEquals(sys.pipe2(fds, O.NONBLOCK | O.CLOEXEC), 0);
    const [r, w] = [fds[0]!, fds[1]!];
    try {
      assertEquals(writevChunks(w, [new Uint8Array([1]), new Uint8Array([2])], 0, 0), -ENOTSOCK);
      assertEquals(sys.read(r, new Uint8Array(4), 4), -EAGAIN);
    } finally {
      sys.close(r);
      sys.close(w);
    }
  }));
