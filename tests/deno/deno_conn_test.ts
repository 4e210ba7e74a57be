/**
 * The Deno-shaped adapters against code written for `Deno.listen` and
 * `Deno.connect`, and against real Deno peers: the `for await` server loop
 * with `readable.pipeTo(writable)`, an adapter client to a real Deno server,
 * read/write/closeWrite/close semantics, backpressure on both paths,
 * errors as `Deno.errors` classes, Unix sockets, options. Lifetimes (close,
 * EOF, half-close, ref/unref, process exit) are in `deno_conn_lifetime_test.ts`.
 */
import { assert, assertEquals, assertInstanceOf, assertRejects, assertThrows } from "@std/assert";
import { ErrnoError } from "../../ffi/errno.ts";
import type { InetAddress } from "../../ffi/sockaddr.ts";
import { readProcFile } from "../../ffi/process.ts";
import { Socket } from "../../ffi/socket.ts";
import { connect, defaultReactorIdle, type FfiConn, FfiListener, listen } from "../../deno/mod.ts";
import { sleep, waitFor, withFdCheck } from "../_helpers.ts";
import {
  adapterTest,
  assertSameBytes,
  connectTo,
  dec,
  enc,
  randomBytes,
  readAll,
  writeAll,
} from "./_deno_conn.ts";

Deno.test(
  "a Deno.listen-style server loop on the adapter serves real Deno.connect clients",
  adapterTest(async () => {
    const listener = listen({ hostname: "127.0.0.1", port: 0 });
    assertInstanceOf(listener, FfiListener);
    assertEquals(listener.addr.transport, "tcp");
    assertEquals(listener.addr.hostname, "127.0.0.1");
    const pipes: Promise<void>[] = [];
    // Code written for Deno.listen, unchanged:
    const serving = (async () => {
      for await (const conn of listener) {
        pipes.push(conn.readable.pipeTo(conn.writable));
      }
    })();
    const clients = [1, 2, 3].map(async (i) => {
      const payload = randomBytes(i * 512 * 1024);
      const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
      try {
        const [, echoed] = await Promise.all([
          writeAll(client, payload).then(() => client.closeWrite()),
          readAll(client),
        ]);
        assertSameBytes(echoed, payload);
      } finally {
        client.close();
      }
    });
    await Promise.all(clients);
    listener.close();
    await serving; // the loop ends when the listener closes
    await Promise.all(pipes);
  }),
);

Deno.test(
  "the connect adapter talks to a real Deno.listen server",
  adapterTest(async () => {
    const server = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const serving = (async () => {
      const conn = await server.accept();
      // Deno's own echo; its readable closes the conn at EOF.
      await conn.readable.pipeTo(conn.writable);
    })();
    try {
      const conn = await connect({ hostname: "127.0.0.1", port: server.addr.port });
      assertEquals(conn.remoteAddr, {
        transport: "tcp",
        hostname: "127.0.0.1",
        port: server.addr.port,
      });
      assertEquals(conn.localAddr.transport, "tcp");
      const payload = randomBytes(2 * 1024 * 1024);
      const [, echoed] = await Promise.all([
        writeAll(conn, payload).then(() => conn.closeWrite()),
        readAll(conn),
      ]);
      assertSameBytes(echoed, payload);
      conn.close();
      await serving;
    } finally {
      server.close();
    }
  }),
);

Deno.test(
  "read/write/closeWrite/close semantics match Deno.Conn",
  adapterTest(async () => {
    const server = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    try {
      const { conn, peer } = await connectTo(server);
      try {
        // Data that arrives while no read is pending is kept.
        await peer.write(enc.encode("hello, world"));
        await waitFor(() => conn.bufferedLength === 12, 2000, "buffered input");
        assertEquals(await conn.read(new Uint8Array(0)), 0);
        const small = new Uint8Array(5);
        assertEquals(await conn.read(small), 5); // a partial read
        assertEquals(dec.decode(small), "hello");
        const rest = new Uint8Array(64);
        assertEquals(await conn.read(rest), 7);
        assertEquals(dec.decode(rest.subarray(0, 7)), ", world");
        // A pending read is satisfied by the next arrival.
        const pending = conn.read(rest);
        await sleep(20);
        await peer.write(enc.encode("later"));
        assertEquals(await pending, 5);
        // write resolves to the whole length.
        assertEquals(await conn.write(enc.encode("to the peer")), 11);
        const got = new Uint8Array(64);
        assertEquals(dec.decode(got.subarray(0, (await peer.read(got))!)), "to the peer");
        // closeWrite: the peer reads EOF but can still send to us.
        await conn.closeWrite();
        assertEquals(await peer.read(got), null);
        await assertRejects(() => conn.write(enc.encode("x")), Deno.errors.BrokenPipe);
        await peer.write(enc.encode("after your EOF"));
        const n = await conn.read(rest);
        assertEquals(dec.decode(rest.subarray(0, n!)), "after your EOF");
        // The peer closes: EOF (null), again and again.
        peer.close();
        assertEquals(await conn.read(rest), null);
        assertEquals(await conn.read(rest), null);
      } finally {
        conn.close();
      }
      await assertRejects(() => conn.read(new Uint8Array(1)), Deno.errors.BadResource);
      await assertRejects(() => conn.write(new Uint8Array(1)), Deno.errors.BadResource);
      assertThrows(() => conn.close(), Deno.errors.BadResource, "Cannot close");
      conn[Symbol.dispose](); // never throws
    } finally {
      server.close();
    }
  }),
);

