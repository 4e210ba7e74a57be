/**
 * PROXY protocol on a real Listener over loopback sockets: trusted and
 * untrusted sources (clients bound to 127.0.0.2 vs 127.0.0.1), the header
 * timeout, malformed headers, v2 LOCAL, and application data that follows
 * the header in the same read or arrives byte by byte.
 */
import { assert, assertEquals } from "@std/assert";
import { setNonBlocking } from "../../ffi/fd.ts";
import type { SocketAddress } from "../../ffi/sockaddr.ts";
import { Socket } from "../../ffi/socket.ts";
import type { Connection } from "../../reactor/connection.ts";
import { Listener, type ListenOptions } from "../../reactor/listener.ts";
import type { ProxyInfo } from "../../reactor/proxy/protocol.ts";
import type { Reactor } from "../../reactor/reactor.ts";
import { sleep, waitFor } from "../_helpers.ts";
import { bytes, connectLoopback, onReactor } from "./_util.ts";

const SIG = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];

/** Read what `s` receives until `done(text)` or EOF/reset; returns the text and how it ended. */
async function readFrom(
  s: Socket,
  done: (text: string) => boolean,
  ms = 5000,
): Promise<{ text: string; ended: "eof" | "reset" | "open" }> {
  const buf = new Uint8Array(4096);
  let text = "";
  let ended: "eof" | "reset" | "open" = "open";
  await waitFor(
    () => {
      try {
        for (;;) {
          const n = s.read(buf);
          if (n === null) break;
          if (n === 0) {
            ended = "eof";
            return true;
          }
          text += new TextDecoder().decode(buf.subarray(0, n));
        }
      } catch (e) {
        if ((e as { code?: string }).code === "ECONNRESET") {
          ended = "reset";
          return true;
        }
        throw e;
      }
      return done(text);
    },
    ms,
    "the server's answer or close",
  );
  return { text, ended };
}

interface Seen {
  conns: Connection[];
  remote: SocketAddress[];
  info: (ProxyInfo | undefined)[];
  data: string[];
}

/** A listener that records each connection and echoes `echo:<data>`. */
function proxyListener(
  reactor: Reactor,
  proxyProtocol: NonNullable<ListenOptions["proxyProtocol"]>,
): { listener: Listener; port: number; seen: Seen } {
  const seen: Seen = { conns: [], remote: [], info: [], data: [] };
  const listener = Listener.listen(
    reactor,
    { host: "127.0.0.1", port: 0, proxyProtocol },
    (conn) => {
      seen.conns.push(conn);
      seen.remote.push(conn.remoteAddress());
      seen.info.push(conn.proxyInfo);
      conn.onData = (d) => {
        const t = new TextDecoder().decode(d);
        seen.data.push(t);
        conn.write(bytes(`echo:${t}`));
      };
    },
  );
  const port = (listener.address() as { port: number }).port;
  return { listener, port, seen };
}

function v2ipv4(src: number[], sport: number, dst: number[], dport: number): Uint8Array {
  return Uint8Array.from([
    ...SIG,
    0x21,
    0x11,
    0,
    12,
    ...src,
    ...dst,
    sport >> 8,
    sport & 0xff,
    dport >> 8,
    dport & 0xff,
  ]);
}

function cat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

