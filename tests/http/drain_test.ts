/**
 * The graceful drain of `serve()` and `serveRaw()` (`shutdown()`, and
 * SIGTERM in a supervised worker), over raw loopback sockets: the listener
 * closes at once, in-flight requests finish with `connection: close`, a
 * kept-alive connection between requests is still read for `drainIdleMs`
 * (a request that arrives then is answered with `connection: close`, not
 * lost) and is closed with a FIN once it stayed idle that long;
 * `drainIdleMs: 0` closes idle connections at once.
 *
 * @module
 */
import { assert, assertEquals, assertThrows } from "@std/assert";
import { type HttpServer, serve } from "../../http/mod.ts";
import { serveRaw } from "../../http/raw.ts";
import { assertConnectRefused, sleep } from "../_helpers.ts";
import { must, RawClient, request } from "./_raw.ts";

type Kind = "serve" | "serveRaw";
const KINDS: Kind[] = ["serve", "serveRaw"];

interface Limits {
  drainIdleMs?: number;
  drainTimeoutMs?: number;
}

/** A server of `kind`: `/` answers "ok", `/slow` after 300 ms. */
function start(kind: Kind, limits: Limits): { server: HttpServer; port: number } {
  const base = { hostname: "127.0.0.1", port: 0, onListen() {}, ...limits };
  const server = kind === "serve"
    ? serve(base, async (req) => {
      if (new URL(req.url).pathname === "/slow") await sleep(300);
      return new Response("ok");
    })
    : serveRaw(base, (req, res) => {
      if (req.target === "/slow") setTimeout(() => res.send(200, "ok"), 300);
      else res.send(200, "ok");
    });
  return { server, port: (server.addr as { port: number }).port };
}

/** A kept-alive connection that has had one exchange. */
async function keptAlive(port: number): Promise<RawClient> {
  const c = await RawClient.connect(port);
  await c.write(request("GET", "/"));
  const res = must(await c.readResponse(), "a response");
  assertEquals(res.status, 200);
  assertEquals(res.headers.get("connection") ?? "keep-alive", "keep-alive");
  return c;
}

function assertRefused(port: number): Promise<void> {
  return assertConnectRefused(port, "a connection was accepted after the drain began");
}

for (const kind of KINDS) {
  Deno.test(`drain (${kind}): a request on an idle keep-alive connection within the grace is answered with connection: close, then FIN; new connections are refused`, async () => {
    const { server, port } = start(kind, { drainIdleMs: 2500, drainTimeoutMs: 5000 });
    using c = await keptAlive(port);
    const t0 = performance.now();
    const done = server.shutdown();
    // The listener is closed at once, while the drain is still under way.
    await assertRefused(port);
    await sleep(50);
    await c.write(request("GET", "/"));
    const res = must(await c.readResponse({ timeoutMs: 5000 }), "the response to the late request");
    assertEquals(res.status, 200);
    assertEquals(res.text, "ok");
    assertEquals(res.headers.get("connection"), "close");
    assertEquals(await c.waitEnd(3000), "eof");
    await done;
    await server.finished;
    // Closed after that response, not after the grace.
    const took = performance.now() - t0;
    assert(took < 2000, `shutdown took ${took.toFixed(0)} ms`);
  });

  Deno.test(`drain (${kind}): an idle keep-alive connection is closed with FIN after drainIdleMs; an in-flight request finishes with connection: close`, async () => {
    const { server, port } = start(kind, { drainIdleMs: 400, drainTimeoutMs: 5000 });
    using idle = await keptAlive(port);
    using busy = await RawClient.connect(port);
    await busy.write(request("GET", "/slow"));
    await sleep(50);
    const t0 = performance.now();
    const done = server.shutdown();
    const res = must(await busy.readResponse({ timeoutMs: 5000 }), "the in-flight response");
    assertEquals(res.status, 200);
    assertEquals(res.text, "ok");
    assertEquals(res.headers.get("connection"), "close");
    assertEquals(await busy.waitEnd(3000), "eof");
    assertEquals(await idle.waitEnd(3000), "eof", "FIN (not RST) after the grace");
    const closedAfter = performance.now() - t0;
    assert(closedAfter >= 300, `the idle connection was closed after ${closedAfter.toFixed(0)} ms`);
    await done;
    await server.finished;
    const took = performance.now() - t0;
    assert(took < 3000, `shutdown took ${took.toFixed(0)} ms`);
  });

  Deno.test(`drain (${kind}): drainIdleMs: 0 closes an idle keep-alive connection at once`, async () => {
    const { server, port } = start(kind, { drainIdleMs: 0, drainTimeoutMs: 5000 });
    using idle = await keptAlive(port);
    const t0 = performance.now();
    const done = server.shutdown();
    assertEquals(await idle.waitEnd(3000), "eof");
    // Up to the FIN only: a grace left at its default (500 ms) must still fail.
    const took = performance.now() - t0;
    await done;
    await server.finished;
    assert(took < 400, `closed after ${took.toFixed(0)} ms`);
  });
}