Deno.test(
  "close() interrupts a pending read; close() flushes queued writes first",
  adapterTest(async () => {
    const server = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    try {
      const { conn, peer } = await connectTo(server);
      const pending = conn.read(new Uint8Array(8));
      conn.close();
      await assertRejects(() => pending, Deno.errors.Interrupted);
      assertEquals(await peer.read(new Uint8Array(8)), null);
      peer.close();

      // Written, then closed at once: the peer still gets every byte.
      const { conn: conn2, peer: peer2 } = await connectTo(server);
      const payload = randomBytes(4 * 1024 * 1024);
      const writing = conn2.write(payload);
      conn2.close();
      const [received] = await Promise.all([readAll(peer2), writing]);
      assertSameBytes(received, payload);
      peer2.close();
    } finally {
      server.close();
    }
  }),
);

Deno.test(
  "backpressure: write() waits for a drain; unread input stops at readBufferLimit",
  adapterTest(async () => {
    const server = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    try {
      const connecting = connect({
        port: server.addr.port,
        highWaterMark: 64 * 1024,
        readBufferLimit: 128 * 1024,
      });
      const peer = await server.accept();
      const conn = await connecting;
      try {
        // Output: the peer does not read, so a big write stays pending.
        let written = false;
        const payload = randomBytes(8 * 1024 * 1024);
        const writing = conn.write(payload).then((n) => {
          written = true;
          return n;
        });
        await sleep(200);
        assertEquals(written, false, "write() resolved while the peer read nothing");
        const [received, n] = await Promise.all([
          (async () => {
            const buf = new Uint8Array(payload.byteLength);
            let off = 0;
            while (off < buf.byteLength) {
              const got = await peer.read(buf.subarray(off));
              if (got === null) throw new Error("early EOF");
              off += got;
            }
            return buf;
          })(),
          writing,
        ]);
        assertEquals(n, payload.byteLength);
        assertSameBytes(received, payload);

        // Input: we do not read; the adapter stops reading near its limit and
        // the peer's writes stall in the kernel buffers.
        // More than the kernel can hold in flight, so that only the
        // adapter's limit can hold the peer back.
        const flooded = Math.max(16 * 1024 * 1024, kernelInFlightMax() + 8 * 1024 * 1024);
        let peerSent = 0;
        const flood = new Uint8Array(64 * 1024);
        const peerWriting = (async () => {
          while (peerSent < flooded) {
            peerSent += await peer.write(
              flood.subarray(0, Math.min(flood.length, flooded - peerSent)),
            );
          }
          await peer.closeWrite();
        })();
        peerWriting.catch(() => {}); // awaited below; a failed assertion must not leave it unhandled
        await sleep(300);
        assert(conn.bufferedLength >= 128 * 1024, `only ${conn.bufferedLength} buffered`);
        // At most one read past the limit (a connection reads up to 256 KiB at a time).
        assert(
          conn.bufferedLength <= 128 * 1024 + 256 * 1024,
          `${conn.bufferedLength} bytes buffered past the limit`,
        );
        assert(peerSent < flooded, "the peer was never held back");
        const all = await readAll(conn);
        await peerWriting;
        assertEquals(all.byteLength, flooded);
      } finally {
        conn.close();
        peer.close();
      }
    } finally {
      server.close();
    }
  }, 30_000),
);

/** The most bytes loopback TCP can hold between two sockets: tcp_rmem + tcp_wmem maxima. */
function kernelInFlightMax(): number {
  const max = (name: string) =>
    Number(readProcFile(`/proc/sys/net/ipv4/${name}`).trim().split(/\s+/)[2]);
  return max("tcp_rmem") + max("tcp_wmem");
}

