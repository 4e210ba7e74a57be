/**
 * The real balancer: Debian's `haproxy` on loopback (configuration:
 * tests/deploy/fixtures/haproxy.cfg, rendered into a private temp dir) in
 * front of two ffinet servers (tests/deploy/fixtures/app.ts).
 *
 * - `send-proxy` and `send-proxy-v2` deliver the address curl used
 *   (`--interface 127.0.0.3`, port from curl's `%{local_port}`).
 * - HAProxy terminates TLS with a certificate made here by `openssl req`;
 *   the v2 SSL TLV reports TLS, its version, the cipher and the client
 *   certificate's CN, the AUTHORITY TLV the SNI, and each header has a CRC32C.
 *   A client without a certificate gets `verify` 0 from HAProxy and must
 *   still read as not verified.
 * - Health checks pass while the servers serve and fail within one check
 *   interval after SIGTERM starts a drain; a client loop through HAProxy
 *   sees 0 errors while the two servers are stopped in turn.
 */
import { assert, assertEquals } from "@std/assert";
import {
  type AppReply,
  available,
  curl,
  freePort,
  makeCerts,
  Proc,
  render,
  serverStates,
  startApp,
} from "./_deploy.ts";
import { waitFor } from "../_helpers.ts";

const CHECK_INTERVAL_MS = 200; // `inter 200` in fixtures/haproxy.cfg
/**
 * How soon HAProxy must mark a stopped server down: one check interval, with
 * room for a loaded machine, and still short of a listener closed 2 s later.
 */
const DOWN_WITHIN_MS = CHECK_INTERVAL_MS + 1300;

const reason = !(await available("haproxy", ["-v"]))
  ? "haproxy is not installed (Debian package: haproxy)"
  : !(await available("curl", ["--version"]))
  ? "curl is not installed"
  : !(await available("openssl", ["version"]))
  ? "openssl is not installed"
  : "";
if (reason) console.log(`skip: tests/deploy/haproxy_test.ts: ${reason}`);

interface Topology {
  dir: string;
  haproxy: Proc;
  apps: { proc: Proc; port: number }[];
  ports: { v1: number; v2: number; tls: number };
  admin: string;
  close(): Promise<void>;
}

async function topology(appArgs: string[] = []): Promise<Topology> {
  const dir = await Deno.makeTempDir({ prefix: "ffinet-haproxy-" });
  const apps: { proc: Proc; port: number }[] = [];
  let haproxy: Proc | undefined;
  const close = async () => {
    await haproxy?.stop();
    await Promise.all(apps.map((a) => a.proc.stop()));
    await Deno.remove(dir, { recursive: true });
  };
  try {
    const started = await Promise.all([startApp("app1", 0, appArgs), startApp("app2", 0, appArgs)]);
    apps.push(...started);
    await makeCerts(dir, "ffinet.test", "ffinet-client");
    const ports = { v1: freePort(), v2: freePort(), tls: freePort() };
    const conf = render("haproxy.cfg", {
      DIR: dir,
      PORT_V1: ports.v1,
      PORT_V2: ports.v2,
      PORT_TLS: ports.tls,
      APP1: apps[0]!.port,
      APP2: apps[1]!.port,
    });
    Deno.writeTextFileSync(`${dir}/haproxy.cfg`, conf);
    haproxy = new Proc("haproxy", ["-f", `${dir}/haproxy.cfg`, "-db"]);
    const admin = `${dir}/admin.sock`;
    const t = { dir, haproxy, apps, ports, admin, close };
    await waitStates(t, "be_v2", { app1: 2, app2: 2 }, 10_000);
    return t;
  } catch (e) {
    await close();
    throw e;
  }
}

