/**
 * The connection lifecycle `serve()` and `serveRaw()` share, over raw
 * sockets: a kept-alive connection after a request with a body idles (no
 * header timeout, a quick drain), `Expect: 100-continue` answered without
 * reading the body never takes the next bytes for a request, and
 * `serveRaw()`'s responder never wedges a connection when it refuses a
 * response.
 *
 * @module
 */
import { assert, assertEquals, assertMatch, assertThrows } from "@std/assert";
import { must, RawClient, request } from "./_raw.ts";
import { serve, serveRaw } from "../../http/mod.ts";
import type { HttpServer, RawHandler, RawResponder } from "../../http/mod.ts";
import { deferred, within } from "./_serve.ts";
import { sleep } from "../_helpers.ts";

const POST = request("POST", "/up", { "content-length": "5" }, "hello");

function portOf(server: HttpServer): number {
  return (server.addr as { port: number }).port;
}

type Kind = "serve" | "serveRaw";

/** A server of each kind that answers with the body's length. */
function start(kind: Kind, options: Record<string, number>): HttpServer {
  const base = { hostname: "127.0.0.1", port: 0, onListen() {}, ...options };
  if (kind === "serve") {
    return serve(base, async (req) => new Response(`got ${(await req.bytes()).length}`));
  }
  return serveRaw(base, (req, res) => res.send(200, `got ${req.body.length}`));
}

for (const kind of ["serve", "serveRaw"] as const) {
  Deno.test(`lifecycle (${kind}): after a request with a body the kept-alive connection idles: no 408 at the header timeout`, async () => {
    const server = start(kind, { headerTimeoutMs: 300, idleTimeoutMs: 20_000 });
    try {
      using c = await RawClient.connect(portOf(server));
      await c.write(POST);
      assertEquals(must(await c.readResponse(), "the POST").text, "got 5");
      // Three header timeouts of silence: an idle connection, not a head arriving.
      assertEquals(await c.waitEnd(1200), "timeout", "nothing was sent, nothing closed");
    } finally {
      await server.shutdown();
    }
    // (waitEnd's timeout closed the client; a second connection checks it stays usable)
    const again = start(kind, { headerTimeoutMs: 300, idleTimeoutMs: 20_000 });
    try {
      using c = await RawClient.connect(portOf(again));
      await c.write(POST);
      assertEquals(must(await c.readResponse(), "the POST").text, "got 5");
      await sleep(900);
      // A head in two pieces, then idling again: the head's clock stops once it is complete.
      const get = request("GET", "/");
      await c.write(get.slice(0, 10));
      await sleep(100);
      await c.write(get.slice(10));
      assertEquals(must(await c.readResponse(), "the GET after idling").text, "got 0");
      await sleep(900);
      await c.write(get);
      assertEquals(must(await c.readResponse(), "a GET after idling again").text, "got 0");
    } finally {
      await again.shutdown();
    }
  });

  Deno.test(`lifecycle (${kind}): shutdown closes a connection idle after a request with a body within the grace, with a FIN`, async () => {
    const server = start(kind, { drainIdleMs: 200, drainTimeoutMs: 10_000 });
    using c = await RawClient.connect(portOf(server));
    await c.write(POST);
    assertEquals(must(await c.readResponse(), "the POST").text, "got 5");
    const t0 = performance.now();
    const done = server.shutdown();
    assertEquals(await c.waitEnd(5000), "eof", "closed with a FIN, not reset at the drain timeout");
    await done;
    const took = performance.now() - t0;
    assert(took < 3000, `drained in ${took.toFixed(0)} ms (the drain timeout is 10 s)`);
  });
}

