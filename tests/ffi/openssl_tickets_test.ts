/**
 * `TicketKeyring`'s callback work against real OpenSSL contexts: a new
 * ticket's key name and IV land exactly in the 16-byte buffers OpenSSL
 * passes (guard bytes around them never change), also when the buffers move
 * from one call to the next; a presented ticket's key is found by name (the
 * newest or an older kept one), an unknown or dropped name is refused.
 */
import { assert, assertEquals, assertNotEquals } from "@std/assert";
import { TicketKeyring } from "../../ffi/openssl_tickets.ts";
import { openssl } from "../../ffi/openssl.ts";

// At import, not in a test: libcrypto's load is no test's leak.
openssl();

const GUARD = 32;
const PATTERN = 0x5a;

/** Two 16-byte slots between guard bytes, off V8's movable heap. */
class Slots {
  readonly bytes = new Uint8Array(new ArrayBuffer(1024));
  constructor(readonly at: number) {
    this.bytes.fill(PATTERN);
    this.name.fill(0);
    this.iv.fill(0);
  }
  get name(): Uint8Array {
    return this.bytes.subarray(this.at, this.at + 16);
  }
  get iv(): Uint8Array {
    return this.bytes.subarray(this.at + 16 + GUARD, this.at + 32 + GUARD);
  }
  pointer(view: Uint8Array): Deno.PointerObject {
    return Deno.UnsafePointer.of(view)!;
  }
  assertGuards(label: string): void {
    const inside = (i: number) =>
      (i >= this.at && i < this.at + 16) ||
      (i >= this.at + 16 + GUARD && i < this.at + 32 + GUARD);
    for (let i = 0; i < this.bytes.length; i++) {
      if (!inside(i)) assertEquals(this.bytes[i], PATTERN, `${label}: byte ${i} changed`);
    }
  }
}

function withContexts(fn: (cipher: Deno.PointerObject, mac: Deno.PointerObject) => void): void {
  const { crypto } = openssl();
  const cipher = crypto.EVP_CIPHER_CTX_new()!;
  const hmac = crypto.EVP_MAC_fetch(null, new TextEncoder().encode("HMAC\0"), null)!;
  const mac = crypto.EVP_MAC_CTX_new(hmac)!;
  try {
    fn(cipher, mac);
  } finally {
    crypto.EVP_MAC_CTX_free(mac);
    crypto.EVP_MAC_free(hmac);
    crypto.EVP_CIPHER_CTX_free(cipher);
  }
}

Deno.test("tickets: name and IV land in OpenSSL's buffers only, wherever they are from call to call", () =>
  withContexts((cipher, mac) => {
    const material = crypto.getRandomValues(new Uint8Array(80));
    const ring = new TicketKeyring(material);
    const a = new Slots(100);
    const b = new Slots(400);
    const ivs: string[] = [];
    for (const [i, s] of [a, b, a, b].entries()) {
      s.name.fill(0);
      s.iv.fill(0);
      assertEquals(ring.encrypt(s.pointer(s.name), s.pointer(s.iv), cipher, mac), 1);
      assertEquals(s.name, material.subarray(0, 16), `call ${i}: the key name`);
      assertNotEquals(s.iv, new Uint8Array(16), `call ${i}: an IV was written`);
      ivs.push(s.iv.join(","));
      s.assertGuards(`call ${i}`);
      // The ticket it made opens with the same key.
      assertEquals(ring.decrypt(s.pointer(s.name), s.pointer(s.iv), cipher, mac), 2);
    }
    assertEquals(new Set(ivs).size, ivs.length, "a fresh IV every time");
  }));

Deno.test("tickets: older kept keys still open tickets, a dropped or unknown name does not", () =>
  withContexts((cipher, mac) => {
    const first = crypto.getRandomValues(new Uint8Array(80));
    const ring = new TicketKeyring(first, 2);
    const s = new Slots(200);
    assertEquals(ring.encrypt(s.pointer(s.name), s.pointer(s.iv), cipher, mac), 1);
    const firstName = s.name.slice();
    ring.rotate();
    s.name.set(firstName);
    assertEquals(ring.decrypt(s.pointer(s.name), s.pointer(s.iv), cipher, mac), 2, "kept");
    ring.rotate();
    s.name.set(firstName);
    assertEquals(ring.decrypt(s.pointer(s.name), s.pointer(s.iv), cipher, mac), 0, "dropped");
    s.name.fill(0xee);
    assertEquals(ring.decrypt(s.pointer(s.name), s.pointer(s.iv), cipher, mac), 0, "unknown");
    assert(ring.size === 2);
    s.assertGuards("decrypt");
  }));
