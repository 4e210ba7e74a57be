/**
 * WebSocket pub/sub across the worker processes of a supervisor: each
 * worker of `channel_app.ts` subscribes its sockets to "room"; a publish in
 * one worker goes to the supervisor over its channel and is relayed to the
 * other worker. Deno WebSocket clients connect until both worker processes
 * hold two (their `pid:` greeting tells where they landed); then one
 * publish reaches every other client once, publishers on both workers
 * interleaved arrive in order per publisher, and a burst arrives whole.
 * A worker whose event loop is blocked (it reads nothing) gets publishes
 * queued in the supervisor only up to `channelQueueBytes`: the rest are
 * dropped, counted and logged, and the channel works again afterwards.
 *
 * @module
 */
import { assert, assertEquals, assertGreater, assertLessOrEqual } from "@std/assert";
import { Supervisor } from "../../../daemon/supervisor/supervisor.ts";
import { waitFor } from "../../http/websocket/_client.ts";
import { alive, freePort, killAll } from "../fixtures/helpers.ts";

const CHANNEL_APP = new URL("../fixtures/channel_app.ts", import.meta.url).pathname;

interface Client {
  ws: WebSocket;
  pid: number;
  /** The serving thread: "main", or a Worker of `serve({ workers })`. */
  thread: string;
  got: string[];
}

async function connect(port: number): Promise<Client> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
  const c: Client = { ws, pid: 0, thread: "", got: [] };
  await new Promise<void>((resolve, reject) => {
    ws.onmessage = (e) => {
      const text = String(e.data);
      if (c.pid === 0 && text.startsWith("pid:")) {
        const [, pid, thread] = text.split(":");
        c.pid = Number(pid);
        c.thread = thread ?? "";
        resolve();
        return;
      }
      c.got.push(text);
    };
    ws.onerror = () => reject(new Error("cannot connect"));
  });
  return c;
}

async function closeAll(clients: Client[]): Promise<void> {
  for (const c of clients) c.ws.close();
  await Promise.all(
    clients.map((c) =>
      c.ws.readyState === WebSocket.CLOSED
        ? undefined
        : new Promise((r) => c.ws.addEventListener("close", r, { once: true }))
    ),
  );
}

/** A supervisor of 2 workers of channel_app.ts, WebSocket clients on both, around `body`. */
async function withPubSub(
  options: { channelQueueBytes?: number },
  body: (clients: Client[], sup: Supervisor, warnings: string[]) => Promise<void>,
): Promise<void> {
  const port = freePort();
  const seen = new Set<number>();
  const warnings: string[] = [];
  const stderr: string[] = [];
  const sup = new Supervisor({
    app: CHANNEL_APP,
    workers: 2,
    listen: { host: "127.0.0.1", port },
    drainTimeoutMs: 3000,
    startTimeoutMs: 30_000,
    ...options,
    logger: {
      info: () => {},
      warning: (m: unknown) => warnings.push(String(m)),
      error: (m: unknown) => warnings.push(String(m)),
    },
    onOutput: (line, stream) => {
      if (stream === "stderr") stderr.push(line);
    },
    onEvent: (e) => {
      if (e.type === "spawn") seen.add(e.pid);
    },
  });
  const clients: Client[] = [];
  try {
    await sup.start();
    // One shared socket: whichever worker is awake accepts (on a loaded
    // machine one may take many in a row). Connect until both worker
    // processes hold two; a client landing on a worker that holds two
    // already is closed at once.
    const per = new Map<number, number>();
    for (let i = 0; i < 400; i++) {
      const c = await connect(port);
      if ((per.get(c.pid) ?? 0) >= 2) {
        await closeAll([c]);
        await new Promise((r) => setTimeout(r, 10)); // let the other worker run
        continue;
      }
      clients.push(c);
      per.set(c.pid, (per.get(c.pid) ?? 0) + 1);
      if (per.size === 2 && [...per.values()].every((n) => n >= 2)) break;
    }
    const pids = [...new Set(clients.map((c) => c.pid))].sort();
    assertEquals(pids, [...sup.pids].sort(), `the clients landed on ${pids}: need both workers`);
    await body(clients, sup, warnings);
  } finally {
    await closeAll(clients);
    await sup.stop();
    killAll(seen);
  }
  for (const pid of seen) assert(!alive(pid), `worker ${pid} reaped`);
  assertEquals(stderr, [], "no worker wrote to stderr");
}

