/**
 * A TLS server reuses the OpenSSL connection object of a finished
 * connection for the next one (`stats.recycled`); real clients, one after
 * the other, alternating what they send, must each see only their own
 * handshake: openssl s_client with and without SNI (a certificate chosen by
 * SNI included) and ALPN, Node with and without a session ticket, and curl
 * with and without a client certificate (a server that asks for one keeps
 * no object: the verification result would outlive its connection).
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { makePki, type TestPki } from "./_certs.ts";
import { httpHello, nodeTlsOnce, runClient, startServer } from "./_server.ts";
import { waitFor, withFdCheck } from "../_helpers.ts";
import type { TlsConnection } from "@ffinet/ffinet/tls";

let pkiPromise: Promise<TestPki> | undefined;
function pki(): Promise<TestPki> {
  pkiPromise ??= makePki();
  return pkiPromise;
}

/** Wait until the server side of connection `i` is closed (its object went back). */
async function closed(accepted: TlsConnection[], i: number): Promise<void> {
  await waitFor(() => accepted[i]?.state === "closed", 10_000, `connection ${i} to close`);
}

Deno.test("pool, s_client: alternating SNI (a certificate chosen by SNI too) and ALPN; each connection sees its own", () =>
  pki().then((p) =>
    withFdCheck(async () => {
      const s = startServer({
        cert: p.cert,
        key: p.key,
        alpnProtocols: ["h2", "http/1.1"],
        certificates: [{ cert: p.bCert, key: p.bKey, serverNames: ["b.test"] }],
      }, httpHello("pool"));
      try {
        const plans: Array<{ sni?: string; alpn?: string; subject: string }> = [
          { sni: "localhost", alpn: "h2", subject: "CN = localhost" },
          { subject: "CN = localhost" },
          { sni: "b.test", alpn: "http/1.1", subject: "CN = b.test" },
          { alpn: "http/1.1", subject: "CN = localhost" },
          { sni: "other.test", subject: "CN = localhost" },
          { sni: "b.test", subject: "CN = b.test" },
          { subject: "CN = localhost" },
          { sni: "localhost", alpn: "http/1.1", subject: "CN = localhost" },
        ];
        for (const [i, plan] of plans.entries()) {
          const args = ["s_client", "-connect", `127.0.0.1:${s.port}`, "-CAfile", p.caPath];
          args.push(...(plan.sni === undefined ? ["-noservername"] : ["-servername", plan.sni]));
          if (plan.alpn !== undefined) args.push("-alpn", plan.alpn);
          const out = await runClient(
            "openssl",
            args,
            "GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
            { holdMs: 500, timeoutMs: 20_000 },
          );
          assertEquals(out.stdout.match(/^subject=(.*)$/m)?.[1], plan.subject, `connection ${i}`);
          assertMatch(
            out.stdout,
            new RegExp(`pool alpn=${plan.alpn ?? "none"} sni=${plan.sni ?? "none"}`),
            `connection ${i}: ${out.stdout}`,
          );
          await closed(s.accepted, i);
          const info = s.accepted[i]!.info!;
          assertEquals(info.serverName, plan.sni, `connection ${i}: server name`);
          assertEquals(info.alpnProtocol, plan.alpn, `connection ${i}: ALPN`);
          assertEquals(info.sessionReused, false, `connection ${i}: not resumed`);
          assertEquals(info.peerCertificate, undefined);
        }
        // The first connection and each b.test one (moved to another context) make a new
        // object; every other one gets the one the previous connection gave back.
        assert(s.server.stats.recycled >= 4, `recycled ${s.server.stats.recycled}`);
      } finally {
        await s.stop();
      }
    })
  ));

Deno.test("pool, node: a resumed connection, a fresh one, a resumed one again: only the resumed ones say so", () =>
  pki().then((p) =>
    withFdCheck(async () => {
      const s = startServer({ cert: p.cert, key: p.key }, httpHello("pool"));
      try {
        const script = `${nodeTlsOnce(s.port, p.caPath)}
          (async () => {
            const a = await once(undefined);
            const b = await once(a.ticket);
            const c = await once(undefined);
            const d = await once(b.ticket);
            console.log(JSON.stringify([a, b, c, d].map((r) => r.reused)));
          })().catch((e) => { console.error(e); process.exit(1); });`;
        const out = await runClient("node", ["-e", script], undefined, { timeoutMs: 30_000 });
        assertEquals(out.stdout.trim(), "[false,true,false,true]", out.stderr);
        for (let i = 0; i < 4; i++) await closed(s.accepted, i);
        assertEquals(
          s.accepted.map((c) => c.info!.sessionReused),
          [false, true, false, true],
        );
        assertEquals(s.server.stats.resumed, 2);
        assert(s.server.stats.recycled >= 2, `recycled ${s.server.stats.recycled}`);
      } finally {
        await s.stop();
      }
    })
  ));

Deno.test("pool, curl: with client certificates requested, connections with, without and with a foreign certificate each report their own", () =>
  pki().then((p) =>
    withFdCheck(async () => {
      const s = startServer({
        cert: p.cert,
        key: p.key,
        ca: p.caCert,
        requestCert: true,
        rejectUnauthorized: false,
      }, httpHello("pool"));
      const dir = await Deno.makeTempDir({ prefix: "ffinet-pool-" });
      try {
        await Deno.writeTextFile(`${dir}/self.pem`, p.selfCert);
        await Deno.writeTextFile(`${dir}/self.key`, p.selfKey);
        const base = ["-sS", "--cacert", p.caPath, "--http1.1", `https://localhost:${s.port}/`];
        const plans: Array<{ args: string[]; authorized: boolean; subject?: RegExp }> = [
          {
            args: ["--cert", p.clientCertPath, "--key", p.clientKeyPath],
            authorized: true,
            subject: /client/,
          },
          { args: [], authorized: false },
          { args: ["--cert", `${dir}/self.pem`, "--key", `${dir}/self.key`], authorized: false },
          {
            args: ["--cert", p.clientCertPath, "--key", p.clientKeyPath],
            authorized: true,
            subject: /client/,
          },
          { args: [], authorized: false },
        ];
        for (const [i, plan] of plans.entries()) {
          const out = await runClient("curl", [...plan.args, ...base], undefined);
          assertEquals(
            out.stdout,
            "pool alpn=none sni=localhost",
            `connection ${i}: ${out.stderr}`,
          );
          await closed(s.accepted, i);
          const info = s.accepted[i]!.info!;
          assertEquals(info.authorized, plan.authorized, `connection ${i}: authorized`);
          if (plan.args.length === 0) {
            assertEquals(info.peerCertificate, undefined, `connection ${i}: no certificate`);
            assertEquals(info.authorizationError, "the peer sent no certificate");
          } else {
            assert(info.peerCertificate !== undefined, `connection ${i}: a certificate`);
          }
          if (plan.subject !== undefined) {
            assertMatch(info.peerCertificate!.subject, plan.subject);
            assertEquals(info.authorizationError, undefined);
          }
          if (plan.args.length > 0 && !plan.authorized) {
            assertMatch(info.authorizationError!, /self-signed|unable to get local issuer/);
          }
        }
        assertEquals(
          s.server.stats.recycled,
          0,
          "nothing kept while client certificates are asked",
        );
      } finally {
        await Deno.remove(dir, { recursive: true });
        await s.stop();
      }
    })
  ));

Deno.test("pool: cleanup: the test PKI is removed", () => pki().then((p) => p.remove()));
