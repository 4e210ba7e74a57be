/**
 * `SslPool`: a server `SSL` whose handshake completed is cleared and kept
 * for the next connection; nothing of one connection reaches the next
 * (records left unread or unsent, the server name, ALPN, the session, the
 * context a server-name callback moved it to); unfinished handshakes, full
 * pools and closed pools free instead; `close()` frees what it keeps.
 * Handshakes run between two `Ssl`s in memory.
 */
import { assert, assertEquals, assertThrows } from "@std/assert";
import { SslContext } from "../../ffi/openssl_context.ts";
import { Ssl, SslPool } from "../../ffi/openssl_ssl.ts";
import { openssl } from "../../ffi/openssl.ts";
import { makePki, type TestPki } from "../tls/_certs.ts";
import { completeHandshake, pump, serverContext } from "./_memory_tls.ts";

// At import, not in a test: libssl's load and the callbacks each thread keeps for good.
openssl();
SslContext.create("server").close();

let pkiPromise: Promise<TestPki> | undefined;
function pki(): Promise<TestPki> {
  pkiPromise ??= makePki();
  return pkiPromise;
}

/** One client connection against `s`: SNI and ALPN as given; returns the client. */
function connect(
  s: Ssl,
  client: SslContext,
  opts: { name?: string; alpn?: string[] } = {},
): Ssl {
  const c = Ssl.create(client);
  if (opts.name !== undefined) c.setServerName(opts.name);
  if (opts.alpn !== undefined) c.offerAlpn(opts.alpn);
  completeHandshake(s, c);
  return c;
}

/** The subject of the certificate the client got. */
function servedSubject(c: Ssl): string {
  const x = c.peerCertificate()!;
  try {
    return x.subject;
  } finally {
    x.free();
  }
}

Deno.test("SslPool: a finished SSL is cleared and reused; no name, ALPN or session of one connection reaches the next", async () => {
  const p = await pki();
  using main = serverContext(p.cert, p.key);
  main.selectAlpn(["h2", "http/1.1"]);
  using client = SslContext.create("client");
  using pool = new SslPool(main, 4);
  const plans: Array<{ name?: string; alpn?: string[] }> = [
    { name: "one.test", alpn: ["h2"] },
    {},
    { name: "two.test", alpn: ["http/1.1"] },
    { alpn: ["h2"] },
    { name: "three.test" },
    {},
  ];
  for (const [i, plan] of plans.entries()) {
    const s = Ssl.fromPool(pool);
    assertEquals(s.recycled, i > 0, `connection ${i}: a kept SSL after the first`);
    assertEquals(s.pendingOutput, 0, `connection ${i}: nothing left to send from before`);
    assertEquals(s.inputPending, 0, `connection ${i}: nothing left to read from before`);
    const c = connect(s, client, plan);
    assertEquals(s.serverName, plan.name, `connection ${i}: server name`);
    assertEquals(s.alpnProtocol, plan.alpn?.[0], `connection ${i}: ALPN`);
    assertEquals(c.alpnProtocol, plan.alpn?.[0], `connection ${i}: ALPN the client saw`);
    assertEquals(s.sessionReused, false, `connection ${i}: a fresh client is not resumed`);
    assertEquals(s.protocol, "TLSv1.3");
    // A clean end on even connections, an abrupt one (no close_notify) on odd ones.
    if (i % 2 === 0) {
      s.shutdown();
      c.shutdown();
      pump(s, c);
    }
    c.free();
    s.free();
    assertEquals(pool.idle, 1, `connection ${i}: given back`);
  }
  assertEquals(pool.reused, plans.length - 1);
});

