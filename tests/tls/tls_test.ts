/**
 * TLS listeners and clients of ffinet end to end on loopback: bytes through
 * both directions with backpressure, the client's verification (CA, name,
 * IP), client certificates, errors at start, certificates changed while
 * serving, and bad peers (garbage instead of a ClientHello, a slowloris
 * handshake, a peer that vanishes mid-handshake) that must neither hang nor
 * leak nor stop others from being served.
 */
import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertMatch,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { Reactor } from "../../reactor/mod.ts";
import { connectTls, OpenSslError, TlsConnection, TlsListener } from "../../tls/mod.ts";
import type { Connection } from "../../reactor/mod.ts";
import { clientContext } from "../../tls/_contexts.ts";
import { makePki, type TestPki } from "./_certs.ts";
import { echo, runClient, startServer } from "./_server.ts";
import { countFds, sleep, waitFor, withFdCheck } from "../_helpers.ts";

let pkiPromise: Promise<TestPki> | undefined;
function pki(): Promise<TestPki> {
  pkiPromise ??= makePki();
  return pkiPromise;
}

const enc = (t: string) => new TextEncoder().encode(t);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

/** Collect what `conn` receives until `n` bytes arrived. */
function receive(conn: TlsConnection, n: number): Promise<Uint8Array<ArrayBuffer>> {
  const chunks: Uint8Array[] = [];
  let got = 0;
  return new Promise((resolve, reject) => {
    conn.onData = (d) => {
      chunks.push(d.slice());
      got += d.length;
      if (got >= n) {
        const out = new Uint8Array(new ArrayBuffer(got));
        let at = 0;
        for (const c of chunks) {
          out.set(c, at);
          at += c.length;
        }
        resolve(out);
      }
    };
    conn.onClose = (_c, e) => {
      if (got < n) reject(e ?? new Error(`closed after ${got} of ${n} bytes`));
    };
  });
}

async function sha256(data: Uint8Array<ArrayBuffer>): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test("ffinet client <-> ffinet server: 16 MiB echoed intact through backpressure (the server stalls first); info on both sides", () =>
  pki().then((p) =>
    withFdCheck(async () => {
      const s = startServer(
        { cert: p.cert, key: p.key, alpnProtocols: ["h2", "http/1.1"] },
        (conn) => {
          // Stall 300 ms on the first bytes so that the client's socket fills.
          echo(conn);
          const onData = conn.onData!;
          let stalled = false;
          conn.onData = (d, c) => {
            onData(d, c);
            if (stalled) return;
            stalled = true;
            conn.pause();
            setTimeout(() => conn.resume(), 300);
          };
        },
        { connection: { highWaterMark: 64 * 1024 } },
      );
      try {
        const conn = await connectTls(s.reactor, { host: "localhost", port: s.port }, {
          caCerts: [p.caCert],
          alpnProtocols: ["http/1.1"],
          highWaterMark: 32 * 1024,
        });
        assertEquals(conn.state, "open");
        assertEquals(conn.info!.protocol, "TLSv1.3");
        assertEquals(conn.info!.alpnProtocol, "http/1.1");
        assertEquals(conn.info!.peerCertificate!.subject, "CN=localhost");
        assertEquals(conn.info!.peerCertificate!.issuer, "CN=ffinet test CA");
        assertEquals(conn.info!.authorized, true);
        assert(conn.info!.peerCertificate!.raw[0] === 0x30, "DER starts with a SEQUENCE");
        const data = new Uint8Array(16 * 1024 * 1024);
        for (let i = 0; i < data.length; i++) data[i] = (i * 7919) & 0xff;
        const back = receive(conn, data.length);
        let off = 0;
        let sawFalse = false;
        const pump = () => {
          while (off < data.length) {
            const chunk = data.subarray(off, Math.min(data.length, off + 100_000));
            off += chunk.length;
            if (!conn.write(chunk)) {
              sawFalse = true;
              return;
            }
          }
        };
        conn.onDrain = pump;
        pump();
        const got = await back;
        assertEquals(got.length, data.length);
        assertEquals(await sha256(got), await sha256(data));
        assert(sawFalse, "write() returned false at the high-water mark");
        assertEquals(s.accepted[0]!.info!.serverName, "localhost");
        assertEquals(s.accepted[0]!.bytesRead, data.length);
        const closed = new Promise<Error | undefined>((r) => conn.onClose = (_c, e) => r(e));
        conn.close();
        assertEquals(await closed, undefined);
        await waitFor(() => s.accepted[0]!.state === "closed", 5000, "the server side to close");
      } finally {
        await s.stop();
      }
    })
  ));

