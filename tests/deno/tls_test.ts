/**
 * `listenTls`/`connectTls` of the Deno-shaped adapters against Deno's own
 * (`Deno.listenTls`/`Deno.connectTls`, rustls): the same cases run on
 * every server × client pair and must give the same results: the bytes
 * echoed, the ALPN protocol both ends see, the addresses, and the error
 * class for an untrusted certificate and for a name the certificate does
 * not carry (clients: `connectTls`, and `connect` + `startTls`). Both
 * clients trust `caCerts` in addition to the system's authorities. openssl
 * s_client checks both servers from a third TLS stack.
 */
import { assert, assertEquals, assertInstanceOf, assertRejects, assertThrows } from "@std/assert";
import {
  connect,
  connectTls,
  FfiListener,
  FfiTlsConn,
  listenTls,
  OpenSslError,
  startTls,
  TlsListener,
} from "../../deno/mod.ts";
import { hasCommand, makePki, type TestPki } from "../tls/_certs.ts";
import { runClient } from "../tls/_server.ts";
import { countFds, waitFor } from "../_helpers.ts";
import { adapterTest, assertSameBytes, enc, randomBytes, readAll, writeAll } from "./_deno_conn.ts";

let pkiPromise: Promise<TestPki> | undefined;
/** One PKI for the whole file (removed by the last test). */
function pki(): Promise<TestPki> {
  pkiPromise ??= makePki();
  return pkiPromise;
}

interface ListenTlsOptions {
  hostname: string;
  port: number;
  cert: string;
  key: string;
  alpnProtocols?: string[];
}
interface ConnectTlsOptions {
  hostname: string;
  port: number;
  caCerts?: string[];
  alpnProtocols?: string[];
}

/** The two implementations of each side. */
const SERVERS: Record<string, (o: ListenTlsOptions) => Deno.TlsListener> = {
  deno: (o) => Deno.listenTls(o),
  ffinet: (o) => listenTls(o),
};
const CLIENTS: Record<string, (o: ConnectTlsOptions) => Promise<Deno.TlsConn>> = {
  deno: (o) => Deno.connectTls(o),
  ffinet: (o) => connectTls(o),
  // A plain TCP connection upgraded with startTls.
  "deno startTls": async (o) =>
    Deno.startTls(await Deno.connect({ hostname: "127.0.0.1", port: o.port }), o),
  "ffinet startTls": async (o) =>
    startTls(await connect({ hostname: "127.0.0.1", port: o.port }), o),
};

/**
 * An echo server (`readable.pipeTo(writable)`, code written for
 * `Deno.listenTls`) that records what each accepted connection's
 * `handshake()` and addresses said.
 */
function echoServer(listener: Deno.TlsListener) {
  const seen: { alpn: string | null; remote: Deno.NetAddr; local: Deno.NetAddr }[] = [];
  const pipes: Promise<unknown>[] = [];
  const serving = (async () => {
    for await (const conn of listener) {
      pipes.push((async () => {
        try {
          const hs = await conn.handshake();
          seen.push({ alpn: hs.alpnProtocol, remote: conn.remoteAddr, local: conn.localAddr });
          await conn.readable.pipeTo(conn.writable);
        } catch {
          // A client that refused the certificate: Deno's handshake() rejects here.
          try {
            conn.close();
          } catch { /* closed */ }
        }
      })());
    }
  })();
  return {
    seen,
    async stop() {
      listener.close();
      await serving;
      await Promise.all(pipes);
    },
  };
}

