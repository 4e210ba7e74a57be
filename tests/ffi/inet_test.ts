import { assertEquals } from "@std/assert";
import {
  formatIPv4,
  formatIPv6,
  htonl,
  htons,
  ntohl,
  ntohs,
  parseIPv4,
  parseIPv6,
} from "../../ffi/inet.ts";
import { libc } from "../../ffi/libc.ts";
import { AF } from "../../ffi/constants.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** libc's `inet_pton`: the address bytes, or null when it returns 0. */
function libcPton(family: number, text: string): number[] | null {
  const dst = new Uint8Array(family === AF.INET ? 4 : 16);
  const r = libc.inet_pton(family, enc.encode(text + "\0"), dst);
  return r === 1 ? [...dst] : null;
}

/** libc's `inet_ntop`. */
function libcNtop(family: number, bytes: Uint8Array): string {
  const dst = new Uint8Array(64);
  if (libc.inet_ntop(family, bytes, dst, dst.length) === null) throw new Error("inet_ntop failed");
  return dec.decode(dst.subarray(0, dst.indexOf(0)));
}

const bytesOrNull = (b: Uint8Array | null) => b === null ? null : [...b];

/** A small deterministic PRNG (xorshift32) so a failure can be replayed. */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x1_0000_0000;
  };
}

const SEED = 0x5eed_1e55;

Deno.test("inet: byte order helpers", () => {
  const little = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
  assertEquals(htons(0x1234), little ? 0x3412 : 0x1234);
  assertEquals(ntohs(0x3412), little ? 0x1234 : 0x3412);
  assertEquals(htons(0), 0);
  assertEquals(htons(0xffff), 0xffff);
  assertEquals(htons(0x00ff), little ? 0xff00 : 0x00ff);
  assertEquals(htonl(0x7f000001), little ? 0x0100007f : 0x7f000001);
  assertEquals(ntohl(0x0100007f), little ? 0x7f000001 : 0x0100007f);
  assertEquals(htonl(0xffffffff), 0xffffffff);
  assertEquals(htonl(0x80000000), little ? 0x80 : 0x80000000);
  assertEquals(htonl(0x000000ff), little ? 0xff000000 : 0xff); // unsigned, never negative
  const r = prng(SEED);
  for (let i = 0; i < 1000; i++) {
    const x16 = Math.floor(r() * 0x10000);
    const x32 = Math.floor(r() * 0x1_0000_0000);
    assertEquals(ntohs(htons(x16)), x16);
    assertEquals(ntohl(htonl(x32)), x32);
    // htons/htonl agree with writing big-endian and reading native.
    const dv = new DataView(new ArrayBuffer(4));
    dv.setUint16(0, x16, false);
    assertEquals(htons(x16), dv.getUint16(0, little));
    dv.setUint32(0, x32, false);
    assertEquals(htonl(x32), dv.getUint32(0, little));
  }
});

const EDGE_CASES = [
  "0.0.0.0",
  "255.255.255.255",
  "256.1.1.1",
  "01.2.3.4",
  "1.2.3",
  "1.2.3.4.5",
  " 1.2.3.4",
  "::",
  "::1",
  "1::",
  "1:2:3:4:5:6:7:8",
  "1:2:3:4:5:6:7::",
  "::ffff:1.2.3.4",
  "::1.2.3.4",
  "1::2:3",
  "1:0:0:2:0:0:0:3",
  "fe80::1",
  "1:::2",
  ":1::2",
  "1::2::3",
  "12345::",
  "g::",
  "::ffff:256.1.1.1",
  "1:2:3:4:5:6:7:8:9",
  // more of the same kind
  "",
  ":",
  ":::",
  "::0",
  "0::",
  "0000::",
  "00000::",
  "1:",
  ":1",
  "1::2:",
  "::2:3:4:5:6:7:8",
  "1:2:3:4:5:6:7:8::",
  "::1:2:3:4:5:6:7",
  "1:2:3:4::5:6:7",
  "ABCD::EF",
  "1:2:3:4:5:6:1.2.3.4",
  "1:2:3:4:5:6:7:1.2.3.4",
  "1:2:3:4:5::1.2.3.4",
  "1:2:3:4:5:6::1.2.3.4",
  "::1.2.3.4:5",
  "1.2.3.4::",
  "::01.2.3.4",
  "::1.2.3",
  "::ffff:1.2.3.4.5",
  "1.2.3.04",
  "1..2.3",
  "1.2.3.",
  ".1.2.3",
  "0x1.2.3.4",
  "1.2.3.4 ",
  "::1 ",
  "127.0.0.1",
  "10.0.0.255",
];

Deno.test("inet: parseIPv4/parseIPv6 agree with glibc inet_pton on edge cases", () => {
  for (const text of EDGE_CASES) {
    assertEquals(
      bytesOrNull(parseIPv4(text)),
      libcPton(AF.INET, text),
      `IPv4 ${JSON.stringify(text)}`,
    );
    assertEquals(
      bytesOrNull(parseIPv6(text)),
      libcPton(AF.INET6, text),
      `IPv6 ${JSON.stringify(text)}`,
    );
  }
  // A few expectations spelled out, not only "same as libc".
  assertEquals(bytesOrNull(parseIPv4("255.255.255.255")), [255, 255, 255, 255]);
  assertEquals(parseIPv4("01.2.3.4"), null);
  assertEquals(parseIPv6("1:::2"), null);
  assertEquals(bytesOrNull(parseIPv6("::ffff:1.2.3.4")), [
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    255,
    255,
    1,
    2,
    3,
    4,
  ]);
});

