/**
 * Bad input gets a named error, never a crash, a leak or a hang: ports and
 * address text, over-long Unix paths (refused before any syscall, no fd
 * left behind), bad fds and misuse of registrations, socket option values
 * of the wrong type, unknown syslog names, bad command-line flags for the
 * example servers, and malformed HTTP against a live `http_server.ts`.
 */
import { assert, assertEquals, assertMatch, assertRejects, assertThrows } from "@std/assert";
import { createLogger, Logger } from "../../daemon/syslog.ts";
import { AddressLookupError } from "../../ffi/dns.ts";
import { ErrnoError } from "../../ffi/errno.ts";
import { closeFd, pipe } from "../../ffi/fd.ts";
import { encodeSockaddr, ipAddress, type SocketAddress } from "../../ffi/sockaddr.ts";
import { Socket } from "../../ffi/socket.ts";
import { resolveFacility, resolvePriority } from "../../ffi/syslog.ts";
import {
  connect,
  DatagramSocket,
  Interest,
  Listener,
  Reactor,
  type Registration,
} from "../../reactor/mod.ts";
import { startExample } from "../_example_server.ts";
import { countFds, type ProcessOutput, runBounded, withFdCheck } from "../_helpers.ts";
import { scaled } from "../ffi/_emulation.ts";

const EXAMPLES = new URL("../../examples/", import.meta.url);
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const noop = () => {};

/** Run `fn` with a reactor that is closed afterwards. */
async function withReactor(fn: (reactor: Reactor) => unknown): Promise<void> {
  const reactor = new Reactor();
  try {
    await fn(reactor);
  } finally {
    reactor.close();
  }
}

// deno-lint-ignore no-explicit-any
type Any = any;

Deno.test("bad input: ports -1, 65536 and 1.5 are a RangeError naming the port, wherever they enter", () =>
  withFdCheck(() =>
    withReactor(async (reactor) => {
      for (const port of [-1, 65536, 1.5, NaN]) {
        const fds = countFds();
        const msg = `port ${port}`;
        assertThrows(
          () => encodeSockaddr({ family: "inet", address: "127.0.0.1", port }),
          RangeError,
          msg,
        );
        assertThrows(
          () => encodeSockaddr({ family: "inet6", address: "::1", port }),
          RangeError,
          msg,
        );
        {
          using s = Socket.create("inet", "stream");
          assertThrows(
            () => s.bind({ family: "inet", address: "127.0.0.1", port }),
            RangeError,
            msg,
          );
          assertThrows(
            () => s.connect({ family: "inet", address: "127.0.0.1", port }),
            RangeError,
            msg,
          );
        }
        assertThrows(() => Listener.listen(reactor, { host: "127.0.0.1", port }), RangeError, msg);
        assertThrows(() => Listener.listen(reactor, { host: "::1", port }), RangeError, msg);
        await assertRejects(() => connect(reactor, { host: "127.0.0.1", port }), RangeError, msg);
        assertThrows(
          () => DatagramSocket.open(reactor, { bind: { host: "127.0.0.1", port } }),
          RangeError,
          msg,
        );
        assertThrows(
          () => DatagramSocket.open(reactor, { connect: { host: "::1", port } }),
          RangeError,
          msg,
        );
        assertEquals(countFds(), fds, `an fd was left open for ${msg}`);
      }
      assertEquals(reactor.stats.registrations, 0);
    })
  ));

