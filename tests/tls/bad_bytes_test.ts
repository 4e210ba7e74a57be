/**
 * Bad bytes after the handshake, against `serve({ cert, key })`: a record
 * cut short by the peer's close, a record with one ciphertext bit flipped,
 * and a record header claiming more than a record may hold. Each closes
 * that connection at once, reaches no handler, and leaves the server
 * serving others. (Bad bytes before or during the handshake — garbage
 * instead of a ClientHello, a slowloris handshake, peers that vanish
 * mid-handshake, half-open handshakes — are in tls_test.ts and
 * flood_test.ts.)
 *
 * The client is Python's `ssl` over memory BIOs (tests/tls/_raw_tls_client.py):
 * a real TLS 1.3 handshake, then records it can damage.
 *
 * @module
 */
import { assertEquals, assertMatch } from "@std/assert";
import { serve } from "../../http/mod.ts";
import { runBounded } from "../_helpers.ts";
import { hasCommand, makePki, type TestPki } from "./_certs.ts";
import { warmUp } from "./_server.ts";

warmUp();

const TEST = { sanitizeOps: true, sanitizeResources: true };
/** How long the client waits for the server to answer or close, in seconds. */
const CLIENT_WAIT_S = 8;

/** Run the raw client in `mode`; returns its one line and how long it took. */
async function rawClient(
  pki: TestPki,
  port: number,
  mode: string,
): Promise<{ line: string; ms: number }> {
  const started = performance.now();
  const out = await runBounded("python3", {
    args: [
      new URL("./_raw_tls_client.py", import.meta.url).pathname,
      String(port),
      pki.caPath,
      mode,
      String(CLIENT_WAIT_S),
    ],
  }, 60_000);
  assertEquals(out.code, 0, `${mode}: ${out.stdout} ${out.stderr}`);
  return { line: out.stdout.trim(), ms: performance.now() - started };
}

Deno.test(
  "bad bytes after the handshake: a truncated record, a flipped bit, an oversized record each close that connection, reach no handler, and others are served",
  TEST,
  async () => {
    if (!await hasCommand("python3")) {
      console.log("skip: bad bytes after the handshake: python3 is not installed");
      return;
    }
    const pki = await makePki();
    let handled = 0;
    const server = serve({
      hostname: "127.0.0.1",
      port: 0,
      cert: pki.cert,
      key: pki.key,
      onListen() {},
    }, () => {
      handled++;
      return new Response("ok");
    });
    const client = Deno.createHttpClient({ caCerts: [pki.caCert] });
    try {
      const port = (server.addr as Deno.NetAddr).port;
      // The control: the same client, its record intact, gets a response.
      const intact = await rawClient(pki, port, "intact");
      assertEquals(intact.line, "response HTTP/1.1 200 OK");
      assertEquals(handled, 1);
      for (const mode of ["truncated", "tampered", "oversized"]) {
        const before = handled;
        const r = await rawClient(pki, port, mode);
        console.log(`${mode}: ${r.line} after ${r.ms.toFixed(0)} ms`);
        // Closed by the server (an alert, a close or a reset), not left to time out.
        assertMatch(r.line, /^(alert \S+|eof|reset)$/, mode);
        assertEquals(handled, before, `${mode}: a damaged request reached the handler`);
        // Still serving.
        const res = await fetch(`https://localhost:${port}/`, { client });
        assertEquals(await res.text(), "ok");
        assertEquals(handled, before + 1);
      }
    } finally {
      client.close();
      await server.shutdown();
      await pki.remove();
    }
  },
);
