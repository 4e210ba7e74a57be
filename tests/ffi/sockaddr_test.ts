import { assertEquals, assertThrows } from "@std/assert";
import {
  decodeSockaddr,
  encodeSockaddr,
  formatAddress,
  ipAddress,
  SOCKADDR_IN6_SIZE,
  SOCKADDR_IN_SIZE,
  SOCKADDR_STORAGE_SIZE,
  SOCKADDR_UN_SIZE,
  type SocketAddress,
  UNIX_PATH_MAX,
} from "../../ffi/sockaddr.ts";
import { AF, SOCK } from "../../ffi/constants.ts";
import * as sys from "../../ffi/syscalls.ts";
import { withFdCheck } from "../_helpers.ts";
import { Socket } from "../../ffi/socket.ts";

/** getsockname as exact bytes. */
function sockname(fd: number): Uint8Array {
  const buf = new Uint8Array(SOCKADDR_STORAGE_SIZE);
  const len = new Uint32Array([buf.length]);
  assertEquals(sys.getsockname(fd, buf, len), 0);
  return buf.slice(0, len[0]);
}

function withSocket(family: number, type: number, fn: (fd: number) => void): void {
  const fd = sys.socket(family, type | SOCK.CLOEXEC, 0);
  if (fd < 0) throw new Error(`socket failed: ${fd}`);
  try {
    fn(fd);
  } finally {
    sys.close(fd);
  }
}

Deno.test("sockaddr: struct sizes", () => {
  assertEquals(SOCKADDR_IN_SIZE, 16);
  assertEquals(SOCKADDR_IN6_SIZE, 28);
  assertEquals(SOCKADDR_UN_SIZE, 110);
  assertEquals(SOCKADDR_STORAGE_SIZE, 128);
  assertEquals(UNIX_PATH_MAX, 107);
});

Deno.test("sockaddr: byte-exact layouts", () => {
  assertEquals(
    [...encodeSockaddr({ family: "inet", address: "127.0.0.1", port: 8080 })],
    [2, 0, 0x1f, 0x90, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0],
  );
  assertEquals(
    [
      ...encodeSockaddr({
        family: "inet6",
        address: "fe80::1:2",
        port: 443,
        flowinfo: 0x000abcde,
        scopeId: 0x01020304,
      }),
    ],
    [
      10,
      0, // sin6_family (host order)
      0x01,
      0xbb, // sin6_port (network order)
      0x00,
      0x0a,
      0xbc,
      0xde, // sin6_flowinfo (network order)
      0xfe,
      0x80,
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
      0,
      1,
      0,
      2, // sin6_addr
      0x04,
      0x03,
      0x02,
      0x01, // sin6_scope_id (host order)
    ],
  );
  assertEquals(
    [...encodeSockaddr({ family: "unix", path: "/tmp/a" })],
    [1, 0, 0x2f, 0x74, 0x6d, 0x70, 0x2f, 0x61, 0],
  );
  assertEquals([...encodeSockaddr({ family: "unix", path: "\0ab" })], [1, 0, 0, 0x61, 0x62]);
  assertEquals([...encodeSockaddr({ family: "unix", path: "" })], [1, 0]);
});

Deno.test("sockaddr: encode/decode round trips", () => {
  const cases: SocketAddress[] = [
    { family: "inet", address: "0.0.0.0", port: 0 },
    { family: "inet", address: "255.255.255.255", port: 65535 },
    { family: "inet", address: "10.1.2.3", port: 53 },
    { family: "inet6", address: "::", port: 0, flowinfo: 0, scopeId: 0 },
    { family: "inet6", address: "::1", port: 8080, flowinfo: 0, scopeId: 0 },
    { family: "inet6", address: "fe80::1", port: 22, flowinfo: 0xfffff, scopeId: 3 },
    { family: "inet6", address: "::ffff:192.0.2.1", port: 1, flowinfo: 7, scopeId: 0xffffffff },
    { family: "unix", path: "/run/ffinet.sock" },
    { family: "unix", path: "relative/é.sock" },
    { family: "unix", path: "\0abstract name" },
    { family: "unix", path: "\0" },
    { family: "unix", path: "" },
    { family: "unix", path: "/".repeat(UNIX_PATH_MAX) },
    { family: "unix", path: "\0" + "x".repeat(UNIX_PATH_MAX) },
  ];
  for (const addr of cases) {
    const bytes = encodeSockaddr(addr);
    assertEquals(decodeSockaddr(bytes, bytes.length), addr);
    // Decoding from a larger, reused buffer works the same.
    const big = new Uint8Array(SOCKADDR_STORAGE_SIZE).fill(0x55);
    big.set(bytes);
    if (addr.family !== "unix") assertEquals(decodeSockaddr(big, bytes.length), addr);
  }
  // Omitted flowinfo/scopeId encode as 0.
  const short = encodeSockaddr({ family: "inet6", address: "::1", port: 1 });
  assertEquals(decodeSockaddr(short, short.length), {
    family: "inet6",
    address: "::1",
    port: 1,
    flowinfo: 0,
    scopeId: 0,
  });
  // A path decodes up to its NUL even when the length counts more.
  const padded = new Uint8Array(SOCKADDR_UN_SIZE);
  padded.set(encodeSockaddr({ family: "unix", path: "/x" }));
  assertEquals(decodeSockaddr(padded, padded.length), { family: "unix", path: "/x" });
  assertEquals(decodeSockaddr(new Uint8Array(0), 0), { family: "unix", path: "" });
  assertThrows(
    () => decodeSockaddr(new Uint8Array([99, 0, 0, 0]), 4),
    TypeError,
    "unsupported address family 99",
  );
});

