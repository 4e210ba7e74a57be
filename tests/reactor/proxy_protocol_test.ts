/**
 * The PROXY protocol parser over raw bytes: every field of v1 and v2, each
 * malformed variant, and every header fed whole, split at every point and
 * byte by byte. Also the trust list (CIDR) and option validation.
 */
import { assert, assertEquals, assertThrows } from "@std/assert";
import {
  crc32c,
  parseProxyHeader,
  PP2_TYPE,
  type ProxyHeader,
  ProxyHeaderParser,
  ProxyProtocolError,
  type ProxyProtocolErrorKind,
} from "../../reactor/proxy/protocol.ts";
import { TrustList } from "../../reactor/proxy/trust.ts";
import { checkProxyProtocolOptions } from "../../reactor/proxy/gate.ts";
import { checkListenOptions } from "../../reactor/listen_options.ts";

const enc = new TextEncoder();
const SIG = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];

function cat(...parts: (Uint8Array | number[])[]): Uint8Array {
  const len = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(len);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function tlv(type: number, value: Uint8Array | string | number[]): Uint8Array {
  const v = typeof value === "string" ? enc.encode(value) : Uint8Array.from(value);
  return cat([type, v.length >> 8, v.length & 0xff], v);
}

/** A v2 header: ver_cmd byte, fam byte, then the body (addresses and TLVs). */
function v2(verCmd: number, fam: number, body: Uint8Array | number[]): Uint8Array {
  return cat(SIG, [verCmd, fam, body.length >> 8, body.length & 0xff], body);
}

/** Fill in a CRC32C TLV (already present with 4 zero bytes at the end of the header). */
function withCrc(h: Uint8Array): Uint8Array {
  const out = h.slice();
  const c = crc32c(out);
  out.set([c >>> 24, (c >>> 16) & 0xff, (c >>> 8) & 0xff, c & 0xff], out.length - 4);
  return out;
}

const IPV4_BLOCK = [192, 0, 2, 1, 198, 51, 100, 7, 0xd4, 0x31, 0x01, 0xbb]; // :54321 -> :443
const IPV6_BLOCK = cat(
  [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
  [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xab, 0xcd],
  [0x13, 0x88, 0x00, 0x50], // 5000 -> 80
);

function unixBlock(src: string, dst: string): Uint8Array {
  const b = new Uint8Array(216);
  b.set(enc.encode(src), 0);
  b.set(enc.encode(dst), 108);
  return b;
}

/** Parse `bytes` whole, split at every point, and byte by byte: all must agree. */
function parseAllWays(
  bytes: Uint8Array,
  options: ConstructorParameters<typeof ProxyHeaderParser>[0] = {},
): ProxyHeader {
  const whole = parseProxyHeader(bytes, options).header;
  for (let cut = 1; cut < bytes.length; cut++) {
    const p = new ProxyHeaderParser(options);
    const first = p.push(bytes.subarray(0, cut));
    const h = first ?? p.push(bytes.subarray(cut));
    assert(h !== null, `split at ${cut}`);
    assertEquals(h, whole, `split at ${cut}`);
  }
  const p = new ProxyHeaderParser(options);
  let h: ProxyHeader | null = null;
  for (let i = 0; i < bytes.length; i++) {
    assertEquals(h, null, `the header completed early, at byte ${i}`);
    h = p.push(bytes.subarray(i, i + 1));
  }
  assertEquals(h, whole, "byte by byte");
  assertEquals(p.rest.length, 0);
  return whole;
}

/** `bytes` must be refused with `kind`, whole and byte by byte (by the same byte or earlier). */
function refused(
  bytes: Uint8Array,
  kind: ProxyProtocolErrorKind,
  options: ConstructorParameters<typeof ProxyHeaderParser>[0] = {},
): void {
  const e = assertThrows(() => parseProxyHeader(bytes, options), ProxyProtocolError);
  assertEquals(e.kind, kind, e.message);
  assert(e.message.startsWith("Cannot read PROXY header: "), e.message);
  const p = new ProxyHeaderParser(options);
  const e2 = assertThrows(() => {
    for (let i = 0; i < bytes.length; i++) p.push(bytes.subarray(i, i + 1));
  }, ProxyProtocolError);
  assertEquals(e2.kind, kind, `byte by byte: ${e2.message}`);
  assertThrows(() => p.push(new Uint8Array([1])), Error, "finished");
}

Deno.test("proxy v1: TCP4 line, every field, and the bytes after it", () => {
  const line = "PROXY TCP4 192.0.2.1 198.51.100.7 54321 443\r\n";
  const h = parseAllWays(enc.encode(line));
  assertEquals(h.version, 1);
  assertEquals(h.command, "proxy");
  assertEquals(h.family, "inet");
  assertEquals(h.transport, "stream");
  assertEquals(h.source, { family: "inet", address: "192.0.2.1", port: 54321 });
  assertEquals(h.destination, { family: "inet", address: "198.51.100.7", port: 443 });
  assertEquals(h.tlvs, []);
  assertEquals(h.crc32c, false);
  assertEquals(h.length, line.length);
  const { rest } = parseProxyHeader(enc.encode(line + "GET / HTTP/1.1\r\n\r\n"));
  assertEquals(new TextDecoder().decode(rest), "GET / HTTP/1.1\r\n\r\n");
  const edge = parseProxyHeader(enc.encode("PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n"));
  assertEquals(edge.header.source, { family: "inet", address: "0.0.0.0", port: 0 });
  assertEquals(edge.header.destination?.family === "inet" && edge.header.destination.port, 65535);
});

Deno.test("proxy v1: TCP6 line (compressed, full and upper-case forms) and the longest line", () => {
  const h = parseAllWays(enc.encode("PROXY TCP6 2001:db8::1 2001:DB8:0:0:0:0:0:ABCD 5000 80\r\n"));
  assertEquals(h.family, "inet6");
  assertEquals(h.source, { family: "inet6", address: "2001:db8::1", port: 5000 });
  assertEquals(h.destination, { family: "inet6", address: "2001:db8::abcd", port: 80 });
  const f = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
  const longest = `PROXY TCP6 ${f} ${f} 65535 65535\r\n`;
  assertEquals(longest.length, 104);
  assertEquals(parseAllWays(enc.encode(longest)).source?.family, "inet6");
  // an IPv4 client on a dual-stack proxy: the IPv4-mapped form with a dotted tail
  const mapped = parseAllWays(enc.encode("PROXY TCP6 ::ffff:192.0.2.1 ::ffff:192.0.2.2 1 2\r\n"));
  assertEquals(mapped.source, { family: "inet6", address: "::ffff:192.0.2.1", port: 1 });
});

Deno.test("proxy v1: UNKNOWN, short and with ignored fields up to the 107-byte limit", () => {
  const short = parseAllWays(enc.encode("PROXY UNKNOWN\r\n"));
  assertEquals(short.family, "unspec");
  assertEquals(short.transport, "unspec");
  assertEquals(short.source, undefined);
  assertEquals(short.length, 15);
  const f = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
  const worst = `PROXY UNKNOWN ${f} ${f} 65535 65535\r\n`;
  assertEquals(worst.length, 107);
  assertEquals(parseAllWays(enc.encode(worst)).family, "unspec");
  assertEquals(parseAllWays(enc.encode("PROXY UNKNOWN whatever: 1 2 3\r\n")).source, undefined);
});

Deno.test("proxy v1: malformed lines are refused, each for its reason", () => {
  const bad: [string, ProxyProtocolErrorKind][] = [
    ["GET / HTTP/1.1\r\n", "signature"],
    ["PROXX TCP4 1.2.3.4 1.2.3.4 1 2\r\n", "signature"],
    ["proxy TCP4 1.2.3.4 1.2.3.4 1 2\r\n", "signature"],
    ["PROXY\tTCP4 1.2.3.4 1.2.3.4 1 2\r\n", "signature"],
    ["PROXY TCP5 1.2.3.4 1.2.3.4 1 2\r\n", "family"],
    ["PROXY tcp4 1.2.3.4 1.2.3.4 1 2\r\n", "family"],
    ["PROXY  TCP4 1.2.3.4 1.2.3.4 1 2\r\n", "family"],
    ["PROXY \r\n", "family"],
    ["PROXY TCP4 1.2.3.4  1.2.3.4 1 2\r\n", "line"],
    ["PROXY TCP4 1.2.3.4 1.2.3.4 1\r\n", "line"],
    ["PROXY TCP4 1.2.3.4 1.2.3.4 1 2 3\r\n", "line"],
    ["PROXY TCP4 1.2.3.4 1.2.3.4 1 2 \r\n", "line"],
    ["PROXY TCP4 01.2.3.4 1.2.3.4 1 2\r\n", "address"],
    ["PROXY TCP4 1.2.3.256 1.2.3.4 1 2\r\n", "address"],
    ["PROXY TCP4 1.2.3 1.2.3.4 1 2\r\n", "address"],
    ["PROXY TCP4 1.2.3.4 ::1 1 2\r\n", "address"],
    ["PROXY TCP4 localhost 1.2.3.4 1 2\r\n", "address"],
    ["PROXY TCP6 1.2.3.4 ::1 1 2\r\n", "address"],
    ["PROXY TCP6 ::ffff:1.2.3.04 ::1 1 2\r\n", "address"],
    ["PROXY TCP6 ::ffff:1.2.3.4.5 ::1 1 2\r\n", "address"],
    ["PROXY TCP6 1:::2 ::1 1 2\r\n", "address"],
    ["PROXY TCP6 ::1%eth0 ::1 1 2\r\n", "address"],
    ["PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n", "address"],
    ["PROXY TCP4 1.2.3.4 1.2.3.4 65536 2\r\n", "port"],
    ["PROXY TCP4 1.2.3.4 1.2.3.4 080 2\r\n", "port"],
    ["PROXY TCP4 1.2.3.4 1.2.3.4 -1 2\r\n", "port"],
    ["PROXY TCP4 1.2.3.4 1.2.3.4 1 0x50\r\n", "port"],
    ["PROXY TCP4 1.2.3.4 1.2.3.4 1 999999\r\n", "port"],
    ["PROXY TCP4 1.2.3.4 1.2.3.4 1 2\n", "line"],
    ["PROXY TCP4 1.2.3.4 1.2.3.4 1 2\rX", "line"],
    ["PROXY TCP4 1.2.3.4 1.2.3.4 1 2\r\r\n", "line"],
    ["PROXY TCP4 1.2.3.4\x001.2.3.4 1 2\r\n", "line"],
    ["PROXY TCP4 1.2.3.4 1.2.3.4 1 2\xe9\r\n", "line"],
  ];
  for (const [line, kind] of bad) {
    const bytes = Uint8Array.from(line, (c) => c.charCodeAt(0));
    refused(bytes, kind);
  }
});

Deno.test("proxy v1: no CRLF within 107 bytes is refused at byte 107, not later", () => {
  const f = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
  const tooLong = enc.encode(`PROXY UNKNOWN ${f} ${f} 65535 655350\r\n`); // 108 bytes
  refused(tooLong, "length");
  const p = new ProxyHeaderParser();
  assertEquals(p.push(tooLong.subarray(0, 106)), null);
  assertThrows(() => p.push(tooLong.subarray(106, 107)), ProxyProtocolError, "107");
  // an endless line without CRLF fails once 107 bytes are in, not after a megabyte
  const q = new ProxyHeaderParser();
  const e = assertThrows(() => q.push(enc.encode("PROXY UNKNOWN " + "a".repeat(1 << 20))));
  assertEquals((e as ProxyProtocolError).kind, "length");
  assertEquals(q.received, 106);
});

Deno.test("proxy v2: PROXY TCP over IPv4, every field, and the bytes after it", () => {
  const bytes = v2(0x21, 0x11, IPV4_BLOCK);
  const h = parseAllWays(bytes);
  assertEquals(h, {
    version: 2,
    command: "proxy",
    family: "inet",
    transport: "stream",
    source: { family: "inet", address: "192.0.2.1", port: 54321 },
    destination: { family: "inet", address: "198.51.100.7", port: 443 },
    tlvs: [],
    crc32c: false,
    length: 28,
  });
  const { rest } = parseProxyHeader(cat(bytes, enc.encode("\x16\x03\x01 hello")));
  assertEquals(new TextDecoder().decode(rest), "\x16\x03\x01 hello");
});

Deno.test("proxy v2: IPv6 (TCP and UDP), Unix (path, abstract), UNSPEC", () => {
  const h6 = parseAllWays(v2(0x21, 0x21, IPV6_BLOCK));
  assertEquals(h6.source, { family: "inet6", address: "2001:db8::1", port: 5000 });
  assertEquals(h6.destination, { family: "inet6", address: "2001:db8::abcd", port: 80 });
  assertEquals(h6.transport, "stream");
  assertEquals(parseAllWays(v2(0x21, 0x22, IPV6_BLOCK)).transport, "dgram");
  assertEquals(parseAllWays(v2(0x21, 0x12, IPV4_BLOCK)).transport, "dgram");
  const hu = parseAllWays(v2(0x21, 0x31, unixBlock("/run/client.sock", "\0lb-front")));
  assertEquals(hu.family, "unix");
  assertEquals(hu.source, { family: "unix", path: "/run/client.sock" });
  assertEquals(hu.destination, { family: "unix", path: "\0lb-front" });
  assertEquals(hu.length, 16 + 216);
  assertEquals(parseAllWays(v2(0x21, 0x32, unixBlock("", ""))).source, {
    family: "unix",
    path: "",
  });
  const unspec = parseAllWays(v2(0x21, 0x00, tlv(PP2_TYPE.AUTHORITY, "a.example")));
  assertEquals(unspec.family, "unspec");
  assertEquals(unspec.source, undefined);
  assertEquals(unspec.authority, "a.example");
});

Deno.test("proxy v2: LOCAL (health checks) keeps no addresses, with or without an address block", () => {
  const empty = parseAllWays(v2(0x20, 0x00, []));
  assertEquals(empty.command, "local");
  assertEquals(empty.family, "unspec");
  assertEquals(empty.source, undefined);
  assertEquals(empty.length, 16);
  const withAddr = parseAllWays(v2(0x20, 0x11, cat(IPV4_BLOCK, tlv(PP2_TYPE.NOOP, [0]))));
  assertEquals(withAddr.command, "local");
  assertEquals(withAddr.source, undefined);
  assertEquals(withAddr.tlvs, [{ type: PP2_TYPE.NOOP, value: new Uint8Array([0]) }]);
  // LOCAL must skip the block by its length even when shorter than the family's
  const short = parseAllWays(v2(0x20, 0x21, [1, 2, 3]));
  assertEquals(short.command, "local");
  assertEquals(short.length, 19);
});

Deno.test("proxy v2: TLVs: ALPN, AUTHORITY, UNIQUE_ID, NETNS, NOOP, custom, SSL with sub-TLVs", () => {
  const ssl = cat(
    [0x07, 0, 0, 0, 0], // client: SSL | CERT_CONN | CERT_SESS, verify 0
    tlv(PP2_TYPE.SSL_VERSION, "TLSv1.3"),
    tlv(PP2_TYPE.SSL_CN, "client.example"),
    tlv(PP2_TYPE.SSL_CIPHER, "TLS_AES_256_GCM_SHA384"),
    tlv(PP2_TYPE.SSL_SIG_ALG, "ECDSA-SHA256"),
    tlv(PP2_TYPE.SSL_KEY_ALG, "EC256"),
  );
  const body = cat(
    IPV4_BLOCK,
    tlv(PP2_TYPE.ALPN, "h2"),
    tlv(PP2_TYPE.AUTHORITY, "www.example.com"),
    tlv(PP2_TYPE.UNIQUE_ID, new Uint8Array(128).fill(7)),
    tlv(PP2_TYPE.NETNS, "blue"),
    tlv(PP2_TYPE.NOOP, []),
    tlv(0xe0, [1, 2, 3]),
    tlv(PP2_TYPE.SSL, ssl),
  );
  const h = parseAllWays(v2(0x21, 0x11, body));
  assertEquals(h.alpn, "h2");
  assertEquals(h.authority, "www.example.com");
  assertEquals(h.uniqueId, new Uint8Array(128).fill(7));
  assertEquals(h.netns, "blue");
  assertEquals(h.tlvs.map((t) => t.type), [0x01, 0x02, 0x05, 0x30, 0x04, 0xe0, 0x20]);
  assertEquals(h.tlvs[5]!.value, new Uint8Array([1, 2, 3]));
  assertEquals(h.ssl?.tls, true);
  assertEquals(h.ssl?.certConnection, true);
  assertEquals(h.ssl?.certSession, true);
  assertEquals(h.ssl?.verified, true);
  assertEquals(h.ssl?.version, "TLSv1.3");
  assertEquals(h.ssl?.cn, "client.example");
  assertEquals(h.ssl?.cipher, "TLS_AES_256_GCM_SHA384");
  assertEquals(h.ssl?.sigAlg, "ECDSA-SHA256");
  assertEquals(h.ssl?.keyAlg, "EC256");
  assertEquals(h.ssl?.tlvs.length, 5);
  const plain = parseAllWays(v2(0x21, 0x11, cat(IPV4_BLOCK, tlv(0x20, [0, 0, 0, 0, 1]))));
  assertEquals(plain.ssl?.tls, false);
  assertEquals(plain.ssl?.verify, 1);
  assertEquals(plain.ssl?.verified, false);
  assertEquals(plain.ssl?.version, undefined);
  // verify 0 without a client certificate (what HAProxy sends for an
  // anonymous TLS client) is not "verified"; with one (per connection or
  // per session) it is.
  const cases: [number, boolean][] = [[0x01, false], [0x00, false], [0x03, true], [0x05, true]];
  for (const [client, verified] of cases) {
    const h = parseAllWays(v2(0x21, 0x11, cat(IPV4_BLOCK, tlv(0x20, [client, 0, 0, 0, 0]))));
    assertEquals(h.ssl?.verify, 0);
    assertEquals(h.ssl?.verified, verified, `client flags 0x0${client}`);
  }
});

Deno.test("proxy v2: CRC32C: the RFC 4960 check value, a good checksum, a bad one", () => {
  assertEquals(crc32c(enc.encode("123456789")), 0xe3069283);
  assertEquals(crc32c(new Uint8Array(32)), 0x8a9136aa); // RFC 3720 B.4: 32 zero bytes
  const good = withCrc(v2(0x21, 0x11, cat(IPV4_BLOCK, tlv(PP2_TYPE.CRC32C, [0, 0, 0, 0]))));
  assertEquals(parseAllWays(good).crc32c, true);
  // CRC in the middle, more TLVs after it
  const mid = v2(0x21, 0x11, cat(IPV4_BLOCK, tlv(PP2_TYPE.CRC32C, [0, 0, 0, 0]), tlv(1, "h2")));
  const c = crc32c(mid);
  mid.set([c >>> 24, (c >>> 16) & 0xff, (c >>> 8) & 0xff, c & 0xff], 16 + 12 + 3);
  assertEquals(parseAllWays(mid).alpn, "h2");
  for (const at of [16, 20, 26, good.length - 1]) {
    const bad = good.slice();
    bad[at]! ^= 0x01;
    refused(bad, "crc");
  }
});

Deno.test("proxy v2: malformed headers are refused, each for its reason", () => {
  const ok = v2(0x21, 0x11, IPV4_BLOCK);
  for (let i = 0; i < 12; i++) {
    const bad = ok.slice();
    bad[i]! ^= 0x40;
    refused(bad, "signature", { version: "v2" });
  }
  refused(v2(0x11, 0x11, IPV4_BLOCK), "version");
  refused(v2(0x31, 0x11, IPV4_BLOCK), "version");
  refused(v2(0x22, 0x11, IPV4_BLOCK), "command");
  refused(v2(0x2f, 0x11, IPV4_BLOCK), "command");
  refused(v2(0x21, 0x41, IPV4_BLOCK), "family");
  refused(v2(0x21, 0xf1, IPV4_BLOCK), "family");
  refused(v2(0x21, 0x13, IPV4_BLOCK), "family");
  refused(v2(0x20, 0x13, []), "family");
  // address blocks shorter than the family needs
  refused(v2(0x21, 0x11, IPV4_BLOCK.slice(0, 11)), "length");
  refused(v2(0x21, 0x21, IPV4_BLOCK), "length");
  refused(v2(0x21, 0x31, IPV6_BLOCK), "length");
  // TLVs that run past the end
  refused(v2(0x21, 0x11, cat(IPV4_BLOCK, [0x01])), "tlv");
  refused(v2(0x21, 0x11, cat(IPV4_BLOCK, [0x01, 0x00])), "tlv");
  refused(v2(0x21, 0x11, cat(IPV4_BLOCK, [0x01, 0x00, 0x03, 0x68, 0x32])), "tlv");
  refused(v2(0x21, 0x11, cat(IPV4_BLOCK, tlv(1, "h2"), [0x02, 0xff, 0xff])), "tlv");
  refused(v2(0x21, 0x11, cat(IPV4_BLOCK, tlv(0x20, [1, 0, 0, 0]))), "tlv");
  refused(v2(0x21, 0x11, cat(IPV4_BLOCK, tlv(0x20, [1, 0, 0, 0, 0, 0x21, 0, 9, 0x54]))), "tlv");
  refused(v2(0x21, 0x11, cat(IPV4_BLOCK, tlv(PP2_TYPE.CRC32C, [0, 0, 0]))), "tlv");
  refused(v2(0x21, 0x11, cat(IPV4_BLOCK, tlv(PP2_TYPE.UNIQUE_ID, new Uint8Array(129)))), "tlv");
  refused(v2(0x21, 0x11, cat(IPV4_BLOCK, tlv(PP2_TYPE.AUTHORITY, [0xc3, 0x28]))), "tlv");
  const twoCrc = v2(
    0x21,
    0x11,
    cat(IPV4_BLOCK, tlv(PP2_TYPE.CRC32C, [0, 0, 0, 0]), tlv(PP2_TYPE.CRC32C, [0, 0, 0, 0])),
  );
  const c = crc32c(twoCrc);
  twoCrc.set([c >>> 24, (c >>> 16) & 0xff, (c >>> 8) & 0xff, c & 0xff], 31);
  twoCrc.set([c >>> 24, (c >>> 16) & 0xff, (c >>> 8) & 0xff, c & 0xff], 38);
  assertThrows(() => parseProxyHeader(twoCrc), ProxyProtocolError);
});

Deno.test("proxy v2: an oversized length is refused as soon as the 16-byte head is in", () => {
  const head = cat(SIG, [0x21, 0x11, 0xff, 0xff]);
  const p = new ProxyHeaderParser();
  assertEquals(p.push(head.subarray(0, 15)), null);
  const e = assertThrows(() => p.push(head.subarray(15)), ProxyProtocolError);
  assertEquals(e.kind, "length");
  assert(e.message.includes("65551") && e.message.includes("2048"), e.message);
  // the limit is configurable, and exactly the limit is accepted
  const body = cat(IPV4_BLOCK, tlv(PP2_TYPE.NOOP, new Uint8Array(300 - 16 - 12 - 3)));
  assertEquals(parseAllWays(v2(0x21, 0x11, body), { maxHeaderBytes: 300 }).length, 300);
  refused(v2(0x21, 0x11, body), "length", { maxHeaderBytes: 299 });
  assertEquals(
    parseProxyHeader(cat(head, new Uint8Array(65535)), { maxHeaderBytes: 65551 })
      .header.length,
    65551,
  );
});

Deno.test("proxy: early refusal: a wrong first byte or version fails before the rest arrives", () => {
  const p = new ProxyHeaderParser();
  assertThrows(() => p.push(enc.encode("G")), ProxyProtocolError, "does not start");
  const q = new ProxyHeaderParser();
  assertEquals(q.push(new Uint8Array(SIG)), null);
  assertThrows(() => q.push(new Uint8Array([0x11])), ProxyProtocolError, "version nibble 1");
  // TLS ClientHello and the v2 signature on a v1-only parser
  refused(new Uint8Array([0x16, 0x03, 0x01, 0x02, 0x00]), "signature");
  refused(v2(0x21, 0x11, IPV4_BLOCK), "signature", { version: "v1" });
  refused(enc.encode("PROXY TCP4 1.2.3.4 1.2.3.4 1 2\r\n"), "signature", { version: "v2" });
  assertEquals(parseProxyHeader(v2(0x20, 0, []), { version: "v2" }).header.command, "local");
  assertEquals(
    parseProxyHeader(enc.encode("PROXY UNKNOWN\r\n"), { version: "v1" }).header.version,
    1,
  );
});

Deno.test("proxy: truncated headers: the parser waits; one-shot parsing refuses them", () => {
  const full = [
    enc.encode("PROXY TCP4 192.0.2.1 198.51.100.7 54321 443\r\n"),
    v2(0x21, 0x11, cat(IPV4_BLOCK, tlv(1, "h2"))),
  ];
  for (const bytes of full) {
    for (let cut = 0; cut < bytes.length; cut++) {
      const p = new ProxyHeaderParser();
      assertEquals(p.push(bytes.subarray(0, cut)), null, `cut at ${cut}`);
      const e = assertThrows(() => parseProxyHeader(bytes.subarray(0, cut)), ProxyProtocolError);
      assertEquals(e.kind, "length");
    }
  }
});

Deno.test("proxy: the trust list matches IPv4, IPv6 and IPv4-mapped peers by CIDR", () => {
  const t = new TrustList(["10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "127.0.0.1/32", "unix"]);
  const v4 = (a: string) => t.trusts({ family: "inet", address: a, port: 1 });
  const v6 = (a: string) => t.trusts({ family: "inet6", address: a, port: 1 });
  assert(v4("10.255.0.1"));
  assert(!v4("11.0.0.1"));
  assert(v4("192.0.2.7"));
  assert(!v4("192.0.2.8"));
  assert(v4("127.0.0.1"));
  assert(!v4("127.0.0.2"));
  assert(v6("2001:db8:ffff::1"));
  assert(!v6("2001:db9::1"));
  assert(v6("::ffff:10.1.1.1"));
  assert(!v6("::ffff:127.0.0.2"));
  assert(!v6("::1"));
  assert(t.trusts({ family: "unix", path: "" }));
  assert(!new TrustList(["0.0.0.0/0"]).trusts({ family: "unix", path: "" }));
  assert(new TrustList(["0.0.0.0/0"]).trusts({ family: "inet", address: "8.8.8.8", port: 1 }));
  assert(new TrustList(["::/0"]).trusts({ family: "inet6", address: "fe80::1", port: 1 }));
  assert(
    new TrustList(["172.16.0.0/12"]).trusts({ family: "inet", address: "172.31.9.9", port: 1 }),
  );
  assert(
    !new TrustList(["172.16.0.0/12"]).trusts({ family: "inet", address: "172.32.0.1", port: 1 }),
  );
  assert(!new TrustList([]).trusts({ family: "inet", address: "127.0.0.1", port: 1 }));
  for (const bad of ["10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/08", "10.0.0/8", "host", ""]) {
    assertThrows(() => new TrustList([bad]), Error, bad === "" ? "trusted" : bad);
  }
});

Deno.test("proxy: options are validated, naming the option", () => {
  const ok = { version: "any", trusted: ["127.0.0.1"] } as const;
  checkProxyProtocolOptions(ok);
  assertThrows(
    () => checkProxyProtocolOptions({ ...ok, version: "v3" as "v1" }),
    TypeError,
    "proxyProtocol.version",
  );
  assertThrows(
    () => checkProxyProtocolOptions({ trusted: [] } as unknown as typeof ok),
    TypeError,
    "version",
  );
  assertThrows(
    () => checkProxyProtocolOptions({ ...ok, timeoutMs: 0 }),
    RangeError,
    "proxyProtocol.timeoutMs",
  );
  assertThrows(
    () => checkProxyProtocolOptions({ ...ok, timeoutMs: 1.5 }),
    RangeError,
    "proxyProtocol.timeoutMs",
  );
  assertThrows(
    () => checkProxyProtocolOptions({ ...ok, maxHeaderBytes: 100 }),
    RangeError,
    "proxyProtocol.maxHeaderBytes",
  );
  assertThrows(
    () => checkProxyProtocolOptions({ ...ok, trusted: "127.0.0.1" as unknown as string[] }),
    TypeError,
    "proxyProtocol.trusted",
  );
  const tcp = { port: 0 };
  assertThrows(() => checkListenOptions({ ...tcp, deferAccept: -1 }), RangeError, "deferAccept");
  assertThrows(() => checkListenOptions({ ...tcp, fastOpen: 1.5 }), RangeError, "fastOpen");
  assertThrows(() => checkListenOptions({ ...tcp, incomingCpu: 9000 }), RangeError, "incomingCpu");
  assertThrows(() => checkListenOptions({ path: "/x", deferAccept: 1 }), TypeError, "TCP");
  assertThrows(() => checkListenOptions({ path: "/x", fastOpen: 1 }), TypeError, "TCP");
  assertThrows(
    () =>
      checkListenOptions({ ...tcp, proxyProtocol: { ...ok, trusted: "x" as unknown as string[] } }),
    TypeError,
    "proxyProtocol.trusted",
  );
  const checked = checkListenOptions({ ...tcp, deferAccept: 0, fastOpen: 0, incomingCpu: 0 });
  assertEquals(checked.socketOptions, {
    reuseAddress: true,
    reusePort: undefined,
    v6Only: false,
    deferAccept: 0,
    fastOpen: 0,
    incomingCpu: 0,
  });
});
