/**
 * The user-space TLS 1.3 record layer (tls/_record.ts) that takes over
 * from OpenSSL after a server's handshake, against real clients:
 *
 * - which connections move (TLS 1.3 servers) and which keep OpenSSL (TLS
 *   1.2, ffinet's own client), and no traffic secret stays in the key log;
 * - openssl s_client with each TLS 1.3 suite, KeyUpdate both "k" and "K";
 *   s_client -reconnect resumption;
 * - a Python client that seals its own records (tests/tls/_record_client.py):
 *   padding and empty records, records split to single bytes and many in one
 *   write, KeyUpdates (split over two records too), and every fault with the
 *   fatal alert it must get and the error `onClose` reports;
 * - curl and Deno fetch with several-MiB bodies both ways; Node with records
 *   of every size;
 * - a differential check: a client receives the same bytes with the record
 *   layer in user space and in OpenSSL.
 *
 * @module
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { keyLogCallback, loggedSecretCount } from "../../ffi/openssl_aead.ts";
import { connectTls } from "../../tls/mod.ts";
import { recordLayerControl } from "../../tls/_record.ts";
import type { TlsConnection } from "../../tls/tls_connection.ts";
import { concatBytes, runBounded, waitFor } from "../_helpers.ts";
import { hasCommand, makePki, type TestPki } from "./_certs.ts";
import { echo, runClient, serveHttps, startServer, warmUp } from "./_server.ts";

warmUp();
// The user-space record layer is off by default: this file turns it on for
// the servers it starts (the differential case turns it off for one), and
// makes the key-log callback before any test (it lives as long as the thread).
recordLayerControl.userspace = true;
keyLogCallback();

const TEST = { sanitizeOps: true, sanitizeResources: true };
const SUITES = [
  "TLS_AES_128_GCM_SHA256",
  "TLS_AES_256_GCM_SHA384",
  "TLS_CHACHA20_POLY1305_SHA256",
] as const;

let pkiPromise: Promise<TestPki> | undefined;
function pki(): Promise<TestPki> {
  return pkiPromise ??= makePki();
}

async function sha256(bytes: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Deterministic bytes. */
function pattern(n: number, seed: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

Deno.test(
  "record layer: TLS 1.3 server connections leave OpenSSL; TLS 1.2 and ffinet's client keep it; no secret stays in the key log",
  TEST,
  async () => {
    const p = await pki();
    const s = startServer({ cert: p.cert, key: p.key });
    try {
      // TLS 1.3 (rustls).
      const c = await Deno.connectTls({ hostname: "localhost", port: s.port, caCerts: [p.caCert] });
      await c.write(new TextEncoder().encode("ping"));
      const buf = new Uint8Array(4);
      let got = 0;
      while (got < 4) got += (await c.read(buf.subarray(got))) ?? 4;
      assertEquals(new TextDecoder().decode(buf), "ping");
      c.close();
      assertEquals(s.accepted[0]!.info!.protocol, "TLSv1.3");
      assertEquals(s.accepted[0]!.info!.recordLayer, "ffinet");
      // ffinet's client keeps OpenSSL (it must read the server's session tickets).
      const client = await connectTls(s.reactor, { host: "localhost", port: s.port }, {
        caCerts: [p.caCert],
      });
      assertEquals(client.info!.recordLayer, "openssl");
      await waitFor(() => s.accepted.length >= 2, 5000, "second connection");
      assertEquals(s.accepted[1]!.info!.recordLayer, "ffinet");
      client.close();
      if (await hasCommand("openssl")) {
        // TLS 1.2 keeps OpenSSL's records.
        const out = await runClient(
          "openssl",
          ["s_client", "-connect", `127.0.0.1:${s.port}`, "-tls1_2", "-CAfile", p.caPath],
          "twelve\n",
        );
        assertMatch(out.stdout, /twelve/);
        const t12 = s.accepted[2]!;
        assertEquals(t12.info!.protocol, "TLSv1.2");
        assertEquals(t12.info!.recordLayer, "openssl");
        // A client that gives up after the server's Finished (an unknown CA):
        // the server's secret was logged, and is dropped with the connection.
        await runClient(
          "openssl",
          ["s_client", "-connect", `127.0.0.1:${s.port}`, "-verify_return_error", "-tls1_3"],
          "",
        );
      } else {
        console.log("skip: TLS 1.2 part: openssl is not installed");
      }
      await waitFor(
        () => s.accepted.every((c) => c.state === "closed") && s.server.stats.inProgress === 0,
        5000,
        "connections to close",
      );
      assertEquals(loggedSecretCount(), 0, "traffic secrets left in the key log");
    } finally {
      await s.stop();
    }
  },
);

/** s_client with `-msg`, fed `lines` one every `gapMs`; returns its stdout. */
async function sClientLines(args: string[], lines: string[], gapMs = 250): Promise<string> {
  const out = await runBounded("openssl", { args: ["s_client", ...args, "-msg"] }, 20_000, {
    lines,
    startMs: 500,
    gapMs,
  });
  return out.stdout;
}

Deno.test(
  "record layer: s_client with each TLS 1.3 suite echoes through KeyUpdates: 'k' moves our read key, 'K' also gets our own KeyUpdate",
  TEST,
  async () => {
    if (!await hasCommand("openssl")) {
      console.log("skip: s_client KeyUpdate: openssl is not installed");
      return;
    }
    const p = await pki();
    const s = startServer({ cert: p.cert, key: p.key });
    try {
      // The three suites at once: each s_client mostly waits between its lines.
      await Promise.all(SUITES.map(async (suite) => {
        const base = [
          "-connect",
          `127.0.0.1:${s.port}`,
          "-CAfile",
          p.caPath,
          "-ciphersuites",
          suite,
        ];
        // "k": the client's key moves on; no answer asked.
        const k = await sClientLines(base, ["alpha", "k", "bravo", "k", "charlie"]);
        // s_client prints what it receives (the echo), not what it sends.
        for (const word of ["alpha", "bravo", "charlie"]) {
          assertEquals(k.split(word).length - 1, 1, `${suite} k: ${word} echoed\n${k}`);
        }
        assertEquals(/<<< .*KeyUpdate/.test(k), false, `${suite}: a KeyUpdate nobody asked for`);
        // "K": the client asks for ours; echoes after it come under our new key.
        const big = "x".repeat(3000);
        const K = await sClientLines(base, ["delta", "K", "echo", "K", big]);
        for (const word of ["delta", "echo"]) {
          assertEquals(K.split(word).length - 1, 1, `${suite} K: ${word} echoed\n${K}`);
        }
        assertEquals(K.split(big).length - 1, 1, `${suite} K: the long line`);
        assertEquals(K.match(/<<< .*KeyUpdate/g)?.length, 2, `${suite}: our KeyUpdates\n${K}`);
      }));
      // Two connections per suite, each on that suite and on ffinet's record layer.
      assertEquals(
        s.accepted.map((c) => c.info!.cipher).sort(),
        SUITES.flatMap((suite) => [suite, suite]).sort(),
      );
      for (const c of s.accepted) assertEquals(c.info!.recordLayer, "ffinet");
      assertEquals(s.errors, []);
    } finally {
      await s.stop();
    }
  },
);

/** s_client -reconnect (after a first connection saved its session) against a fresh server: "Reused" count and the resumed connections' record layers. */
async function reconnects(p: TestPki): Promise<{ reused: number; layers: string[] }> {
  const s = startServer({ cert: p.cert, key: p.key });
  const dir = await Deno.makeTempDir();
  try {
    const sess = `${dir}/sess.pem`;
    const connect = ["s_client", "-connect", `127.0.0.1:${s.port}`, "-CAfile", p.caPath];
    const first = await runClient("openssl", [...connect, "-sess_out", sess], "one\n", {
      holdMs: 800,
    });
    assertMatch(first.stdout, /one/);
    const out = await runClient("openssl", [...connect, "-sess_in", sess, "-reconnect"], "", {
      holdMs: 2500,
    });
    const reused = (out.stdout.match(/^Reused, TLSv1\.3/gm) ?? []).length;
    const layers = s.accepted.filter((c) => c.info?.sessionReused).map((c) => c.info!.recordLayer);
    return { reused, layers };
  } finally {
    await Deno.remove(dir, { recursive: true });
    await s.stop();
  }
}

Deno.test(
  "record layer: s_client -reconnect resumes TLS 1.3 sessions from the tickets sent before the layer moved, as often as with OpenSSL's records",
  TEST,
  async () => {
    if (!await hasCommand("openssl")) {
      console.log("skip: s_client -reconnect: openssl is not installed");
      return;
    }
    const p = await pki();
    const ours = await reconnects(p);
    recordLayerControl.userspace = false;
    let theirs;
    try {
      theirs = await reconnects(p);
    } finally {
      recordLayerControl.userspace = true;
    }
    // s_client 3.0 resumes the -sess_in session; its reconnects after that are
    // new (it leaves before the next ticket arrives), whoever writes records.
    console.log(`s_client -reconnect: reused ${ours.reused} (ffinet), ${theirs.reused} (openssl)`);
    assert(ours.reused >= 1);
    assertEquals(ours.reused, theirs.reused);
    assert(ours.layers.length >= 1);
    assertEquals(new Set(ours.layers), new Set(["ffinet"]));
    assertEquals(new Set(theirs.layers), new Set(["openssl"]));
  },
);

/** The Python record client in `mode` against `port`; its one line. */
async function recordClient(p: TestPki, port: number, mode: string): Promise<string> {
  const dir = await Deno.makeTempDir();
  try {
    const out = await runBounded("python3", {
      args: [
        new URL("./_record_client.py", import.meta.url).pathname,
        String(port),
        p.caPath,
        mode,
        "5",
        `${dir}/keylog`,
      ],
    }, 60_000);
    assertEquals(out.code, 0, `${mode}: ${out.stdout} ${out.stderr}`);
    return out.stdout.trim();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function hasPythonCryptography(): Promise<boolean> {
  if (!await hasCommand("python3")) return false;
  const out = await runBounded("python3", { args: ["-c", "import cryptography"] }, 20_000);
  return out.code === 0;
}

Deno.test(
  "record layer: a client sealing its own records: padding, empty records, 1-byte writes, many records per write, KeyUpdates (split too) are echoed intact",
  TEST,
  async () => {
    if (!await hasPythonCryptography()) {
      console.log("skip: raw record client: python3 with the cryptography module is not installed");
      return;
    }
    const p = await pki();
    const s = startServer({ cert: p.cert, key: p.key });
    try {
      assertMatch(await recordClient(p, s.port, "pieces"), /^echo \d+ ok received \d+$/);
      assertMatch(await recordClient(p, s.port, "bytewise"), /^echo 500 ok received 500$/);
      // Three KeyUpdates asking for ours: three come back, and the echoes
      // after each decrypt under the new keys.
      assertMatch(await recordClient(p, s.port, "keyupdate"), /^echo \d+ ok keyupdates 3$/);
      assertMatch(await recordClient(p, s.port, "keyupdate-split"), /^echo \d+ ok keyupdates 3$/);
      // The peer's close_notify: the data before it is echoed, then ours, then EOF.
      assertMatch(
        await recordClient(p, s.port, "close-notify"),
        /^close_notify then eof received 10$/,
      );
      for (const c of s.accepted) assertEquals(c.info!.recordLayer, "ffinet");
      assertEquals(s.errors, []);
      assertEquals(s.server.stats.badRecords, 0);
    } finally {
      await s.stop();
    }
  },
);

Deno.test(
  "record layer: every fault gets its fatal alert (encrypted) and a close; onClose reports OpenSSL's text for it",
  TEST,
  async () => {
    if (!await hasPythonCryptography()) {
      console.log("skip: raw record faults: python3 with the cryptography module is not installed");
      return;
    }
    const p = await pki();
    const closed: (Error | undefined)[] = [];
    const s = startServer({ cert: p.cert, key: p.key }, (conn: TlsConnection) => {
      echo(conn);
      conn.onClose = (_c, e) => closed.push(e);
    });
    try {
      const cases: [string, number | undefined, RegExp][] = [
        ["tampered", 20, /decryption failed or bad record mac/],
        ["new-session-ticket", 10, /unexpected message/],
        ["certificate-request", 10, /unexpected message/],
        ["keyupdate-then-data", 10, /not on record boundary/],
        ["keyupdate-bad-value", 47, /bad key update/],
        ["keyupdate-bad-length", 50, /bad length/],
        ["no-content-type", 10, /bad record type/],
        ["plaintext-overflow", 22, /data length too long/],
        ["oversized", 22, /packet length too long/],
        ["unprotected-alert", 10, /bad record type/],
        ["long-alert", 50, /invalid alert/],
        ["empty-handshake", 10, /unexpected message/],
        ["alert-from-client", undefined, /alert handshake failure/],
      ];
      let bad = 0;
      for (const [mode, alert, text] of cases) {
        closed.length = 0;
        const line = await recordClient(p, s.port, mode);
        if (alert === undefined) {
          assertMatch(line, /^(eof|reset) received 0$/, mode);
        } else {
          bad++;
          assertMatch(line, new RegExp(`^alert ${alert} then (eof|reset) received 0$`), mode);
        }
        await waitFor(() => closed.length === 1, 5000, `${mode}: close`);
        const e = closed[0]!;
        assertEquals(e.name, "OpenSslError", mode);
        assertMatch(e.message, text, mode);
        assertMatch(
          e.message,
          alert === undefined
            ? /^Cannot read TLS data: the peer from 127\.0\.0\.1:\d+ ended the connection with a fatal alert: error:0A000[0-9A-F]{3}:SSL routines::/
            : /^Cannot read TLS data: the peer from 127\.0\.0\.1:\d+ sent a bad record \(the alert was sent\): error:0A000[0-9A-F]{3}:SSL routines::/,
          mode,
        );
        assertEquals(s.server.stats.badRecords, bad, mode);
      }
    } finally {
      await s.stop();
    }
  },
);

Deno.test(
  "record layer: curl and Deno fetch move several MiB both ways intact; Node sends records of every size",
  TEST,
  async () => {
    const p = await pki();
    const big = pattern(5 * 1024 * 1024 + 123, 1);
    const bigHash = await sha256(big);
    const server = serveHttps(p, {}, async (req) => {
      if (req.method === "POST") {
        const body = new Uint8Array(await req.arrayBuffer());
        return new Response(`${body.length} ${await sha256(body)}`);
      }
      return new Response(big);
    });
    const client = Deno.createHttpClient({ caCerts: [p.caCert] });
    const dir = await Deno.makeTempDir();
    try {
      const url = `https://localhost:${server.port}/`;
      const up = pattern(6 * 1024 * 1024 + 7, 2);
      const upHash = await sha256(up);
      // Deno fetch.
      const down = new Uint8Array(await (await fetch(url, { client })).arrayBuffer());
      assertEquals(down.length, big.length);
      assertEquals(await sha256(down), bigHash);
      const posted = await (await fetch(url, { client, method: "POST", body: up })).text();
      assertEquals(posted, `${up.length} ${upHash}`);
      // curl.
      if (await hasCommand("curl")) {
        await Deno.writeFile(`${dir}/up`, up);
        const got = await runBounded("curl", {
          args: ["-sS", "--cacert", p.caPath, "-o", `${dir}/down`, url],
        }, 60_000);
        assertEquals(got.code, 0, got.stderr);
        assertEquals(await sha256(await Deno.readFile(`${dir}/down`)), bigHash);
        const put = await runBounded("curl", {
          args: ["-sS", "--cacert", p.caPath, "--data-binary", `@${dir}/up`, url],
        }, 60_000);
        assertEquals(put.stdout, `${up.length} ${upHash}`);
      } else {
        console.log("skip: curl part: curl is not installed");
      }
    } finally {
      client.close();
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
    // Node: one write per size from 0 to 2,100 bytes and around 16 KiB; echoed back.
    if (!await hasCommand("node")) {
      console.log("skip: Node part: node is not installed");
      return;
    }
    const s = startServer({ cert: p.cert, key: p.key });
    try {
      const script = `
        const tls = require("node:tls");
        const crypto = require("node:crypto");
        const ca = require("node:fs").readFileSync(${JSON.stringify(p.caPath)});
        const sizes = [];
        for (let n = 0; n <= 2100; n++) sizes.push(n);
        sizes.push(16383, 16384, 16385, 32768, 65537);
        const chunks = sizes.map((n, i) => crypto.createHash("sha512").update(String(i)).digest().toString("hex").repeat(Math.ceil(n / 128) + 1).slice(0, n));
        const sent = Buffer.from(chunks.join(""));
        const s = tls.connect({ host: "127.0.0.1", port: ${s.port}, ca, servername: "localhost" }, () => {
          s.setNoDelay(true);
          for (const c of chunks) s.write(c);
        });
        const got = [];
        let n = 0;
        s.on("data", (d) => {
          got.push(d);
          n += d.length;
          if (n >= sent.length) {
            console.log(Buffer.concat(got).equals(sent) ? "same " + n : "differ");
            s.end();
          }
        });
        s.on("error", (e) => { console.log("error " + e.message); process.exit(1); });`;
      const out = await runBounded("node", { args: ["-e", script] }, 60_000);
      assertMatch(out.stdout.trim(), /^same \d+$/, out.stderr);
      assertEquals(s.accepted[0]!.info!.recordLayer, "ffinet");
    } finally {
      await s.stop();
    }
  },
);

/** Connect with Deno's client, read until the server closes; the bytes. */
async function readAll(p: TestPki, port: number): Promise<Uint8Array> {
  const c = await Deno.connectTls({ hostname: "localhost", port, caCerts: [p.caCert] });
  const parts: Uint8Array[] = [];
  const buf = new Uint8Array(70000);
  try {
    for (;;) {
      const n = await c.read(buf);
      if (n === null) break;
      parts.push(buf.slice(0, n));
    }
  } finally {
    c.close();
  }
  return concatBytes(parts);
}

Deno.test(
  "record layer: differential: the bytes a client receives are the same with the record layer in user space and in OpenSSL",
  TEST,
  async () => {
    const p = await pki();
    const sizes = [1, 0, 100, 16383, 16384, 16385, 70000, 3, 65536, 200000, 5];
    const results: Uint8Array[] = [];
    const layers: string[] = [];
    for (const userspace of [true, false]) {
      recordLayerControl.userspace = userspace;
      const s = startServer({ cert: p.cert, key: p.key }, (conn) => {
        let i = 0;
        for (const n of sizes) conn.write(pattern(n, ++i));
        conn.close();
      });
      try {
        results.push(await readAll(p, s.port));
        layers.push(s.accepted[0]!.info!.recordLayer);
      } finally {
        recordLayerControl.userspace = true;
        await s.stop();
      }
    }
    assertEquals(layers, ["ffinet", "openssl"]);
    assertEquals(results[0]!.length, sizes.reduce((a, b) => a + b, 0));
    assertEquals(results[0], results[1]);
  },
);

Deno.test("cleanup: the test PKI is removed", async () => {
  if (pkiPromise !== undefined) await (await pkiPromise).remove();
});