Deno.test("proxy listener: a trusted proxy's v1, v2 (IPv4, IPv6, Unix) headers set remoteAddress; data after the header arrives", async () => {
  await onReactor(async (reactor) => {
    const { listener, port, seen } = proxyListener(reactor, {
      version: "any",
      trusted: ["127.0.0.2/32"],
      timeoutMs: 5000,
    });
    const clients: Socket[] = [];
    try {
      // v1, header and request in one write
      const a = connectLoopback(port, "127.0.0.2");
      clients.push(a);
      a.write(bytes("PROXY TCP4 203.0.113.9 198.51.100.1 40001 443\r\nhello-v1"));
      assertEquals((await readFrom(a, (t) => t === "echo:hello-v1")).text, "echo:hello-v1");
      // v2 IPv4, header and data in one write
      const b = connectLoopback(port, "127.0.0.2");
      clients.push(b);
      b.write(cat(v2ipv4([192, 0, 2, 33], 50505, [192, 0, 2, 1], 80), bytes("hello-v2")));
      assertEquals((await readFrom(b, (t) => t === "echo:hello-v2")).text, "echo:hello-v2");
      // v2 IPv6
      const c = connectLoopback(port, "127.0.0.2");
      clients.push(c);
      const v6 = new Uint8Array(16 + 36);
      v6.set([...SIG, 0x21, 0x21, 0, 36]);
      v6.set([0x20, 0x01, 0x0d, 0xb8], 16);
      v6[31] = 0x42;
      v6.set([0x20, 0x01, 0x0d, 0xb8], 32);
      v6[47] = 1;
      v6.set([0x9c, 0x40, 0x01, 0xbb], 48); // 40000 -> 443
      c.write(v6);
      await waitFor(() => seen.conns.length === 3, 5000, "the IPv6 connection");
      // v2 Unix
      const d = connectLoopback(port, "127.0.0.2");
      clients.push(d);
      const ux = new Uint8Array(16 + 216);
      ux.set([...SIG, 0x21, 0x31, 0, 216]);
      ux.set(bytes("/run/app/client.sock"), 16);
      ux.set(bytes("/run/lb.sock"), 124);
      d.write(cat(ux, bytes("x")));
      assertEquals((await readFrom(d, (t) => t === "echo:x")).text, "echo:x");

      assertEquals(seen.remote[0], { family: "inet", address: "203.0.113.9", port: 40001 });
      assertEquals(seen.info[0]?.version, 1);
      assertEquals(seen.info[0]?.destination, {
        family: "inet",
        address: "198.51.100.1",
        port: 443,
      });
      assertEquals(seen.info[0]!.proxyAddress, a.localAddress()); // 127.0.0.2 and its port
      assertEquals(seen.remote[1], { family: "inet", address: "192.0.2.33", port: 50505 });
      assertEquals(seen.info[1]?.version, 2);
      assertEquals(seen.remote[2], { family: "inet6", address: "2001:db8::42", port: 40000 });
      assertEquals(seen.remote[3], { family: "unix", path: "/run/app/client.sock" });
      assertEquals(seen.info[3]?.destination, { family: "unix", path: "/run/lb.sock" });
      // the header never reaches onData
      assertEquals(seen.data, ["hello-v1", "hello-v2", "x"]);
      assertEquals(listener.stats.accepted, 4);
      assertEquals(listener.proxyStats?.accepted, 4);
    } finally {
      for (const c of clients) c.close();
      listener.close();
    }
  }, { awaitRegistrations: true });
});

Deno.test("proxy listener: an untrusted source is refused at once, the app never sees it", async () => {
  await onReactor(async (reactor) => {
    const { listener, port, seen } = proxyListener(reactor, {
      version: "v1",
      trusted: ["127.0.0.2"],
    });
    try {
      const t0 = performance.now();
      using s = connectLoopback(port, "127.0.0.1");
      s.write(bytes("PROXY TCP4 203.0.113.9 198.51.100.1 40001 443\r\nGET / HTTP/1.0\r\n\r\n"));
      const r = await readFrom(s, () => false);
      assert(r.ended !== "open" && r.text === "", JSON.stringify(r));
      assert(performance.now() - t0 < 2000, "refused at once, not after a timeout");
      assertEquals(seen.conns.length, 0);
      assertEquals(listener.stats.accepted, 0);
      assertEquals(listener.proxyStats?.untrusted, 1);
      // the same header from the trusted address is served
      using ok = connectLoopback(port, "127.0.0.2");
      ok.write(bytes("PROXY TCP4 203.0.113.9 198.51.100.1 40001 443\r\nping"));
      assertEquals((await readFrom(ok, (t) => t === "echo:ping")).text, "echo:ping");
    } finally {
      listener.close();
    }
  }, { awaitRegistrations: true });
});

Deno.test("proxy listener: a header that never completes is closed after timeoutMs; the app sees nothing", async () => {
  await onReactor(async (reactor) => {
    const { listener, port, seen } = proxyListener(reactor, {
      version: "any",
      trusted: ["127.0.0.0/8"],
      timeoutMs: 300,
    });
    try {
      const t0 = performance.now();
      using s = connectLoopback(port, "127.0.0.2");
      s.write(bytes("PROXY TCP4 203.0.113.9 "));
      const r = await readFrom(s, () => false, 5000);
      const took = performance.now() - t0;
      assert(r.ended !== "open", JSON.stringify(r));
      assert(took >= 250 && took < 4000, `closed after ${took.toFixed(0)} ms`);
      assertEquals(seen.conns.length, 0);
      assertEquals(listener.proxyStats?.timedOut, 1);
      // silent connections time out too
      using silent = connectLoopback(port, "127.0.0.2");
      const r2 = await readFrom(silent, () => false, 5000);
      assert(r2.ended !== "open");
      assertEquals(listener.proxyStats?.timedOut, 2);
      assertEquals(seen.conns.length, 0);
    } finally {
      listener.close();
    }
  }, { awaitRegistrations: true });
});