Deno.test(
  "echo and ALPN: every server x client pair (Deno's and ffinet's) echoes the same bytes and agrees on the protocol and addresses",
  adapterTest(async () => {
    const p = await pki();
    const fdsBefore = countFds();
    const payload = randomBytes(300 * 1024);
    const results: Record<string, unknown> = {};
    for (const [serverName, listenFn] of Object.entries(SERVERS)) {
      for (
        const [alpnServer, alpnClient] of [
          [["http/1.1", "echo"], ["echo", "h2"]],
          [undefined, ["echo"]],
          [["echo"], undefined],
        ] as const
      ) {
        const listener = listenFn({
          hostname: "127.0.0.1",
          port: 0,
          cert: p.cert,
          key: p.key,
          ...(alpnServer === undefined ? {} : { alpnProtocols: [...alpnServer] }),
        });
        if (serverName === "ffinet") assertInstanceOf(listener, FfiListener);
        const server = echoServer(listener);
        try {
          for (const [clientName, connectFn] of Object.entries(CLIENTS)) {
            const conn = await connectFn({
              hostname: "localhost",
              port: listener.addr.port,
              caCerts: [p.caCert],
              ...(alpnClient === undefined ? {} : { alpnProtocols: [...alpnClient] }),
            });
            if (clientName.startsWith("ffinet")) assertInstanceOf(conn, FfiTlsConn);
            const hs = await conn.handshake();
            const reading = readAll(conn);
            await writeAll(conn, payload);
            await conn.closeWrite();
            assertSameBytes(await reading, payload);
            await waitFor(() => server.seen.length > 0, 5000, "the server's handshake");
            const s = server.seen.shift()!;
            assertEquals(s.remote.port, conn.localAddr.port, "the server's remoteAddr");
            assertEquals(s.local.port, conn.remoteAddr.port, "the server's localAddr");
            // (Deno.startTls's remoteAddr has no `transport`: compare the rest.)
            assertEquals(
              { hostname: conn.remoteAddr.hostname, port: conn.remoteAddr.port },
              { hostname: "127.0.0.1", port: listener.addr.port },
            );
            if (clientName.startsWith("ffinet")) assertEquals(conn.remoteAddr.transport, "tcp");
            results[`${serverName}<-${clientName} ${alpnServer}/${alpnClient}`] = {
              client: hs.alpnProtocol,
              server: s.alpn,
            };
            try {
              conn.close();
            } catch { /* closed itself after the EOF */ }
          }
        } finally {
          await server.stop();
        }
      }
    }
    // Deno's pairs and ffinet's pairs say the same.
    const expected = {
      "http/1.1,echo/echo,h2": { client: "echo", server: "echo" },
      "undefined/echo": { client: null, server: null },
      "echo/undefined": { client: null, server: null },
    };
    for (const [pair, got] of Object.entries(results)) {
      const key = pair.split(" ").at(-1)! as keyof typeof expected;
      assertEquals(got, expected[key], pair);
    }
    assertEquals(
      Object.keys(results).length,
      3 * Object.keys(SERVERS).length * Object.keys(CLIENTS).length,
    );
    // Deno closes a TLS connection's socket in the background after close().
    await waitFor(() => countFds() <= fdsBefore, 5000, "Deno's TLS sockets to close");
  }),
);