Deno.test("inet: formatIPv4/formatIPv6 agree with glibc inet_ntop on edge cases", () => {
  for (const text of EDGE_CASES) {
    const v4 = libcPton(AF.INET, text);
    if (v4 !== null) {
      assertEquals(formatIPv4(new Uint8Array(v4)), libcNtop(AF.INET, new Uint8Array(v4)));
    }
    const v6 = libcPton(AF.INET6, text);
    if (v6 !== null) {
      assertEquals(formatIPv6(new Uint8Array(v6)), libcNtop(AF.INET6, new Uint8Array(v6)), text);
    }
  }
  assertEquals(formatIPv6(parseIPv6("1:0:0:2:0:0:0:3")!), "1:0:0:2::3");
  assertEquals(formatIPv6(parseIPv6("::ffff:1.2.3.4")!), "::ffff:1.2.3.4");
  assertEquals(formatIPv6(parseIPv6("::1.2.3.4")!), "::1.2.3.4");
  assertEquals(formatIPv6(parseIPv6("1:0:2:3:4:5:6:7")!), "1:0:2:3:4:5:6:7"); // one zero: no "::"
  // An offset into a larger buffer.
  const buf = new Uint8Array(20);
  buf.set(parseIPv6("fe80::1")!, 4);
  assertEquals(formatIPv6(buf, 4), "fe80::1");
  assertEquals(formatIPv4(new Uint8Array([9, 10, 0, 0, 1]), 1), "10.0.0.1");
});

/** 16 random bytes with random runs of zero groups (and sometimes an IPv4 tail). */
function randomAddress(r: () => number): Uint8Array {
  const b = new Uint8Array(16);
  for (let i = 0; i < 16; i++) b[i] = Math.floor(r() * 256);
  const runs = Math.floor(r() * 4);
  for (let k = 0; k < runs; k++) {
    const start = Math.floor(r() * 8);
    const len = 1 + Math.floor(r() * 8);
    b.fill(0, start * 2, Math.min(16, (start + len) * 2));
  }
  const shape = r();
  if (shape < 0.05) {
    b.fill(0, 0, 10); // ::ffff:a.b.c.d
    b[10] = b[11] = 0xff;
  } else if (shape < 0.1) {
    b.fill(0, 0, 12); // ::a.b.c.d (or ::x when the tail has zeros)
  } else if (shape < 0.15) {
    b.fill(0, 0, 10); // ::x:a.b.c.d, not IPv4-mapped
  }
  // Single bytes of zero inside a group keep the group nonzero.
  if (r() < 0.2) b[Math.floor(r() * 16)] = 0;
  return b;
}

Deno.test("inet: 2000 random IPv6 addresses format exactly as inet_ntop and parse back", () => {
  const r = prng(SEED);
  for (let i = 0; i < 2000; i++) {
    const b = randomAddress(r);
    const glibc = libcNtop(AF.INET6, b);
    assertEquals(formatIPv6(b), glibc, `bytes ${[...b]}`);
    assertEquals(bytesOrNull(parseIPv6(glibc)), [...b], glibc);
    assertEquals(libcPton(AF.INET6, formatIPv6(b)), [...b]);
    // Other spellings of the same address parse like glibc parses them.
    const words = Array.from({ length: 8 }, (_, k) => (b[2 * k]! << 8) | b[2 * k + 1]!);
    const full = words.map((w) => w.toString(16).padStart(r() < 0.5 ? 4 : 1, "0")).join(":");
    for (const text of [full, full.toUpperCase(), glibc.toUpperCase()]) {
      assertEquals(bytesOrNull(parseIPv6(text)), libcPton(AF.INET6, text), text);
    }
  }
});

Deno.test("inet: random strings parse exactly as inet_pton accepts or rejects them", () => {
  const r = prng(SEED ^ 0xabcdef);
  const alphabets = ["0123456789abcdefABCDEF:.:::...0000", "0123456789...", "0f:.1 g%x-+"];
  for (const alphabet of alphabets) {
    for (let i = 0; i < 5000; i++) {
      let text = "";
      const n = 1 + Math.floor(r() * 40);
      for (let j = 0; j < n; j++) text += alphabet[Math.floor(r() * alphabet.length)];
      assertEquals(bytesOrNull(parseIPv4(text)), libcPton(AF.INET, text), JSON.stringify(text));
      assertEquals(bytesOrNull(parseIPv6(text)), libcPton(AF.INET6, text), JSON.stringify(text));
    }
  }
});

Deno.test("inet: every IPv4 octet value formats and parses like libc", () => {
  for (let v = 0; v < 256; v++) {
    const b = new Uint8Array([v, 255 - v, v >> 1, 0]);
    const text = libcNtop(AF.INET, b);
    assertEquals(formatIPv4(b), text);
    assertEquals(bytesOrNull(parseIPv4(text)), [...b]);
    for (const t of [`${v}.0.0.0`, `0${v}.1.1.1`, `${v + 256}.1.1.1`, `1.1.1.${v}`]) {
      assertEquals(bytesOrNull(parseIPv4(t)), libcPton(AF.INET, t), t);
    }
  }
});
