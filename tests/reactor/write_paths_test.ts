/**
 * Connection.write() paths that only this project has: a send that meets a
 * full kernel buffer with nothing queued (EAGAIN with an empty queue: the
 * whole chunk must be queued, not dropped), and a write to a vanished peer
 * (EPIPE reported through onClose, never a SIGPIPE), both through the
 * library rather than raw syscalls.
 */
import { assert, assertEquals } from "@std/assert";
import { ErrnoError } from "../../ffi/errno.ts";
import { Socket } from "../../ffi/socket.ts";
import { Connection } from "../../reactor/mod.ts";
import { sleep, waitFor, withFdCheck } from "../_helpers.ts";
import { onReactor, withSigpipeCount } from "./_util.ts";

Deno.test("write: EAGAIN with an empty queue queues the whole chunk; every byte arrives in order", () =>
  withFdCheck(async () => {
    await onReactor(async (reactor) => {
      const [a, b] = Socket.pair();
      a.setOption("sendBufferSize", 4096);
      b.setOption("receiveBufferSize", 4096);
      const conn = new Connection(reactor, a);
      // Fill the kernel's buffers behind the connection's back (its queue stays empty).
      const fill = new Uint8Array(1024).fill(0x2e);
      let filled = 0;
      for (let n; (n = a.write(fill)) !== null;) filled += n;
      assertEquals(conn.writableLength, 0);
      // Now write(): send() returns EAGAIN at once, with nothing queued.
      const marker = new Uint8Array(3000);
      for (let i = 0; i < marker.length; i++) marker[i] = (i * 7 + 1) & 0xff;
      const ok = conn.write(marker);
      assert(ok, "below highWaterMark, write() returns true");
      assertEquals(conn.writableLength, marker.length, "the chunk was not queued whole");
      // The peer drains: the fill, then the marker, byte for byte.
      const got = new Uint8Array(filled + marker.length);
      let at = 0;
      const buf = new Uint8Array(65536);
      const deadline = performance.now() + 5000;
      while (at < got.length && performance.now() < deadline) {
        const n = b.read(buf);
        if (n === null) {
          await sleep(1);
          continue;
        }
        assert(n > 0, "unexpected EOF");
        got.set(buf.subarray(0, Math.min(n, got.length - at)), at);
        at += n;
      }
      assertEquals(at, got.length, `received ${at} of ${got.length} bytes`);
      assert(got.subarray(0, filled).every((x) => x === 0x2e), "the fill was corrupted");
      assertEquals(got.subarray(filled), marker, "the chunk written on EAGAIN was lost or mangled");
      await waitFor(() => conn.writableLength === 0, 2000, "the queue to empty");
      conn.close();
      b.close();
      await waitFor(() => reactor.stats.registrations === 0, 2000, "the connection to close");
    });
  }));

Deno.test("write: to a peer that is gone, Connection.write gives EPIPE through onClose and no SIGPIPE", () =>
  withFdCheck(() =>
    withSigpipeCount((sigpipes) =>
      onReactor(async (reactor) => {
        const [a, b] = Socket.pair();
        const conn = new Connection(reactor, a);
        let closeError: Error | undefined;
        let closed = false;
        conn.onClose = (_c, error) => {
          closed = true;
          closeError = error;
        };
        b.close();
        const ok = conn.write(new TextEncoder().encode("anyone there?"));
        assertEquals(ok, false);
        assert(closed, "onClose did not run");
        assert(closeError instanceof ErrnoError, `expected an ErrnoError, got ${closeError}`);
        assertEquals((closeError as ErrnoError).code, "EPIPE");
        assertEquals(conn.state, "closed");
        await sleep(50); // a SIGPIPE would be delivered by now
        assertEquals(sigpipes(), 0, "the process got SIGPIPE");
      })
    )
  ));

/** The byte at stream position `i`: a pattern in which any shifted, repeated or lost byte shows. */
function patternByte(i: number): number {
  return (i * 31 + (i >>> 8) * 7 + 11) % 251;
}

Deno.test("write: every chunk is split by partial writes at many offsets; the stream arrives exact", () =>
  withFdCheck(async () => {
    await onReactor(async (reactor) => {
      const [a, b] = Socket.pair();
      // Tiny kernel buffers: each flush sends a few KiB, so every chunk below
      // is sent in several partial writes, at offsets inside it (the send
      // path), and several queued chunks go out in one sendmsg (the gather
      // path) that also ends inside a chunk.
      a.setOption("sendBufferSize", 4096);
      b.setOption("receiveBufferSize", 4096);
      const conn = new Connection(reactor, a);
      const sizes = [1, 7000, 3, 12_345, 4096, 1, 1, 9999, 65_536, 2, 30_000, 513, 8191, 70_001];
      let total = 0;
      for (const size of sizes) {
        const chunk = new Uint8Array(size);
        for (let i = 0; i < size; i++) chunk[i] = patternByte(total + i);
        conn.write(chunk);
        total += size;
      }
      assert(conn.writableLength > 0, "nothing was queued: the buffers are too big for this test");
      // Read in small, uneven bites so the writer meets a full buffer again and again.
      const got = new Uint8Array(total);
      const buf = new Uint8Array(1500);
      let at = 0, bite = 0;
      const deadline = performance.now() + 30_000;
      while (at < total && performance.now() < deadline) {
        const n = b.read(buf.subarray(0, 200 + (bite++ * 397) % 1300));
        if (n === null) {
          await sleep(0);
          continue;
        }
        assert(n > 0, "unexpected EOF");
        assert(at + n <= total, `received ${at + n} bytes, more than the ${total} written`);
        got.set(buf.subarray(0, n), at);
        at += n;
      }
      assertEquals(at, total, `received ${at} of ${total} bytes (a stalled queue?)`);
      const bad = got.findIndex((x, i) => x !== patternByte(i));
      assertEquals(bad, -1, `the stream is corrupted from byte ${bad}`);
      await waitFor(() => conn.writableLength === 0, 2000, "the queue to empty");
      conn.close();
      b.close();
      await waitFor(() => reactor.stats.registrations === 0, 2000, "the connection to close");
    });
  }));