Deno.test("SslPool: records left unread and unsent by one connection never reach the next", async () => {
  const p = await pki();
  using main = serverContext(p.cert, p.key);
  using client = SslContext.create("client");
  using pool = new SslPool(main, 2);
  const s1 = Ssl.fromPool(pool);
  const c1 = connect(s1, client);
  // Unread: a record from the peer fed but never read. Unsent: the server's own data.
  c1.write(new TextEncoder().encode("left unread"));
  const buf = new Uint8Array(4096);
  const n = c1.takeOutput(buf);
  assert(n > 0);
  s1.feed(buf, n);
  s1.write(new TextEncoder().encode("left unsent"));
  assert(s1.pendingOutput > 0 && s1.inputPending > 0, "both BIOs hold bytes");
  c1.free();
  s1.free();
  assertEquals(pool.idle, 1);
  const s2 = Ssl.fromPool(pool);
  assert(s2.recycled);
  assertEquals(s2.pendingOutput, 0, "the unsent records were dropped");
  assertEquals(s2.inputPending, 0, "the unread records were dropped");
  const c2 = connect(s2, client);
  c2.write(new TextEncoder().encode("fresh"));
  pump(c2, s2);
  const got = new Uint8Array(64);
  const r = s2.read(got);
  assertEquals(new TextDecoder().decode(got.subarray(0, r)), "fresh");
  c2.free();
  s2.free();
});

Deno.test("SslPool: an SSL a server-name callback moved to another context is freed, not kept", async () => {
  const p = await pki();
  using main = serverContext(p.cert, p.key);
  using other = serverContext(p.bCert, p.bKey);
  main.onServerName((name) => name === "b.test" ? other : undefined);
  using client = SslContext.create("client");
  using pool = new SslPool(main, 4);
  const s1 = Ssl.fromPool(pool);
  const c1 = connect(s1, client, { name: "b.test" });
  assertEquals(servedSubject(c1), "CN=b.test");
  c1.free();
  s1.free();
  assertEquals(pool.idle, 0, "moved to another context: freed");
  const s2 = Ssl.fromPool(pool);
  const c2 = connect(s2, client);
  assertEquals(servedSubject(c2), "CN=localhost", "no server name: the default certificate");
  c2.free();
  s2.free();
  assertEquals(pool.idle, 1);
  const s3 = Ssl.fromPool(pool);
  assert(s3.recycled);
  const c3 = connect(s3, client, { name: "other.test" });
  assertEquals(servedSubject(c3), "CN=localhost");
  c3.free();
  s3.free();
});

Deno.test("SslPool: unfinished handshakes, a full pool and a closed pool free; close() frees what is kept", async () => {
  const p = await pki();
  using main = serverContext(p.cert, p.key);
  using client = SslContext.create("client");
  const pool = new SslPool(main, 1);
  const half = Ssl.fromPool(pool);
  half.feed(new Uint8Array([0x16, 3, 1, 0, 4, 1, 0, 0, 0])); // a truncated ClientHello
  assertThrows(() => half.handshake());
  half.free();
  assertEquals(pool.idle, 0, "a handshake that never completed is not kept");
  const a = Ssl.fromPool(pool);
  const b = Ssl.fromPool(pool);
  const ca = connect(a, client);
  const cb = connect(b, client);
  ca.free();
  cb.free();
  a.free();
  b.free();
  assertEquals(pool.idle, 1, "size 1: the second was freed");
  const none = new SslPool(main, 0);
  const z = Ssl.fromPool(none);
  const cz = connect(z, client);
  cz.free();
  z.free();
  assertEquals(none.idle, 0, "size 0 keeps nothing");
  none.close();
  const late = Ssl.fromPool(pool);
  pool.close();
  assertEquals(pool.idle, 0);
  assert(pool.closed);
  const cl = connect(late, client);
  cl.free();
  late.free();
  assertEquals(pool.idle, 0, "given back after close: freed");
  pool.close();
});

Deno.test("SslPool: bad arguments are refused with errors naming the call", () => {
  using server = SslContext.create("server");
  using client = SslContext.create("client");
  for (const size of [-1, 1.5, NaN, 1025, "4" as unknown as number]) {
    assertThrows(() => new SslPool(server, size), RangeError, "Cannot create TLS connection pool");
  }
  assertThrows(() => new SslPool(client), TypeError, "not a server SslContext");
  assertThrows(
    () => Ssl.fromPool({} as SslPool),
    TypeError,
    "Cannot create TLS connection: pool is not an SslPool",
  );
});