Deno.test("client: refuses a self-signed server, a wrong name, a CA it was not given", () =>
  pki().then((p) =>
    withFdCheck(async () => {
      const self = startServer({ cert: p.selfCert, key: p.selfKey });
      const good = startServer({ cert: p.cert, key: p.key });
      try {
        const e1 = await assertRejects(
          () =>
            connectTls(self.reactor, { host: "localhost", port: self.port }, {
              caCerts: [p.caCert],
            }),
          OpenSslError,
        );
        assertMatch(e1.message, /certificate verify failed \(self-signed certificate\)/);
        const e2 = await assertRejects(
          () =>
            connectTls(good.reactor, { host: "127.0.0.1", port: good.port }, {
              caCerts: [p.caCert],
              serverName: "b.test",
            }),
          OpenSslError,
        );
        assertMatch(e2.message, /certificate verify failed \(hostname mismatch\)/);
        const e3 = await assertRejects(
          () => connectTls(good.reactor, { host: "localhost", port: good.port }),
          OpenSslError,
        );
        assertMatch(e3.message, /unable to get local issuer certificate/);
        // The IP address SAN verifies; rejectUnauthorized: false accepts anything and says so.
        const ip = await connectTls(good.reactor, { host: "127.0.0.1", port: good.port }, {
          caCerts: [p.caCert],
        });
        assertEquals(ip.info!.authorized, true);
        ip.close();
        const lax = await connectTls(self.reactor, { host: "localhost", port: self.port }, {
          rejectUnauthorized: false,
        });
        assertEquals(lax.info!.authorized, false);
        assertEquals(lax.info!.authorizationError, "self-signed certificate");
        lax.close();
        await waitFor(
          () => self.server.stats.failedHandshakes === 1,
          5000,
          "the refused handshake",
        );
        assertEquals(good.server.stats.failedHandshakes, 2);
      } finally {
        await self.stop();
        await good.stop();
      }
    })
  ));

Deno.test("client: talks to Deno.listenTls (rustls) with ALPN, verified against the CA", () =>
  pki().then((p) =>
    withFdCheck(async () => {
      const listener = Deno.listenTls({
        hostname: "127.0.0.1",
        port: 0,
        cert: p.cert,
        key: p.key,
        alpnProtocols: ["h2", "http/1.1"],
      });
      const served = (async () => {
        const c = await listener.accept();
        const hs = await c.handshake();
        const buf = new Uint8Array(64);
        const n = await c.read(buf);
        await c.write(enc(`${hs.alpnProtocol}:${dec(buf.subarray(0, n ?? 0))}`));
        c.close();
      })();
      const reactor = new Reactor();
      const running = reactor.run();
      try {
        const conn = await connectTls(reactor, { host: "localhost", port: listener.addr.port }, {
          caCerts: [p.caCert],
          alpnProtocols: ["h2"],
        });
        const back = receive(conn, 11);
        conn.write(enc("from ffi"));
        assertEquals(dec(await back), "h2:from ffi");
        conn.close();
        await served;
      } finally {
        listener.close();
        reactor.stop();
        await running;
        reactor.close();
      }
    })
  ));