Deno.test(
  "readable: a byte stream (BYOB too) with backpressure; writable half-closes",
  adapterTest(async () => {
    const server = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    try {
      // allowHalfOpen: this test writes after the peer's EOF.
      const connecting = connect({
        port: server.addr.port,
        readBufferLimit: 64 * 1024,
        allowHalfOpen: true,
      });
      const peer = await server.accept();
      const conn = await connecting;
      try {
        // More than the kernel can hold in flight (the receive buffer can
        // autotune up to tcp_rmem's max, the peer's send buffer to
        // tcp_wmem's), so that only the stream's queue limit can stop the peer.
        const total = Math.max(4 * 1024 * 1024, kernelInFlightMax() + 8 * 1024 * 1024);
        let peerSent = 0;
        const peerWriting = (async () => {
          const chunk = new Uint8Array(32 * 1024).fill(7);
          while (peerSent < total) {
            peerSent += await peer.write(chunk.subarray(0, total - peerSent));
          }
          await peer.closeWrite();
        })();
        peerWriting.catch(() => {}); // awaited below; a failed assertion must not leave it unhandled
        const reader = conn.readable.getReader({ mode: "byob" });
        await assertRejects(() => conn.read(new Uint8Array(1)), TypeError, "readable stream");
        await sleep(200); // nobody reads: the stream's queue fills, reading pauses
        assert(peerSent < total, "the stream's queue did not hold the peer back");
        let got = 0;
        let sevens = true;
        for (;;) {
          // BYOB reads of 100,000 bytes: a few hundred reads for the whole flood, so the
          // test stays well inside its bound under emulation too.
          const { value, done } = await reader.read(new Uint8Array(100_000));
          if (done) break;
          got += value.byteLength;
          sevens &&= value.every((b) => b === 7);
        }
        await peerWriting;
        assertEquals(got, total);
        assert(sevens);
        // Closing the writable half-closes: the peer sees EOF, and since our
        // read side already ended the connection closes by itself.
        const writer = conn.writable.getWriter();
        await writer.write(enc.encode("bye"));
        await writer.close();
        const back = await readAll(peer);
        assertEquals(dec.decode(back), "bye");
      } finally {
        conn.close();
        peer.close();
      }
    } finally {
      server.close();
    }
  }),
);

Deno.test(
  "errors are Deno.errors classes with the errno as code and the ErrnoError as cause",
  adapterTest(async () => {
    const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = probe.addr.port;
    // In use: AddrInUse from the adapter's listen.
    const inUse = assertThrows(() => listen({ hostname: "127.0.0.1", port }));
    assertInstanceOf(inUse, Deno.errors.AddrInUse);
    assertEquals((inUse as Error & { code: string }).code, "EADDRINUSE");
    assertInstanceOf(inUse.cause, ErrnoError);
    probe.close();
    // Nothing listens now: ConnectionRefused, as Deno.connect would say.
    const refused = await assertRejects(() => connect({ hostname: "127.0.0.1", port }));
    assertInstanceOf(refused, Deno.errors.ConnectionRefused);
    assertEquals((refused as Error & { code: string }).code, "ECONNREFUSED");
    assert((refused as Error).message.startsWith("Cannot connect: ECONNREFUSED"));
    // accept() after close, and a second close.
    const listener = listen({ hostname: "127.0.0.1", port: 0 });
    const waiting = listener.accept();
    listener.close();
    await assertRejects(() => waiting, Deno.errors.BadResource);
    await assertRejects(() => listener.accept(), Deno.errors.BadResource);
    assertThrows(() => listener.close(), Deno.errors.BadResource);
  }),
);

