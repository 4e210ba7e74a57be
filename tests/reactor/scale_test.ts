/**
 * Scale: hold N concurrent TCP connections (10 000 when the hard
 * RLIMIT_NOFILE allows 2N+100 fds, else as many as it allows), both ends in
 * this process on one reactor, echo 16 bytes over every one of them, and
 * assert the memory per connection.
 *
 * The bounds: an idle connection is a `Connection`, its `Socket`, its
 * `Registration` and a few closures, under 2 KiB of JS heap per end. No
 * buffer is allocated per connection while it is idle: the 64 KiB read
 * buffer is shared and the write queue is empty. Measured per client +
 * server pair (2026-11-29, x86_64, Deno 2.9.6): 3.3–4.8 KB of JS heap and
 * ArrayBuffers, and 1.1–7.4 KB of RSS (RSS depends on what ran before in
 * the same process: V8 heap pages touched for the first time count, pages
 * already resident do not).
 *
 * - {@linkcode MAX_HEAP_PER_CONNECTION} (JS heap + ArrayBuffer memory):
 *   12 KiB, 2.5x the largest measured value (garbage not yet collected
 *   counts); it fails if each end kept an 8 KiB buffer of its own, and the
 *   64 KiB read buffer allocated per connection would exceed it tenfold.
 * - {@linkcode MAX_RSS_PER_CONNECTION}: 16 KiB, about 2x the worst measured
 *   value; it fails if the 64 KiB read buffer (or any buffer of 8 KiB or
 *   more per end) were allocated and touched per connection.
 */
import { assert, assertEquals } from "@std/assert";
import { RLIMIT } from "../../ffi/constants.ts";
import { listOpenFds } from "../../ffi/fd.ts";
import { getrlimit, setrlimit } from "../../ffi/process.ts";
import type { InetAddress } from "../../ffi/sockaddr.ts";
import { connect, type Connection, Listener, Reactor } from "../../reactor/mod.ts";
import { sleep, withFdCheck } from "../_helpers.ts";

const WANTED = 10_000;
const CONNECT_WINDOW = 256; // connects in flight: stay well under the backlog
const MESSAGE = 16;
/** JS heap + ArrayBuffer memory per connection (client end + server end), bytes. */
const MAX_HEAP_PER_CONNECTION = 12 * 1024;
/** Resident memory per connection (client end + server end), bytes. */
const MAX_RSS_PER_CONNECTION = 16 * 1024;

async function waitUntil(cond: () => boolean, deadline: number, what: string): Promise<void> {
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await sleep(5);
  }
}

Deno.test("scale: N concurrent connections, 16 bytes echoed on each, memory per connection", () =>
  withFdCheck(async () => {
    const started = performance.now();
    const deadline = started + 30_000;
    const saved = getrlimit(RLIMIT.NOFILE);
    const openNow = listOpenFds().size;
    const soft = Math.min(saved.hard, 2 * WANTED + 100 + openNow);
    const n = Math.min(WANTED, Math.floor((soft - 100 - openNow) / 2));
    assert(n >= 100, `the fd limit (hard ${saved.hard}) allows only ${n} connections`);
    setrlimit(RLIMIT.NOFILE, { soft, hard: saved.hard });

    const reactor = new Reactor();
    const running = reactor.run();
    const servers = new Set<Connection>();
    const clients: Connection[] = [];
    let listener: Listener | undefined;
    try {
      const base = Deno.memoryUsage();
      listener = Listener.listen(
        reactor,
        { host: "127.0.0.1", port: 0, backlog: 4096 },
        (conn) => {
          servers.add(conn);
          conn.onData = (data) => conn.write(data);
          conn.onClose = () => servers.delete(conn);
        },
      );
      const port = (listener.address() as InetAddress).port;

      // Connect N clients, CONNECT_WINDOW at a time.
      const echoed = new Array<string>(n).fill("");
      let next = 0;
      const worker = async () => {
        while (next < n) {
          const i = next++;
          const conn = await connect(reactor, { host: "127.0.0.1", port }, { timeoutMs: 10_000 });
          conn.onData = (data) => echoed[i] += new TextDecoder().decode(data);
          clients[i] = conn;
        }
      };
      await Promise.all(Array.from({ length: CONNECT_WINDOW }, worker));
      await waitUntil(() => servers.size === n, deadline, `${n} accepted connections`);
      const connectedMs = performance.now() - started;
      const held = Deno.memoryUsage();

      // Traffic on every connection.
      const expected = (i: number) => `#${String(i).padStart(MESSAGE - 2, "0")};`;
      const enc = new TextEncoder();
      for (let i = 0; i < n; i++) clients[i]!.write(enc.encode(expected(i)));
      let done = 0;
      await waitUntil(
        () => {
          while (done < n && echoed[done]!.length >= MESSAGE) done++;
          return done === n;
        },
        deadline,
        "every echo",
      );
      const wrong = echoed.findIndex((got, i) => got !== expected(i));
      assertEquals(wrong, -1, `connection ${wrong} got "${echoed[wrong]}"`);
      assertEquals(listener.stats.accepted, n);
      const totalMs = performance.now() - started;
      const echoedMem = Deno.memoryUsage();

      // The larger of the two samples: all connected, and after every echo.
      const heap = (m: Deno.MemoryUsage) => m.heapUsed + m.external;
      const heapPer = Math.max(heap(held), heap(echoedMem)) - heap(base);
      const rssPer = Math.max(held.rss, echoedMem.rss) - base.rss;
      console.log(
        `scale: N=${n} connections (both ends in-process: ${2 * n} sockets; soft limit ${soft}, ` +
          `hard ${saved.hard}); connected in ${connectedMs.toFixed(0)} ms, all echoed in ` +
          `${totalMs.toFixed(0)} ms; per connection (client + server end): heap + external ` +
          `${(heapPer / n).toFixed(0)} B, rss ${(rssPer / n).toFixed(0)} B`,
      );
      assert(totalMs < 30_000, `took ${totalMs} ms`);
      assert(
        heapPer / n <= MAX_HEAP_PER_CONNECTION,
        `${(heapPer / n).toFixed(0)} B of heap per connection > ${MAX_HEAP_PER_CONNECTION}`,
      );
      assert(
        rssPer / n <= MAX_RSS_PER_CONNECTION,
        `${(rssPer / n).toFixed(0)} B of RSS per connection > ${MAX_RSS_PER_CONNECTION}`,
      );
    } finally {
      for (const c of clients) c?.close();
      await waitUntil(() => servers.size === 0, performance.now() + 10_000, "servers to close")
        .catch((e) => console.error(e));
      listener?.close();
      reactor.stop();
      await running;
      reactor.close();
      setrlimit(RLIMIT.NOFILE, saved);
    }
  }));
