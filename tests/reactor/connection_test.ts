/**
 * Connections, listeners and connect() over real loopback sockets: bytes in
 * equal bytes out under partial reads and writes, backpressure bounds
 * memory, half-close, idle timeouts, resets, errors by name, Unix and IPv6
 * listeners, SO_REUSEPORT, socket file handling and fd passing.
 */
import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { ErrnoError } from "../../ffi/errno.ts";
import { closeFd, pipe } from "../../ffi/fd.ts";
import type { InetAddress, SocketAddress, UnixAddress } from "../../ffi/sockaddr.ts";
import { Socket } from "../../ffi/socket.ts";
import * as sys from "../../ffi/syscalls.ts";
import { connect, Connection, Listener, Reactor } from "../../reactor/mod.ts";
import { sleep, waitFor, withFdCheck } from "../_helpers.ts";
import { bytes, onReactor, text } from "./_util.ts";
import { scaled } from "../ffi/_emulation.ts";

/** {@linkcode onReactor}, also waiting for every registration to close. */
const onReactorWaiting = (fn: (reactor: Reactor) => Promise<void>, limitMs?: number) =>
  onReactor(fn, { limitMs, awaitRegistrations: true });

/** An echo handler with write()/onDrain discipline. */
function echo(conn: Connection): void {
  conn.onData = (data) => {
    if (!conn.write(data)) conn.pause();
  };
  conn.onDrain = () => conn.resume();
}

function portOf(addr: SocketAddress): number {
  assert(addr.family !== "unix");
  return (addr as InetAddress).port;
}

/** Resolves with the error (or undefined) `conn` closes with. */
function closed(conn: Connection): Promise<Error | undefined> {
  return new Promise((resolve) => {
    conn.onClose = (_c, error) => resolve(error);
  });
}

/** `e` as an `ErrnoError`, or a failed assertion. */
function asErrno(e: unknown): ErrnoError {
  assert(e instanceof ErrnoError, `expected an ErrnoError, got ${e}`);
  return e as ErrnoError;
}

