/**
 * Live certificate rotation with `certFile`/`keyFile`: while eight clients
 * run full handshakes in a loop, the files are replaced (atomic renames, a
 * half-written file, a key that does not match); no handshake fails, new
 * handshakes see the new certificate (by its SHA-256 fingerprint) within a
 * bound, open connections keep working on the old one, and a pair that
 * does not load is reported while the previous one goes on serving. The
 * same through `serve()`: on one thread, on `workers: 2` in a process of
 * its own (each Worker watches the files), and as worker processes of the
 * supervisor (each watches them, and `reload` starts workers that read
 * them).
 */
import { assert, assertEquals, assertMatch, assertRejects, assertThrows } from "@std/assert";
import { makePki, type TestPki } from "./_certs.ts";
import { startServer } from "./_server.ts";
import { connectTls, type TlsConnection, TlsListener } from "../../tls/mod.ts";
import { Reactor } from "../../reactor/mod.ts";
import { serve } from "../../http/mod.ts";
import { freePort, sleep, waitFor, withFdCheck } from "../_helpers.ts";
import { Supervisor } from "../../daemon/supervisor/supervisor.ts";

/** The test PKI with a second server pair, and both certificates' fingerprints. */
type RotationPki = TestPki & { cert2: string; key2: string; fp: string; fp2: string };

