/**
 * The OpenSSL bindings: every call that takes a buffer, tried with lengths
 * around the bound on a view between guard bytes (a bad length throws a
 * RangeError naming the call before OpenSSL runs; the bound works; the
 * guards never change); views that lie about their length (a subclass
 * getter), detached and shrunk buffers; errors carrying OpenSSL's queue as
 * text; callbacks that throw failing the handshake closed; contexts that
 * outlive `close()` while a connection uses them; a full handshake between
 * two `Ssl`s in memory.
 */
import { assert, assertEquals, assertMatch, assertThrows } from "@std/assert";
import { MemoryBio, viewLength } from "../../ffi/openssl_bio.ts";
import { encodeAlpn, SslContext } from "../../ffi/openssl_context.ts";
import { OpenSslError, takeOpenSslErrors } from "../../ffi/openssl_error.ts";
import { Ssl, SSL_READ_CLOSED } from "../../ffi/openssl_ssl.ts";
import { parseCertificates, parsePrivateKey } from "../../ffi/openssl_x509.ts";
import { openssl, SSL_OP, TLS_VERSION } from "../../ffi/openssl.ts";
import { makePki, type TestPki } from "../tls/_certs.ts";
import { completeHandshake, pump, serverContext } from "./_memory_tls.ts";
import { GUARD, Guarded } from "./_guarded.ts";

// At import, not in a test: libssl's load, and the one accept-any verify callback each
// thread keeps (which also opens Deno's own executable, once), are no test's leaks.
openssl();
{
  using warm = SslContext.create("client");
  warm.verifyPeer({ request: true, require: false });
}

const SIZE = 100;

function badLengths(size: number): number[] {
  return [
    -1,
    -0.5,
    0.5,
    NaN,
    Infinity,
    -Infinity,
    size + 1,
    size + GUARD,
    2 ** 31,
    2 ** 32,
    2 ** 32 + 1,
    Number.MAX_SAFE_INTEGER,
  ];
}

function assertRefused(fn: () => unknown, call: string, label: string): void {
  const e = assertThrows(fn, RangeError, undefined, label);
  assert(e.message.startsWith(`Cannot ${call}`), `${label}: ${e.message}`);
}

/** A Uint8Array whose `byteLength` getter lies. */
class Liar extends Uint8Array {
  override get byteLength(): number {
    return 1 << 20;
  }
}

let pkiPromise: Promise<TestPki> | undefined;
const pki = () => (pkiPromise ??= makePki());

/** A server and a client context from the test PKI, with ALPN on the server. */
async function contexts(): Promise<{ server: SslContext; client: SslContext }> {
  const p = await pki();
  const server = serverContext(p.cert, p.key);
  const client = SslContext.create("client");
  const cas = parseCertificates(p.caCert);
  client.trust(cas);
  cas.forEach((c) => c.free());
  client.verifyPeer({ request: true, require: true });
  return { server, client };
}

/** Handshake a fresh pair in memory. */
function handshake(server: SslContext, client: SslContext): { s: Ssl; c: Ssl } {
  const s = Ssl.create(server);
  const c = Ssl.create(client);
  c.setServerName("localhost");
  c.verifyHost("localhost");
  completeHandshake(s, c);
  return { s, c };
}

Deno.test("openssl: MemoryBio write/read check every length; the bound works; guards stay", () => {
  using bio = MemoryBio.create();
  const src = new Guarded(SIZE, 7);
  for (const len of badLengths(SIZE)) {
    assertRefused(() => bio.write(src.view, len), "write to BIO", `write ${len}`);
  }
  assertEquals(bio.pending, 0, "nothing was written by a refused call");
  assertEquals(bio.write(src.view, SIZE), SIZE);
  assertEquals(bio.write(src.view, SIZE), SIZE);
  const dst = new Guarded(SIZE);
  for (const len of badLengths(SIZE)) {
    assertRefused(() => bio.read(dst.view, len), "read from BIO", `read ${len}`);
  }
  // 200 bytes pending, a 100-byte view: exactly 100 come out, the guards stay.
  assertEquals(bio.read(dst.view), SIZE);
  dst.assertGuards("read at the bound");
  assert(dst.view.every((b) => b === 7));
  assertEquals(bio.read(dst.view, 10), 10);
  dst.assertGuards("short read");
  assertEquals(bio.pending, SIZE - 10);
  src.assertGuards("source");
});

