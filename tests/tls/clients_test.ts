/**
 * The TLS server against real clients of other TLS stacks: openssl
 * s_client (ALPN, SNI, TLS 1.2 and 1.3 resumption, old versions refused),
 * curl, Node's tls, Deno's connectTls and fetch (rustls) and gnutls-cli.
 * Every client verifies the server against the test CA, so a wrong
 * certificate, a wrong name or a broken chain fails the test.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { hasCommand, makePki, type TestPki } from "./_certs.ts";
import { httpHello, runClient, startServer } from "./_server.ts";
import { countFds, waitFor, withFdCheck } from "../_helpers.ts";

let pkiPromise: Promise<TestPki> | undefined;
/** One PKI for the whole file (removed by the last test). */
function pki(): Promise<TestPki> {
  pkiPromise ??= makePki();
  return pkiPromise;
}

const SNI = (p: TestPki) => ({
  cert: p.cert,
  key: p.key,
  alpnProtocols: ["h2", "http/1.1"],
  certificates: [{ cert: p.bCert, key: p.bKey, serverNames: ["b.test", "*.wild.test"] }],
});

/** s_client with `input` on stdin, kept open for `holdS` seconds, then closed. */
function sClient(port: number, args: string[], input = "", holdS = 0.3) {
  return runClient(
    "openssl",
    ["s_client", "-connect", `127.0.0.1:${port}`, ...args],
    input,
    { holdMs: holdS * 1000, timeoutMs: 20_000 },
  );
}

Deno.test("s_client: TLS 1.3 echo with ALPN and SNI; the certificate verifies against the CA", () =>
  pki().then((p) =>
    withFdCheck(async () => {
      const s = startServer(SNI(p));
      try {
        const out = await sClient(
          s.port,
          [
            "-CAfile",
            p.caPath,
            "-verify_return_error",
            "-servername",
            "localhost",
            "-alpn",
            "http/1.1",
          ],
          "ping over tls\n",
          0.5,
        );
        assertStringIncludes(out.stdout, "ping over tls", out.stderr);
        assertStringIncludes(out.stdout, "Verify return code: 0 (ok)");
        assertStringIncludes(out.stdout, "ALPN protocol: http/1.1");
        assertMatch(out.stdout, /New, TLSv1\.3/);
        assertStringIncludes(out.stdout, "subject=CN = localhost");
        const info = s.accepted[0]!.info!;
        assertEquals(info.protocol, "TLSv1.3");
        assertEquals(info.alpnProtocol, "http/1.1");
        assertEquals(info.serverName, "localhost");
        assert(info.cipher?.startsWith("TLS_"), info.cipher);
        assertEquals(info.peerCertificate, undefined);
      } finally {
        await s.stop();
      }
    })
  ));

Deno.test("s_client: SNI picks the certificate (exact, wildcard, unknown -> default)", () =>
  pki().then((p) =>
    withFdCheck(async () => {
      const s = startServer(SNI(p));
      try {
        const subject = async (name: string) => {
          const out = await sClient(s.port, ["-CAfile", p.caPath, "-servername", name]);
          return out.stdout.match(/^subject=(.*)$/m)?.[1];
        };
        assertEquals(await subject("b.test"), "CN = b.test");
        assertEquals(await subject("x.wild.test"), "CN = b.test");
        assertEquals(await subject("a.b.wild.test"), "CN = localhost", "one label only");
        assertEquals(await subject("B.TEST"), "CN = b.test", "names compare without case");
        assertEquals(await subject("unknown.test"), "CN = localhost");
      } finally {
        await s.stop();
      }
    })
  ));

Deno.test("s_client: ALPN picks the server's preference; a client offering none of them is refused", () =>
  pki().then((p) =>
    withFdCheck(async () => {
      const s = startServer(SNI(p));
      try {
        const both = await sClient(s.port, ["-CAfile", p.caPath, "-alpn", "http/1.1,h2"]);
        assertStringIncludes(both.stdout, "ALPN protocol: h2");
        const none = await sClient(s.port, ["-CAfile", p.caPath, "-alpn", "spdy/3"]);
        assertStringIncludes(none.stdout + none.stderr, "no application protocol");
        assertEquals(s.server.stats.failedHandshakes, 1);
        const noAlpn = await sClient(s.port, ["-CAfile", p.caPath]);
        assertStringIncludes(noAlpn.stdout, "No ALPN negotiated");
      } finally {
        await s.stop();
      }
    })
  ));