Deno.test("bad input: malformed IPv4/IPv6 text is a TypeError quoting it", () =>
  withFdCheck(() =>
    withReactor(async (reactor) => {
      for (const text of ["1.2.3", "256.0.0.1", "::1::", "hello", "1.2.3.4.5", "", "::g"]) {
        const quoted = `"${text}"`;
        assertThrows(() => ipAddress(text, 80), TypeError, quoted);
        assertThrows(() => Listener.listen(reactor, { host: text, port: 0 }), TypeError, quoted);
        // connect() resolves names as Deno.connect does: getaddrinfo refuses these
        // (it reads "1.2.3" as inet_aton's 1.2.0.3, as Deno would, so that one is skipped).
        if (text === "") {
          await assertRejects(() => connect(reactor, { host: text, port: 80 }), TypeError, "host");
        } else if (text !== "1.2.3") {
          await assertRejects(
            () => connect(reactor, { host: text, port: 80 }),
            AddressLookupError,
            quoted,
          );
        }
        assertThrows(
          () => DatagramSocket.open(reactor, { bind: { host: text, port: 0 } }),
          TypeError,
          quoted,
        );
      }
      for (const address of ["1.2.3", "256.0.0.1", "hello", "::1"]) {
        assertThrows(
          () => encodeSockaddr({ family: "inet", address, port: 1 }),
          TypeError,
          "is not an IPv4 address",
        );
      }
      for (const address of ["::1::", "hello", "1.2.3", "12345::"]) {
        assertThrows(
          () => encodeSockaddr({ family: "inet6", address, port: 1 }),
          TypeError,
          "is not an IPv6 address",
        );
      }
      assertThrows(
        () => encodeSockaddr({ family: "bogus" } as Any),
        TypeError,
        'unknown family "bogus"',
      );
      assertThrows(() => Socket.create("bogus" as Any, "stream"), TypeError, '"bogus"');
      assertThrows(() => Socket.create("inet", "bogus" as Any), TypeError, '"bogus"');
      assertEquals(reactor.stats.registrations, 0);
    })
  ));

Deno.test("bad input: a Unix path of 108+ bytes is a RangeError before any syscall, and leaves no fd or file", () =>
  withFdCheck(() =>
    withReactor(async (reactor) => {
      const dir = Deno.makeTempDirSync({ prefix: "ffinet-bad-" });
      try {
        for (const size of [108, 109, 300]) {
          const path = `${dir}/${"p".repeat(size - dir.length - 1)}`;
          assertEquals(encoder.encode(path).byteLength, size);
          const fds = countFds();
          const msg = `is ${size} bytes, the limit is 107`;
          assertThrows(() => encodeSockaddr({ family: "unix", path }), RangeError, msg);
          {
            using s = Socket.create("unix", "stream");
            assertThrows(() => s.bind({ family: "unix", path }), RangeError, msg);
            // bind(2) was never called: the socket is still unnamed.
            assertEquals(s.localAddress(), { family: "unix", path: "" });
            assertThrows(() => s.connect({ family: "unix", path }), RangeError, msg);
          }
          assertThrows(() => Listener.listen(reactor, { path, mode: 0o600 }), RangeError, msg);
          await assertRejects(() => connect(reactor, { path }), RangeError, msg);
          assertThrows(() => DatagramSocket.open(reactor, { bind: { path } }), RangeError, msg);
          assertThrows(() => new Logger({ path }), RangeError, msg);
          assertEquals(countFds(), fds, `an fd was left open for a ${size}-byte path`);
          assertEquals([...Deno.readDirSync(dir)], [], "a file was created");
        }
        // The abstract namespace has one more byte (no NUL), then the same error.
        const abstract = "\0" + "a".repeat(108);
        assertThrows(() => encodeSockaddr({ family: "unix", path: abstract }), RangeError, "108");
        assertThrows(
          () => encodeSockaddr({ family: "unix", path: "/tmp/a\0b" }),
          TypeError,
          "NUL",
        );
      } finally {
        Deno.removeSync(dir, { recursive: true });
      }
      assertEquals(reactor.stats.registrations, 0);
    })
  ));

