/**
 * testssl.sh (Debian's `testssl`) against `serve({ cert, key })`: no
 * finding above LOW, TLS 1.0 and 1.1 refused, no weak cipher category
 * offered, and each vulnerability check that applies to a TLS 1.2/1.3
 * server reports "not vulnerable".
 *
 * testssl.sh is a shell script: before its first probe it forks awk once
 * per known cipher (72 s of setup at load 20 on 2 cores), and each check
 * forks openssl and parses records in bash. One scan
 * runs (a second one in parallel only slows both), restricted to:
 *
 * - protocols (`-p`) and cipher categories (`-s`: NULL, anonymous, export,
 *   LOW, 3DES/IDEA, obsolete CBC, AEAD);
 * - the vulnerabilities that probe a TLS 1.2/1.3 server beyond its cipher
 *   list: Heartbleed (`-H`), CCS injection (`-I`), renegotiation (`-R`),
 *   CRIME (`-C`), Ticketbleed (`-T`), BREACH (`-B`).
 *
 * Left out: SWEET32, FREAK, LOGJAM, BEAST, LUCKY13 and ROBOT are decided by
 * the suites offered (3DES, export, DHE, CBC, RSA key exchange), which
 * `-s` shows absent; POODLE and DROWN need SSL 3 and 2, which `-p` shows
 * refused; server defaults (`-S`: tickets, resumption, the certificate's
 * chain and revocation, over a minute more) are checked by
 * tests/tls/clients_test.ts; each cipher one by one (`-e`) by sslscan in
 * tests/http/tls_serve_test.ts; HTTP headers (`-h`) and client simulation
 * (`-c`) are not about TLS.
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import { runBounded } from "../_helpers.ts";
import { hasCommand, makePki } from "./_certs.ts";
import { serveHttps, warmUp } from "./_server.ts";

warmUp();

const TEST = { sanitizeOps: true, sanitizeResources: true };
/** The scan's bound: it takes 95-119 s on 2 cores at load 6-8, up to about 5 minutes at load 15-20. */
const SCAN_TIMEOUT_MS = 540_000;

interface Finding {
  id: string;
  severity: string;
  finding: string;
}

const BAD = new Set(["MEDIUM", "HIGH", "CRITICAL"]);

/** The vulnerability checks, by JSON id. */
const VULNERABILITIES = [
  "heartbleed",
  "CCS",
  "ticketbleed",
  "secure_renego",
  "secure_client_renego",
  "CRIME_TLS",
  "BREACH",
];

Deno.test(
  "testssl.sh: no finding above LOW; TLS 1.0/1.1 refused; no weak cipher category; not vulnerable to the checks that apply",
  TEST,
  async () => {
    if (!await hasCommand("testssl") || !await hasCommand("openssl")) {
      console.log("skip: testssl.sh: testssl (Debian testssl.sh) or openssl is not installed");
      return;
    }
    const pki = await makePki();
    const dir = await Deno.makeTempDir({ prefix: "ffinet-testssl-" });
    const server = serveHttps(pki, {}, () => new Response("ok"));
    try {
      const port = (server.addr as Deno.NetAddr).port;
      const scan = async (name: string, checks: string[]) => {
        const started = performance.now();
        const json = `${dir}/${name}.json`;
        const out = await runBounded("testssl", {
          args: [
            "--quiet",
            "--color",
            "0",
            "--warnings",
            "off",
            "--openssl",
            "/usr/bin/openssl",
            "--connect-timeout",
            "10",
            "--openssl-timeout",
            "10",
            "--jsonfile",
            json,
            ...checks,
            `127.0.0.1:${port}`,
          ],
          env: { TMPDIR: dir },
        }, SCAN_TIMEOUT_MS);
        const seconds = (performance.now() - started) / 1000;
        let findings: Finding[];
        try {
          findings = JSON.parse(await Deno.readTextFile(json));
        } catch (e) {
          throw new Error(
            `testssl ${name} wrote no JSON (exit ${out.code} after ${seconds.toFixed(0)} s): ` +
              `${(e as Error).message}\n${out.stdout.slice(-2000)}\n${out.stderr.slice(-2000)}`,
          );
        }
        return { findings, seconds, out };
      };
      const { findings: all, seconds } = await scan("scan", [
        "-p",
        "-s",
        "-H",
        "-I",
        "-R",
        "-C",
        "-T",
        "-B",
      ]);
      console.log(`testssl took ${seconds.toFixed(0)} s`);
      const byId = new Map(all.map((f) => [f.id, f]));
      for (const f of all) {
        if (f.severity !== "OK" && f.severity !== "INFO") {
          console.log(`testssl: ${f.id} ${f.severity}: ${f.finding}`);
        }
      }
      // The scan ran to the end.
      for (const f of all) {
        assert(f.id !== "scanProblem", `testssl could not scan: ${f.finding}`);
        if (f.id === "scanTime") assert(!/interrupt/i.test(f.finding), f.finding);
      }
      const bad = all.filter((f) => BAD.has(f.severity));
      assertEquals(bad, [], "findings above LOW");
      // Protocols: SSL 2/3 and TLS 1.0/1.1 refused, TLS 1.2 and 1.3 served.
      for (const id of ["SSLv2", "SSLv3", "TLS1", "TLS1_1"]) {
        assert(/^not offered/.test(byId.get(id)?.finding ?? ""), `${id}: ${byId.get(id)?.finding}`);
      }
      for (const id of ["TLS1_2", "TLS1_3"]) {
        assert(/^offered/.test(byId.get(id)?.finding ?? ""), `${id}: ${byId.get(id)?.finding}`);
      }
      // Nothing weak: NULL, anonymous, export, LOW (DES, RC2, RC4), 3DES/IDEA and
      // obsolete CBC suites are not offered; strong AEAD suites are.
      for (const id of ["NULL", "aNULL", "EXPORT", "LOW", "3DES_IDEA", "AVERAGE"]) {
        const f = byId.get(`cipherlist_${id}`);
        assert(/^not offered/.test(f?.finding ?? ""), `cipherlist_${id}: ${f?.finding}`);
      }
      assert(/^offered/.test(byId.get("cipherlist_STRONG")?.finding ?? ""), "strong ciphers");
      // Every vulnerability check ran and found nothing.
      for (const id of VULNERABILITIES) {
        const f = byId.get(id);
        if (f === undefined) throw new Error(`testssl did not report ${id}`);
        assert(f.severity === "OK" || f.severity === "INFO", `${id} ${f.severity}: ${f.finding}`);
        assert(!/(?<!not )vulnerable/i.test(f.finding), `${id}: ${f.finding}`);
      }
    } finally {
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
      await pki.remove();
    }
  },
);