Deno.test("s_client: TLS 1.0 and 1.1 are refused, 1.2 and 1.3 served", () =>
  pki().then((p) =>
    withFdCheck(async () => {
      const s = startServer(SNI(p));
      try {
        for (const v of ["-tls1", "-tls1_1"]) {
          // The client's own OpenSSL may refuse them at its security level: either way, no session.
          const out = await sClient(s.port, [
            "-CAfile",
            p.caPath,
            v,
            "-cipher",
            "DEFAULT@SECLEVEL=0",
          ]);
          assert(!/New, TLSv1(\.1)?,/.test(out.stdout), `${v} negotiated: ${out.stdout}`);
          assertStringIncludes(out.stdout, "Cipher is (NONE)", v);
        }
        const v12 = await sClient(s.port, ["-CAfile", p.caPath, "-tls1_2"]);
        assertMatch(v12.stdout, /New, TLSv1\.2, Cipher is ECDHE-ECDSA-/);
        assertStringIncludes(v12.stdout, "Compression: NONE");
        const v13 = await sClient(s.port, ["-CAfile", p.caPath, "-tls1_3"]);
        assertMatch(v13.stdout, /New, TLSv1\.3/);
      } finally {
        await s.stop();
      }
    })
  ));

Deno.test("s_client: TLS 1.2 offers forward-secret AEAD suites only (no CBC, no RSA key exchange)", () =>
  pki().then((p) =>
    withFdCheck(async () => {
      const s = startServer(SNI(p));
      try {
        for (const weak of ["ECDHE-ECDSA-AES256-SHA", "ECDHE-ECDSA-AES128-SHA256", "AES128-SHA"]) {
          const out = await sClient(s.port, ["-CAfile", p.caPath, "-tls1_2", "-cipher", weak]);
          assertStringIncludes(out.stdout, "Cipher is (NONE)", weak);
        }
        for (const good of ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305"]) {
          const out = await sClient(s.port, ["-CAfile", p.caPath, "-tls1_2", "-cipher", good]);
          assertStringIncludes(out.stdout, `Cipher is ${good}`, good);
        }
      } finally {
        await s.stop();
      }
    })
  ));

Deno.test("s_client: renegotiation is refused", () =>
  pki().then((p) =>
    withFdCheck(async () => {
      const s = startServer(SNI(p));
      try {
        // "R" on a line of its own asks s_client to renegotiate (TLS 1.2 only).
        const out = await sClient(s.port, ["-CAfile", p.caPath, "-tls1_2"], "R\n", 1);
        assertMatch(out.stdout, /Secure Renegotiation IS supported|RENEGOTIATING/);
        assert(
          !/^\s*Verify return code.*\n[\s\S]*RENEGOTIATING[\s\S]*New, TLSv1\.2[\s\S]*New, TLSv1\.2/m
            .test(out.stdout),
          "a second handshake completed",
        );
        assertEquals(s.server.stats.handshakes, 1);
        // The client gives up with a fatal alert: the connection closes, and that
        // is not counted (or logged) as a bad record.
        assertEquals(
          s.server.stats.badRecords,
          0,
          "a refused renegotiation counted as a bad record",
        );
      } finally {
        await s.stop();
      }
    })
  ));

Deno.test("s_client: sessions resume (TLS 1.2 -reconnect with tickets and with session ids: 5 of 5 each; TLS 1.3 ticket via -sess_out/-sess_in)", () =>
  pki().then((p) =>
    withFdCheck(async () => {
      const s = startServer(SNI(p));
      try {
        const r12 = await sClient(s.port, ["-CAfile", p.caPath, "-tls1_2", "-reconnect"], "", 1);
        assertEquals((r12.stdout.match(/^Reused, TLSv1\.2/mg) ?? []).length, 5, r12.stdout);
        assertEquals(s.server.stats.resumed, 5);
        // Session ids (no tickets): the server's cache keeps a session only when the
        // connection was shut down (close_notify) before it was freed.
        const ids = await sClient(
          s.port,
          ["-CAfile", p.caPath, "-tls1_2", "-no_ticket", "-reconnect"],
          "",
          1,
        );
        assertEquals((ids.stdout.match(/^Reused, TLSv1\.2/mg) ?? []).length, 5, ids.stdout);
        assertEquals(s.server.stats.resumed, 10);
        const sess = `${p.dir}/sess.pem`;
        const first = await sClient(s.port, ["-CAfile", p.caPath, "-sess_out", sess], "", 0.5);
        assertMatch(first.stdout, /^New, TLSv1\.3/m);
        for (let i = 0; i < 3; i++) {
          const again = await sClient(s.port, ["-CAfile", p.caPath, "-sess_in", sess], "", 0.3);
          assertMatch(again.stdout, /^Reused, TLSv1\.3/m);
        }
        assertEquals(s.server.stats.resumed, 13);
        assertEquals(s.accepted.at(-1)!.info!.sessionReused, true);
      } finally {
        await s.stop();
      }
    })
  ));