Deno.test("bad input: bad fds for Socket and Reactor.register are a RangeError; a closed fd is EBADF, explained", () =>
  withFdCheck(() =>
    withReactor((reactor) => {
      for (const fd of [-1, -100, 1.5, NaN]) {
        assertThrows(() => new Socket(fd), RangeError, `fd ${fd} is not an integer`);
        assertThrows(
          () => reactor.register(fd, Interest.READABLE, noop),
          RangeError,
          `Cannot register fd ${fd}`,
        );
      }
      const [r, w] = pipe();
      closeFd(r);
      closeFd(w);
      const e = assertThrows(() => reactor.register(r, Interest.READABLE, noop), ErrnoError);
      assertEquals(e.code, "EBADF");
      assertMatch(e.message, /fd is not open/);
      assertThrows(() => reactor.register(reactor.epfd, Interest.READABLE, noop), Error, "reactor");
      assertThrows(() => reactor.register(0, Interest.READABLE, "x" as Any), TypeError, "callback");
      assertThrows(() => reactor.register(0, 0x40000, noop), TypeError, "not Interest flags");
      assertEquals(reactor.stats.registrations, 0);
    })
  ));

Deno.test("bad input: registering an fd twice, modifying a deregistered registration, EXCLUSIVE on modify", () =>
  withFdCheck(() =>
    withReactor((reactor) => {
      const [a, b] = Socket.pair();
      try {
        const reg = reactor.register(a.fd, Interest.READABLE, noop);
        const twice = assertThrows(
          () => reactor.register(a.fd, Interest.READABLE, noop),
          ErrnoError,
        );
        assertEquals(twice.code, "EEXIST");
        assertMatch(twice.message, /already registered with this reactor/);
        assertEquals(reactor.stats.registrations, 1);
        assertEquals(reactor.registrationOf(a.fd), reg);

        // Parked with no interest, the fd is still known: registering again is refused.
        reg.modify(0);
        assertThrows(
          () => reactor.register(a.fd, Interest.READABLE, noop),
          Error,
          "already has a registration",
        );

        assertThrows(
          () => reg.modify(Interest.READABLE | Interest.EXCLUSIVE),
          TypeError,
          "EPOLLEXCLUSIVE",
        );
        reg.deregister();
        reg.deregister(); // idempotent
        assertThrows(() => reg.modify(Interest.READABLE), Error, "deregistered");
        assertThrows(() => reg.rearm(), Error, "deregistered");

        // Added with EXCLUSIVE: modifying it is refused before the kernel's EINVAL.
        const ex: Registration = reactor.register(
          b.fd,
          Interest.READABLE | Interest.EXCLUSIVE,
          noop,
        );
        assertThrows(() => ex.modify(Interest.READABLE), TypeError, "EPOLLEXCLUSIVE");
        ex.deregister();
        assertEquals(reactor.stats.registrations, 0);
      } finally {
        a.close();
        b.close();
      }
    })
  ));

Deno.test("bad input: socket option values of the wrong type (TypeError) or range (RangeError) and unknown names are refused, naming the option", () =>
  withFdCheck(() => {
    using s = Socket.create("inet", "stream");
    const set = (name: string, value: unknown) => () => s.setOption(name as Any, value as Any);
    assertThrows(set("noDelay", 1), TypeError, "noDelay: expected a boolean, got number");
    assertThrows(set("reusePort", "yes"), TypeError, "reusePort");
    assertThrows(set("linger", "x"), TypeError, "linger: expected { seconds: number } or null");
    assertThrows(set("linger", { seconds: "1" }), TypeError, "linger");
    assertThrows(set("linger", { seconds: -1 }), RangeError, "linger");
    assertThrows(set("receiveBufferSize", "big"), TypeError, "receiveBufferSize");
    assertThrows(set("receiveBufferSize", 1.5), RangeError, "receiveBufferSize");
    assertThrows(set("receiveBufferSize", 2 ** 40), RangeError, "receiveBufferSize");
    assertThrows(set("receiveTimeout", -5), RangeError, "receiveTimeout");
    assertThrows(set("receiveTimeout", Infinity), RangeError, "receiveTimeout");
    assertThrows(set("bogus", true), TypeError, 'unknown option "bogus"');
    assertThrows(set("error", 0), TypeError, "error: it is read-only");
    assertThrows(() => s.getOption("bogus" as Any), TypeError, 'unknown option "bogus"');
    // The socket is unharmed.
    s.setOption("noDelay", true);
    assertEquals(s.getOption("noDelay"), true);
  }));

