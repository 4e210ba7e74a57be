/**
 * Kernel TLS: the probe for the kernel's `tls` ULP agrees with
 * /proc/sys/net/ipv4/tcp_available_ulp, `info.tls.ktls` reports it on a
 * real HTTPS connection, and the `TCP_ULP` bindings check their arguments
 * before any call and stay inside the caller's view (guard bytes). Where
 * the kernel has no `tls` module, the kTLS-on path is skipped with the
 * reason printed.
 *
 * @module
 */
import { assert, assertEquals, assertInstanceOf, assertMatch, assertThrows } from "@std/assert";
import {
  availableTcpUlps,
  getTcpUlp,
  kernelTlsSupport,
  readTcpUlp,
  setTcpUlp,
  TCP_ULP_NAME_MAX,
} from "../../ffi/ktls.ts";
import { ErrnoError } from "../../ffi/errno.ts";
import { Socket } from "../../ffi/socket.ts";
import { makePki } from "./_certs.ts";
import { serveHttps, warmUp } from "./_server.ts";
import { GUARD, Guarded, PATTERN } from "../ffi/_guarded.ts";

warmUp();
// At import: the probe's one socket is no test's resource.
const support = kernelTlsSupport();

const TEST = { sanitizeOps: true, sanitizeResources: true };

Deno.test(
  "ktls: the probe agrees with tcp_available_ulp (this machine: no tls module)",
  TEST,
  () => {
    const listed = availableTcpUlps();
    console.log(`tcp_available_ulp: ${JSON.stringify(listed)}; probe: ${JSON.stringify(support)}`);
    // Read after the probe: a module the probe made the kernel load is listed by now.
    assertEquals(support.available, listed.includes("tls"));
    if (!support.available) assertMatch(support.reason, /no "tls" ULP/);
    else assertEquals(support.reason, "");
    assert(kernelTlsSupport() === support, "asked once per process");
    assert(Object.isFrozen(support));
  },
);

Deno.test(
  "ktls: info.tls.ktls on a serve() connection tells what the kernel has; records stay in user space",
  TEST,
  async () => {
    const pki = await makePki();
    const server = serveHttps(pki, {}, (_req, info) => Response.json(info.tls?.ktls ?? null));
    const client = Deno.createHttpClient({ caCerts: [pki.caCert] });
    try {
      const port = (server.addr as Deno.NetAddr).port;
      const res = await fetch(`https://localhost:${port}/`, { client });
      assertEquals(await res.json(), { available: support.available, tx: false, rx: false });
      if (!support.available) {
        console.log(`skip: kTLS on (records through the kernel): ${support.reason}`);
      } else {
        console.log(
          "skip: kTLS on: the kernel has the tls ULP, but ffinet keeps records in memory BIOs " +
            "(SSL_OP_ENABLE_KTLS is not set); tx/rx stay false",
        );
      }
    } finally {
      client.close();
      await server.shutdown();
      await pki.remove();
    }
  },
);

Deno.test(
  "ktls: setTcpUlp checks the name before any call; the kernel's answer is an ErrnoError",
  TEST,
  () => {
    // fd -1: a call would fail with EBADF, so a RangeError/TypeError proves nothing was called.
    const bad: Array<[unknown, ErrorConstructor]> = [
      [undefined, TypeError],
      [null, TypeError],
      [7, TypeError],
      [{ toString: () => "tls" }, TypeError],
      ["", RangeError],
      ["x".repeat(TCP_ULP_NAME_MAX), RangeError],
      ["tls\0", RangeError],
      ["tl s", RangeError],
      ["tlś", RangeError],
    ];
    for (const [name, cls] of bad) {
      const e = assertThrows(() => setTcpUlp(-1, name as string), cls, undefined, String(name));
      assertMatch(e.message, /^Cannot setsockopt\(TCP_ULP\): /);
    }
    assertThrows(() => setTcpUlp(1.5, "tls"), RangeError, "Cannot setsockopt(TCP_ULP)");
    // A good name reaches the kernel: EBADF for fd -1.
    const ebadf = assertThrows(() => setTcpUlp(-1, "tls"), ErrnoError);
    assertEquals(ebadf.code, "EBADF");
    using s = Socket.create("inet", "stream");
    // 15 bytes, the longest name: the kernel looks it up (and has none such).
    const longest = assertThrows(
      () => setTcpUlp(s.fd, "y".repeat(TCP_ULP_NAME_MAX - 1)),
      ErrnoError,
    );
    assertEquals(longest.code, "ENOENT");
    assertInstanceOf(longest, Deno.errors.NotFound);
    assertMatch(longest.message, /^Cannot setsockopt\(TCP_ULP\): ENOENT .*\[y{15}\]$/);
    if (!support.available) {
      const e = assertThrows(() => setTcpUlp(s.fd, "tls"), ErrnoError);
      assertEquals(e.code, "ENOENT");
    }
    assertEquals(getTcpUlp(s.fd), "", "a refused ULP is not attached");
  },
);

Deno.test(
  "ktls: readTcpUlp writes only inside the view (guard bytes), believes no lying subclass, refuses resizable and shared buffers",
  TEST,
  () => {
    using s = Socket.create("inet", "stream");
    for (const size of [0, 1, TCP_ULP_NAME_MAX - 1, TCP_ULP_NAME_MAX, TCP_ULP_NAME_MAX + 1, 64]) {
      const g = new Guarded(size);
      const n = readTcpUlp(s.fd, g.view);
      assert(n >= 0 && n <= Math.min(size, TCP_ULP_NAME_MAX), `${size}: ${n} bytes`);
      assertEquals(n, 0, "a plain TCP socket has no ULP");
      g.assertGuards(`size ${size}`);
    }
    // A subclass claiming more bytes than it has is not believed.
    class Liar extends Uint8Array {
      override get byteLength(): number {
        return 4096;
      }
      override get length(): number {
        return 4096;
      }
    }
    const backing = new Uint8Array(GUARD + 4 + GUARD).fill(PATTERN);
    const liar = new Liar(backing.buffer, GUARD, 4);
    assertEquals(readTcpUlp(s.fd, liar), 0);
    assert(backing.subarray(GUARD + 4).every((b) => b === PATTERN), "nothing past the real view");
    const resizable = new Uint8Array(new ArrayBuffer(16, { maxByteLength: 64 }));
    assertThrows(() => readTcpUlp(s.fd, resizable), TypeError, "Cannot getsockopt(TCP_ULP)");
    const shared = new Uint8Array(new SharedArrayBuffer(16));
    assertThrows(() => readTcpUlp(s.fd, shared), TypeError, "Cannot getsockopt(TCP_ULP)");
    assertThrows(
      () => readTcpUlp(s.fd, "x" as unknown as Uint8Array),
      TypeError,
      "Cannot getsockopt(TCP_ULP)",
    );
    assertThrows(
      () => readTcpUlp(0.5, new Uint8Array(16)),
      RangeError,
      "Cannot getsockopt(TCP_ULP)",
    );
    // A closed socket: the kernel's error, named.
    const gone = Socket.create("inet", "stream");
    const fd = gone.fd;
    gone.close();
    const e = assertThrows(() => readTcpUlp(fd, new Uint8Array(16)), ErrnoError);
    assertEquals(e.code, "EBADF");
    assertMatch(e.message, /^Cannot getsockopt\(TCP_ULP\): EBADF/);
  },
);