Deno.test("tickets: two servers given the same ticket keys resume each other's sessions; rotation keeps two old keys", () =>
  pki().then((p) =>
    withFdCheck(async () => {
      const key = crypto.getRandomValues(new Uint8Array(80));
      const a = startServer({ cert: p.cert, key: p.key, ticketKeys: key });
      const b = startServer({ cert: p.cert, key: p.key, ticketKeys: key.slice() });
      const other = startServer({ cert: p.cert, key: p.key });
      try {
        const sess = `${p.dir}/shared.pem`;
        const resumedOn = async (port: number) => {
          const out = await sClient(port, ["-CAfile", p.caPath, "-sess_in", sess], "", 0.3);
          return /^Reused, TLSv1\.3/m.test(out.stdout);
        };
        const first = await sClient(a.port, ["-CAfile", p.caPath, "-sess_out", sess], "", 0.5);
        assertMatch(first.stdout, /^New, TLSv1\.3/m);
        assert(await resumedOn(b.port), "a ticket from server A resumes on server B");
        assert(!(await resumedOn(other.port)), "a server with other keys does a full handshake");
        // Two rotations: the ticket's key is still held (and the ticket is renewed).
        const first2 = await sClient(a.port, ["-CAfile", p.caPath, "-sess_out", sess], "", 0.5);
        assertMatch(first2.stdout, /^New|^Reused/m);
        b.server.rotateTicketKeys();
        b.server.rotateTicketKeys();
        assert(await resumedOn(b.port), "resumes after two rotations");
        b.server.rotateTicketKeys();
        assert(!(await resumedOn(b.port)), "a key three rotations old no longer decrypts");
        assertEquals(b.server.stats.failedHandshakes, 0);
      } finally {
        await a.stop();
        await b.stop();
        await other.stop();
      }
    })
  ));

Deno.test("curl: HTTPS with the CA, ALPN http/1.1, SNI; refused without the CA", () =>
  pki().then((p) =>
    withFdCheck(async () => {
      const s = startServer(SNI(p), httpHello("hello from ffinet tls"));
      try {
        const ok = await runClient("curl", [
          "-sS",
          "--cacert",
          p.caPath,
          "--http1.1",
          `https://localhost:${s.port}/`,
        ], undefined);
        assertEquals(ok.stdout, "hello from ffinet tls alpn=http/1.1 sni=localhost", ok.stderr);
        const b = await runClient("curl", [
          "-sS",
          "--cacert",
          p.caPath,
          "--http1.1",
          "--resolve",
          `b.test:${s.port}:127.0.0.1`,
          `https://b.test:${s.port}/`,
        ], undefined);
        assertEquals(b.stdout, "hello from ffinet tls alpn=http/1.1 sni=b.test", b.stderr);
        const bad = await runClient("curl", ["-sS", `https://localhost:${s.port}/`], undefined);
        assert(bad.code !== 0);
        assertMatch(bad.stderr, /certificate/i);
      } finally {
        await s.stop();
      }
    })
  ));