Deno.test("bad input: unknown syslog facility and priority names are a RangeError", () =>
  withFdCheck(() => {
    assertThrows(() => resolveFacility("nope"), RangeError, 'unknown name "nope"');
    assertThrows(() => resolvePriority("nope"), RangeError, 'unknown name "nope"');
    assertThrows(() => resolveFacility("toString"), RangeError, "toString");
    assertThrows(() => resolvePriority("__proto__"), RangeError, "__proto__");
    assertThrows(() => createLogger({ facility: "nope" as Any }), RangeError, '"nope"');
    assertThrows(() => createLogger({ facility: 7 }), RangeError, "facility 7");
    assertThrows(() => createLogger({ mask: "nope" as Any }), RangeError, '"nope"');
    assertThrows(() => createLogger({ reconnectInterval: -1 }), RangeError, "reconnectInterval");
    // A logger whose receiver is absent: unknown priority names still throw.
    const dir = Deno.makeTempDirSync({ prefix: "ffinet-bad-" });
    try {
      using log = createLogger({ path: `${dir}/no-such-socket` });
      assertThrows(() => log.log("nope" as Any, "x"), RangeError, '"nope"');
      assertThrows(() => log.setMask("nope" as Any), RangeError, '"nope"');
      log.info("dropped, not thrown");
      assertEquals(log.stats.dropped, 1);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  }));

/** Run an example with `args` and collect its exit code and output (bounded). */
function runExample(name: string, args: string[]): Promise<ProcessOutput> {
  return runBounded(Deno.execPath(), {
    args: ["run", "--allow-ffi", "--allow-env", new URL(name, EXAMPLES).pathname, ...args],
  }, scaled(30_000)); // nine Deno starts at once: slow under emulation
}

Deno.test("bad input: bad flags make the example servers exit 2 with a clear message", () =>
  withFdCheck(async () => {
    const usage = /\nusage: \w+_server\.ts /;
    const cases: [string, string[], RegExp, RegExp?][] = [
      ["echo_server.ts", ["--bogus"], /^unknown flag --bogus\n/, usage],
      ["echo_server.ts", ["--port", "99999"], /^--port 99999 is not a port \(0-65535\)\n/, usage],
      ["echo_server.ts", ["--port", "abc"], /^--port abc is not a port/, usage],
      ["echo_server.ts", ["--port", "-1"], /^--port -1 is not a port/, usage],
      ["echo_server.ts", ["--port"], /^--port needs a value\n/, usage],
      ["echo_server.ts", ["--reuse-port=yes"], /^--reuse-port takes no value\n/, usage],
      ["http_server.ts", ["--port=1.5"], /^--port 1\.5 is not a port/, usage],
      ["http_server.ts", ["--nope"], /^unknown flag --nope\n/, usage],
      [
        "http_server.ts",
        ["--header-timeout-ms", "soon"],
        /^--header-timeout-ms soon is not a whole number of milliseconds\n/,
      ],
    ];
    const results = await Promise.all(cases.map(([name, args]) => runExample(name, args)));
    results.forEach((r, i) => {
      const [name, args, message, alsoUsage] = cases[i]!;
      const what = `${name} ${args.join(" ")}`;
      assertEquals(r.code, 2, `${what}: exit code\n${r.stderr}`);
      assertMatch(r.stderr, message, what);
      if (alsoUsage) assertMatch(r.stderr, alsoUsage, what);
      assertEquals(r.stdout, "", `${what} printed to stdout`);
    });
  }));

/** http_server.ts as a child process on an ephemeral port; it must exit 0 on SIGTERM after. */
async function withHttpServer(fn: (port: number) => unknown): Promise<void> {
  const server = await startExample("http_server.ts");
  try {
    await fn(server.port);
    assert(!server.exited, `the server exited:\n${server.output()}`);
  } finally {
    const status = await server.stop();
    assertEquals(status.code, 0, server.output());
  }
}

/**
 * Send `request` on a fresh blocking connection and read until the server
 * closes it (reads time out after 10 s, so this never hangs).
 */
function exchange(port: number, request: string | Uint8Array): Uint8Array {
  const s = Socket.create("inet", "stream", { nonblocking: false });
  try {
    s.setOption("receiveTimeout", 10_000);
    s.setOption("sendTimeout", 10_000);
    const addr: SocketAddress = { family: "inet", address: "127.0.0.1", port };
    assertEquals(s.connect(addr), "connected");
    const data = typeof request === "string" ? encoder.encode(request) : request;
    for (let off = 0; off < data.byteLength;) {
      const n = s.write(data.subarray(off));
      assert(n !== null, "send timed out");
      off += n!;
    }
    const chunks: Uint8Array[] = [];
    for (;;) {
      const buf = new Uint8Array(65536);
      const n = s.read(buf);
      if (n === null) throw new Error("the server neither answered nor closed within 10 s");
      if (n === 0) break;
      chunks.push(buf.subarray(0, n));
    }
    const all = new Uint8Array(chunks.reduce((sum, c) => sum + c.byteLength, 0));
    let off = 0;
    for (const c of chunks) {
      all.set(c, off);
      off += c.byteLength;
    }
    return all;
  } finally {
    s.close();
  }
}

/** Check that `raw` is exactly one well-formed response with `status`, then EOF. */
function assertOneResponse(raw: Uint8Array, status: number, what: string): void {
  const text = decoder.decode(raw);
  const headEnd = text.indexOf("\r\n\r\n");
  assert(headEnd > 0, `${what}: no complete response head in ${JSON.stringify(text)}`);
  const [statusLine, ...lines] = text.slice(0, headEnd).split("\r\n");
  assertMatch(statusLine!, new RegExp(`^HTTP/1\\.1 ${status} \\S`), what);
  const headers = new Map(
    lines.map((
      l,
    ) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]),
  );
  const length = headers.get("content-length");
  assert(length !== undefined, `${what}: no Content-Length`);
  assertEquals(raw.byteLength - (headEnd + 4), Number(length), `${what}: body length`);
  assertEquals(headers.get("connection")?.toLowerCase(), "close", `${what}: Connection header`);
}