/** Wait until the backend's servers have these states; returns the ms it took. */
async function waitStates(
  t: Pick<Topology, "admin" | "haproxy">,
  backend: string,
  want: Record<string, number>,
  ms: number,
): Promise<number> {
  const t0 = performance.now();
  let last = "";
  while (performance.now() - t0 < ms) {
    try {
      const s = await serverStates(t.admin, backend);
      last = JSON.stringify([...s]);
      if (Object.entries(want).every(([k, v]) => s.get(k) === v)) return performance.now() - t0;
    } catch (e) {
      last = (e as Error).message; // the socket is not there yet
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(
    `Timed out waiting for ${backend} ${JSON.stringify(want)}: ${last}\n${
      t.haproxy.lines.join("\n")
    }`,
  );
}

Deno.test({
  name:
    "haproxy: send-proxy (v1) and send-proxy-v2 deliver the client address curl used (IPv4 and IPv6)",
  ignore: reason !== "",
  async fn() {
    const t = await topology();
    try {
      for (const [port, version] of [[t.ports.v1, 1], [t.ports.v2, 2]] as const) {
        const { reply, localIp, localPort } = await curl(`http://127.0.0.1:${port}/who`, [
          "--interface",
          "127.0.0.3",
        ]);
        assertEquals(localIp, "127.0.0.3");
        assertEquals(reply.remoteAddr, { hostname: "127.0.0.3", port: localPort });
        assertEquals(reply.proxy?.version, version);
        assertEquals(reply.proxy?.command, "proxy");
        assertEquals(reply.proxy?.destination, { hostname: "127.0.0.1", port });
        // the proxy's own address stays available
        assertEquals(reply.proxy?.proxyAddress.hostname, "127.0.0.1");
        assert(reply.proxy?.proxyAddress.port !== localPort);
        assertEquals(reply.proxy?.crc32c, version === 2);
        assertEquals(reply.proxy?.ssl, null);
      }
      // IPv6 clients: v1 says TCP6, v2 carries the 16-byte address
      for (const [port, version] of [[t.ports.v1, 1], [t.ports.v2, 2]] as const) {
        const { reply, localIp, localPort } = await curl(`http://[::1]:${port}/who`);
        assertEquals(localIp, "::1");
        assertEquals(reply.remoteAddr, { hostname: "::1", port: localPort });
        assertEquals(reply.proxy?.version, version);
        assertEquals(reply.proxy?.destination, { hostname: "::1", port });
      }
      // a chosen source port too
      const { reply, localPort } = await curl(`http://127.0.0.1:${t.ports.v2}/who`, [
        "--interface",
        "127.0.0.3",
        "--local-port",
        "47100-47199",
      ]);
      assert(localPort >= 47100 && localPort <= 47199, String(localPort));
      assertEquals(reply.remoteAddr, { hostname: "127.0.0.3", port: localPort });
      // HAProxy's v2 health checks (every 200 ms) arrive as LOCAL headers, and pass
      let seen = reply;
      for (let i = 0; i < 30 && seen.localChecks === 0; i++) {
        await new Promise((r) => setTimeout(r, 100));
        seen = (await curl(`http://127.0.0.1:${t.ports.v2}/who`)).reply;
      }
      assert(seen.localChecks > 0, `no LOCAL headers seen: ${JSON.stringify(seen)}`);
    } finally {
      await t.close();
    }
  },
});

Deno.test({
  name: "haproxy: TLS ends at HAProxy; the v2 SSL and AUTHORITY TLVs report TLS version, SNI, CN",
  ignore: reason !== "",
  async fn() {
    const t = await topology();
    try {
      const { reply, localPort } = await curl(`https://ffinet.test:${t.ports.tls}/who`, [
        "-k",
        "--resolve",
        `ffinet.test:${t.ports.tls}:127.0.0.1`,
        "--interface",
        "127.0.0.3",
        "--cert",
        `${t.dir}/client.crt`,
        "--key",
        `${t.dir}/client.key`,
      ]);
      assertEquals(reply.remoteAddr, { hostname: "127.0.0.3", port: localPort });
      const p = reply.proxy!;
      assertEquals(p.version, 2);
      assertEquals(p.authority, "ffinet.test"); // the SNI curl sent
      assertEquals(p.alpn, "http/1.1");
      assertEquals(p.crc32c, true);
      assertEquals(p.ssl?.tls, true);
      assert(/^TLSv1\.[23]$/.test(p.ssl?.version ?? ""), `TLS version ${p.ssl?.version}`);
      assert((p.ssl?.cipher ?? "").length > 0, "no cipher");
      assertEquals(p.ssl?.cn, "ffinet-client");
      assertEquals(p.ssl?.certConnection, true);
      assertEquals(p.ssl?.verified, true);
      // without a client certificate: TLS, no CN
      const anon = await curl(`https://ffinet.test:${t.ports.tls}/who`, [
        "-k",
        "--resolve",
        `ffinet.test:${t.ports.tls}:127.0.0.1`,
      ]);
      assertEquals(anon.reply.proxy?.ssl?.tls, true);
      assertEquals(anon.reply.proxy?.ssl?.cn, null);
      assertEquals(anon.reply.proxy?.ssl?.certConnection, false);
      // HAProxy reports verify 0 ("no error") for a client without a
      // certificate: that alone must not read as a verified client.
      assertEquals(anon.reply.proxy?.ssl?.verify, 0);
      assertEquals(anon.reply.proxy?.ssl?.verified, false);
    } finally {
      await t.close();
    }
  },
});

/**
 * Stop app1, bring it back, stop app2, with a client loop through HAProxy
 * all along; `drainDelayMs` is how long a server keeps its listener open
 * after SIGTERM while /health answers 503. Returns the longest wait between
 * two replies.
 */
async function rollingStop(drainDelayMs: number): Promise<number> {
  const t = await topology(["--drain-delay-ms", String(drainDelayMs)]);
  const client = Deno.createHttpClient({});
  const replies: { at: number; server: string }[] = [];
  const errors: string[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        const r = await fetch(`http://127.0.0.1:${t.ports.v2}/who`, { client });
        const text = await r.text();
        if (r.status !== 200) errors.push(`status ${r.status}: ${text.slice(0, 200)}`);
        else {replies.push({
            at: performance.now(),
            server: (JSON.parse(text) as AppReply).server,
          });}
      } catch (e) {
        errors.push((e as Error).message);
      }
    }
  })();
  const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
  try {
    await pause(300);
    assert(replies.some((r) => r.server === "app1") && replies.some((r) => r.server === "app2"));

    // stop app1: it drains; HAProxy must see it down within one check interval
    t.apps[0]!.proc.kill("SIGTERM");
    const down1 = await waitStates(t, "be_v2", { app1: 0, app2: 2 }, 5000);
    console.log(
      `app1 marked down ${down1.toFixed(0)} ms after SIGTERM (inter ${CHECK_INTERVAL_MS})`,
    );
    assert(down1 < DOWN_WITHIN_MS, `took ${down1.toFixed(0)} ms`);
    assertEquals((await t.apps[0]!.proc.done).code, 0);
    // A request HAProxy had sent to app1 as it closed is retried (after HAProxy's
    // turn-around timer of up to 1 s when it picks app1 again); the client only
    // sees latency. Then everything goes to app2.
    const after1 = replies.length;
    await waitFor(() => replies.length >= after1 + 10, 5000, "10 replies after app1 went down");
    const served = replies.slice(after1 + 1).map((r) => r.server);
    assert(served.every((s) => s === "app2"), `after app1 went down: ${served.join(",")}`);

    // app1 comes back on its port, then app2 is stopped
    const port1 = t.apps[0]!.port;
    t.apps[0] = await startApp("app1b", port1, ["--drain-delay-ms", String(drainDelayMs)]);
    await waitStates(t, "be_v2", { app1: 2, app2: 2 }, 5000);
    await pause(200);
    t.apps[1]!.proc.kill("SIGTERM");
    const down2 = await waitStates(t, "be_v2", { app1: 2, app2: 0 }, 5000);
    console.log(`app2 marked down ${down2.toFixed(0)} ms after SIGTERM`);
    assert(down2 < DOWN_WITHIN_MS, `took ${down2.toFixed(0)} ms`);
    assertEquals((await t.apps[1]!.proc.done).code, 0);
    const after2 = replies.length;
    await waitFor(() => replies.length >= after2 + 10, 5000, "10 replies after app2 went down");
    const last = replies.slice(after2 + 1).map((r) => r.server);
    assert(last.every((s) => s === "app1b"), `after app2 went down: ${last.join(",")}`);
  } finally {
    running = false;
    await loop;
    client.close();
    await t.close();
  }
  let gap = 0;
  for (let i = 1; i < replies.length; i++) {
    gap = Math.max(gap, replies[i]!.at - replies[i - 1]!.at);
  }
  console.log(
    `rolling stop: ${replies.length} requests, ${errors.length} errors, longest wait ${
      gap.toFixed(0)
    } ms`,
  );
  assertEquals(errors, []);
  assert(replies.length > 50, `only ${replies.length} requests`);
  return gap;
}

Deno.test({
  name:
    "haproxy: health checks fail within one interval after SIGTERM starts a drain; 0 client errors in a rolling stop",
  ignore: reason !== "",
  async fn() {
    // /health fails first, the listener closes 10 check intervals later (2 s):
    // marked down before that (DOWN_WITHIN_MS) means the failing /health did it.
    // No retry, no stall.
    const gap = await rollingStop(10 * CHECK_INTERVAL_MS);
    assert(gap < 900, `a client waited ${gap.toFixed(0)} ms`);
  },
});

Deno.test({
  name:
    "haproxy: a server that closes its listener at once on SIGTERM: 0 client errors (HAProxy retries elsewhere)",
  ignore: reason !== "",
  async fn() {
    await rollingStop(0);
  },
});