Deno.test("sockaddr: encodings equal what getsockname returns for bound sockets", () =>
  withFdCheck(() => {
    const loopback4 = encodeSockaddr({ family: "inet", address: "127.0.0.1", port: 0 });
    for (const type of [SOCK.STREAM, SOCK.DGRAM]) {
      withSocket(AF.INET, type, (fd) => {
        assertEquals(sys.bind(fd, loopback4), 0);
        const got = sockname(fd);
        const addr = decodeSockaddr(got, got.length);
        if (addr.family !== "inet") throw new Error("not inet");
        assertEquals(addr.address, "127.0.0.1");
        assertEquals(addr.port > 0, true);
        assertEquals(encodeSockaddr(addr), got);
      });
    }

    withSocket(AF.INET6, SOCK.STREAM, (fd) => {
      const want = { family: "inet6", address: "::1", port: 0 } as const;
      assertEquals(sys.bind(fd, encodeSockaddr(want)), 0);
      const got = sockname(fd);
      assertEquals(got.length, SOCKADDR_IN6_SIZE);
      const addr = decodeSockaddr(got, got.length);
      if (addr.family !== "inet6") throw new Error("not inet6");
      assertEquals(addr.address, "::1");
      assertEquals(addr.scopeId, 0);
      assertEquals(encodeSockaddr(addr), got);
    });

    const dir = Deno.makeTempDirSync();
    try {
      withSocket(AF.UNIX, SOCK.STREAM, (fd) => {
        const addr = { family: "unix", path: `${dir}/s.sock` } as const;
        assertEquals(sys.bind(fd, encodeSockaddr(addr)), 0);
        const got = sockname(fd);
        assertEquals(got, encodeSockaddr(addr)); // family + path + NUL
        assertEquals(decodeSockaddr(got, got.length), addr);
      });
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }

    withSocket(AF.UNIX, SOCK.STREAM, (fd) => {
      const addr = { family: "unix", path: `\0ffinet-test-${Deno.pid}-${Date.now()}` } as const;
      assertEquals(sys.bind(fd, encodeSockaddr(addr)), 0);
      const got = sockname(fd);
      assertEquals(got, encodeSockaddr(addr)); // family + NUL + name, no terminator
      assertEquals(decodeSockaddr(got, got.length), addr);
    });

    // Binding just the family autobinds an abstract name of five hex digits.
    withSocket(AF.UNIX, SOCK.DGRAM, (fd) => {
      assertEquals(sys.bind(fd, encodeSockaddr({ family: "unix", path: "" })), 0);
      const got = sockname(fd);
      const addr = decodeSockaddr(got, got.length);
      if (addr.family !== "unix") throw new Error("not unix");
      assertEquals(/^\0[0-9a-f]{5}$/.test(addr.path), true, JSON.stringify(addr.path));
      assertEquals(encodeSockaddr(addr), got);
    });

    // Each end of a socketpair is unnamed.
    const pair = new Int32Array(2);
    assertEquals(sys.socketpair(AF.UNIX, SOCK.STREAM | SOCK.CLOEXEC, 0, pair), 0);
    try {
      const got = sockname(pair[0]!);
      assertEquals(got, encodeSockaddr({ family: "unix", path: "" }));
      assertEquals(decodeSockaddr(got, got.length), { family: "unix", path: "" });
    } finally {
      sys.close(pair[0]!);
      sys.close(pair[1]!);
    }
  }));

Deno.test("sockaddr: invalid addresses throw before any system call", () => {
  assertThrows(
    () => encodeSockaddr({ family: "unix", path: "a".repeat(108) }),
    RangeError,
    "108 bytes, the limit is 107",
  );
  assertThrows(() => encodeSockaddr({ family: "unix", path: "é".repeat(54) }), RangeError);
  assertEquals(encodeSockaddr({ family: "unix", path: "é".repeat(53) }).length, 2 + 106 + 1);
  assertThrows(
    () => encodeSockaddr({ family: "unix", path: "\0" + "a".repeat(108) }),
    RangeError,
  );
  assertThrows(() => encodeSockaddr({ family: "unix", path: "a\0b" }), TypeError, "NUL");
  for (const address of ["1.2.3", "256.0.0.1", "localhost", "::1", "01.2.3.4", ""]) {
    assertThrows(
      () => encodeSockaddr({ family: "inet", address, port: 80 }),
      TypeError,
      "is not an IPv4 address",
    );
  }
  assertThrows(
    () => encodeSockaddr({ family: "inet6", address: "1:::2", port: 80 }),
    TypeError,
    "is not an IPv6 address",
  );
  for (const port of [70000, 65536, -1, 1.5, NaN]) {
    assertThrows(
      () => encodeSockaddr({ family: "inet", address: "127.0.0.1", port }),
      RangeError,
      "is not an integer from 0 to 65535",
    );
    assertThrows(() => encodeSockaddr({ family: "inet6", address: "::1", port }), RangeError);
  }
  assertThrows(
    () => encodeSockaddr({ family: "ipx" } as unknown as SocketAddress),
    TypeError,
    'unknown family "ipx"',
  );
});

