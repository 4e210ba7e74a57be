/**
 * The multi-chunk flush to a vanished peer: several chunks queued behind a
 * full kernel buffer go out in one gather call (`sendmsg` with
 * MSG_NOSIGNAL). When the peer is gone that call must give EPIPE through
 * onClose and never raise SIGPIPE (`writev(2)` would: it takes no flags).
 * The single-chunk version is in write_paths_test.ts.
 */
import { assert, assertEquals } from "@std/assert";
import { ErrnoError } from "../../ffi/errno.ts";
import { Socket } from "../../ffi/socket.ts";
import { Connection } from "../../reactor/mod.ts";
import { sleep, waitFor, withFdCheck } from "../_helpers.ts";
import { onReactor, withSigpipeCount } from "./_util.ts";

Deno.test("write: several queued chunks flushed to a peer that is gone give EPIPE through onClose and no SIGPIPE", () =>
  withFdCheck(() =>
    withSigpipeCount((sigpipes) =>
      onReactor(async (reactor) => {
        const [a, b] = Socket.pair();
        a.setOption("sendBufferSize", 4096);
        b.setOption("receiveBufferSize", 4096);
        const conn = new Connection(reactor, a, { allowHalfOpen: true });
        let closeError: Error | undefined;
        let closed = false;
        conn.onClose = (_c, error) => {
          closed = true;
          closeError = error;
        };
        // Fill the kernel's buffers behind the connection's back, so that
        // every write() below is queued: three chunks wait in the queue.
        const fill = new Uint8Array(1024).fill(0x2e);
        while (a.write(fill) !== null);
        for (const text of ["one ", "two ", "three"]) {
          assert(conn.write(new TextEncoder().encode(text)), "below highWaterMark");
        }
        assertEquals(conn.writableLength, 13, "the three chunks were not all queued");
        // The peer goes away without reading: the socket turns writable
        // (EPOLLOUT|EPOLLHUP) and the connection flushes its 3 chunks at once.
        b.close();
        await waitFor(() => closed, 5000, "onClose");
        assert(closeError instanceof ErrnoError, `expected an ErrnoError, got ${closeError}`);
        assertEquals((closeError as ErrnoError).code, "EPIPE");
        assertEquals(
          (closeError as ErrnoError).syscall,
          "sendmsg",
          "the failing call was not the multi-chunk flush",
        );
        assertEquals(conn.state, "closed");
        await sleep(200); // a SIGPIPE would be delivered by now
        assertEquals(sigpipes(), 0, "the process got SIGPIPE");
      })
    )
  ));
