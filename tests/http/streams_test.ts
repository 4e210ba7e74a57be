/**
 * Streamed response bodies of `serve()` on the wire: a declared length is
 * enforced (short or long: the connection is aborted, never wrong
 * framing), a body that fails midway goes to `onError` and ends with a FIN,
 * the body stream is cancelled when its client goes away (SSE producers
 * stop; nothing is logged), and each chunk leaves in one write with its
 * size line and CRLF (chunks already at hand share a write).
 *
 * @module
 */
import { assert, assertEquals, assertInstanceOf, assertMatch, assertRejects } from "@std/assert";
import { streamSSE } from "npm:hono@4.13.19/streaming";
import { Hono } from "npm:hono@4.13.19";
import { MalformedResponse, must, RawClient, request } from "./_raw.ts";
import { deferred, startServer, within } from "./_serve.ts";
import { Connection } from "../../reactor/connection.ts";
import { sleep } from "../_helpers.ts";

const enc = new TextEncoder();

/**
 * A stream of `parts`, one every `ms` (0: all at once). Cancelled, it stops
 * and clears its pending timer: a server may start a pipelined request's
 * stream and cancel it when the connection ends, and a timer left behind
 * would outlive the test.
 */
function slowStream(parts: string[], ms: number, end: "close" | "error" | "hang" = "close") {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let wake: (() => void) | undefined;
  let cancelled = false;
  return new ReadableStream<Uint8Array>({
    async start(c) {
      for (const p of parts) {
        if (ms > 0) {
          await new Promise<void>((r) => {
            wake = r;
            timer = setTimeout(r, ms);
          });
        }
        if (cancelled) return;
        c.enqueue(enc.encode(p));
      }
      if (end === "close") c.close();
      else if (end === "error") c.error(new Error("the body failed (expected by the test)"));
    },
    cancel() {
      cancelled = true;
      clearTimeout(timer);
      wake?.();
    },
  });
}

Deno.test("streams: a stream shorter or longer than its content-length aborts the connection; never a wrong frame", async () => {
  const errors: unknown[] = [];
  const server = startServer({
    onError(e) {
      errors.push(e);
      return new Response("unused", { status: 500 });
    },
  }, (req) => {
    const path = new URL(req.url).pathname;
    const parts = path === "/short" ? ["abc"] : ["hello", "world!"];
    return new Response(slowStream(parts, 10), { headers: { "content-length": "5" } });
  });
  try {
    if (server.kind === "deno") {
      console.log("streams: Deno.serve truncates a long stream (ffinet aborts): ffinet only");
      return;
    }
    for (const path of ["/short", "/long"]) {
      using c = await RawClient.connect(server.port);
      // A second request behind: it must never be answered on a broken frame.
      await c.write(request("GET", path) + request("GET", "/next"));
      if (path === "/short") {
        await assertRejects(() => c.readResponse(), MalformedResponse, undefined, path);
      } else {
        // The declared 5 bytes may arrive whole before the reset; never a sixth.
        const r = await c.readResponse().catch((e) => e);
        if (!(r instanceof Error)) assertEquals(r?.text, "hello");
      }
      const end = await c.waitEnd(5000);
      assertEquals(end, "reset", `${path}: the connection is reset`);
      const got = new TextDecoder().decode(c.pending);
      assert(got.split("HTTP/1.1 ").length <= 2, `${path}: no response after it: ${got}`);
      assert(!got.includes("world"), `${path}: not a byte past the length`);
    }
    assertEquals(errors.length, 2);
    assertMatch(String(errors[0]), /ended before its content-length/);
    assertMatch(String(errors[1]), /longer than its content-length/);
  } finally {
    await server.close();
  }
});

Deno.test("streams: a body that fails midway goes to onError and ends with a FIN (chunked, no last chunk)", async () => {
  const errors: unknown[] = [];
  const server = startServer({
    onError(e) {
      errors.push(e);
      return new Response("unused", { status: 500 });
    },
  }, () => new Response(slowStream(["part1,", "part2"], 10, "error")));
  try {
    using c = await RawClient.connect(server.port);
    await c.write(request("GET", "/"));
    assertEquals(await c.waitEnd(5000), "eof", "a FIN, not a reset");
    const text = new TextDecoder().decode(c.pending);
    assertMatch(text, /transfer-encoding: chunked/);
    assertMatch(text, /part1,\r\n[^]*part2\r\n$/, "what came is sent");
    assert(!text.endsWith("0\r\n\r\n"), "no last chunk: the client sees the body is incomplete");
    await within(
      (async () => {
        while (errors.length === 0) await sleep(10);
      })(),
      2000,
      "onError",
    );
    assertMatch(String(errors[0]), /expected by the test/);
  } finally {
    await server.close();
  }
});