let pkiPromise: Promise<RotationPki> | undefined;
/** The test PKI plus a second localhost certificate from the same CA. */
function pki(): Promise<RotationPki> {
  pkiPromise ??= makePki().then(async (p) => {
    const run = async (args: string[]) => {
      const out = await new Deno.Command("openssl", { args, cwd: p.dir, stdin: "null" }).output();
      if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
    };
    await run([
      "req",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      "server2.key",
      "-out",
      "server2.csr",
      "-subj",
      "/CN=localhost",
    ]);
    await Deno.writeTextFile(`${p.dir}/server2.ext`, "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
    await run([
      "x509",
      "-req",
      "-in",
      "server2.csr",
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      "server2.pem",
      "-days",
      "2",
      "-extfile",
      "server2.ext",
    ]);
    const cert2 = await Deno.readTextFile(`${p.dir}/server2.pem`);
    return {
      ...p,
      cert2,
      key2: await Deno.readTextFile(`${p.dir}/server2.key`),
      fp: await fingerprint(derOf(p.cert)),
      fp2: await fingerprint(derOf(cert2)),
    };
  });
  return pkiPromise;
}

/** Hex SHA-256 of a DER certificate. */
async function fingerprint(der: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", der.slice());
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The fingerprint of the certificate a new connection to `port` is served (one full handshake). */
async function servedFingerprint(reactor: Reactor, port: number, caCert: string): Promise<string> {
  const conn = await connectTls(reactor, { host: "127.0.0.1", port }, {
    caCerts: [caCert],
    serverName: "localhost",
  });
  try {
    return await fingerprint(conn.info!.peerCertificate!.raw);
  } finally {
    conn.close();
  }
}

/** The DER of the first certificate in a PEM text. */
function derOf(pem: string): Uint8Array {
  const b64 = pem.split("-----BEGIN CERTIFICATE-----")[1]!.split("-----END CERTIFICATE-----")[0]!;
  return Uint8Array.from(atob(b64.replace(/\s+/g, "")), (c) => c.charCodeAt(0));
}

/** Write `text` to `path` atomically: a temp file in the same directory, then rename. */
function replaceAtomically(path: string, text: string): void {
  const tmp = `${path}.tmp`;
  Deno.writeTextFileSync(tmp, text);
  Deno.renameSync(tmp, path);
}

/** A private directory holding the first pair as `cert.pem` and `key.pem`. */
async function certFiles(
  p: RotationPki,
): Promise<{ dir: string; certFile: string; keyFile: string }> {
  const dir = await Deno.makeTempDir({ prefix: "ffinet-rotation-" });
  const certFile = `${dir}/cert.pem`;
  const keyFile = `${dir}/key.pem`;
  replaceAtomically(certFile, p.cert);
  replaceAtomically(keyFile, p.key);
  return { dir, certFile, keyFile };
}

interface Flood {
  /** Each completed handshake: when it started (performance.now()) and what it saw. */
  seen: { startedAt: number; fp: string }[];
  failures: unknown[];
  stop(): Promise<void>;
}

/** `clients` loops of connect, full handshake, echo one byte, close, until stopped. */
function flood(reactor: Reactor, port: number, caCert: string, clients: number): Flood {
  const seen: Flood["seen"] = [];
  const failures: unknown[] = [];
  let running = true;
  const one = async () => {
    while (running) {
      const startedAt = performance.now();
      let conn: TlsConnection | undefined;
      try {
        conn = await connectTls(reactor, { host: "127.0.0.1", port }, {
          caCerts: [caCert],
          serverName: "localhost",
          handshakeTimeoutMs: 20_000,
        });
        const c = conn;
        const echoed = new Promise<void>((resolve, reject) => {
          c.onData = () => resolve();
          c.onClose = (_c, e) => reject(e ?? new Error("closed before the echo"));
        });
        c.write(new Uint8Array([42]));
        await echoed;
        assert(!c.info!.sessionReused, "a full handshake was expected");
        seen.push({ startedAt, fp: await fingerprint(c.info!.peerCertificate!.raw) });
      } catch (e) {
        failures.push(e);
      } finally {
        conn?.close();
      }
    }
  };
  const loops = Array.from({ length: clients }, one);
  return {
    seen,
    failures,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

Deno.test("rotation: certFile/keyFile replaced during a flood of 8 handshake loops: 0 failures, the new certificate within the bound, open connections keep working", () =>
  pki().then((p) =>
    withFdCheck(async () => {
      const { dir, certFile, keyFile } = await certFiles(p);
      const oldFp = p.fp;
      const newFp = p.fp2;
      const s = startServer({ certFile, keyFile });
      const listenerErrors: unknown[] = [];
      s.server.listener.onError = (e) => void listenerErrors.push(e);
      let f: Flood | undefined;
      try {
        // A connection opened before the rotation, used after it.
        const early = await connectTls(s.reactor, { host: "127.0.0.1", port: s.port }, {
          caCerts: [p.caCert],
          serverName: "localhost",
        });
        assertEquals(await fingerprint(early.info!.peerCertificate!.raw), oldFp);
        f = flood(s.reactor, s.port, p.caCert, 8);
        const flooding = f;
        await waitFor(
          () => flooding.seen.length >= 16,
          20_000,
          "16 handshakes before the rotation",
        );
        // Both files in one synchronous step: no check runs between the renames.
        replaceAtomically(keyFile, p.key2);
        replaceAtomically(certFile, p.cert2);
        const rotatedAt = performance.now();
        // The flood goes on until the new certificate has been served for a second (or 10 s
        // passed without it: the assertions below then say what was served).
        let newSince = 0;
        await waitFor(() => {
          if (newSince === 0 && flooding.seen.some((h) => h.fp === newFp)) {
            newSince = performance.now();
          }
          return newSince > 0 && performance.now() - newSince >= 1000;
        }, 10_000).catch(() => {});
        await f.stop();
        const flooded = f;
        f = undefined;

        assertEquals(flooded.failures.length, 0, `failed: ${flooded.failures.slice(0, 3)}`);
        assertEquals(s.server.stats.failedHandshakes, 0);
        assertEquals(s.errors, []);
        assertEquals(listenerErrors, []);
        const before = flooded.seen.filter((h) => h.startedAt < rotatedAt);
        const after = flooded.seen.filter((h) => h.startedAt >= rotatedAt);
        assert(before.length >= 8, `only ${before.length} handshakes before the rotation`);
        assert(before.every((h) => h.fp === oldFp), "the old certificate before the rotation");
        assert(after.some((h) => h.fp === newFp), "the new certificate was never served");
        assert(after.every((h) => h.fp === oldFp || h.fp === newFp));
        const lastOld = Math.max(
          rotatedAt,
          ...after.filter((h) => h.fp === oldFp).map((h) => h.startedAt),
        );
        const firstNew = Math.min(...after.filter((h) => h.fp === newFp).map((h) => h.startedAt));
        const latency = lastOld - rotatedAt;
        console.log(
          `rotation: ${flooded.seen.length} full handshakes (${before.length} before, ${after.length} after), ` +
            `0 failed; last old certificate ${latency.toFixed(0)} ms after the files changed, ` +
            `first new one ${(firstNew - rotatedAt).toFixed(0)} ms after`,
        );
        // Checked every 1000 ms: 1 s plus the load, with room for a loaded machine.
        assert(latency < 2500, `the old certificate was served ${latency.toFixed(0)} ms after`);
        // Once a handshake saw the new certificate, none started later sees the old one.
        assert(after.every((h) => h.fp === newFp || h.startedAt <= firstNew));

        // The early connection still echoes (its context outlived the rotation).
        const got = new Promise<number>((resolve) => early.onData = (d) => resolve(d[0]!));
        early.write(new Uint8Array([7]));
        assertEquals(await got, 7);
        early.close();
      } finally {
        await f?.stop();
        await s.stop();
        await Deno.remove(dir, { recursive: true });
      }
    })
  ));

Deno.test("rotation: a pair replaced one file at a time is served without a report; a half-written certificate, a key that does not match and a missing key are reported while the previous pair goes on serving", () =>
  pki().then((p) =>
    withFdCheck(async () => {
      const { dir, certFile, keyFile } = await certFiles(p);
      const oldFp = p.fp;
      const newFp = p.fp2;
      const s = startServer({ certFile, keyFile });
      const reported: unknown[] = [];
      s.server.listener.onError = (e) => void reported.push(e);
      const served = () => servedFingerprint(s.reactor, s.port, p.caCert);
      try {
        // One file at a time, half a second apart: the check in between (if
        // any) sees a certificate without its key, and keeps quiet.
        replaceAtomically(certFile, p.cert2);
        await sleep(500);
        replaceAtomically(keyFile, p.key2);
        await waitFor(async () => (await served()) === newFp, 5000, "the new certificate");
        await sleep(1200);
        assertEquals(reported, [], "a pair replaced one file at a time is no error");
        // Written in place, and only half of it.
        Deno.writeTextFileSync(certFile, p.cert.slice(0, p.cert.length >> 1));
        await waitFor(() => reported.length > 0, 5000, "the failed reload to be reported");
        assertMatch(String(reported[0]), /Cannot reload the certificate from certFile\/keyFile/);
        assertEquals(await served(), newFp);
        // The whole certificate, with the other key: they do not match.
        Deno.writeTextFileSync(certFile, p.cert);
        await waitFor(() => reported.length > 1, 5000, "the mismatch to be reported");
        assertMatch(String(reported[1]), /key does not match the certificate/);
        assertEquals(await served(), newFp);
        // A missing key file.
        Deno.renameSync(keyFile, `${keyFile}.gone`);
        await waitFor(() => reported.length > 2, 5000, "the missing key to be reported");
        assertMatch(String(reported[2]), /cannot read keyFile/);
        assertEquals(await served(), newFp);
        // The matching key arrives: that pair is served.
        replaceAtomically(keyFile, p.key);
        await waitFor(async () => (await served()) === oldFp, 5000, "the first certificate again");
        assertEquals(reported.length, 3, `${reported}`);
        assertEquals(s.server.stats.failedHandshakes, 0);
      } finally {
        await s.stop();
        await Deno.remove(dir, { recursive: true });
      }
    })
  ));

Deno.test("rotation: a directory symlink switched to another pair (as Kubernetes updates a mounted secret) is seen", () =>
  pki().then((p) =>
    withFdCheck(async () => {
      const dir = await Deno.makeTempDir({ prefix: "ffinet-rotation-" });
      for (const [v, cert, key] of [["v1", p.cert, p.key], ["v2", p.cert2, p.key2]]) {
        await Deno.mkdir(`${dir}/${v}`);
        await Deno.writeTextFile(`${dir}/${v}/tls.crt`, cert!);
        await Deno.writeTextFile(`${dir}/${v}/tls.key`, key!);
      }
      await Deno.symlink("v1", `${dir}/data`);
      const s = startServer({ certFile: `${dir}/data/tls.crt`, keyFile: `${dir}/data/tls.key` });
      const served = () => servedFingerprint(s.reactor, s.port, p.caCert);
      try {
        assertEquals(await served(), p.fp);
        // Both files change at once: a new link, renamed over the old one.
        await Deno.symlink("v2", `${dir}/data.tmp`);
        await Deno.rename(`${dir}/data.tmp`, `${dir}/data`);
        await waitFor(async () => (await served()) === p.fp2, 5000, "the new certificate");
        assertEquals(s.errors, []);
      } finally {
        await s.stop();
        await Deno.remove(dir, { recursive: true });
      }
    })
  ));

Deno.test("rotation: certFile/keyFile options are checked at start (missing file, one without the other, both with cert)", () =>
  pki().then(async (p) => {
    await using reactor = new Reactor();
    const dir = await Deno.makeTempDir({ prefix: "ffinet-rotation-" });
    try {
      assertThrows(
        () =>
          TlsListener.listen(reactor, {
            port: 0,
            tls: { certFile: `${dir}/none.pem`, keyFile: p.keyPath },
          }),
        Error,
        `cannot read certFile "${dir}/none.pem"`,
      );
      assertThrows(
        () => TlsListener.listen(reactor, { port: 0, tls: { certFile: p.certPath } }),
        TypeError,
        "certFile and keyFile go together",
      );
      assertThrows(
        () =>
          TlsListener.listen(reactor, {
            port: 0,
            tls: { cert: p.cert, certFile: p.certPath, keyFile: p.keyPath },
          }),
        TypeError,
        "not both",
      );
      // A closed listener takes no new options.
      const l = TlsListener.listen(reactor, {
        host: "127.0.0.1",
        port: 0,
        tls: { certFile: p.certPath, keyFile: p.keyPath },
      });
      l.close();
      assertThrows(() => l.setTls({ cert: p.cert, key: p.key }), Deno.errors.BadResource);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }));

Deno.test("rotation: serve({ certFile, keyFile }) serves the new certificate after the files change", () =>
  pki().then((p) =>
    withFdCheck(async () => {
      const { dir, certFile, keyFile } = await certFiles(p);
      const newFp = p.fp2;
      const server = serve({
        hostname: "127.0.0.1",
        port: 0,
        certFile,
        keyFile,
        onListen: () => {},
      }, () => new Response("ok"));
      const port = (server.addr as Deno.NetAddr).port;
      const fpOf = () => servedFingerprint(server.reactor!, port, p.caCert);
      try {
        assertEquals(await fpOf(), p.fp);
        const client = Deno.createHttpClient({ caCerts: [p.caCert], http2: false });
        try {
          const res = await fetch(`https://localhost:${port}/`, { client });
          assertEquals(await res.text(), "ok");
          replaceAtomically(keyFile, p.key2);
          replaceAtomically(certFile, p.cert2);
          const t0 = performance.now();
          await waitFor(async () => (await fpOf()) === newFp, 5000, "the new certificate");
          console.log(`serve(): new certificate after ${(performance.now() - t0).toFixed(0)} ms`);
          const again = await fetch(`https://localhost:${port}/`, { client });
          assertEquals(await again.text(), "ok");
        } finally {
          client.close();
        }
      } finally {
        await server.shutdown();
        await Deno.remove(dir, { recursive: true });
      }
    })
  ));

const APP = new URL("./_rotation_app.ts", import.meta.url).pathname;
const FLAGS = [
  "--allow-ffi",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-run",
  "--allow-net",
  "--allow-sys",
];

/** One HTTPS request on a new connection (a full handshake): the certificate seen and who answered. */
async function probe(
  reactor: Reactor,
  port: number,
  caCert: string,
): Promise<{ fp: string; who: string }> {
  const conn = await connectTls(reactor, { host: "127.0.0.1", port }, {
    caCerts: [caCert],
    serverName: "localhost",
    handshakeTimeoutMs: 20_000,
  });
  const fp = await fingerprint(conn.info!.peerCertificate!.raw);
  let text = "";
  const dec = new TextDecoder();
  const done = new Promise<void>((resolve, reject) => {
    conn.onData = (d) => void (text += dec.decode(d, { stream: true }));
    conn.onClose = (_c, e) => e === undefined ? resolve() : reject(e);
  });
  conn.write(
    new TextEncoder().encode("GET / HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n"),
  );
  const timer = setTimeout(() => conn.abort(new Error("no response within 20 s")), 20_000);
  try {
    await done;
  } finally {
    clearTimeout(timer);
  }
  const who = /\r\n\r\n(\d+\/\S+)$/.exec(text)?.[1];
  if (who === undefined) throw new Error(`unexpected response: ${JSON.stringify(text)}`);
  return { fp, who };
}

/**
 * Probe until every one of `expected` answerers (threads or processes) has
 * served `newFp`; once one has, it must never serve another certificate.
 * Returns the ms it took. Any failed probe throws.
 */
async function untilAllServe(
  reactor: Reactor,
  port: number,
  caCert: string,
  newFp: string,
  expected: number,
  whoOf: (who: string) => string,
  limitMs: number,
): Promise<number> {
  const t0 = performance.now();
  const switched = new Set<string>();
  while (switched.size < expected) {
    const r = await probe(reactor, port, caCert);
    const who = whoOf(r.who);
    if (r.fp === newFp) switched.add(who);
    else assert(!switched.has(who), `${who} served the old certificate after the new one`);
    const elapsed = performance.now() - t0;
    assert(
      elapsed < limitMs,
      `only ${[...switched]} serve the new certificate after ${elapsed} ms`,
    );
  }
  return performance.now() - t0;
}

Deno.test("rotation: serve({ workers: 2 }) in its own process: every Worker serves the new certificate", () =>
  pki().then((p) =>
    withFdCheck(async () => {
      const { dir, certFile, keyFile } = await certFiles(p);
      const oldFp = p.fp;
      const newFp = p.fp2;
      const port = freePort();
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", ...FLAGS, APP],
        env: {
          FFINET_TEST_PORT: String(port),
          FFINET_TEST_CERT: certFile,
          FFINET_TEST_KEY: keyFile,
        },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const reactor = new Reactor();
      const running = reactor.run();
      let ok = false;
      try {
        await waitFor(
          () => probe(reactor, port, p.caCert).then(() => true, () => false),
          30_000,
          "the server to answer",
        );
        const threads = new Set<string>();
        for (let i = 0; i < 400 && threads.size < 2; i++) {
          const r = await probe(reactor, port, p.caCert);
          assertEquals(r.fp, oldFp);
          threads.add(r.who);
        }
        assertEquals(threads.size, 2, `answered by ${[...threads]}`);
        replaceAtomically(keyFile, p.key2);
        replaceAtomically(certFile, p.cert2);
        const ms = await untilAllServe(reactor, port, p.caCert, newFp, 2, (w) => w, 10_000);
        console.log(
          `serve({ workers: 2 }): both Workers serve the new certificate after ${ms.toFixed(0)} ms`,
        );
        assert(ms < 4000, `${ms} ms`);
        ok = true;
      } finally {
        child.kill("SIGKILL");
        const out = await child.output();
        if (!ok) console.log(new TextDecoder().decode(out.stderr));
        reactor.stop();
        await running;
        reactor.close();
        await Deno.remove(dir, { recursive: true });
      }
    })
  ));

Deno.test({
  name:
    "rotation: under the supervisor (deno task serve), worker processes serve the new certificate by themselves and after a rolling reload during a handshake flood",
  sanitizeOps: true,
  sanitizeResources: true,
  fn: () =>
    pki().then(async (p) => {
      const { dir, certFile, keyFile } = await certFiles(p);
      const oldFp = p.fp;
      const newFp = p.fp2;
      const port = freePort();
      const spawned = new Set<number>();
      const stderr: string[] = [];
      const sup = new Supervisor({
        app: APP,
        workers: 2,
        listen: { host: "127.0.0.1", port },
        env: { FFINET_TEST_CERT: certFile, FFINET_TEST_KEY: keyFile },
        drainTimeoutMs: 5000,
        startTimeoutMs: 30_000,
        logger: { info: () => {}, warning: () => {}, error: () => {} },
        onOutput: (line, stream) => {
          if (stream === "stderr") stderr.push(line);
        },
        onEvent: (e) => {
          if (e.type === "spawn") spawned.add(e.pid);
        },
      });
      const reactor = new Reactor();
      const running = reactor.run();
      try {
        await sup.start();
        const pids = new Set<string>();
        for (let i = 0; i < 400 && pids.size < 2; i++) {
          const r = await probe(reactor, port, p.caCert);
          assertEquals(r.fp, oldFp);
          pids.add(r.who.split("/")[0]!);
        }
        assertEquals(pids.size, 2, `answered by ${[...pids]}`);
        // A file change reaches every worker process by itself.
        replaceAtomically(keyFile, p.key2);
        replaceAtomically(certFile, p.cert2);
        const ms = await untilAllServe(
          reactor,
          port,
          p.caCert,
          newFp,
          2,
          (w) => w.split("/")[0]!,
          10_000,
        );
        console.log(
          `supervisor: both worker processes serve the new certificate after ${ms.toFixed(0)} ms`,
        );
        // `reload` (a rolling restart) while 4 clients loop on full handshakes.
        const before = sup.pids;
        let flooding = true;
        const failures: unknown[] = [];
        const answered = new Set<string>();
        let count = 0;
        const loop = async () => {
          while (flooding) {
            try {
              const r = await probe(reactor, port, p.caCert);
              assertEquals(r.fp, newFp);
              answered.add(r.who.split("/")[0]!);
              count++;
            } catch (e) {
              failures.push(e);
            }
          }
        };
        const loops = [loop(), loop(), loop(), loop()];
        await sleep(300);
        await sup.reload();
        await sleep(300);
        flooding = false;
        await Promise.all(loops);
        const after = sup.pids;
        console.log(
          `supervisor reload: ${count} full handshakes + requests during it, ${failures.length} ` +
            `reset by a draining worker${failures.length > 0 ? ` (${failures[0]})` : ""}`,
        );
        assert(after.every((pid) => !before.includes(pid)), "every worker was replaced");
        assert(after.some((pid) => answered.has(String(pid))), "the new workers answered");
        // A draining worker lets the handshakes under way when its shutdown
        // begins finish, and answers their request with `connection: close`:
        // no client sees a reset, and only the new certificate is seen.
        assertEquals(failures.map(String).slice(0, 3), [], `${failures.length} failed of ${count}`);
      } finally {
        await sup.stop();
        for (const pid of spawned) {
          try {
            Deno.kill(pid, "SIGKILL");
          } catch { /* reaped */ }
        }
        reactor.stop();
        await running;
        reactor.close();
        await Deno.remove(dir, { recursive: true });
      }
      assertEquals(stderr, [], "no worker wrote to stderr");
    }),
});

Deno.test("cleanup: the rotation test PKI is removed", async () => {
  const p = await pki();
  await p.remove();
  await assertRejects(() => Deno.stat(p.dir), Deno.errors.NotFound);
});