Deno.test(
  "untrusted certificate and wrong name: both clients reject with Deno.errors.InvalidData against both servers",
  adapterTest(async () => {
    const p = await pki();
    const fdsBefore = countFds();
    const classes: Record<string, string> = {};
    for (const [serverName, listenFn] of Object.entries(SERVERS)) {
      // b.test's certificate: signed by the test CA, for b.test and *.wild.test only.
      for (const [what, cert, key] of [["untrusted", p.cert, p.key], ["name", p.bCert, p.bKey]]) {
        const listener = listenFn({ hostname: "127.0.0.1", port: 0, cert: cert!, key: key! });
        const server = echoServer(listener);
        try {
          for (const [clientName, connectFn] of Object.entries(CLIENTS)) {
            // Deno's connectTls resolves before the handshake; handshake() runs it.
            const error = await assertRejects(async () => {
              const conn = await connectFn({
                hostname: "localhost",
                port: listener.addr.port,
                ...(what === "untrusted" ? {} : { caCerts: [p.caCert] }),
              });
              try {
                await conn.handshake();
              } finally {
                conn.close();
              }
            });
            classes[`${serverName}<-${clientName} ${what}`] = (error as Error).constructor.name;
            if (clientName.startsWith("ffinet")) {
              // OpenSSL's reason is kept as the cause.
              const cause = (error as Error).cause as OpenSslError;
              assertInstanceOf(cause, OpenSslError);
              assert(
                what === "untrusted"
                  ? /certificate verify failed \(unable to get local issuer certificate\)/.test(
                    cause.message,
                  )
                  : /certificate verify failed \(hostname mismatch\)/.test(cause.message),
                cause.message,
              );
            }
          }
        } finally {
          await server.stop();
        }
      }
    }
    assertEquals(
      Object.keys(classes).length,
      2 * Object.keys(SERVERS).length * Object.keys(CLIENTS).length,
    );
    for (const [pair, name] of Object.entries(classes)) assertEquals(name, "InvalidData", pair);
    await waitFor(() => countFds() <= fdsBefore, 5000, "Deno's TLS sockets to close");
  }),
);

Deno.test(
  "bad certificate input: both listenTls throw before binding (a key of another certificate, garbage, no key)",
  adapterTest(async () => {
    const p = await pki();
    const cases: [string, string, string][] = [
      ["mismatch", p.cert, p.otherKey],
      ["garbage", "garbage", p.key],
      ["no key", p.cert, ""],
    ];
    for (const [what, cert, key] of cases) {
      for (const [serverName, listenFn] of Object.entries(SERVERS)) {
        const error = assertThrows(() => listenFn({ hostname: "127.0.0.1", port: 0, cert, key }));
        console.log(`${what}: ${serverName}: ${(error as Error).constructor.name}: ${error}`);
        // ffinet's message names what failed ("Cannot load certificate …"); OpenSslError
        // extends Error, as Deno's (Error, or Deno.errors.InvalidData).
        assertInstanceOf(error, Error);
        if (serverName === "ffinet") {
          assertInstanceOf(error, OpenSslError);
          assert(/^Cannot (load|use) (certificate|key)/.test((error as Error).message), `${error}`);
        }
      }
    }
  }),
);

Deno.test(
  "caCerts add to the system's authorities in both connectTls (SSL_CERT_FILE names the test CA; caCerts an unrelated one)",
  async () => {
    const p = await pki();
    const denoMod = new URL("../../deno/mod.ts", import.meta.url).href;
    const tlsMod = new URL("../../tls/mod.ts", import.meta.url).href;
    const script = `
      import { connectTls, listenTls, Reactor } from ${JSON.stringify(denoMod)};
      import { connectTls as rawConnectTls } from ${JSON.stringify(tlsMod)};
      const read = (f) => Deno.readTextFileSync(f);
      const listener = listenTls({ hostname: "127.0.0.1", port: 0, cert: read(${
      JSON.stringify(p.certPath)
    }), key: read(${JSON.stringify(p.keyPath)}) });
      (async () => { for await (const c of listener) c.close(); })();
      const other = [read(${JSON.stringify(`${p.dir}/self.pem`)})];
      const port = listener.addr.port;
      const outcome = async (f) => {
        try { const c = await f(); try { await c.handshake?.(); } finally { c.close(); } return "ok"; }
        catch (e) { return e.constructor.name; }
      };
      const out = {
        deno: await outcome(() => Deno.connectTls({ hostname: "localhost", port, caCerts: other })),
        ffinet: await outcome(() => connectTls({ hostname: "localhost", port, caCerts: other })),
      };
      const reactor = new Reactor();
      const running = reactor.run();
      out.tlsLayer = await outcome(() => rawConnectTls(reactor, { host: "localhost", port }, { caCerts: other }));
      reactor.stop();
      await running;
      listener.close();
      console.log(JSON.stringify(out));
      Deno.exit(0);`;
    const run = async (env: Record<string, string>) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["eval", "--ext=js", script],
        env,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout).trim();
      assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
      return JSON.parse(text.split("\n").at(-1)!);
    };
    // The test CA in the system store (OpenSSL's SSL_CERT_FILE; Deno reads it with DENO_TLS_CA_STORE=system).
    const trusted = await run({ SSL_CERT_FILE: p.caPath, DENO_TLS_CA_STORE: "system" });
    console.log(`system store has the CA: ${JSON.stringify(trusted)}`);
    assertEquals(trusted.deno, "ok");
    assertEquals(trusted.ffinet, "ok");
    // The TLS layer's own connectTls trusts caCerts alone (without trustSystemStore).
    assertEquals(trusted.tlsLayer, "OpenSslError");
    // Without it, neither trusts the server.
    const untrusted = await run({
      SSL_CERT_FILE: `${p.dir}/self.pem`,
      DENO_TLS_CA_STORE: "system",
    });
    console.log(`system store without the CA: ${JSON.stringify(untrusted)}`);
    assertEquals(untrusted.deno, "InvalidData");
    assertEquals(untrusted.ffinet, "InvalidData");
  },
);

