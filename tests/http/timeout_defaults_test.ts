/**
 * The connection timeouts `serve()` and `serveRaw()` apply when the caller
 * sets none, measured on the wire with the real clock: a head left
 * incomplete gets a 408 after 10 s (`headerTimeoutMs`), and a kept-alive
 * connection idles 60 s (`idleTimeoutMs`) before it closes with a FIN, also
 * after a request with a body (which must not start the header timeout).
 *
 * One test of about 62 s: both servers and all connections wait at once.
 * Bounds are generous on the late side (a loaded 2-core machine) and tight
 * on the early side (a timeout never fires early).
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import { must, RawClient, request } from "./_raw.ts";
import { serve, serveRaw } from "../../http/mod.ts";
import type { HttpServer } from "../../http/mod.ts";

const HEADER_DEFAULT_MS = 10_000;
const IDLE_DEFAULT_MS = 60_000;
/**
 * How late a timeout may fire on a loaded machine (the sweep runs every
 * second): generous, yet short of mistaking 20 s for 10 s or 75 s for 60 s.
 */
const HEADER_LATE_MS = 5_000;
const IDLE_LATE_MS = 12_000;
/** Clock skew between our stamp and the server's (it reads its loop's clock once per batch). */
const EARLY_MS = 300;

function portOf(server: HttpServer): number {
  return (server.addr as { port: number }).port;
}

/** An incomplete head: the 408 comes after the default header timeout. */
async function headerTimeout(kind: string, port: number): Promise<void> {
  using c = await RawClient.connect(port);
  const t0 = performance.now();
  await c.write("GET /slow HTTP/1.1\r\nHost: a\r\n"); // no blank line: the head never ends
  const res = must(
    await c.readResponse({ timeoutMs: HEADER_DEFAULT_MS + HEADER_LATE_MS + 5_000 }),
    `${kind}: the 408`,
  );
  const took = performance.now() - t0;
  assertEquals(res.status, 408, `${kind}: status`);
  assert(
    took >= HEADER_DEFAULT_MS - EARLY_MS,
    `${kind}: 408 after ${took.toFixed(0)} ms: the header timeout is shorter than 10 s`,
  );
  assert(
    took <= HEADER_DEFAULT_MS + HEADER_LATE_MS,
    `${kind}: 408 after ${took.toFixed(0)} ms: the header timeout is longer than 10 s`,
  );
  assertEquals(await c.waitEnd(5000), "eof", `${kind}: the connection closes after the 408`);
}

/**
 * After `first` is answered, the connection idles: no bytes, then a FIN
 * after the default idle timeout.
 */
async function idleTimeout(kind: string, port: number, first: string, what: string) {
  using c = await RawClient.connect(port);
  await c.write(first);
  const res = must(await c.readResponse(), `${kind}: ${what}`);
  assertEquals(res.status, 200, `${kind}: ${what}`);
  const t0 = performance.now();
  const end = await c.waitEnd(IDLE_DEFAULT_MS + IDLE_LATE_MS);
  const took = performance.now() - t0;
  const extra = new TextDecoder().decode(c.pending);
  assertEquals(extra, "", `${kind}: after ${what}, an idle connection was sent bytes (${took} ms)`);
  assertEquals(end, "eof", `${kind}: after ${what}, idle for ${took.toFixed(0)} ms`);
  assert(
    took >= IDLE_DEFAULT_MS - 1000, // the server's idle clock starts when it wrote the response
    `${kind}: after ${what}, closed after ${took.toFixed(0)} ms idle: shorter than 60 s`,
  );
}

Deno.test("timeout defaults (serve, serveRaw): an incomplete head gets a 408 after 10 s; a kept-alive connection idles 60 s, also after a body", async () => {
  const base = { hostname: "127.0.0.1", port: 0, onListen() {} };
  const servers: [string, HttpServer][] = [
    ["serve", serve(base, async (req) => new Response(`got ${(await req.bytes()).length}`))],
    ["serveRaw", serveRaw(base, (req, res) => res.send(200, `got ${req.body.length}`))],
  ];
  try {
    const post = request("POST", "/up", { "content-length": "5" }, "hello");
    const chunked = "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" +
      "5\r\nhello\r\n0\r\n\r\n";
    await Promise.all(servers.flatMap(([kind, server]) => {
      const port = portOf(server);
      return [
        headerTimeout(kind, port),
        idleTimeout(kind, port, request("GET", "/"), "a GET"),
        idleTimeout(kind, port, post, "a POST with a Content-Length body"),
        idleTimeout(kind, port, chunked, "a POST with a chunked body"),
      ];
    }));
  } finally {
    await Promise.all(servers.map(([, s]) => s.shutdown()));
  }
});
