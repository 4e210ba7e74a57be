/**
 * How a connection ends, over raw sockets and TLS:
 *
 * - a client that asked for the close (`Connection: close`, HTTP/1.0) and
 *   sent nothing more is closed as soon as its response is out, without a
 *   linger for its FIN;
 * - a client that asked for the close and is still sending a body the
 *   handler never read gets its response and a FIN, never a reset: the
 *   server lingers and drops the rest;
 * - a drain that waits for a TLS handshake ends when that handshake fails,
 *   not at the end of the `drainIdleMs` grace (one that completes is in
 *   tls_serve_test.ts).
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import { must, RawClient, request } from "./_raw.ts";
import { serve } from "../../http/mod.ts";
import type { HttpServer, ServeHandler, ServeOptions } from "../../http/types.ts";
import { makePki } from "../tls/_certs.ts";
import { serveHttps, warmUp } from "../tls/_server.ts";
import { within } from "./_serve.ts";
import { sleep, waitFor } from "../_helpers.ts";

warmUp(); // libssl is loaded once, outside the tests' resource checks

const TEST = { sanitizeOps: true, sanitizeResources: true };

function portOf(server: HttpServer): number {
  return (server.addr as { port: number }).port;
}

function start(handler: ServeHandler, options: Partial<ServeOptions> = {}): HttpServer {
  return serve({ hostname: "127.0.0.1", port: 0, onListen() {}, ...options }, handler);
}

/** The server's count of open connections (the server object has it; the type does not say). */
function openConnections(server: HttpServer): number {
  const n = (server as unknown as { connections: unknown }).connections;
  assertEquals(typeof n, "number", "the server counts its connections");
  return n as number;
}

for (
  const [what, head] of [
    ["Connection: close", "GET / HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n"],
    ["HTTP/1.0", "GET / HTTP/1.0\r\nhost: a\r\n\r\n"],
  ] as const
) {
  Deno.test(
    `close: after a ${what} request the server closes without waiting for the client's FIN`,
    TEST,
    async () => {
      const server = start(() => new Response("bye"));
      try {
        using c = await RawClient.connect(portOf(server));
        await c.write(head);
        const res = must(await c.readResponse(), "the response");
        assertEquals(res.status, 200);
        assertEquals(res.text, "bye");
        assertEquals(await c.waitEnd(5000), "eof", "a FIN, not a reset");
        // The client keeps its end open: a linger would hold the server's end
        // for seconds (LINGER_MS); a close leaves no connection at once.
        await waitFor(() => openConnections(server) === 0, 1000, "the server's end to close");
      } finally {
        await server.shutdown();
      }
    },
  );
}

Deno.test(
  "close: a Connection: close response reaches a client still sending a body the handler never read, with a FIN, not a reset",
  TEST,
  async () => {
    const server = start(() => new Response("refused", { status: 413 }));
    try {
      using c = await RawClient.connect(portOf(server));
      const bodyLength = 4 * 1024 * 1024;
      const sending = (async () => {
        await c.write(
          request("POST", "/up", {
            "content-length": String(bodyLength),
            connection: "close",
          }),
        );
        await c.write(new Uint8Array(bodyLength).fill(0x61));
      })().then(() => null, (e: unknown) => e);
      const res = must(await c.readResponse({ timeoutMs: 10_000 }), "the response");
      assertEquals(res.status, 413);
      assertEquals(res.text, "refused");
      assertEquals(await within(sending, 10_000, "the body to be sent"), null, "the body went out");
      assertEquals(await c.waitEnd(5000), "eof", "the server's end is a FIN");
      assert(!c.reset, "no reset");
    } finally {
      await server.shutdown();
    }
  },
);

Deno.test(
  "close: a drain waiting for a TLS handshake ends when the handshake fails, not at drainIdleMs",
  TEST,
  async () => {
    const pki = await makePki();
    // A long drain grace, so that an ended wait is told from the deadline.
    const server = serveHttps(
      pki,
      { drainIdleMs: 8000, drainTimeoutMs: 10_000 },
      () => new Response("ok"),
    );
    try {
      using tcp = await Deno.connect({ hostname: "127.0.0.1", port: portOf(server) });
      await sleep(200); // accepted: the handshake is under way
      const finished = server.shutdown();
      await tcp.write(new TextEncoder().encode("not a ClientHello\r\n\r\n"));
      const started = Date.now();
      await within(finished, 5000, "the drain to end after the failed handshake");
      assert(Date.now() - started < 5000);
    } finally {
      await server.shutdown();
      await pki.remove();
    }
  },
);