Deno.test(
  "openssl s_client against both servers: echo, ALPN, the chain verifies",
  adapterTest(async () => {
    if (!(await hasCommand("openssl"))) {
      console.log("SKIPPED: openssl not installed");
      return;
    }
    const p = await pki();
    for (const [serverName, listenFn] of Object.entries(SERVERS)) {
      const listener = listenFn({
        hostname: "127.0.0.1",
        port: 0,
        cert: p.cert,
        key: p.key,
        alpnProtocols: ["echo"],
      });
      const server = echoServer(listener);
      try {
        const out = await runClient(
          "openssl",
          [
            "s_client",
            "-connect",
            `127.0.0.1:${listener.addr.port}`,
            "-servername",
            "localhost",
            "-verify_hostname",
            "localhost",
            "-CAfile",
            p.caPath,
            "-verify_return_error",
            "-alpn",
            "echo",
          ],
          `s_client to ${serverName}\n`,
          { holdMs: 500, timeoutMs: 20_000 },
        );
        assert(out.stdout.includes(`s_client to ${serverName}`), `${serverName}: ${out.stderr}`);
        assert(out.stdout.includes("ALPN protocol: echo"), out.stdout);
        assert(out.stdout.includes("Verify return code: 0 (ok)"), out.stdout);
        assertEquals(server.seen[0]?.alpn, "echo");
      } finally {
        await server.stop();
      }
    }
  }),
);

Deno.test(
  "listenTls: certFile/keyFile, bad input before binding, and close() resets handshakes under way",
  adapterTest(async () => {
    const p = await pki();
    assertThrows(
      () => listenTls({ hostname: "127.0.0.1", port: 0, cert: p.cert, key: p.otherKey }),
      OpenSslError,
      "Cannot",
    );
    assertThrows(
      () => listenTls({ hostname: "127.0.0.1", port: 0 }),
      TypeError,
      "Cannot listenTls: give cert and key",
    );
    assertThrows(
      // deno-lint-ignore no-explicit-any
      () => listenTls({ port: 0, cert: p.cert, key: p.key, keyFormat: "der" as any }),
      TypeError,
      "keyFormat",
    );
    await assertRejects(
      () =>
        // deno-lint-ignore no-explicit-any
        connectTls({ port: 1, unsafelyDisableHostnameVerification: true } as any),
      TypeError,
      "unsafelyDisableHostnameVerification",
    );
    const listener = listenTls({
      hostname: "127.0.0.1",
      port: 0,
      certFile: p.certPath,
      keyFile: p.keyPath,
    });
    const tls = listener.tlsListener!;
    assertInstanceOf(tls, TlsListener);
    const accepting = listener.accept();
    const conn = await connectTls({
      hostname: "localhost",
      port: listener.addr.port,
      caCerts: [p.caCert],
    });
    const server = await accepting;
    await conn.write(enc.encode("over certFile"));
    const buf = new Uint8Array(64);
    const n = await server.read(buf);
    assertEquals(new TextDecoder().decode(buf.subarray(0, n!)), "over certFile");
    assertEquals(server.tlsInfo?.serverName, "localhost");
    conn.close();
    server.close();
    // A TCP client that never sends a ClientHello: close() must not leave it open.
    const raw = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
    await waitFor(() => tls.stats.inProgress === 1, 5000, "the handshake to start");
    listener.close();
    assertEquals(tls.stats.inProgress, 0);
    assertEquals(await raw.read(buf).catch(() => null), null);
    raw.close();
    await assertRejects(() => listener.accept(), Deno.errors.BadResource);
  }),
);