Deno.test("sockaddr: formatAddress and ipAddress", () => {
  assertEquals(formatAddress({ family: "inet", address: "127.0.0.1", port: 80 }), "127.0.0.1:80");
  assertEquals(formatAddress({ family: "inet6", address: "::1", port: 80 }), "[::1]:80");
  assertEquals(formatAddress({ family: "unix", path: "/run/x.sock" }), "/run/x.sock");
  assertEquals(formatAddress({ family: "unix", path: "\0name" }), "@name");
  assertEquals(formatAddress({ family: "unix", path: "" }), "(unnamed)");
  assertEquals(ipAddress("localhost", 1), { family: "inet", address: "127.0.0.1", port: 1 });
  assertEquals(ipAddress("10.0.0.1", 2), { family: "inet", address: "10.0.0.1", port: 2 });
  assertEquals(ipAddress("::", 3), { family: "inet6", address: "::", port: 3 });
  assertEquals(ipAddress("[fe80::1]", 4), { family: "inet6", address: "fe80::1", port: 4 });
  assertThrows(() => ipAddress("example.com", 80), TypeError, "is not an IPv4 or IPv6 address");
});

/**
 * Two peers whose Unix names differ only in a byte that is not UTF-8 (0xff)
 * versus its lossy reading (U+FFFD): a reply to the decoded sender must reach
 * the sender, never the other peer.
 */
function replyReachesTheExactPeer(nameA: Uint8Array, pathB: string, server: string): void {
  const srv = Socket.create("unix", "dgram");
  const a = Socket.create("unix", "dgram");
  const b = Socket.create("unix", "dgram");
  try {
    srv.bind({ family: "unix", path: server });
    a.bind({ family: "unix", path: "", bytes: nameA });
    b.bind({ family: "unix", path: pathB });
    const lossy = new TextDecoder().decode(nameA);
    assertEquals(lossy, pathB, "both names read the same as text");
    const local = a.localAddress();
    assertEquals(local.family === "unix" ? local.bytes : undefined, nameA);

    assertEquals(a.sendTo(new TextEncoder().encode("from A"), { family: "unix", path: server }), 6);
    const buf = new Uint8Array(64);
    const got = srv.receiveFrom(buf);
    if (got === null) throw new Error("no datagram arrived");
    assertEquals(new TextDecoder().decode(buf.subarray(0, got.bytes)), "from A");
    assertEquals(got.from, { family: "unix", path: lossy, bytes: nameA });

    assertEquals(srv.sendTo(new TextEncoder().encode("reply"), got.from), 5);
    const reply = a.receiveFrom(buf);
    assertEquals(reply?.bytes, 5, "the sender got the reply");
    assertEquals(b.receiveFrom(buf), null, "the other peer got nothing");
  } finally {
    srv.close();
    a.close();
    b.close();
  }
}

Deno.test("sockaddr: unix names are bytes: an abstract name with a non-UTF-8 byte gets its own replies", () =>
  withFdCheck(() => {
    const tag = `ffinet-test-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
    const nameA = new Uint8Array([0, ...new TextEncoder().encode(tag), 0xff]);
    replyReachesTheExactPeer(nameA, `\0${tag}\uFFFD`, `\0${tag}-srv`);
  }));

Deno.test("sockaddr: unix names are bytes: a pathname with a non-UTF-8 byte gets its own replies", () =>
  withFdCheck(async () => {
    const dir = await Deno.makeTempDir({ prefix: "ffinet-sockaddr-" });
    try {
      const nameA = new Uint8Array([...new TextEncoder().encode(`${dir}/peer`), 0xff]);
      replyReachesTheExactPeer(nameA, `${dir}/peer\uFFFD`, `${dir}/srv`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }));

Deno.test("sockaddr: a UTF-8 unix name decodes without bytes; bytes win over path when encoding", () => {
  const sa = encodeSockaddr({ family: "unix", path: "/tmp/é" });
  assertEquals(decodeSockaddr(sa, sa.byteLength), { family: "unix", path: "/tmp/é" });
  const raw = encodeSockaddr({
    family: "unix",
    path: "ignored",
    bytes: new Uint8Array([0x2f, 0xfe]),
  });
  assertEquals([...raw], [AF.UNIX, 0, 0x2f, 0xfe, 0]);
  assertThrows(
    () => encodeSockaddr({ family: "unix", path: "", bytes: new Uint8Array([0x61, 0, 0x62]) }),
    TypeError,
  );
});
