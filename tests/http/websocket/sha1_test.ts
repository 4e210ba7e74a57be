/**
 * The handshake's SHA-1 (a reused schedule and input buffer) against
 * WebCrypto's, for every length around the block and padding boundaries,
 * hashed in a row so that a buffer left dirty by a longer input shows; and
 * `acceptKey` against the same digest by WebCrypto (RFC 6455's example, a
 * non-ASCII key, a key longer than the reused input buffer).
 *
 * @module
 */
import { assertEquals, assertThrows } from "@std/assert";
import { sha1 } from "../../../http/websocket/_sha1.ts";
import { acceptKey } from "../../../http/websocket/mod.ts";

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

async function reference(data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-1", data.slice()));
}

Deno.test("sha1: equals WebCrypto's digest for 0 to 300 bytes, longest first, and for a prefix", async () => {
  for (let n = 300; n >= 0; n--) {
    const data = new Uint8Array(n).map((_, i) => (i * 31 + n) & 0xff);
    const want = hex(await reference(data));
    assertEquals(hex(sha1(data)), want, `${n} bytes`);
    const longer = new Uint8Array(n + 9).fill(0xaa);
    longer.set(data);
    assertEquals(hex(sha1(longer, n)), want, `the first ${n} of ${n + 9} bytes`);
  }
  assertThrows(() => sha1(new Uint8Array(4), 5), RangeError, "Cannot hash");
  assertThrows(() => sha1(new Uint8Array(4), -1), RangeError, "Cannot hash");
});

Deno.test("acceptKey: RFC 6455's example, a non-ASCII key and a long key, as WebCrypto computes them", async () => {
  assertEquals(acceptKey("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  const guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  for (const key of ["é€😀 key", "k".repeat(500), ""]) {
    const digest = await reference(new TextEncoder().encode(key + guid));
    assertEquals(acceptKey(key), btoa(String.fromCharCode(...digest)), key.slice(0, 10));
  }
  // Again after the long key: the reused buffer holds nothing of it.
  assertEquals(acceptKey("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
});