Deno.test("bad input: malformed HTTP gets 400/501/431/413, well-formed, then the connection closes", () =>
  withFdCheck(() =>
    withHttpServer((port) => {
      const cases: [string, string, number][] = [
        ["bad request line", "GARBAGE\r\n\r\n", 400],
        ["request line without version", "GET /\r\nHost: a\r\n\r\n", 400],
        ["header without colon", "GET / HTTP/1.1\r\nHost: a\r\nNoColonHere\r\n\r\n", 400],
        [
          "conflicting Content-Length",
          "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
          400,
        ],
        [
          "non-numeric Content-Length",
          "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5x\r\n\r\n",
          400,
        ],
        [
          "unsupported Transfer-Encoding",
          "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
          501,
        ],
        [
          "Transfer-Encoding without final chunked",
          "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
          400,
        ],
        [
          "oversized header",
          `GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${"b".repeat(9000)}\r\n\r\n`,
          431,
        ],
        [
          "oversized body",
          "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 2000000\r\n\r\n",
          413,
        ],
        ["missing Host", "GET / HTTP/1.1\r\n\r\n", 400],
        ["NUL in the target", "GET /\0 HTTP/1.1\r\nHost: a\r\n\r\n", 400],
      ];
      for (const [what, request, status] of cases) {
        assertOneResponse(exchange(port, request), status, what);
      }
      // A good request after a bad one in the same batch: the good one is answered first.
      const mixed = decoder.decode(
        exchange(port, "GET / HTTP/1.1\r\nHost: a\r\n\r\nBROKEN\r\n\r\n"),
      );
      assertMatch(mixed, /^HTTP\/1\.1 200 [^]*Hello, World!HTTP\/1\.1 400 /);
      // The server is fine.
      assertOneResponse(
        exchange(port, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"),
        200,
        "a good request",
      );
    })
  ));