Deno.test("drain (serve): a connection idle longer than the grace when the drain begins closes at once", async () => {
  // A grace of 3 s: closing "at once" (well under 2 s) and waiting out the
  // grace again (3 s or more) stay apart on a loaded machine.
  const { server, port } = start("serve", { drainIdleMs: 3000, drainTimeoutMs: 8000 });
  using idle = await keptAlive(port);
  await sleep(3100);
  const t0 = performance.now();
  const done = server.shutdown();
  assertEquals(await idle.waitEnd(3000), "eof");
  const took = performance.now() - t0;
  await done;
  await server.finished;
  assert(took < 2000, `closed after ${took.toFixed(0)} ms (the grace is 3000 ms)`);
});

Deno.test("drain (serve): a request whose head is arriving when the drain begins is answered (connection: close)", async () => {
  const { server, port } = start("serve", { drainIdleMs: 200, drainTimeoutMs: 5000 });
  using c = await keptAlive(port);
  await c.write("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n");
  await sleep(50);
  const done = server.shutdown();
  await sleep(400); // past the grace: the request has started, so it is not cut
  await c.write("\r\n");
  const res = must(await c.readResponse({ timeoutMs: 5000 }), "the response");
  assertEquals(res.status, 200);
  assertEquals(res.headers.get("connection"), "close");
  assertEquals(await c.waitEnd(3000), "eof");
  await done;
  await server.finished;
});

Deno.test("drain: drainIdleMs is validated before anything is bound", () => {
  const base = { hostname: "127.0.0.1", port: 0, onListen() {} };
  const handler = () => new Response("x");
  assertThrows(
    () => serve({ ...base, drainIdleMs: 2000, drainTimeoutMs: 1000 }, handler),
    RangeError,
    "drainIdleMs",
  );
  assertThrows(() => serve({ ...base, drainIdleMs: -1 }, handler), RangeError, "drainIdleMs");
  assertThrows(() => serve({ ...base, drainIdleMs: 1.5 }, handler), RangeError, "drainIdleMs");
  assertThrows(
    () => serveRaw({ ...base, drainIdleMs: 20, drainTimeoutMs: 10 }, () => {}),
    RangeError,
    "drainIdleMs",
  );
});

Deno.test("drain: the default grace follows a small drainTimeoutMs; the drain timeout still cuts", async () => {
  // drainTimeoutMs 100 < the default grace (500): the grace becomes 100.
  const { server, port } = start("serve", { drainTimeoutMs: 100 });
  using c = await keptAlive(port);
  await c.write("GET / HTTP/1.1\r\n"); // a head that never ends
  const t0 = performance.now();
  await server.shutdown();
  await server.finished;
  const took = performance.now() - t0;
  assert(took < 1500, `shutdown took ${took.toFixed(0)} ms`);
  const end = await c.waitEnd(3000);
  assert(end === "eof" || end === "reset", `the connection ended (${end})`);
});
