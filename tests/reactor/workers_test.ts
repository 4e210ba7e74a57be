/**
 * Reactors in Workers: two Workers, each with its own Reactor and its own
 * SO_REUSEPORT listener on one port, share ~200 echo connections.
 */
import { assert, assertEquals, assertGreaterOrEqual } from "@std/assert";
import { startReuseportWorkers } from "../../examples/reuseport_workers.ts";
import { listFds, waitFor, withFdCheck } from "../_helpers.ts";

/** Wait until the process has exactly the fds of `before` (Worker threads close theirs as they exit). */
async function fdsSettled(before: Map<number, string>): Promise<void> {
  await waitFor(
    () => {
      const now = listFds();
      return now.size === before.size && [...now].every(([fd, what]) => before.get(fd) === what);
    },
    5000,
    "the Workers' fds to close",
  ).catch(() => {/* withFdCheck names what leaked */});
}

// Deno keeps a few fds of its own after the first Workers end (a socketpair,
// and the event-loop epoll/eventfd pair of the last Worker runtime). Start and
// stop the workers once before the measured test, so those exist already.
await (await startReuseportWorkers({ host: "127.0.0.1", port: 0, workers: 2 })).stop();
await new Promise((r) => setTimeout(r, 600));

Deno.test("two Workers with a Reactor each share one SO_REUSEPORT port: every echo right, both serve", () =>
  withFdCheck(async () => {
    const before = listFds();
    const pool = await startReuseportWorkers({ host: "127.0.0.1", port: 0, workers: 2 });
    const total = 200;
    let correct = 0;
    let stats: Awaited<ReturnType<typeof pool.stop>> = [];
    try {
      assert(pool.port > 0);
      let next = 0;
      const client = async () => {
        for (let i; (i = next++) < total;) {
          const conn = await Deno.connect({ hostname: "127.0.0.1", port: pool.port });
          try {
            const msg = new TextEncoder().encode(`hello ${i} ${"x".repeat(i)}\n`);
            await conn.write(msg);
            const got = new Uint8Array(msg.byteLength);
            let n = 0;
            while (n < got.byteLength) {
              const r = await conn.read(got.subarray(n));
              if (r === null) break;
              n += r;
            }
            if (n === msg.byteLength && got.every((b, k) => b === msg[k])) correct++;
          } finally {
            conn.close();
          }
        }
      };
      await Promise.all(Array.from({ length: 16 }, client));
    } finally {
      stats = await pool.stop();
    }
    assertEquals(correct, total, "every echo came back intact");
    assertEquals(stats.length, 2);
    assertEquals(stats.reduce((a, s) => a + s.served, 0), total);
    for (const s of stats) {
      assertGreaterOrEqual(s.served, 1, `worker ${s.id} served nothing: ${JSON.stringify(stats)}`);
    }
    await fdsSettled(before);
  }));