Deno.test(
  "Unix sockets: the adapter listener with Deno.connect, and the connect adapter",
  adapterTest(async () => {
    const dir = Deno.makeTempDirSync({ prefix: "ffinet-deno-conn-" });
    const path = `${dir}/echo.sock`;
    try {
      const listener = listen({ transport: "unix", path });
      assertEquals(listener.addr, { transport: "unix", path });
      const serving = (async () => {
        for await (const conn of listener) {
          assertEquals(conn.localAddr, { transport: "unix", path });
          conn.readable.pipeTo(conn.writable).catch(() => {});
        }
      })();
      for (const client of [await Deno.connect({ transport: "unix", path })]) {
        await writeAll(client, enc.encode("deno client"));
        await client.closeWrite();
        assertEquals(dec.decode(await readAll(client)), "deno client");
        client.close();
      }
      const ours: FfiConn<Deno.UnixAddr> = await connect({ transport: "unix", path });
      assertEquals(ours.remoteAddr, { transport: "unix", path });
      ours.setNoDelay(); // a no-op on Unix sockets
      await ours.write(enc.encode("ffinet client"));
      await ours.closeWrite();
      assertEquals(dec.decode(await readAll(ours)), "ffinet client");
      ours.close();
      listener.close();
      await serving;
      assertThrows(() => Deno.lstatSync(path), Deno.errors.NotFound);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  }),
);

Deno.test(
  "TCP options and the explicit disposal path",
  adapterTest(async () => {
    using listener = listen({ hostname: "127.0.0.1", port: 0 });
    const accepted = listener.accept();
    using conn = await connect({ port: listener.addr.port });
    using server = await accepted;
    conn.setNoDelay(false);
    assertEquals(conn.connection.socket.getOption("noDelay"), false);
    conn.setNoDelay();
    assertEquals(conn.connection.socket.getOption("noDelay"), true);
    conn.setKeepAlive();
    assertEquals(conn.connection.socket.getOption("keepAlive"), true);
    assertEquals(server.remoteAddr, conn.localAddr);
    // unref'd objects keep working while the test's own awaits hold the process.
    conn.unref();
    listener.unref();
    await conn.write(enc.encode("still served"));
    const got = new Uint8Array(32);
    assertEquals(dec.decode(got.subarray(0, (await server.read(got))!)), "still served");
    const late = listener.accept();
    using other = await connect({ port: listener.addr.port });
    using otherServer = await late;
    assertEquals(otherServer.remoteAddr, other.localAddr);
    conn.ref();
    listener.ref();
  }),
);

Deno.test("options are validated before any resource is taken: RangeError naming the option", () =>
  withFdCheck(async () => {
    assertThrows(
      () => listen({ hostname: "127.0.0.1", port: 0, highWaterMark: NaN }),
      RangeError,
      "highWaterMark",
    );
    assertThrows(
      () => listen({ hostname: "127.0.0.1", port: 0, readBufferLimit: 0 }),
      RangeError,
      "readBufferLimit",
    );
    await assertRejects(
      () => connect({ port: 1, closeTimeoutMs: 2 ** 40 }),
      RangeError,
      "closeTimeoutMs",
    );
    await defaultReactorIdle();
  }));

Deno.test(
  "a peer's reset rejects read and write with Deno.errors.ConnectionReset, as Deno.connect does",
  adapterTest(async () => {
    // A raw server that answers each connection with an RST (SO_LINGER 0, then close).
    const server = Socket.create("inet", "stream");
    server.bind({ family: "inet", address: "127.0.0.1", port: 0 });
    server.listen();
    const port = (server.localAddress() as InetAddress).port;
    const resetNext = async () => {
      let peer: Socket | null = null;
      await waitFor(() => (peer = server.accept()) !== null, 5000, "a connection to reset");
      peer!.setOption("linger", { seconds: 0 });
      peer!.close();
    };
    try {
      const errors: Record<string, unknown> = {};
      for (
        const [name, dial] of [
          ["Deno.connect", () => Deno.connect({ hostname: "127.0.0.1", port })],
          ["ffinet connect", () => connect({ hostname: "127.0.0.1", port })],
        ] as const
      ) {
        const conn = await dial(); // connected (it waits in the accept queue)
        await resetNext();
        try {
          await sleep(50); // the RST is in
          const e = await assertRejects(() => conn.read(new Uint8Array(16)));
          errors[name] = e;
          assertInstanceOf(e, Deno.errors.ConnectionReset, `${name}: ${e}`);
        } finally {
          conn.close();
        }
      }
      assertEquals(
        (errors["ffinet connect"] as Error).constructor,
        (errors["Deno.connect"] as Error).constructor,
      );
      assertEquals((errors["ffinet connect"] as { code?: string }).code, "ECONNRESET");
      // A write after the reset: ConnectionReset or BrokenPipe, never a bare Error.
      const conn = await connect({ hostname: "127.0.0.1", port });
      await resetNext();
      try {
        await sleep(50);
        const e = await assertRejects(async () => {
          for (let i = 0; i < 100; i++) await conn.write(new Uint8Array(1024));
        });
        assert(
          e instanceof Deno.errors.ConnectionReset || e instanceof Deno.errors.BrokenPipe,
          `write after a reset: ${e}`,
        );
      } finally {
        conn.close();
      }
    } finally {
      server.close();
    }
  }),
);