Deno.test("mTLS: a client certificate is required, verified and shown in info", () =>
  pki().then((p) =>
    withFdCheck(async () => {
      const s = startServer({
        cert: p.cert,
        key: p.key,
        ca: p.caCert,
        requestCert: true,
      });
      try {
        const ok = await runClient(
          "openssl",
          [
            "s_client",
            "-connect",
            `127.0.0.1:${s.port}`,
            "-CAfile",
            p.caPath,
            "-cert",
            p.clientCertPath,
            "-key",
            p.clientKeyPath,
          ],
          "mtls\n",
          { holdMs: 500 },
        );
        assertStringIncludes(ok.stdout, "mtls", ok.stderr);
        const info = s.accepted[0]!.info!;
        assertEquals(info.peerCertificate!.subject, "O=ffinet,CN=test client");
        assertEquals(info.authorized, true);
        // Without a certificate the handshake fails.
        const none = await runClient(
          "openssl",
          [
            "s_client",
            "-connect",
            `127.0.0.1:${s.port}`,
            "-CAfile",
            p.caPath,
          ],
          "x\n",
          { holdMs: 500 },
        );
        assert(!none.stdout.includes("\nx\n"));
        await waitFor(() => s.server.stats.failedHandshakes === 1, 5000, "the refused handshake");
        // ffinet's client presents one too.
        const conn = await connectTls(s.reactor, { host: "localhost", port: s.port }, {
          caCerts: [p.caCert],
          cert: p.clientCert,
          key: p.clientKey,
        });
        const back = receive(conn, 3);
        conn.write(enc("abc"));
        assertEquals(dec(await back), "abc");
        assertEquals(s.accepted[1]!.info!.authorized, true);
        conn.close();
      } finally {
        await s.stop();
      }
    })
  ));

Deno.test("mTLS: rejectUnauthorized false lets an unknown client certificate in, marked unauthorized", () =>
  pki().then((p) =>
    withFdCheck(async () => {
      const s = startServer({
        cert: p.cert,
        key: p.key,
        ca: p.caCert,
        requestCert: true,
        rejectUnauthorized: false,
      });
      try {
        const conn = await connectTls(s.reactor, { host: "localhost", port: s.port }, {
          caCerts: [p.caCert],
          cert: p.selfCert,
          key: p.selfKey,
        });
        await waitFor(() => s.accepted.length === 1, 5000, "the server side");
        const info = s.accepted[0]!.info!;
        assertEquals(info.authorized, false);
        assertMatch(info.authorizationError!, /self-signed certificate|unable to get local issuer/);
        conn.close();
      } finally {
        await s.stop();
      }
    })
  ));

Deno.test("start: bad certificates and keys fail at once with a clear error, before any socket", () =>
  pki().then(async (p) => {
    const reactor = new Reactor();
    try {
      const listen = (tls: Parameters<typeof TlsListener.listen>[1]["tls"]) =>
        TlsListener.listen(reactor, { port: 0, tls });
      const cases: Array<[string, Parameters<typeof listen>[0], RegExp]> = [
        [
          "key of another cert",
          { cert: p.cert, key: p.otherKey },
          /Cannot use key \(default certificate\): the key does not match the certificate: .*key values mismatch/,
        ],
        [
          "wrong passphrase",
          { cert: p.cert, key: p.encryptedKey, passphrase: "nope" },
          /Cannot load key \(default certificate\): wrong passphrase or damaged key: .*bad decrypt/,
        ],
        [
          "no passphrase",
          { cert: p.cert, key: p.encryptedKey },
          /Cannot load key \(default certificate\): the key is encrypted and no passphrase was given/,
        ],
        [
          "expired",
          { cert: p.expiredCert, key: p.expiredKey },
          /Cannot use certificate \(default certificate\): CN=expired: it expired on Jan {2}2 00:00:00 2010 GMT/,
        ],
        [
          "missing cert",
          { cert: "", key: p.key },
          /Cannot load certificate \(default certificate\): cert is missing/,
        ],
        [
          "no PEM",
          { cert: "garbage", key: p.key },
          /Cannot load certificate \(default certificate\): no PEM certificate found: .*PEM routines/,
        ],
        ["no certificate at all", {}, /Cannot create TLS server: no certificate/],
        ["bad SNI entry", {
          cert: p.cert,
          key: p.key,
          certificates: [{ cert: p.bCert, key: p.key, serverNames: ["b.test"] }],
        }, /Cannot use key \(certificates\[0\]\): the key does not match/],
        [
          "bad ALPN",
          { cert: p.cert, key: p.key, alpnProtocols: [""] },
          /Cannot set ALPN protocols: ALPN protocol "" must be 1 to 255 bytes/,
        ],
        ["mTLS without ca", { cert: p.cert, key: p.key, requestCert: true }, /needs ca/],
      ];
      for (const [label, tls, pattern] of cases) {
        const e = assertThrows(() => listen(tls), Error, undefined, label);
        assertMatch(e.message, pattern, label);
      }
      // The passphrase that is right works.
      listen({ cert: p.cert, key: p.encryptedKey, passphrase: p.passphrase }).close();
      assertEquals(reactor.stats.registrations, 0, "no listener was left behind");
    } finally {
      await reactor.close();
    }
  }));