Deno.test("proxy listener: malformed headers are closed, the app sees nothing; a header trickled byte by byte is served", async () => {
  await onReactor(async (reactor) => {
    const { listener, port, seen } = proxyListener(reactor, {
      version: "any",
      trusted: ["127.0.0.2"],
      timeoutMs: 5000,
    });
    try {
      for (
        const bad of [
          bytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
          bytes("PROXY TCP4 203.0.113.9 198.51.100.1 40001 99999\r\nGET /"),
          bytes(`PROXY UNKNOWN ${"x".repeat(120)}\r\n`),
          Uint8Array.from([...SIG, 0x21, 0x11, 0xff, 0xff]),
          Uint8Array.from([...SIG, 0x21, 0x11, 0, 15, ...new Array(12).fill(1), 0x01, 0, 9]),
        ]
      ) {
        using s = connectLoopback(port, "127.0.0.2");
        s.write(bad);
        const r = await readFrom(s, () => false);
        assert(r.ended !== "open" && r.text === "", JSON.stringify(r));
      }
      assertEquals(seen.conns.length, 0);
      assertEquals(listener.proxyStats?.malformed, 5);

      using t = connectLoopback(port, "127.0.0.2");
      const header = v2ipv4([10, 1, 2, 3], 1234, [10, 0, 0, 1], 80);
      for (const b of header) {
        t.write(Uint8Array.of(b));
        await sleep(2);
      }
      await waitFor(() => seen.conns.length === 1, 5000, "the trickled connection");
      t.write(bytes("after"));
      assertEquals((await readFrom(t, (x) => x === "echo:after")).text, "echo:after");
      assertEquals(seen.remote[0], { family: "inet", address: "10.1.2.3", port: 1234 });
    } finally {
      listener.close();
    }
  }, { awaitRegistrations: true });
});

Deno.test("proxy listener: v2 LOCAL (a balancer's health check) keeps the real addresses", async () => {
  await onReactor(async (reactor) => {
    const { listener, port, seen } = proxyListener(reactor, {
      version: "v2",
      trusted: ["127.0.0.2"],
    });
    try {
      using s = connectLoopback(port, "127.0.0.2");
      s.write(Uint8Array.from([...SIG, 0x20, 0x00, 0, 0, ...bytes("ok?")]));
      assertEquals((await readFrom(s, (t) => t === "echo:ok?")).text, "echo:ok?");
      assertEquals(seen.info[0]?.command, "local");
      assertEquals(seen.remote[0], s.localAddress());
      assertEquals(seen.info[0]?.proxyAddress, s.localAddress());
      assertEquals(listener.proxyStats?.local, 1);
    } finally {
      listener.close();
    }
  }, { awaitRegistrations: true });
});

Deno.test('proxy listener: on a Unix socket, peers are trusted only with "unix" in the list', async () => {
  const dir = await Deno.makeTempDir({ prefix: "ffinet-proxy-unix-" });
  try {
    await onReactor(async (reactor) => {
      for (const [trusted, served] of [[["unix"], true], [["127.0.0.0/8"], false]] as const) {
        const path = `${dir}/s.sock`;
        const remotes: SocketAddress[] = [];
        const l = Listener.listen(
          reactor,
          { path, proxyProtocol: { version: "v1", trusted } },
          (conn) => {
            remotes.push(conn.remoteAddress());
            conn.onData = (d) => conn.write(d);
          },
        );
        try {
          using s = Socket.create("unix", "stream", { nonblocking: false });
          s.connect({ family: "unix", path });
          setNonBlocking(s.fd, true);
          s.write(bytes("PROXY TCP6 2001:db8::7 2001:db8::1 6000 443\r\nabc"));
          const r = await readFrom(s, (t) => t === "abc");
          if (served) {
            assertEquals(r.text, "abc");
            assertEquals(remotes, [{ family: "inet6", address: "2001:db8::7", port: 6000 }]);
          } else {
            assert(r.ended !== "open" && r.text === "", JSON.stringify(r));
            assertEquals(remotes, []);
            assertEquals(l.proxyStats?.untrusted, 1);
          }
        } finally {
          l.close();
        }
      }
    }, { awaitRegistrations: true });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