Deno.test("node tls: echo with ca, servername and ALPN; a reused session resumes", () =>
  pki().then((p) =>
    withFdCheck(async () => {
      const s = startServer(SNI(p));
      try {
        const script = `
        const tls = require("node:tls");
        const ca = require("node:fs").readFileSync(process.argv[1], "utf8");
        const port = Number(process.argv[2]);
        function once(session) {
          return new Promise((resolve, reject) => {
            const sock = tls.connect({ host: "127.0.0.1", port, ca, servername: "localhost",
              ALPNProtocols: ["http/1.1"], session });
            let got = "", saved;
            sock.on("session", (s) => { saved = s; });
            let proto, reused;
            sock.on("secureConnect", () => {
              proto = sock.getProtocol();
              reused = sock.isSessionReused();
              sock.write("node says hi");
            });
            sock.on("data", (d) => { got += d; if (got === "node says hi") setTimeout(() => sock.end(), 50); });
            sock.on("error", reject);
            sock.on("close", () => resolve({ got, alpn: sock.alpnProtocol, reused,
              proto, saved }));
          });
        }
        (async () => {
          const a = await once(undefined);
          const b = await once(a.saved);
          console.log(JSON.stringify({ a: { ...a, saved: !!a.saved }, b: { ...b, saved: undefined } }));
        })().catch((e) => { console.error(e); process.exit(1); });
      `;
        const out = await runClient("node", ["-e", script, p.caPath, String(s.port)], undefined);
        assertEquals(out.code, 0, out.stderr);
        const r = JSON.parse(out.stdout);
        assertEquals(r.a.got, "node says hi");
        assertEquals(r.a.alpn, "http/1.1");
        assertEquals(r.a.proto, "TLSv1.3");
        assertEquals(r.a.saved, true, "a session ticket arrived");
        assertEquals(r.b.reused, true);
        assertEquals(s.server.stats.resumed, 1);
      } finally {
        await s.stop();
      }
    })
  ));

Deno.test("Deno.connectTls and fetch (rustls) with caCerts", () =>
  pki().then((p) =>
    withFdCheck(async () => {
      const fdsBefore = countFds();
      const s = startServer(SNI(p));
      const h = startServer(SNI(p), httpHello("fetched"));
      try {
        const conn = await Deno.connectTls({
          hostname: "localhost",
          port: s.port,
          caCerts: [p.caCert],
          alpnProtocols: ["h2", "http/1.1"],
        });
        try {
          const hs = await conn.handshake();
          assertEquals(hs.alpnProtocol, "h2");
          await conn.write(new TextEncoder().encode("rustls to openssl"));
          const buf = new Uint8Array(64);
          let got = "";
          while (got.length < 17) {
            const n = await conn.read(buf);
            if (n === null) break;
            got += new TextDecoder().decode(buf.subarray(0, n));
          }
          assertEquals(got, "rustls to openssl");
        } finally {
          conn.close();
        }
        const client = Deno.createHttpClient({ caCerts: [p.caCert], http2: false });
        const res = await fetch(`https://localhost:${h.port}/x`, { client });
        assertEquals(await res.text(), "fetched alpn=http/1.1 sni=localhost");
        client.close();
        await assertFetchRefused(`https://localhost:${h.port}/`);
      } finally {
        await s.stop();
        await h.stop();
        // Deno closes a pooled client's sockets in the background after close().
        await waitFor(() => countFds() <= fdsBefore, 5000, "Deno's fetch sockets to close");
      }
    })
  ));

/** fetch without the CA must fail on the certificate. */
async function assertFetchRefused(url: string): Promise<void> {
  using client = Deno.createHttpClient({}); // its own pool: closed with it
  try {
    const res = await fetch(url, { client });
    await res.body?.cancel();
  } catch (e) {
    // Deno says "fetch failed"; the cause names the certificate problem.
    assertMatch(`${e} ${(e as Error).cause ?? ""}`, /fetch failed|certificate|UnknownIssuer/i);
    return;
  }
  throw new Error("fetch accepted a certificate from an unknown CA");
}

Deno.test("gnutls-cli (a second TLS stack): echo with the CA, SNI and ALPN", async () => {
  if (!(await hasCommand("gnutls-cli"))) {
    console.log("SKIPPED: gnutls-cli not installed (apt-get install gnutls-bin)");
    return;
  }
  const p = await pki();
  await withFdCheck(async () => {
    const s = startServer(SNI(p));
    try {
      const out = await runClient(
        "gnutls-cli",
        [
          "--x509cafile",
          p.caPath,
          "--alpn",
          "http/1.1",
          "--sni-hostname",
          "b.test",
          "--verify-hostname",
          "b.test",
          "-p",
          String(s.port),
          "127.0.0.1",
        ],
        "gnutls ping",
        { holdMs: 1000 },
      );
      assertStringIncludes(out.stdout, "gnutls ping", out.stderr);
      assertStringIncludes(out.stdout + out.stderr, "Application protocol: http/1.1");
      assertStringIncludes(out.stdout + out.stderr, "The certificate is trusted");
      assertEquals(s.accepted[0]!.info!.serverName, "b.test");
      assertEquals(s.accepted[0]!.info!.alpnProtocol, "http/1.1");
    } finally {
      await s.stop();
    }
  });
});

Deno.test("cleanup: the test PKI is removed", async () => {
  const p = await pki();
  await p.remove();
  pkiPromise = undefined;
});
