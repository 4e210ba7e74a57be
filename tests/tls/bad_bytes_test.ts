/**
 * Bad bytes after the handshake, against `serve({ cert, key })`: a record
 * cut short by the peer's close, a record with one ciphertext bit flipped,
 * and a record header claiming more than a record may hold. Each closes
 * that connection at once, reaches no handler, and leaves the server
 * serving others. A flipped byte gets OpenSSL's `bad_record_mac` alert
 * before the close (TLS 1.3, where the alert travels encrypted, and TLS
 * 1.2, where its record header says 21 on the wire), an oversized record
 * `record_overflow`; the listener counts each and reports it with
 * OpenSSL's text. (Bad bytes before or during the handshake — garbage
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
import { runBounded } from "../_helpers.ts";
import { hasCommand, makePki, type TestPki } from "./_certs.ts";
import { serveHttps, startServer, warmUp } from "./_server.ts";

warmUp();

const TEST = { sanitizeOps: true, sanitizeResources: true };
/** How long the client waits for the server to answer or close, in seconds. */
const CLIENT_WAIT_S = 8;

/** Run the raw client in `mode` (TLS `version`); returns its one line and how long it took. */
async function rawClient(
  pki: TestPki,
  port: number,
  mode: string,
  version = "1.3",
): Promise<{ line: string; ms: number }> {
  const started = performance.now();
  const out = await runBounded("python3", {
    args: [
      new URL("./_raw_tls_client.py", import.meta.url).pathname,
      String(port),
      pki.caPath,
      mode,
      String(CLIENT_WAIT_S),
      version,
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
    const server = serveHttps(pki, {}, () => {
      handled++;
      return new Response("ok");
    });
    const client = Deno.createHttpClient({ caCerts: [pki.caCert] });
    try {
      const port = (server.addr as Deno.NetAddr).port;
      // The control: the same client, its record intact, gets a response.
      const intact = await rawClient(pki, port, "intact");
      assertMatch(intact.line, /^response HTTP\/1\.1 200 OK records /);
      assertEquals(handled, 1);
      for (const mode of ["truncated", "tampered", "oversized"]) {
        const before = handled;
        const r = await rawClient(pki, port, mode);
        console.log(`${mode}: ${r.line} after ${r.ms.toFixed(0)} ms`);
        // Closed by the server (an alert, a close or a reset), not left to time out.
        assertMatch(r.line, /^(alert \S+ then (eof|reset)|eof|reset) records /, mode);
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

Deno.test(
  "a record with a flipped byte gets OpenSSL's bad_record_mac alert before the close (TLS 1.3 and 1.2), an oversized one record_overflow; each is counted and logged with OpenSSL's text, and others are served",
  TEST,
  async () => {
    if (!await hasCommand("python3")) {
      console.log("skip: bad record alerts: python3 is not installed");
      return;
    }
    const pki = await makePki();
    const badRecords: Error[] = [];
    const s = startServer({ cert: pki.cert, key: pki.key }, (conn) => {
      conn.onData = () => {
        conn.write(new TextEncoder().encode("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"));
      };
    });
    const server = s.server;
    server.onBadRecord = (error) => badRecords.push(error);
    const port = s.port;
    try {
      // The control: an intact record is answered.
      assertMatch((await rawClient(pki, port, "intact")).line, /^response HTTP\/1\.1 200 OK /);
      // TLS 1.3: the alert travels encrypted (outer type 23); the client decrypts it.
      const t13 = await rawClient(pki, port, "tampered", "1.3");
      console.log(`TLS 1.3 tampered: ${t13.line}`);
      assertMatch(t13.line, /^alert SSLV3_ALERT_BAD_RECORD_MAC then eof records (23,)*23$/);
      // TLS 1.2: the alert record's own header says 21 on the wire.
      const t12 = await rawClient(pki, port, "tampered", "1.2");
      console.log(`TLS 1.2 tampered: ${t12.line}`);
      assertMatch(t12.line, /^alert SSLV3_ALERT_BAD_RECORD_MAC then eof records 21$/);
      const big = await rawClient(pki, port, "oversized", "1.3");
      console.log(`TLS 1.3 oversized: ${big.line}`);
      assertMatch(big.line, /^alert TLSV1_ALERT_RECORD_OVERFLOW then (eof|reset) records /);
      assertEquals(server.stats.badRecords, 3);
      assertEquals(badRecords.length, 3);
      for (const e of badRecords.slice(0, 2)) {
        assertMatch(
          e.message,
          /^Cannot read TLS data: the peer from 127\.0\.0\.1:\d+ sent a bad record \(the alert was sent\): (.*; )?error:0A000119:SSL routines::decryption failed or bad record mac$/,
        );
      }
      assertMatch(badRecords[2]!.message, /packet length too long|record overflow/);
      // Still serving.
      assertMatch((await rawClient(pki, port, "intact")).line, /^response HTTP\/1\.1 200 OK /);
      assertEquals(s.errors, []);
    } finally {
      await s.stop();
      await pki.remove();
    }
  },
);
