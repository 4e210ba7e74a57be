/**
 * ffi/openssl_aead.ts: HKDF-Expand-Label against RFC 8448's trace, records
 * sealed and opened with each TLS 1.3 suite, and the bounds of every call
 * that takes memory: each view sits in the middle of guard bytes, a length
 * or offset one past the bound throws a RangeError naming the call before
 * OpenSSL runs, exactly at the bound works, and the guards never change (a
 * lying subclass cannot widen a view).
 */
import { assert, assertEquals, assertNotEquals, assertThrows } from "@std/assert";
import {
  forgetTrafficSecrets,
  hkdfExpandLabel,
  isTls13CipherSuite,
  MAX_INNER_PLAINTEXT,
  RecordAead,
  takeTrafficSecrets,
  type Tls13CipherSuite,
} from "../../ffi/openssl_aead.ts";
import { SslContext } from "../../ffi/openssl_context.ts";
import { sslReasonText } from "../../ffi/openssl_error.ts";
import { GUARD, Guarded, PATTERN } from "./_guarded.ts";

// At import, outside any test: libssl's load and the key-log callback every
// server context shares live as long as the thread.
SslContext.create("server").close();

const SUITES: [Tls13CipherSuite, number][] = [
  ["TLS_AES_128_GCM_SHA256", 32],
  ["TLS_AES_256_GCM_SHA384", 48],
  ["TLS_CHACHA20_POLY1305_SHA256", 32],
];

const hex = (s: string) =>
  new Uint8Array(s.replace(/\s/g, "").match(/../g)!.map((h) => parseInt(h, 16)));

Deno.test("aead: HKDF-Expand-Label gives RFC 8448's server handshake key and iv", () => {
  // RFC 8448 §3 (Simple 1-RTT Handshake), server_handshake_traffic_secret.
  const secret = hex(
    "b6 7b 7d 69 0c c1 6c 4e 75 e5 42 13 cb 2d 37 b4 e9 c9 12 bc de d9 10 5d 42 be fd 59 d3 91 ad 38",
  );
  assertEquals(
    hkdfExpandLabel("sha256", secret, "key", 16),
    hex("3f ce 51 60 09 c2 17 27 d0 f2 e4 e8 6e e4 03 bc"),
  );
  assertEquals(
    hkdfExpandLabel("sha256", secret, "iv", 12),
    hex("5d 31 3e b2 67 12 76 ee 13 00 0b 30"),
  );
  assertThrows(() => hkdfExpandLabel("sha256", secret, "key", 33), RangeError, "expand TLS secret");
  assertThrows(() => hkdfExpandLabel("sha256", secret, "key", 0), RangeError, "expand TLS secret");
  assertEquals(hkdfExpandLabel("sha384", new Uint8Array(48), "traffic upd", 48).length, 48);
});

Deno.test("aead: each suite seals and opens; a flipped bit, a wrong sequence number or an update on one side fail", () => {
  for (const [suite, secretLength] of SUITES) {
    const secret = new Uint8Array(secretLength).map((_, i) => i * 7);
    using w = RecordAead.create(suite, secret, "seal");
    using r = RecordAead.create(suite, secret, "open");
    const text = new TextEncoder().encode("hello records");
    const rec = new Uint8Array(5 + text.length + 1 + 16);
    rec.set(text, 5);
    rec[5 + text.length] = 23;
    const n = w.seal(rec, 0, text.length + 1, 5);
    assertEquals(n, rec.length);
    assertEquals(Array.from(rec.subarray(0, 5)), [23, 3, 3, 0, text.length + 17]);
    assertNotEquals(rec.subarray(5, 5 + text.length), text);
    const out = new Uint8Array(text.length + 1);
    assertEquals(r.open(rec, 0, n, 4, out, 0), -1, `${suite}: wrong sequence number`);
    assertEquals(r.open(rec, 0, n, 5, out, 0), text.length + 1);
    assertEquals(out.subarray(0, text.length), text);
    rec[7]! ^= 1; // the header is authenticated too
    assertEquals(r.open(rec, 0, n, 5, out, 0), -1, `${suite}: header changed`);
    rec[7]! ^= 1;
    rec[9]! ^= 0x40;
    assertEquals(r.open(rec, 0, n, 5, out, 0), -1, `${suite}: ciphertext changed`);
    rec[9]! ^= 0x40;
    w.update();
    const rec2 = new Uint8Array(22);
    rec2[5] = 23;
    w.seal(rec2, 0, 1, 0);
    assertEquals(r.open(rec2, 0, 22, 0, out, 0), -1, `${suite}: reader not updated`);
    r.update();
    assertEquals(r.open(rec2, 0, 22, 0, out, 0), 1, `${suite}: both updated`);
    assertEquals(isTls13CipherSuite(suite), true);
  }
  assertEquals(isTls13CipherSuite("ECDHE-RSA-AES128-GCM-SHA256"), false);
  assertThrows(
    () => RecordAead.create("TLS_AES_128_GCM_SHA256", new Uint8Array(48), "seal"),
    RangeError,
    "create record cipher",
  );
  assertThrows(
    () => RecordAead.create("TLS_NULL" as Tls13CipherSuite, new Uint8Array(32), "seal"),
    TypeError,
    "create record cipher",
  );
});