Deno.test("openssl: lengths come from the real view (a lying getter, detached and shrunk buffers)", () => {
  using bio = MemoryBio.create();
  const liar = new Liar(8);
  assertEquals(viewLength("x", liar), 8);
  assertRefused(() => bio.write(liar, 1 << 20), "write to BIO", "liar");
  assertEquals(bio.write(liar), 8);
  assertEquals(bio.read(new Liar(4)), 4, "a read fills only the real 4 bytes");
  const fake = Object.setPrototypeOf({ length: 1 << 20 }, Uint8Array.prototype) as Uint8Array;
  assertThrows(
    () => bio.write(fake),
    TypeError,
    "Cannot write to BIO: the data is not a Uint8Array",
  );
  assertThrows(
    () => bio.write(new DataView(new ArrayBuffer(8)) as unknown as Uint8Array),
    TypeError,
  );
  const ab = new ArrayBuffer(16);
  const view = new Uint8Array(ab);
  ab.transfer();
  assertEquals(bio.write(view), 0, "a detached view is empty");
  assertRefused(() => bio.write(view, 1), "write to BIO", "detached");
  const rab = new ArrayBuffer(16, { maxByteLength: 16 });
  const tracking = new Uint8Array(rab);
  rab.resize(3);
  assertRefused(() => bio.write(tracking, 16), "write to BIO", "shrunk");
  bio.readAll();
  assertEquals(bio.write(tracking), 3);
});

Deno.test("openssl: Ssl feed/takeOutput/read/write check lengths; reads stop at the view", async () => {
  const { server, client } = await contexts();
  try {
    const { s, c } = handshake(server, client);
    const g = new Guarded(SIZE);
    for (const len of badLengths(SIZE)) {
      assertRefused(() => s.feed(g.view, len), "feed TLS records", `feed ${len}`);
      assertRefused(() => s.read(g.view, len), "read TLS data", `read ${len}`);
      assertRefused(() => c.write(g.view, len), "write TLS data", `write ${len}`);
      assertRefused(() => c.takeOutput(g.view, len), "read from BIO", `takeOutput ${len}`);
    }
    assertRefused(() => c.write(new Liar(4), 1 << 20), "write TLS data", "liar write");
    // 1000 bytes of plaintext; reads into a 100-byte view stop there.
    const msg = new Uint8Array(1000).map((_, i) => i & 0xff);
    assertEquals(c.write(msg), 1000);
    const out = new Guarded(SIZE);
    let n;
    let wire = 0;
    while ((n = c.takeOutput(out.view)) > 0) {
      out.assertGuards("takeOutput at the bound");
      s.feed(out.view, n);
      wire += n;
    }
    assert(wire > 1000, "records carry a header and a tag");
    const got: number[] = [];
    const r = new Guarded(SIZE);
    while ((n = s.read(r.view)) > 0) {
      r.assertGuards("read at the bound");
      got.push(...r.view.subarray(0, n));
    }
    assertEquals(new Uint8Array(got), msg);
    assertEquals(s.read(r.view, 0), 0);
    // close_notify: the reader learns the stream ended.
    c.shutdown();
    pump(c, s);
    assertEquals(s.read(r.view), SSL_READ_CLOSED);
    s.free();
    c.free();
    assertThrows(() => s.read(r.view), Deno.errors.BadResource);
  } finally {
    server.close();
    client.close();
  }
});