Deno.test("rotation: setTls serves the new certificate to new handshakes; an open connection keeps working", () =>
  pki().then((p) =>
    withFdCheck(async () => {
      const s = startServer({ cert: p.cert, key: p.key });
      try {
        const old = await connectTls(s.reactor, { host: "localhost", port: s.port }, {
          caCerts: [p.caCert],
        });
        assertThrows(() => s.server.setTls({ cert: p.bCert, key: p.key }), OpenSslError);
        s.server.setTls({ cert: p.bCert, key: p.bKey });
        const fresh = await connectTls(s.reactor, { host: "localhost", port: s.port }, {
          caCerts: [p.caCert],
          serverName: "b.test",
        });
        assertEquals(fresh.info!.peerCertificate!.subject, "CN=b.test");
        const back = receive(old, 5);
        old.write(enc("still"));
        assertEquals(dec(await back), "still");
        old.close();
        fresh.close();
      } finally {
        await s.stop();
      }
    })
  ));

Deno.test("bad bytes: an HTTP request instead of a ClientHello fails that handshake only", () =>
  pki().then((p) =>
    withFdCheck(async () => {
      const s = startServer({ cert: p.cert, key: p.key });
      const errors: Error[] = [];
      s.server.onHandshakeError = (e) => errors.push(e);
      try {
        const raw = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
        await raw.write(enc("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
        const buf = new Uint8Array(256);
        let got = 0;
        for (;;) {
          const n = await raw.read(buf.subarray(got)).catch(() => null);
          if (n === null) break;
          got += n;
        }
        raw.close();
        // An alert record (content type 21) may come before the close.
        assert(got === 0 || buf[0] === 21, `not an alert: ${buf.subarray(0, got)}`);
        await waitFor(() => errors.length === 1, 5000, "the handshake error");
        assertInstanceOf(errors[0], OpenSslError);
        assertMatch(
          errors[0]!.message,
          /Cannot complete TLS handshake: .*(http request|wrong version number)/,
        );
        // Random bytes too; then a real client is served.
        const junk = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
        await junk.write(crypto.getRandomValues(new Uint8Array(4096)));
        await junk.read(buf).catch(() => null);
        junk.close();
        const conn = await connectTls(s.reactor, { host: "localhost", port: s.port }, {
          caCerts: [p.caCert],
        });
        const back = receive(conn, 2);
        conn.write(enc("ok"));
        assertEquals(dec(await back), "ok");
        conn.close();
        await waitFor(() => s.server.stats.failedHandshakes === 2, 5000, "both failures counted");
        assertEquals(s.server.stats.inProgress, 0);
      } finally {
        await s.stop();
      }
    })
  ));

Deno.test("bad bytes: a slowloris handshake is reset at handshakeTimeoutMs while others are served", () =>
  pki().then((p) =>
    withFdCheck(async () => {
      const s = startServer({ cert: p.cert, key: p.key, handshakeTimeoutMs: 600 }, echo, {
        connection: { idleTimeoutMs: 5000 },
      });
      try {
        // A real ClientHello, captured from openssl's client, sent one byte every 50 ms.
        const hello = await captureClientHello();
        const slow = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
        const started = performance.now();
        let sent = 0;
        let resetAt = 0;
        const gone = slow.read(new Uint8Array(1024)).catch(() => null).then(() => {
          resetAt = performance.now() - started;
        });
        const served = (async () => {
          const conn = await connectTls(s.reactor, { host: "localhost", port: s.port }, {
            caCerts: [p.caCert],
          });
          const back = receive(conn, 4);
          conn.write(enc("fair"));
          const got = dec(await back);
          conn.close();
          return got;
        })();
        while (sent < hello.length - 1 && resetAt === 0) {
          try {
            await slow.write(hello.subarray(sent, sent + 1));
          } catch {
            break;
          }
          sent++;
          await sleep(50);
        }
        await gone;
        slow.close();
        assert(resetAt > 0, `the slow handshake was never reset (sent ${sent} bytes)`);
        assert(resetAt >= 550, `reset too early: ${resetAt} ms`);
        assert(resetAt < 4000, `reset too late: ${resetAt} ms`);
        assertEquals(await served, "fair");
        assertEquals(s.server.stats.timedOut, 1);
      } finally {
        await s.stop();
      }
    })
  ));

/** A ClientHello as openssl's client sends it (captured on a plain socket). */
async function captureClientHello(): Promise<Uint8Array> {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = runClient(
    "openssl",
    [
      "s_client",
      "-connect",
      `127.0.0.1:${l.addr.port}`,
      "-servername",
      "localhost",
    ],
    "",
    { holdMs: 1500, timeoutMs: 5000 },
  );
  const c = await l.accept();
  const buf = new Uint8Array(4096);
  let got = 0;
  // A record header says how long the record is.
  while (got < 5 || got < 5 + ((buf[3]! << 8) | buf[4]!)) {
    const n = await c.read(buf.subarray(got));
    if (n === null) break;
    got += n;
  }
  c.close();
  l.close();
  await client;
  assertEquals(buf[0], 22, "a handshake record");
  return buf.slice(0, got);
}

Deno.test("bad bytes: peers that vanish mid-handshake leave nothing behind", () =>
  pki().then((p) =>
    withFdCheck(async () => {
      const s = startServer({ cert: p.cert, key: p.key });
      try {
        const hello = await captureClientHello();
        for (let i = 0; i < 50; i++) {
          const c = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
          await c.write(hello.subarray(0, i % 2 === 0 ? hello.length : 10));
          c.close();
        }
        await waitFor(() => s.server.stats.failedHandshakes === 50, 10_000, "50 failures");
        assertEquals(s.server.stats.inProgress, 0);
        await waitFor(() => s.reactor.stats.registrations === 1, 5000, "only the listener left");
      } finally {
        await s.stop();
      }
    })
  ));

Deno.test("bad bytes: 300 half-open handshakes all time out; a real client is served meanwhile", () =>
  pki().then((p) =>
    withFdCheck(async () => {
      const s = startServer({ cert: p.cert, key: p.key, handshakeTimeoutMs: 1500 });
      const hello = await captureClientHello();
      const held: Deno.TcpConn[] = [];
      try {
        for (let i = 0; i < 300; i++) {
          const c = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
          await c.write(hello.subarray(0, 1 + (i % 40)));
          held.push(c);
        }
        await waitFor(() => s.server.stats.inProgress === 300, 10_000, "300 handshakes under way");
        const conn = await connectTls(s.reactor, { host: "localhost", port: s.port }, {
          caCerts: [p.caCert],
        });
        const back = receive(conn, 2);
        conn.write(enc("ok"));
        assertEquals(dec(await back), "ok");
        conn.close();
        await waitFor(
          () => s.server.stats.timedOut === 300,
          20_000,
          "every half-open one timed out",
        );
        assertEquals(s.server.stats.inProgress, 0);
        assertEquals(s.server.stats.handshakes, 1);
      } finally {
        for (const c of held) c.close();
        await s.stop();
      }
    })
  ));

Deno.test("a throwing onConnection resets that connection and reaches the reactor's onError", () =>
  pki().then((p) =>
    withFdCheck(async () => {
      const s = startServer({ cert: p.cert, key: p.key }, () => {
        throw new Error("handler broke");
      });
      try {
        const conn = await connectTls(s.reactor, { host: "localhost", port: s.port }, {
          caCerts: [p.caCert],
        }).catch((e) => e);
        await waitFor(() => s.errors.length === 1, 5000, "the error report");
        assertEquals((s.errors[0] as Error).message, "handler broke");
        if (!(conn instanceof Error)) {
          await waitFor(() => conn.state === "closed", 5000, "the client to see the reset");
        }
      } finally {
        await s.stop();
      }
    })
  ));

Deno.test("data decrypted before onData is set is held, then delivered; a throwing late onData is reported", () =>
  pki().then((p) =>
    withFdCheck(async () => {
      let mode: "late" | "throw" = "late";
      const got: string[] = [];
      const s = startServer({ cert: p.cert, key: p.key }, (conn) => {
        const throws = mode === "throw";
        setTimeout(() => {
          conn.onData = (d) => {
            if (throws) throw new Error("late handler broke");
            got.push(dec(d));
          };
        }, 100);
      });
      try {
        const a = await connectTls(s.reactor, { host: "localhost", port: s.port }, {
          caCerts: [p.caCert],
        });
        a.write(enc("early"));
        await waitFor(() => got.join("") === "early", 5000, "the held bytes");
        assertEquals(s.accepted[0]!.bytesRead, 5);
        a.close();
        mode = "throw";
        const b = await connectTls(s.reactor, { host: "localhost", port: s.port }, {
          caCerts: [p.caCert],
        });
        const closed = new Promise((r) => b.onClose = r);
        b.write(enc("boom"));
        await waitFor(() => s.errors.length === 1, 5000, "the report");
        assertEquals((s.errors[0] as Error).message, "late handler broke");
        await closed;
      } finally {
        await s.stop();
      }
    })
  ));

Deno.test("PROXY protocol: a v1 header before the ClientHello gives the client's address to the TLS connection", () =>
  pki().then((p) =>
    withFdCheck(async () => {
      const fdsBefore = countFds();
      const s = startServer({ cert: p.cert, key: p.key }, echo, {
        proxyProtocol: { version: "v1", trusted: ["127.0.0.1"] },
      });
      try {
        const raw = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
        await raw.write(enc("PROXY TCP4 203.0.113.7 127.0.0.1 51000 443\r\n"));
        const conn = await Deno.startTls(raw, { hostname: "localhost", caCerts: [p.caCert] });
        try {
          await conn.write(enc("behind a proxy"));
          const buf = new Uint8Array(64);
          const n = await conn.read(buf);
          assertEquals(dec(buf.subarray(0, n ?? 0)), "behind a proxy");
          const server = s.accepted[0]!;
          assertEquals(server.remoteAddress(), {
            family: "inet",
            address: "203.0.113.7",
            port: 51000,
          });
          assertEquals(server.proxyInfo?.source, server.remoteAddress());
        } finally {
          conn.close();
        }
      } finally {
        await s.stop();
        // Deno closes a TLS stream's socket in the background after close().
        await waitFor(() => countFds() <= fdsBefore, 5000, "Deno's TLS socket to close");
      }
    })
  ));

/** What TlsConnection shares with the reactor's Connection, checked by the compiler below. */
type SharedContract =
  | "write"
  | "end"
  | "close"
  | "abort"
  | "pause"
  | "resume"
  | "writableLength"
  | "readEnded"
  | "remoteAddress"
  | "localAddress"
  | "proxyInfo"
  | "bytesRead"
  | "bytesWritten"
  | "reactor"
  | "fd"
  | "socket"
  | "context";

Deno.test("TlsConnection keeps the reactor Connection's contract (same members, same types)", () => {
  // A compile-time check: a TlsConnection fits wherever these Connection members are used.
  const fits = (c: TlsConnection): Pick<Connection, SharedContract> => c;
  assertEquals(typeof fits, "function");
  const names: SharedContract[] = ["write", "end", "close", "abort", "pause", "resume"];
  for (const name of names) {
    assertEquals(typeof TlsConnection.prototype[name], "function", name);
  }
});

Deno.test("client contexts are reused by options (the CA bundle loads once), the oldest of 17 is dropped", () =>
  pki().then((p) => {
    const take = (opts: Parameters<typeof clientContext>[0]) => {
      const c = clientContext(opts, "localhost");
      c.context.release();
      return c.context;
    };
    const a = take({ caCerts: [p.caCert] });
    assert(take({ caCerts: [p.caCert] }) === a, "the same options reuse the context");
    assert(take({ caCerts: [p.caCert], rejectUnauthorized: false }) !== a);
    assert(take({ caCerts: [p.caCert], cert: p.clientCert, key: p.clientKey }) !== a);
    for (let i = 0; i < 16; i++) take({ caCerts: [p.caCert], serverName: "x", passphrase: `${i}` });
    assert(a.closed, "dropped from the cache");
    assertThrows(
      () => a.pointer,
      Deno.errors.BadResource,
      undefined,
      "and freed (no connection used it)",
    );
    assert(take({ caCerts: [p.caCert] }) !== a, "made again");
  }));

Deno.test("cleanup: the test PKI is removed", async () => {
  const p = await pki();
  await p.remove();
  pkiPromise = undefined;
});