Deno.test("bounds: RecordAead.seal writes only inside its record, at exactly the bound too", () => {
  using w = RecordAead.create("TLS_AES_128_GCM_SHA256", new Uint8Array(32), "seal");
  for (const inner of [1, 100, MAX_INNER_PLAINTEXT]) {
    const g = new Guarded(3 + 5 + inner + 16);
    g.view[3 + 5 + inner - 1] = 23;
    assertEquals(w.seal(g.view, 3, inner, 0), 5 + inner + 16);
    g.assertGuards(`seal ${inner}`);
    // One byte short: refused before OpenSSL writes anything.
    const short = new Guarded(3 + 5 + inner + 15);
    assertThrows(() => w.seal(short.view, 3, inner, 0), RangeError, "seal TLS record");
    short.assertGuards(`seal ${inner} short`);
    assertEquals(short.view.every((b) => b === 0), true);
  }
  const g = new Guarded(64);
  for (const [at, inner] of [[-1, 1], [1.5, 1], [0, 0], [0, MAX_INNER_PLAINTEXT + 1], [44, 1]]) {
    assertThrows(() => w.seal(g.view, at!, inner!, 0), RangeError, "seal TLS record");
  }
  assertThrows(() => w.seal(g.view, 0, 1, -1), RangeError, "sequence number");
  assertThrows(() => w.seal(g.view, 0, 1, 2 ** 53), RangeError, "sequence number");
  // A subclass claiming more bytes than it has cannot widen the view.
  class Liar extends Uint8Array {
    override get byteLength(): number {
      return 1 << 20;
    }
    override get length(): number {
      return 1 << 20;
    }
  }
  const backing = new Uint8Array(GUARD + 30 + GUARD).fill(PATTERN);
  const liar = new Liar(backing.buffer, GUARD, 30);
  assertThrows(() => w.seal(liar, 0, 100, 0), RangeError, "seal TLS record");
  assertEquals(backing.subarray(GUARD + 30).every((b) => b === PATTERN), true);
  assertThrows(
    () => w.seal("nope" as unknown as Uint8Array, 0, 1, 0),
    TypeError,
    "seal TLS record",
  );
  // The same view again after its buffer was detached or shrunk: nothing of
  // the first call's extent is reused.
  const once = new Uint8Array(64);
  once[5] = 23;
  assertEquals(w.seal(once, 0, 1, 0), 22);
  once.buffer.transfer();
  assertThrows(() => w.seal(once, 0, 1, 0), RangeError, "seal TLS record");
  const resizable = new ArrayBuffer(64, { maxByteLength: 128 });
  const tracking = new Uint8Array(resizable);
  tracking[5] = 23;
  assertEquals(w.seal(tracking, 0, 1, 0), 22);
  resizable.resize(21);
  assertThrows(() => w.seal(tracking, 0, 1, 0), RangeError, "seal TLS record");
  assertEquals(resizable.byteLength, 21);
  const r = RecordAead.create("TLS_AES_128_GCM_SHA256", new Uint8Array(32), "open");
  assertThrows(() => r.seal(new Uint8Array(64), 0, 1, 0), TypeError, "opens records");
  r.free();
  assertThrows(
    () => r.open(new Uint8Array(22), 0, 22, 0, new Uint8Array(1), 0),
    Deno.errors.BadResource,
  );
});

Deno.test("bounds: RecordAead.open reads only its record and writes only its plaintext, tag good or bad", () => {
  const secret = new Uint8Array(32).fill(3);
  using w = RecordAead.create("TLS_CHACHA20_POLY1305_SHA256", secret, "seal");
  using r = RecordAead.create("TLS_CHACHA20_POLY1305_SHA256", secret, "open");
  const inner = 1000;
  const rec = new Guarded(7 + 5 + inner + 16);
  rec.view[7 + 5 + inner - 1] = 23;
  const n = w.seal(rec.view, 7, inner, 9);
  for (const tamper of [false, true]) {
    if (tamper) rec.view[7 + 20]! ^= 1;
    const out = new Guarded(2 + inner);
    const got = r.open(rec.view, 7, n, 9, out.view, 2);
    assertEquals(got, tamper ? -1 : inner);
    out.assertGuards(`open tamper=${tamper}`);
    assertEquals(out.view[0], 0);
    assertEquals(out.view[1], 0);
    // One plaintext byte short, or the record past the view: refused.
    const small = new Guarded(2 + inner - 1);
    assertThrows(() => r.open(rec.view, 7, n, 9, small.view, 2), RangeError, "open TLS record");
    small.assertGuards("open small");
    assertThrows(() => r.open(rec.view, 8, n, 9, out.view, 2), RangeError, "open TLS record");
    rec.assertGuards("open record");
  }
  const out = new Uint8Array(20000);
  for (const length of [21, 5 + 16384 + 256 + 1, 1.5, -22]) {
    assertThrows(
      () => r.open(new Uint8Array(20000), 0, length, 0, out, 0),
      RangeError,
      "open TLS record",
    );
  }
  assertThrows(() => r.open(rec.view, 7, n, 9, out, -1), RangeError, "open TLS record");
});

Deno.test("aead: OpenSSL's reason texts; the key log gives a connection's secrets once", () => {
  assertEquals(
    sslReasonText(281),
    "error:0A000119:SSL routines::decryption failed or bad record mac",
  );
  assertThrows(() => sslReasonText(-1), RangeError, "name SSL error");
  const random = new Uint8Array(32).fill(1);
  assertEquals(takeTrafficSecrets(random), undefined);
  forgetTrafficSecrets(random);
  assertThrows(() => takeTrafficSecrets({} as Uint8Array), TypeError, "take traffic secrets");
  assert(true);
});