Deno.test("lifecycle (serve): Expect: 100-continue answered without reading the body closes; what follows is never a request", async () => {
  const seen: string[] = [];
  const server = serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req) => {
      seen.push(new URL(req.url).pathname);
      return new Response("no thanks", { status: 413 });
    },
  );
  try {
    using c = await RawClient.connect(portOf(server));
    await c.write(
      request("POST", "/upload", { "content-length": "38", expect: "100-continue" }),
    );
    const r = must(await c.readResponse(), "the answer");
    assertEquals(r.status, 413);
    assertEquals(r.headers.get("connection"), "close");
    // A client that sends its body anyway: a request inside it is not one.
    await c.write("GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n");
    assertEquals(await c.waitEnd(5000), "eof");
    assertEquals(c.pending.length, 0, "no second response");
    assertEquals(seen, ["/upload"]);
  } finally {
    await server.shutdown();
  }
});

Deno.test("lifecycle (serveRaw): send() refusing a header answers 500 and throws; the connection goes on (sync and later)", async () => {
  const thrown: unknown[] = [];
  const handler: RawHandler = (req, res) => {
    const bad = () => res.send(200, "x", { headers: { "bad name": "v" } });
    if (req.target === "/sync") {
      try {
        bad();
      } catch (e) {
        thrown.push(e);
      }
    } else if (req.target === "/later") {
      setTimeout(() => {
        try {
          bad();
        } catch (e) {
          thrown.push(e);
        }
      }, 20);
    } else {
      res.send(200, "fine");
    }
  };
  const server = serveRaw({ hostname: "127.0.0.1", port: 0, onListen() {} }, handler);
  try {
    using c = await RawClient.connect(portOf(server));
    await c.write(request("GET", "/sync") + request("GET", "/later") + request("GET", "/ok"));
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push(must(await c.readResponse(), "a response").status);
    assertEquals(statuses, [500, 500, 200]);
    assertEquals(thrown.length, 2);
    for (const e of thrown) assertMatch(String(e), /^TypeError: Cannot write response/);
  } finally {
    await server.shutdown();
  }
});

Deno.test("lifecycle (serveRaw): a thrown handler gets onError and a 500; a second answer is refused", async () => {
  const errors: unknown[] = [];
  let second: unknown;
  const server = serveRaw(
    {
      hostname: "127.0.0.1",
      port: 0,
      onListen() {},
      onError: (e) => errors.push(e),
    },
    (req, res) => {
      if (req.target === "/throw") throw new Error("thrown (expected by the test)");
      res.send(200, "one");
      second = assertThrows(() => res.send(200, "two"));
    },
  );
  try {
    using c = await RawClient.connect(portOf(server));
    await c.write(request("GET", "/throw") + request("GET", "/twice"));
    assertEquals(must(await c.readResponse(), "/throw").status, 500);
    assertEquals(must(await c.readResponse(), "/twice").text, "one");
    assertEquals(errors.length, 1);
    assertMatch(String(second), /already answered/);
  } finally {
    await server.shutdown();
  }
});

Deno.test("lifecycle (serveRaw): a handler that answers another connection's request mid-pump: each connection gets only its own bytes", async () => {
  let waiting: RawResponder | null = null;
  const parked = deferred();
  const server = serveRaw({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req, res) => {
    if (req.target === "/wait") {
      waiting = res; // a long poll, answered by another request
      parked.resolve();
    } else if (req.target === "/wake") {
      waiting!.send(200, "for the waiter");
      res.send(200, "woke");
    } else {
      res.send(200, `first ${req.target}`);
    }
  });
  try {
    using b = await RawClient.connect(portOf(server));
    await b.write(request("GET", "/wait"));
    await within(parked.promise, 5000, "the long poll");
    using a = await RawClient.connect(portOf(server));
    // One read on A: /a1 is answered into the batch before /wake answers B.
    await a.write(request("GET", "/a1") + request("GET", "/wake"));
    assertEquals(must(await a.readResponse(), "/a1").text, "first /a1");
    assertEquals(must(await a.readResponse(), "/wake").text, "woke");
    assertEquals(must(await b.readResponse(), "/wait").text, "for the waiter");
    await sleep(50);
    assertEquals(await b.fill(100), "timeout", "B got nothing of A's");
  } finally {
    await server.shutdown();
  }
});