Deno.test("openssl: errors carry OpenSSL's queue as text, and leave it empty", async () => {
  const p = await pki();
  const e = assertThrows(() => parseCertificates("not a certificate"), OpenSslError);
  assertMatch(
    e.message,
    /^Cannot load certificate: no PEM certificate found: error:[0-9A-F]+:PEM routines::no start line/,
  );
  assertEquals(takeOpenSslErrors(), []);
  const k = assertThrows(() => parsePrivateKey(p.encryptedKey, "wrong"), OpenSslError);
  assertMatch(k.message, /wrong passphrase or damaged key: .*bad decrypt/);
  assertEquals(takeOpenSslErrors(), []);
  const m = assertThrows(() => {
    using ctx = SslContext.create("server");
    const chain = parseCertificates(p.cert);
    using key = parsePrivateKey(p.otherKey);
    try {
      ctx.useCertificate(chain, key);
    } finally {
      chain.forEach((c) => c.free());
    }
  }, OpenSslError);
  assertMatch(m.message, /key values mismatch/);
  assertEquals(takeOpenSslErrors(), []);
  const [expired] = parseCertificates(p.expiredCert);
  const x = assertThrows(() => expired!.checkValidity("use certificate"), OpenSslError);
  assertEquals(
    x.message,
    "Cannot use certificate: CN=expired: it expired on Jan  2 00:00:00 2010 GMT",
  );
  expired!.free();
  assertThrows(() => parsePrivateKey(p.key, "pass\0word"), TypeError, "NUL");
});

Deno.test("openssl: a throwing SNI callback fails the handshake closed and reports the error", async () => {
  const { server, client } = await contexts();
  const reported: unknown[] = [];
  server.onCallbackError = (e) => reported.push(e);
  server.onServerName(() => {
    throw new Error("picker broke");
  });
  const s = Ssl.create(server);
  const c = Ssl.create(client);
  try {
    c.setServerName("localhost");
    c.handshake();
    pump(c, s);
    const e = assertThrows(() => s.handshake(), OpenSslError);
    assertMatch(e.message, /Cannot complete TLS handshake/);
    assertEquals((reported[0] as Error).message, "picker broke");
    pump(s, c);
    assertThrows(() => c.handshake(), OpenSslError, "unrecognized name"); // the fatal alert
    assertEquals(takeOpenSslErrors(), []);
  } finally {
    s.free();
    c.free();
    server.close();
    client.close();
  }
});

Deno.test("openssl: ALPN names are checked (1 to 255 bytes); the server's preference wins", async () => {
  assertThrows(() => encodeAlpn("x", []), RangeError);
  assertThrows(() => encodeAlpn("x", [""]), RangeError);
  assertThrows(() => encodeAlpn("x", ["a".repeat(256)]), RangeError, "1 to 255 bytes");
  assertEquals(encodeAlpn("x", ["a".repeat(255)]).length, 256);
  assertEquals([...encodeAlpn("x", ["h2", "a"])], [2, 104, 50, 1, 97]);
  const { server, client } = await contexts();
  server.selectAlpn(["h2", "http/1.1"]);
  const s = Ssl.create(server);
  const c = Ssl.create(client);
  try {
    c.offerAlpn(["http/1.1", "h2"]);
    c.setServerName("localhost");
    for (let i = 0; i < 5; i++) {
      c.handshake();
      pump(c, s);
      s.handshake();
      pump(s, c);
    }
    assertEquals(s.alpnProtocol, "h2");
    assertEquals(c.alpnProtocol, "h2");
    assertEquals(s.serverName, "localhost");
  } finally {
    s.free();
    c.free();
    server.close();
    client.close();
  }
});

Deno.test("openssl: a closed context lives on while a connection uses it, and is freed after", async () => {
  const { server, client } = await contexts();
  const s = Ssl.create(server);
  server.close();
  assert(server.closed);
  server.pointer; // still usable: the connection holds a reference
  const c = Ssl.create(client);
  c.setServerName("localhost");
  for (let i = 0; i < 5; i++) {
    c.handshake();
    pump(c, s);
    s.handshake();
    pump(s, c);
  }
  assert(s.handshakeDone);
  s.free();
  assertThrows(() => server.pointer, Deno.errors.BadResource);
  c.free();
  client.close();
});