Deno.test("streams: when clients leave, each response stream is cancelled with the reason; nothing is logged", async () => {
  const N = 20;
  const cancelled: unknown[] = [];
  const allCancelled = deferred();
  let sent = 0;
  const errors: unknown[] = [];
  const server = startServer({
    onError(e) {
      errors.push(e);
      return new Response("unused", { status: 500 });
    },
  }, () =>
    new Response(
      new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(enc.encode("data: hello\n\n"));
          sent++;
        },
        // An SSE producer that waits for events: only cancel() stops it.
        cancel(reason) {
          cancelled.push(reason);
          if (cancelled.length === N) allCancelled.resolve();
        },
      }),
      { headers: { "content-type": "text/event-stream" } },
    ));
  const logged: unknown[] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => logged.push(args);
  try {
    const clients: RawClient[] = [];
    for (let i = 0; i < N; i++) {
      const c = await RawClient.connect(server.port);
      await c.write(request("GET", "/events"));
      clients.push(c);
    }
    for (const c of clients) {
      while (!new TextDecoder().decode(c.pending).includes("data: hello")) {
        assertEquals(await c.fill(5000), "data");
      }
    }
    assertEquals(sent, N);
    for (const c of clients) c.close();
    await within(allCancelled.promise, 5000, `${N} streams cancelled (got ${cancelled.length})`);
    if (server.kind === "ffinet") {
      for (const r of cancelled) {
        assertInstanceOf(r, DOMException);
        assertEquals((r as DOMException).name, "AbortError");
      }
    }
    await sleep(50);
    assertEquals(errors, [], "a client leaving is not a handler error");
    assertEquals(logged, [], "nothing is logged");
  } finally {
    console.error = original;
    await server.close();
  }
});

Deno.test("streams: Hono streamSSE's onAbort runs when the client leaves", async () => {
  const aborted = deferred();
  const app = new Hono();
  app.get("/sse", (c) =>
    streamSSE(c, async (stream) => {
      stream.onAbort(() => aborted.resolve());
      await stream.writeSSE({ data: "first" });
      while (!stream.aborted) await stream.sleep(20);
    }));
  const server = startServer({}, app.fetch);
  try {
    const c = await RawClient.connect(server.port);
    await c.write(request("GET", "/sse"));
    while (!new TextDecoder().decode(c.pending).includes("data: first")) {
      assertEquals(await c.fill(5000), "data");
    }
    c.close();
    await within(aborted.promise, 5000, "onAbort");
    await sleep(60); // the handler's loop sees `aborted` after its sleep
  } finally {
    await server.close();
  }
});

/** Count `Connection.write` calls (the server's writes to its sockets) while `fn` runs. */
async function countWrites(fn: () => Promise<void>): Promise<number> {
  const write = Connection.prototype.write;
  let n = 0;
  Connection.prototype.write = function (this: Connection, data: Uint8Array): boolean {
    n++;
    return write.call(this, data);
  };
  try {
    await fn();
  } finally {
    Connection.prototype.write = write;
  }
  return n;
}

Deno.test("streams: one write per chunk (size line, data and CRLF together); chunks at hand share a write", async () => {
  const server = startServer({}, (req) => {
    const path = new URL(req.url).pathname;
    const parts = Array.from({ length: 40 }, (_, i) => `chunk ${i};`);
    return new Response(slowStream(parts, path === "/slow" ? 2 : 0));
  });
  try {
    if (server.kind === "deno") {
      console.log("streams: counts ffinet's own writes: ffinet only");
      return;
    }
    for (const path of ["/slow", "/burst"]) {
      using c = await RawClient.connect(server.port);
      const writes = await countWrites(async () => {
        await c.write(request("GET", path));
        const r = must(await c.readResponse(), path);
        assertEquals(r.framing, "chunked");
        assertEquals(r.text, Array.from({ length: 40 }, (_, i) => `chunk ${i};`).join(""));
      });
      // The head, then one write per chunk at most, then the last chunk.
      assert(writes <= 42, `${path}: ${writes} writes for 40 chunks`);
      if (path === "/burst") assert(writes <= 4, `burst: ${writes} writes for 40 ready chunks`);
    }
  } finally {
    await server.close();
  }
});