async function sha256(data: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

function tempSocketPath(name: string): { dir: string; path: string } {
  const dir = Deno.makeTempDirSync({ prefix: "ffinet-conn-" });
  return { dir, path: `${dir}/${name}` };
}

Deno.test("echo: 8 MiB through a slow, small-reading client arrives intact (checksum)", () =>
  withFdCheck(() =>
    onReactorWaiting(async (reactor) => {
      const listener = Listener.listen(reactor, { host: "127.0.0.1", port: 0 }, echo);
      const total = 8 * 1024 * 1024;
      const sent = new Uint8Array(total);
      crypto.getRandomValues(sent.subarray(0, 65536));
      for (let i = 65536; i < total; i++) sent[i] = sent[i - 65536]! ^ (i & 0xff) ^ (i >>> 13);
      const client = await Deno.connect({
        hostname: "127.0.0.1",
        port: portOf(listener.address()),
      });
      try {
        const writer = (async () => {
          let off = 0;
          while (off < total) {
            const size = 1 + ((off * 7919) % 100_000); // uneven chunks
            off += await client.write(sent.subarray(off, Math.min(total, off + size)));
          }
          await client.closeWrite();
        })();
        const received = new Uint8Array(total);
        let got = 0;
        let reads = 0;
        const buf = new Uint8Array(4096);
        for (;;) {
          const want = 1 + (reads * 131) % buf.byteLength; // small, varying reads
          const n = await client.read(buf.subarray(0, want));
          if (n === null) break;
          assert(got + n <= total, "more bytes came back than were sent");
          received.set(buf.subarray(0, n), got);
          got += n;
          if (++reads % 256 === 0) await sleep(2); // a slow reader
        }
        await writer;
        assertEquals(got, total);
        assert(reads > 2048, `expected many partial reads, got ${reads}`);
        assertEquals(await sha256(received), await sha256(sent));
      } finally {
        client.close();
        listener.close();
      }
    })
  ));

Deno.test("connect: bytes the server sends at once reach onData set after `await connect()`", () =>
  withFdCheck(() =>
    onReactorWaiting(async (reactor) => {
      // Regression: the reactor used to dispatch the next batch (the new
      // connection's first read) before the awaiting caller could run.
      const listener = Listener.listen(reactor, { host: "127.0.0.1", port: 0 }, (conn) => {
        conn.write(bytes("greeting"));
        conn.end();
      });
      const port = portOf(listener.address());
      for (let i = 0; i < 50; i++) {
        const client = await connect(reactor, { host: "127.0.0.1", port });
        let got = "";
        client.onData = (data) => got += text(data);
        const ended = new Promise<void>((resolve) => client.onEnd = () => resolve());
        await ended;
        assertEquals(got, "greeting", `attempt ${i}`);
      }
      listener.close();
    })
  ));

Deno.test("connect: bytes that arrive long before onData is set are held (reading paused) and delivered", () =>
  withFdCheck(() =>
    onReactorWaiting(async (reactor) => {
      const listener = Listener.listen(reactor, { host: "127.0.0.1", port: 0 }, (conn) => {
        conn.write(bytes("early bird"));
        conn.end();
      });
      const client = await connect(reactor, {
        host: "127.0.0.1",
        port: portOf(listener.address()),
      });
      await sleep(50); // the greeting and the FIN have arrived; no handler yet
      assertEquals(client.state, "open", "the connection went on reading without a handler");
      let got = "";
      const ended = new Promise<void>((resolve) => client.onEnd = () => resolve());
      client.onData = (data) => got += text(data);
      await ended;
      assertEquals(got, "early bird");
      listener.close();
    })
  ));

Deno.test("backpressure: a stalled reader bounds the writer's queue; all 64 MiB arrive on resume", () =>
  withFdCheck(() =>
    onReactorWaiting(async (reactor) => {
      const hwm = 256 * 1024;
      const chunk = 64 * 1024;
      const total = 64 * 1024 * 1024;
      const period = 65521; // a prime: chunk boundaries never line up with the pattern
      const pattern = new Uint8Array(period + chunk);
      for (let i = 0; i < pattern.byteLength; i++) pattern[i] = ((i % period) * 31 + 7) & 0xff;
      let server: Connection | undefined;
      let sent = 0;
      let maxQueued = 0;
      let drains = 0;
      const listener = Listener.listen(
        reactor,
        { host: "127.0.0.1", port: 0, connection: { highWaterMark: hwm } },
        (conn) => {
          server = conn;
          const pump = () => {
            while (sent < total) {
              const start = sent % period;
              const ok = conn.write(pattern.subarray(start, start + chunk));
              sent += chunk;
              maxQueued = Math.max(maxQueued, conn.writableLength);
              if (!ok) return;
            }
            conn.end();
          };
          conn.onDrain = () => {
            drains++;
            pump();
          };
          pump();
        },
      );
      const client = await connect(reactor, {
        host: "127.0.0.1",
        port: portOf(listener.address()),
      });
      client.pause(); // stop reading: the kernel buffers fill, then the server's queue
      let received = 0;
      let bad = -1;
      client.onData = (data) => {
        for (let j = 0; j < data.byteLength; j++) {
          if (data[j] !== pattern[(received + j) % period] && bad < 0) bad = received + j;
        }
        received += data.byteLength;
      };
      const ended = new Promise<void>((resolve) => client.onEnd = () => resolve());
      const clientClosed = closed(client);
      await waitFor(
        () => server !== undefined && server.writableLength >= hwm,
        5000,
        "a full queue",
      );
      const stalledAt = sent;
      await sleep(300);
      assertEquals(sent, stalledAt, "the writer kept producing while the reader was stalled");
      assert(sent < total);
      assert(
        server!.writableLength <= hwm + chunk,
        `queue ${server!.writableLength} > hwm + chunk`,
      );
      client.resume();
      await ended;
      assertEquals(await clientClosed, undefined);
      assertEquals(received, total);
      assertEquals(bad, -1, `byte ${bad} differs`);
      assert(maxQueued <= hwm + chunk, `the queue reached ${maxQueued} bytes`);
      assert(drains > 0, "onDrain never ran");
      listener.close();
    }, 30_000)
  ));

Deno.test("half-close: client end() -> server onEnd; the server still writes, then closes", () =>
  withFdCheck(() =>
    onReactorWaiting(async (reactor) => {
      const events: string[] = [];
      let serverClosed!: Promise<Error | undefined>;
      const listener = Listener.listen(
        reactor,
        { host: "127.0.0.1", port: 0, connection: { allowHalfOpen: true } },
        (conn) => {
          serverClosed = closed(conn);
          let got = "";
          conn.onData = (data) => got += text(data);
          conn.onEnd = () => {
            events.push(`server end after "${got}"`);
            assertEquals(conn.state, "open");
            conn.write(bytes("reply after your EOF"));
            conn.close();
          };
        },
      );
      const client = await connect(reactor, {
        host: "127.0.0.1",
        port: portOf(listener.address()),
      });
      let reply = "";
      client.onData = (data) => reply += text(data);
      const clientEnded = new Promise<void>((resolve) => {
        client.onEnd = () => {
          events.push("client end");
          resolve();
        };
      });
      const clientClosed = closed(client);
      client.write(bytes("request"));
      client.end();
      assertEquals(client.state, "ending");
      assertThrows(() => client.write(bytes("x")), Error, "Cannot write");
      await clientEnded;
      assertEquals(reply, "reply after your EOF");
      assertEquals(await clientClosed, undefined);
      assertEquals(await serverClosed, undefined);
      assertEquals(events, ['server end after "request"', "client end"]);
      listener.close();
    })
  ));

Deno.test("allowHalfOpen false (the default): the peer's EOF closes the connection", () =>
  withFdCheck(() =>
    onReactorWaiting(async (reactor) => {
      let server: Connection | undefined;
      let serverClosed!: Promise<Error | undefined>;
      let sawEnd = false;
      const listener = Listener.listen(reactor, { host: "127.0.0.1", port: 0 }, (conn) => {
        server = conn;
        serverClosed = closed(conn);
        conn.onEnd = () => sawEnd = true;
      });
      const client = await connect(
        reactor,
        { host: "127.0.0.1", port: portOf(listener.address()) },
        {
          allowHalfOpen: true,
        },
      );
      const clientEnded = new Promise<void>((resolve) => client.onEnd = () => resolve());
      await waitFor(() => server !== undefined, 2000, "the accepted connection");
      client.end();
      assertEquals(await serverClosed, undefined);
      assert(sawEnd);
      assertEquals(server!.state, "closed");
      await clientEnded; // the client sees the server's close as EOF
      await waitFor(() => client.state === "closed", 2000, "the client to close");
      listener.close();
    })
  ));

Deno.test("idle timeout: an idle connection is closed with a FIN and a TimedOut error; a busy one is not", () =>
  withFdCheck(() =>
    onReactorWaiting(async (reactor) => {
      const serverClosed = new Map<number, Promise<Error | undefined>>();
      const opened = new Map<number, number>();
      const listener = Listener.listen(
        reactor,
        // Emulated (FFINET_EMULATED) every time here is scaled: a 50 ms tick
        // against a 200 ms timeout is too tight when code runs ~10x slower.
        { host: "127.0.0.1", port: 0, connection: { idleTimeoutMs: scaled(200) } },
        (conn) => {
          const port = portOf(conn.remoteAddress());
          opened.set(port, performance.now());
          serverClosed.set(port, closed(conn));
          conn.onData = () => {};
        },
      );
      const port = portOf(listener.address());
      const idle = await connect(reactor, { host: "127.0.0.1", port });
      const busy = await connect(reactor, { host: "127.0.0.1", port });
      const idleClosed = closed(idle);
      const busyClosed = closed(busy);
      const ticker = reactor.setInterval(() => busy.write(bytes(".")), scaled(50));
      const idlePort = portOf(idle.localAddress());
      const busyPort = portOf(busy.localAddress());
      await waitFor(
        () => serverClosed.has(idlePort) && serverClosed.has(busyPort),
        scaled(2000),
        "accepts",
      );
      const error = await serverClosed.get(idlePort)!;
      const elapsed = performance.now() - opened.get(idlePort)!;
      if (!(error instanceof Deno.errors.TimedOut)) {
        throw new Error(`expected TimedOut, got ${error}`);
      }
      assertEquals(error.name, "TimedOut");
      assert(error.message.includes("idleTimeoutMs"), error.message);
      assert(elapsed >= scaled(190) && elapsed < scaled(2000), `closed after ${elapsed} ms`);
      // The idle timeout closes gracefully: the client reads EOF (a FIN), not ECONNRESET.
      const clientError = await idleClosed;
      assertEquals(clientError, undefined, `the client saw ${clientError}, not a clean EOF`);
      assert(idle.readEnded, "the client did not read EOF");
      // The busy one, written to every 50 ms, outlives several timeouts.
      await sleep(scaled(400));
      assertEquals(busy.state, "open");
      ticker.cancel();
      busy.close();
      assertEquals(await busyClosed, undefined);
      await serverClosed.get(busyPort)!;
      listener.close();
    })
  ));

Deno.test("abort(): the peer's read fails with ECONNRESET, by name", () =>
  withFdCheck(() =>
    onReactorWaiting(async (reactor) => {
      let serverClosed!: Promise<Error | undefined>;
      const listener = Listener.listen(reactor, { host: "127.0.0.1", port: 0 }, (conn) => {
        serverClosed = closed(conn);
        conn.onData = () => conn.abort();
      });
      const client = await connect(reactor, {
        host: "127.0.0.1",
        port: portOf(listener.address()),
      });
      const clientClosed = closed(client);
      client.write(bytes("hello"));
      const error = asErrno(await clientClosed);
      assertEquals(error.code, "ECONNRESET");
      assertEquals(error.syscall, "read");
      assertEquals(await serverClosed, undefined);
      listener.close();
    })
  ));

Deno.test("write after close() or end() throws 'Cannot write'", () =>
  withFdCheck(() =>
    onReactorWaiting(async (reactor) => {
      const listener = Listener.listen(reactor, { host: "127.0.0.1", port: 0 }, echo);
      const port = portOf(listener.address());
      const a = await connect(reactor, { host: "127.0.0.1", port });
      a.close();
      assertEquals(a.state, "closed");
      assertThrows(() => a.write(bytes("x")), Error, "Cannot write: the connection is closed");
      const b = await connect(reactor, { host: "127.0.0.1", port });
      b.end();
      assertThrows(() => b.write(bytes("x")), Error, "Cannot write: the connection is ending");
      b.close();
      listener.close();
    })
  ));

Deno.test("connect: ECONNREFUSED by name for a closed port", () =>
  withFdCheck(() =>
    onReactorWaiting(async (reactor) => {
      const probe = Socket.create("inet", "stream");
      probe.bind({ family: "inet", address: "127.0.0.1", port: 0 });
      const port = portOf(probe.localAddress());
      probe.close(); // nothing listens on the port now
      const error = asErrno(
        await assertRejects(() => connect(reactor, { host: "127.0.0.1", port })),
      );
      assertEquals(error.code, "ECONNREFUSED");
      assert(error.message.startsWith("Cannot connect: ECONNREFUSED"), error.message);
    })
  ));

Deno.test("connect: ETIMEDOUT by name against a listener whose backlog is full", () =>
  withFdCheck(() =>
    onReactorWaiting(async (reactor) => {
      // backlog 0 and never accepting: once the accept queue is full the
      // kernel drops further SYNs, so the handshake never completes.
      const listener = Listener.listen(reactor, { host: "127.0.0.1", port: 0, backlog: 0 });
      listener.pause();
      const port = portOf(listener.address());
      const established: Connection[] = [];
      let timedOut: ErrnoError | undefined;
      try {
        for (let i = 0; i < 16 && timedOut === undefined; i++) {
          const started = performance.now();
          try {
            established.push(
              await connect(reactor, { host: "127.0.0.1", port }, { timeoutMs: 250 }),
            );
          } catch (e) {
            timedOut = asErrno(e);
            assertEquals(timedOut.code, "ETIMEDOUT");
            const waited = performance.now() - started;
            assert(waited >= 240, `gave up after ${waited} ms`);
          }
        }
        assert(timedOut !== undefined, "no attempt timed out");
        assert(established.length >= 1, "the backlog took no connection at all");
        assertEquals(listener.stats.accepted, 0);
      } finally {
        for (const c of established) c.close();
        listener.close();
      }
    })
  ));

Deno.test("Unix stream listeners: a path and an abstract name", () =>
  withFdCheck(() =>
    onReactorWaiting(async (reactor) => {
      const { dir, path } = tempSocketPath("echo.sock");
      const abstract = `\0ffinet-test-${Deno.pid}-${crypto.randomUUID()}`;
      try {
        for (const where of [path, abstract]) {
          const listener = Listener.listen(reactor, { path: where }, echo);
          assertEquals((listener.address() as UnixAddress).path, where);
          const client = await connect(reactor, { path: where });
          let got = "";
          client.onData = (data) => got += text(data);
          client.write(bytes(`hello over ${where.startsWith("\0") ? "abstract" : "path"}`));
          await waitFor(() =>
            got.length > 0 && got.endsWith(where.startsWith("\0") ? "abstract" : "path")
          );
          assertEquals(got, `hello over ${where.startsWith("\0") ? "abstract" : "path"}`);
          client.close();
          listener.close();
        }
      } finally {
        Deno.removeSync(dir, { recursive: true });
      }
    })
  ));

Deno.test("a listener on an inherited fd", () =>
  withFdCheck(() =>
    onReactorWaiting(async (reactor) => {
      const raw = Socket.create("inet", "stream", { nonblocking: false });
      raw.setOption("reuseAddress", true);
      raw.bind({ family: "inet", address: "127.0.0.1", port: 0 });
      raw.listen(16);
      const port = portOf(raw.localAddress());
      const listener = Listener.listen(reactor, { fd: raw.release() }, echo);
      assertEquals(portOf(listener.address()), port);
      const client = await connect(reactor, { host: "127.0.0.1", port });
      let got = "";
      client.onData = (data) => got += text(data);
      client.write(bytes("inherited"));
      await waitFor(() => got === "inherited");
      client.close();
      listener.close(); // closes the adopted fd too (checked by withFdCheck)
      // A socket that is not listening is refused.
      const notListening = Socket.create("inet", "stream");
      try {
        assertThrows(
          () => Listener.listen(reactor, { fd: notListening.fd }),
          Error,
          "not a listening socket",
        );
      } finally {
        notListening.close();
      }
    })
  ));

Deno.test("IPv6: ::1, and dual-stack :: accepting an IPv4 client", () =>
  withFdCheck(() =>
    onReactorWaiting(async (reactor) => {
      const peers: SocketAddress[] = [];
      const serve = (conn: Connection) => {
        peers.push(conn.remoteAddress());
        echo(conn);
      };
      const v6 = Listener.listen(reactor, { host: "::1", port: 0 }, serve);
      const dual = Listener.listen(reactor, { host: "::", port: 0 }, serve);
      try {
        for (
          const [host, port] of [
            ["::1", portOf(v6.address())],
            ["127.0.0.1", portOf(dual.address())],
          ] as const
        ) {
          const client = await connect(reactor, { host, port });
          let got = "";
          client.onData = (data) => got += text(data);
          client.write(bytes(host));
          await waitFor(() => got === host, 2000, `the echo over ${host}`);
          client.close();
        }
        assertEquals(peers.map((p) => [p.family, "address" in p ? p.address : ""]), [
          ["inet6", "::1"],
          ["inet6", "::ffff:127.0.0.1"],
        ]);
      } finally {
        v6.close();
        dual.close();
      }
    })
  ));

Deno.test("SO_REUSEPORT: two listeners on one port both accept; without it, EADDRINUSE", () =>
  withFdCheck(() =>
    onReactorWaiting(async (reactor) => {
      const counts = [0, 0];
      const a = Listener.listen(reactor, { host: "127.0.0.1", port: 0, reusePort: true }, (c) => {
        counts[0]!++;
        c.close();
      });
      const port = portOf(a.address());
      const b = Listener.listen(reactor, { host: "127.0.0.1", port, reusePort: true }, (c) => {
        counts[1]!++;
        c.close();
      });
      try {
        const error = asErrno(
          assertThrows(() => Listener.listen(reactor, { host: "127.0.0.1", port })),
        );
        assertEquals(error.code, "EADDRINUSE");
        assert(error.message.startsWith("Cannot bind: EADDRINUSE"), error.message);
        const clients: Connection[] = [];
        for (let i = 0; i < 40; i++) {
          clients.push(await connect(reactor, { host: "127.0.0.1", port }));
        }
        await waitFor(() => counts[0]! + counts[1]! === 40, 5000, "40 accepts");
        assert(counts[0]! > 0 && counts[1]! > 0, `accepts were split ${counts}`);
        for (const c of clients) c.close();
      } finally {
        a.close();
        b.close();
      }
    })
  ));

Deno.test("Unix socket file: mode applied, removed on close; a stale file is replaced", () =>
  withFdCheck(() =>
    onReactorWaiting(async (reactor) => {
      const { dir, path } = tempSocketPath("mode.sock");
      try {
        const listener = Listener.listen(reactor, { path, mode: 0o600 });
        const info = Deno.lstatSync(path);
        assert(info.isSocket);
        assertEquals(info.mode! & 0o777, 0o600);
        // A live server's socket is not taken over.
        const busy = asErrno(assertThrows(() => Listener.listen(reactor, { path })));
        assertEquals(busy.code, "EADDRINUSE");
        listener.close();
        assertThrows(() => Deno.lstatSync(path), Deno.errors.NotFound);

        // A stale file: bound by a "server" that died without unlinking it.
        const dead = Socket.create("unix", "stream");
        dead.bind({ family: "unix", path });
        dead.close();
        assert(Deno.lstatSync(path).isSocket);
        const fresh = Listener.listen(reactor, { path, mode: 0o660 }, echo);
        assertEquals(Deno.lstatSync(path).mode! & 0o777, 0o660);
        const client = await connect(reactor, { path });
        let got = "";
        client.onData = (data) => got += text(data);
        client.write(bytes("fresh"));
        await waitFor(() => got === "fresh");
        client.close();
        fresh.close();
        assertThrows(() => Deno.lstatSync(path), Deno.errors.NotFound);
      } finally {
        Deno.removeSync(dir, { recursive: true });
      }
    })
  ));

Deno.test("fd passing: a pipe sent with sendFds arrives through onFds and reads", () =>
  withFdCheck(() =>
    onReactorWaiting(async (reactor) => {
      const { dir, path } = tempSocketPath("fds.sock");
      const received: number[] = [];
      let note = "";
      const listener = Listener.listen(
        reactor,
        { path, connection: { receiveFds: 4 } },
        (conn) => {
          conn.onFds = (fds) => received.push(...fds);
          conn.onData = (data) => note += text(data);
        },
      );
      const [r, w] = pipe();
      try {
        const client = await connect(reactor, { path });
        client.sendFds([r], bytes("here is a pipe"));
        await waitFor(() => received.length === 1 && note === "here is a pipe");
        assert(received[0] !== r, "the peer got its own fd number");
        assertEquals(sys.write(w, bytes("through the passed fd")), 21);
        const buf = new Uint8Array(64);
        const n = sys.read(received[0]!, buf);
        assertEquals(text(buf, n), "through the passed fd");
        client.close();
      } finally {
        for (const fd of received) closeFd(fd);
        closeFd(r);
        closeFd(w);
        listener.close();
        Deno.removeSync(dir, { recursive: true });
      }
    })
  ));

/** Read from a non-blocking socket until `want` bytes came or `ms` passed. */
async function readBytes(sock: Socket, want: number, ms: number): Promise<Uint8Array> {
  const got = new Uint8Array(want);
  const buf = new Uint8Array(65536);
  let at = 0;
  const deadline = performance.now() + ms;
  while (at < want && performance.now() < deadline) {
    const n = sock.read(buf);
    if (n === null) {
      await sleep(1);
      continue;
    }
    if (n === 0) break;
    got.set(buf.subarray(0, Math.min(n, want - at)), at);
    at += n;
  }
  return got.subarray(0, at);
}

Deno.test("cork: a connection's later writes of one turn leave together after it; every byte in order (small, 200 KiB, EAGAIN)", () =>
  withFdCheck(() =>
    onReactorWaiting(async (reactor) => {
      const [a, b] = Socket.pair();
      a.setOption("sendBufferSize", 8192);
      b.setOption("receiveBufferSize", 8192);
      const conn = new Connection(reactor, a);
      const expected: number[] = [];
      const put = (chunk: Uint8Array) => {
        conn.write(chunk);
        for (const x of chunk) expected.push(x);
      };
      // One turn: the first write goes out at once, the next 999 are corked.
      for (let i = 0; i < 1000; i++) put(bytes(`<${i}>`));
      const first = bytes("<0>").byteLength;
      assertEquals(conn.bytesWritten, first, "the later writes of the turn were sent one by one");
      assertEquals(conn.writableLength, expected.length - first, "corked bytes count as queued");
      // The turn ends: immediates run in order, the flush's first.
      await new Promise((r) => setImmediate(r));
      assertEquals(conn.bytesWritten, expected.length, "the corked writes did not leave together");
      // Another turn: small writes, a large one that leaves with the cork in
      // one gather call and meets a full kernel buffer, then small ones queued behind.
      for (let i = 0; i < 50; i++) put(bytes(`[${i}]`));
      const big = new Uint8Array(200 * 1024);
      for (let i = 0; i < big.length; i++) big[i] = (i * 31 + 7) & 0xff;
      put(big);
      for (let i = 0; i < 50; i++) put(bytes(`{${i}}`));
      const got = await readBytes(b, expected.length, 10_000);
      assertEquals(got.byteLength, expected.length, "bytes were lost");
      assertEquals(got, new Uint8Array(expected), "bytes were reordered or mangled");
      // Corked bytes go before the FIN of end().
      conn.write(bytes("x"));
      conn.write(bytes("yz"));
      conn.end();
      assertEquals(text(await readBytes(b, 3, 5000)), "xyz");
      const buf = new Uint8Array(8);
      await waitFor(() => b.read(buf) === 0, 5000, "the FIN after the corked bytes");
      conn.close();
      b.close();
    })
  ));

Deno.test("cork: writes from a Deno timer while the reactor is parked leave without any reactor event", () =>
  withFdCheck(() =>
    onReactorWaiting(async (reactor) => {
      const [a, b] = Socket.pair();
      const conn = new Connection(reactor, a);
      await sleep(50); // the reactor parks: nothing is ready
      const t0 = performance.now();
      setTimeout(() => {
        conn.write(bytes("one,"));
        conn.write(bytes("two,")); // corked: only a flush of its own sends it
        conn.write(bytes("three"));
      }, 10);
      const got = text(await readBytes(b, 13, 5000));
      assertEquals(got, "one,two,three");
      assert(performance.now() - t0 < scaled(1000), "the corked writes waited for an event");
      conn.close();
      b.close();
    })
  ));
