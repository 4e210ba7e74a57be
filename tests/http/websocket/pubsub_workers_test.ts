/**
 * Pub/sub across the Workers of `serve({ workers: 2 })`: one `publish`
 * reaches the subscribers of every Worker (relayed by the main thread),
 * one message at a time, binary ones too, and in a burst, without loss
 * and in order. A child process serves
 * _pubsub_workers_child.ts; Deno WebSocket clients connect until both
 * Workers hold some, then one client's message must reach all the others.
 * The latency of a publish within a Worker and across Workers is printed.
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import { closeSockets, connectGreeted, type GreetedClient, waitFor } from "./_client.ts";
import { freePort } from "../../_helpers.ts";
import { spawnWorkersChild } from "../_serve.ts";

Deno.test("pub/sub: with serve({ workers: 2 }) one publish reaches the subscribers of both Workers", async () => {
  const port = freePort();
  const child = spawnWorkersChild(new URL("./_pubsub_workers_child.ts", import.meta.url), [
    String(port),
  ]);
  const clients: GreetedClient[] = [];
  try {
    await child.waitOutput(/listening on/, 2, "2 Workers listening");
    // SO_REUSEPORT spreads connections by hash: connect until both Workers hold two.
    for (let i = 0; i < 64; i++) {
      clients.push(await connectGreeted(port, "worker:"));
      const per = new Map<string, number>();
      for (const c of clients) per.set(c.greeting, (per.get(c.greeting) ?? 0) + 1);
      if (per.size === 2 && [...per.values()].every((n) => n >= 2)) break;
    }
    // Binary messages are recorded by their bytes.
    for (const c of clients) {
      c.ws.binaryType = "arraybuffer";
      c.ws.onmessage = (e) => {
        c.got.push(
          typeof e.data === "string" ? e.data : `bytes:${new Uint8Array(e.data).join(",")}`,
        );
        c.times.push(performance.now());
      };
    }
    const workers = [...new Set(clients.map((c) => c.greeting))];
    assertEquals(workers.length, 2, `the clients all landed on ${workers}`);
    const sender = clients[0]!;
    const same = clients.filter((c) => c !== sender && c.greeting === sender.greeting);
    const other = clients.filter((c) => c.greeting !== sender.greeting);
    // Rounds of a publish: every other client gets each message once, in order.
    const rounds = 50;
    const sameLat: number[] = [];
    const otherLat: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const t0 = performance.now();
      sender.ws.send(`m${r}`);
      await waitFor(
        () => clients.every((c) => c === sender || c.got.length === r + 1),
        `round ${r} delivered everywhere`,
      );
      for (const c of same) sameLat.push(c.times[r]! - t0);
      for (const c of other) otherLat.push(c.times[r]! - t0);
    }
    const expected = Array.from({ length: rounds }, (_, r) => `m${r}`);
    for (const c of clients) assertEquals(c.got, c === sender ? [] : expected, c.greeting);
    // Binary: the same bytes in every Worker, and the sender's handler keeps its message.
    const binary = 20;
    for (let i = 0; i < binary; i++) sender.ws.send(new Uint8Array([i, 0, 255, i * 3]));
    const binaryExpected = Array.from({ length: binary }, (_, i) => `bytes:${i},0,255,${i * 3}`);
    await waitFor(
      () => clients.every((c) => c === sender || c.got.length === rounds + binary),
      "the binary messages delivered everywhere",
    );
    for (const c of clients) {
      if (c !== sender) assertEquals(c.got.slice(rounds), binaryExpected, c.greeting);
    }
    // A burst far past a BroadcastChannel's 256 slots: nothing is lost, order kept.
    const before = rounds + binary;
    const burst = 2000;
    for (let i = 0; i < burst; i++) sender.ws.send(`b${i}`);
    await waitFor(
      () => clients.every((c) => c === sender || c.got.length === before + burst),
      "the burst delivered everywhere",
      60_000,
    );
    const burstExpected = Array.from({ length: burst }, (_, i) => `b${i}`);
    for (const c of clients) {
      if (c !== sender) assertEquals(c.got.slice(before), burstExpected, c.greeting);
    }
    assertEquals(sender.got, [], "the sender's handler kept its messages");
    assert(other.length > 0);
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
    console.log(
      `pub/sub over ${clients.length} clients (${
        same.length + 1
      } with the sender, ${other.length} in the other Worker): ` +
        `median publish-to-client latency ${median(sameLat).toFixed(3)} ms same Worker, ` +
        `${median(otherLat).toFixed(3)} ms other Worker`,
    );
  } finally {
    await closeSockets(clients.map((c) => c.ws));
    try {
      const { status, stderr } = await child.stop();
      assert(status.success, `the server exited with ${status.code}: ${stderr}`);
    } finally {
      await child.close();
    }
  }
});