Deno.test("openssl: host verification and SNI refuse NUL bytes; IP addresses match IP SANs", async () => {
  const { server, client } = await contexts();
  try {
    const c = Ssl.create(client);
    assertThrows(() => c.setServerName("a\0b"), TypeError, "NUL");
    assertThrows(() => c.verifyHost("localhost\0.evil"), TypeError, "NUL");
    c.free();
    const s = Ssl.create(server);
    const ip = Ssl.create(client);
    ip.verifyHost("127.0.0.1");
    for (let i = 0; i < 5 && !ip.handshakeDone; i++) {
      ip.handshake();
      pump(ip, s);
      s.handshake();
      pump(s, ip);
    }
    assertEquals(ip.verifyError, undefined);
    s.free();
    ip.free();
    const s2 = Ssl.create(server);
    const wrong = Ssl.create(client);
    wrong.verifyHost("10.0.0.1");
    wrong.handshake();
    pump(wrong, s2);
    s2.handshake();
    pump(s2, wrong);
    const e = assertThrows(() => wrong.handshake(), OpenSslError);
    assertMatch(e.message, /certificate verify failed \(IP address mismatch\)/);
    s2.free();
    wrong.free();
  } finally {
    server.close();
    client.close();
  }
});

Deno.test("openssl: policy: TLS 1.2 minimum, 1.3 maximum, default security level", () => {
  using ctx = SslContext.create("server");
  assert(ctx.securityLevel >= 1, `security level ${ctx.securityLevel}`);
  assertEquals(ctx.protocolVersions, [TLS_VERSION.TLS1_2, TLS_VERSION.TLS1_3]);
  using client = SslContext.create("client");
  assertEquals(client.protocolVersions, [TLS_VERSION.TLS1_2, TLS_VERSION.TLS1_3]);
  const ops = ctx.options;
  assertEquals(ops & SSL_OP.NO_RENEGOTIATION, SSL_OP.NO_RENEGOTIATION, "no renegotiation");
  assertEquals(ops & SSL_OP.NO_COMPRESSION, SSL_OP.NO_COMPRESSION, "no compression");
  assertEquals(ops & SSL_OP.NO_TICKET, 0n, "session tickets on");
  assertThrows(() => SslContext.create("both" as "server"), TypeError);
});

Deno.test("openssl: inputPending tells when a read would only want more; releaseBuffers waits for empty BIOs and the stream goes on", async () => {
  const { server, client } = await contexts();
  try {
    const { s, c } = handshake(server, client);
    const buf = new Uint8Array(64 * 1024);
    let n;
    // Two records fed at once: after the first read the second still waits in the input BIO.
    c.write(new Uint8Array(100).fill(1));
    c.write(new Uint8Array(200).fill(2));
    while ((n = c.takeOutput(buf)) > 0) s.feed(buf, n);
    assertEquals(s.read(buf), 100);
    assert(s.inputPending > 0, "the second record waits");
    assertEquals(s.releaseBuffers(), false, "not while ciphertext waits to be read");
    assertEquals(s.read(buf), 200);
    assertEquals(s.inputPending, 0, "all ciphertext taken");
    assertEquals(s.read(buf), 0, "a further read only wants more");
    s.write(new Uint8Array(10).fill(3));
    assertEquals(s.releaseBuffers(), false, "not while records wait to be sent");
    pump(s, c);
    assertEquals(c.read(buf), 10);
    assertEquals(s.releaseBuffers(), true);
    assertEquals(c.releaseBuffers(), true);
    // Over the new BIOs, both ways.
    c.write(new Uint8Array(5000).fill(7));
    pump(c, s);
    let got = 0;
    while ((n = s.read(buf)) > 0) {
      assert(buf.subarray(0, n).every((b) => b === 7), "the bytes sent");
      got += n;
    }
    assertEquals(got, 5000);
    s.write(new Uint8Array(3).fill(9));
    pump(s, c);
    assertEquals(c.read(buf), 3);
    assertEquals(buf.subarray(0, 3), new Uint8Array(3).fill(9));
    s.free();
    c.free();
    assertThrows(() => s.releaseBuffers(), Deno.errors.BadResource);
    assertThrows(() => s.inputPending, Deno.errors.BadResource);
  } finally {
    server.close();
    client.close();
  }
});

Deno.test("openssl: cleanup: the test PKI is removed", async () => {
  await (await pki()).remove();
  pkiPromise = undefined;
});