Deno.test({
  name: "supervisor pub/sub: one publish reaches the subscribers of every worker process, in order",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    await withPubSub({}, async (clients, sup) => {
      const a = clients[0]!;
      const b = clients.find((c) => c.pid !== a.pid)!;
      // Rounds: each publish reaches every other client, in both processes, once.
      const rounds = 30;
      const lat: number[] = [];
      for (let r = 0; r < rounds; r++) {
        const t0 = performance.now();
        a.ws.send(`m${r}`);
        await waitFor(
          () => clients.every((c) => c === a || c.got.length === r + 1),
          `round ${r} delivered in both workers`,
        );
        lat.push(performance.now() - t0);
      }
      const expected = Array.from({ length: rounds }, (_, r) => `m${r}`);
      for (const c of clients) assertEquals(c.got, c === a ? [] : expected, `client on ${c.pid}`);
      // Two publishers, one per process, interleaved: each one's messages
      // arrive in its order everywhere, none lost.
      for (const c of clients) c.got.length = 0;
      const burst = 1000;
      for (let i = 0; i < burst; i++) {
        a.ws.send(`a${i}`);
        b.ws.send(`b${i}`);
      }
      await waitFor(
        () => clients.every((c) => c.got.length === (c === a || c === b ? burst : 2 * burst)),
        "both bursts delivered everywhere",
        60_000,
      );
      for (const c of clients) {
        for (const from of ["a", "b"]) {
          const mine = c.got.filter((m) => m.startsWith(from));
          if ((from === "a" && c === a) || (from === "b" && c === b)) {
            assertEquals(mine.length, 0);
            continue;
          }
          assertEquals(mine, Array.from({ length: burst }, (_, i) => `${from}${i}`), `${c.pid}`);
        }
      }
      const counters = sup.status().counters;
      assertEquals(counters.publishesDropped, 0);
      assertGreater(counters.publishesRelayed, 2 * burst - 1);
      lat.sort((x, y) => x - y);
      console.log(
        `${clients.length} clients on 2 worker processes: median publish-to-all ` +
          `${lat[Math.floor(lat.length / 2)]!.toFixed(2)} ms; relayed ${counters.publishesRelayed}`,
      );
    });
  },
});

Deno.test({
  name:
    "supervisor pub/sub: a worker that stops reading its channel gets a bounded queue; the rest is dropped and logged",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    const limit = 256 * 1024;
    await withPubSub({ channelQueueBytes: limit }, async (clients, sup, warnings) => {
      const blocked = clients[0]!;
      const flooder = clients.find((c) => c.pid !== blocked.pid)!;
      const slot = sup.status().workers.find((w) => w.pid === blocked.pid)!.id;
      blocked.ws.send("block:4000");
      await new Promise((r) => setTimeout(r, 300)); // its loop is busy now
      const n = 400, size = 16 * 1024; // 6.4 MB for the blocked worker
      flooder.ws.send(`flood:${n}:${size}`);
      let most = 0;
      const sampler = setInterval(() => {
        const q = sup.status().workers[slot]!.channelQueuedBytes ?? 0;
        if (q > most) most = q;
      }, 10);
      try {
        await waitFor(() => flooder.got.includes("flooded"), "the flood published", 30_000);
        await waitFor(() => blocked.got.includes("unblocked"), "the blocked worker back", 30_000);
      } finally {
        clearInterval(sampler);
      }
      const dropped = sup.status().counters.publishesDropped;
      assertGreater(dropped, 0, "nothing was dropped: the queue grew unbounded");
      // The queue limit plus one frame at most.
      assertLessOrEqual(most, limit + size + 64, `the supervisor queued ${most} bytes`);
      assertGreater(most, limit / 2, `the queue never filled (${most}): no backpressure happened`);
      const pid = blocked.pid;
      assert(
        warnings.some((w) => w.includes(`pid ${pid}`) && /does not read its channel/.test(w)),
        `no drop warning: ${warnings.join(" | ")}`,
      );
      // The flooder's own process delivered everything; the blocked one fewer.
      const floods = (c: Client) => c.got.filter((m) => m.startsWith("f")).length;
      await waitFor(
        () => clients.every((c) => c === flooder || c.pid === flooder.pid || floods(c) > 0),
        "the blocked worker delivers what was queued",
        30_000,
      );
      for (const c of clients) {
        if (c.pid === flooder.pid && c !== flooder) assertEquals(floods(c), n);
        if (c.pid === blocked.pid) assert(floods(c) < n, `${floods(c)} of ${n} arrived`);
      }
      await waitFor(
        () => warnings.some((w) => /reads its channel again; \d+ published message/.test(w)),
        "the end of the drop episode logged",
        30_000,
      );
      // The channel still works: a new publish reaches the other worker.
      flooder.ws.send("after");
      await waitFor(
        () => clients.every((c) => c === flooder || c.got.includes("after")),
        "a publish after the episode",
        30_000,
      );
      console.log(
        `blocked worker: supervisor queue peaked at ${most} bytes (limit ${limit}); ${dropped} dropped`,
      );
    });
  },
});