Deno.test(
  "startTls is refused, leaving the plain connection as it was, over unread bytes and after a half-close; the plain connection is closed after it",
  adapterTest(async () => {
    const p = await pki();
    using server = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const accepted = (async () => {
      const peer = await server.accept();
      await peer.write(enc.encode("220 ready\n"));
      return peer;
    })();
    const plain = await connect({ hostname: "127.0.0.1", port: server.addr.port });
    const peer = await accepted;
    const three = new Uint8Array(3);
    assertEquals(await plain.read(three), 3);
    await waitFor(() => plain.bufferedLength > 0, 5000, "the rest of the greeting");
    await assertRejects(
      () => startTls(plain, { hostname: "localhost", caCerts: [p.caCert] }),
      Deno.errors.InvalidData,
      "bytes were received and not read",
    );
    const rest = new Uint8Array(16);
    const n = await plain.read(rest);
    assertEquals(new TextDecoder().decode(rest.subarray(0, n!)), " ready\n");
    await assertRejects(
      () => startTls(plain, { hostname: "localhost", keyFormat: "der" as "pem" }),
      TypeError,
      "keyFormat",
    );
    await plain.closeWrite();
    await assertRejects(
      () => startTls(plain, { hostname: "localhost" }),
      Deno.errors.BadResource,
      "half-closed",
    );
    plain.close();
    peer.close();
    await assertRejects(
      // deno-lint-ignore no-explicit-any
      () => startTls({} as any, { hostname: "localhost" }),
      TypeError,
      "not a connection of the ffinet adapters",
    );

    // Upgraded: the plain object is closed, the socket lives on in the TLS one.
    const listener = listenTls({ hostname: "127.0.0.1", port: 0, cert: p.cert, key: p.key });
    const tlsServer = echoServer(listener);
    try {
      const tcp = await connect({ hostname: "127.0.0.1", port: listener.addr.port });
      const tls = await startTls(tcp, { hostname: "localhost", caCerts: [p.caCert] });
      await assertRejects(() => tcp.read(new Uint8Array(1)), Deno.errors.BadResource);
      await assertRejects(() => tcp.write(enc.encode("x")), Deno.errors.BadResource);
      assertEquals(tls.localAddr, tcp.localAddr);
      await writeAll(tls, enc.encode("upgraded"));
      await tls.closeWrite();
      assertEquals(new TextDecoder().decode(await readAll(tls)), "upgraded");
      // A wrong name: the handshake fails and the socket is closed.
      const other = await connect({ hostname: "127.0.0.1", port: listener.addr.port });
      await assertRejects(
        () => startTls(other, { hostname: "b.test", caCerts: [p.caCert] }),
        Deno.errors.InvalidData,
      );
    } finally {
      await tlsServer.stop();
    }
  }),
);

Deno.test("cleanup: the test PKI is removed", async () => {
  const p = await pki();
  await p.remove();
  await assertRejects(() => Deno.stat(p.dir), Deno.errors.NotFound);
});
