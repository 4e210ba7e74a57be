/**
 * The timeout sweep of `serve()` (http/_core.ts): one interval visits every
 * connection. An idle server's sweep must allocate nothing per connection:
 * garbage made on every pass keeps V8's allocation rate up, and V8 then
 * never shrinks the heap a connect burst grew (its memory reducer waits for
 * a low allocation rate).
 *
 * @module
 */
import { assert } from "@std/assert";
import { serve } from "../../http/mod.ts";
import { getrlimit, RLIMIT, setrlimit } from "../../ffi/mod.ts";
import { allocatedBytes, sleep } from "../_helpers.ts";

Deno.test({
  name: "serve sweep: sweeping 1,500 idle keep-alive connections allocates nothing per connection",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    const count = 1500;
    const limit = getrlimit(RLIMIT.NOFILE);
    if (limit.soft < 2 * count + 200) {
      setrlimit(RLIMIT.NOFILE, { soft: Math.min(limit.hard, 2 * count + 200), hard: limit.hard });
    }
    // headerTimeoutMs 100 makes the sweep run every 25 ms; with no idle or
    // body timeout, idle connections stay open and are only visited.
    const server = serve({
      hostname: "127.0.0.1",
      port: 0,
      headerTimeoutMs: 100,
      idleTimeoutMs: 0,
      bodyTimeoutMs: 0,
      onListen() {},
    }, () => new Response("ok"));
    const port = (server.addr as Deno.NetAddr).port;
    const conns: Deno.TcpConn[] = [];
    try {
      const request = new TextEncoder().encode("GET / HTTP/1.1\r\nhost: x\r\n\r\n");
      const buf = new Uint8Array(1024);
      for (let i = 0; i < count; i++) {
        const c = await Deno.connect({ hostname: "127.0.0.1", port });
        conns.push(c);
        await c.write(request);
        assert((await c.read(buf) ?? 0) > 0, "no response");
      }
      await sleep(300); // the first passes (and their compilation) are not counted
      // Two windows, the lower one counted: a passing burst of other work in
      // the process (a compilation, a timer's garbage) lands in one window,
      // while garbage made by the sweep itself is in both.
      let perConnection = Infinity;
      let detail = "";
      for (let window = 0; window < 2; window++) {
        const before = allocatedBytes();
        const t0 = performance.now();
        await sleep(2000);
        const allocated = allocatedBytes() - before;
        // At most one pass per 25 ms: fewer passes only raise the figure.
        const passes = (performance.now() - t0) / 25;
        const figure = allocated / (count * passes);
        if (figure < perConnection) {
          perConnection = figure;
          detail = `${allocated} bytes in at most ${passes.toFixed(0)} passes`;
        }
      }
      console.log(`sweep: ${perConnection.toFixed(2)} bytes per connection per pass`);
      // A for…of over the Set made an iterator step per connection per pass:
      // about 22 bytes measured. The sweep itself, and the process's own
      // background, stay under 8.
      assert(
        perConnection < 12,
        `a sweep allocated ${perConnection.toFixed(1)} bytes per connection (${detail})`,
      );
    } finally {
      for (const c of conns) c.close();
      await server.shutdown();
    }
  },
});