Deno.test({
  name:
    "supervisor pub/sub: serve({ workers: 2 }) inside each of 2 worker processes: one publish reaches all 4 threads",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    const port = freePort();
    const seen = new Set<number>();
    const stderr: string[] = [];
    const sup = new Supervisor({
      app: CHANNEL_APP,
      workers: 2,
      reusePort: true,
      env: { FFINET_TEST_THREADS: "2", FFINET_TEST_PORT: String(port) },
      drainTimeoutMs: 3000,
      startTimeoutMs: 30_000,
      logger: { info: () => {}, warning: () => {}, error: () => {} },
      onOutput: (line, stream) => {
        if (stream === "stderr") stderr.push(line);
      },
      onEvent: (e) => {
        if (e.type === "spawn") seen.add(e.pid);
      },
    });
    const clients: Client[] = [];
    try {
      await sup.start();
      // SO_REUSEPORT over 4 threads: connect until every thread holds one
      // (a client landing on a thread that holds one already is closed).
      const where = (c: Client) => `${c.pid}/${c.thread}`;
      for (let i = 0; i < 400; i++) {
        const c = await connect(port);
        if (clients.some((k) => where(k) === where(c))) {
          await closeAll([c]);
          continue;
        }
        clients.push(c);
        if (clients.length === 4) break;
      }
      const places = [...new Set(clients.map(where))];
      assertEquals(
        places.length,
        4,
        `the clients landed on ${places}: need 2 threads x 2 processes`,
      );
      assert(clients.every((c) => c.thread.startsWith("ffinet-serve-worker-")), places.join());
      const sender = clients[0]!;
      const burst = 300;
      for (let i = 0; i < burst; i++) sender.ws.send(`m${i}`);
      await waitFor(
        () => clients.every((c) => c === sender || c.got.length === burst),
        "the burst delivered on every thread of both processes",
        60_000,
      );
      const expected = Array.from({ length: burst }, (_, i) => `m${i}`);
      for (const c of clients) assertEquals(c.got, c === sender ? [] : expected, where(c));
    } finally {
      await closeAll(clients);
      await sup.stop();
      killAll(seen);
    }
    for (const pid of seen) assert(!alive(pid), `worker ${pid} reaped`);
    // serve({ workers }) prints nothing but what the app says.
    assertEquals(stderr.filter((l) => !l.startsWith("Listening on ")), [], stderr.join("\n"));
  },
});

Deno.test({
  name:
    "supervisor pub/sub: a worker that writes garbage into its channel loses the channel, logged; the supervisor carries on",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    await withPubSub({}, async (clients, sup, warnings) => {
      const bad = clients[0]!;
      const good = clients.find((c) => c.pid !== bad.pid)!;
      bad.ws.send("garbage");
      await waitFor(() => bad.got.includes("wrote:13"), "the garbage written", 30_000);
      await waitFor(
        () => warnings.some((w) => w.includes(`pid ${bad.pid}`) && /closing its channel/.test(w)),
        "the supervisor closed the channel",
        30_000,
      );
      assert(
        warnings.some((w) => /unknown frame kind 77/.test(w)),
        `the reason is logged: ${warnings.join(" | ")}`,
      );
      // The supervisor and both workers still serve; the good worker's
      // publishes still reach its own subscribers.
      assertEquals(sup.state, "running");
      assertEquals(sup.pids.length, 2);
      good.ws.send("still");
      await waitFor(
        () => clients.every((c) => c === good || c.pid !== good.pid || c.got.includes("still")),
        "a local publish",
        30_000,
      );
      assertEquals(sup.status().counters.publishesRelayed, 0, "nobody left to relay to");
    });
  },
});
