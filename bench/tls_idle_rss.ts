/**
 * Memory of idle keep-alive TLS connections: starts a server as a child
 * process (ffinet's `serve({ cert, key })` or `Deno.serve({ cert, key })`,
 * the same "Hello, World!" handler), opens `--connections` (default 10,000)
 * TLS 1.3 connections to it, sends one request on each and reads the
 * response, then reports the server's RSS (VmRSS from /proc/<pid>/status)
 * before and after (the lowest reading over the 10 s that follow), and per
 * connection.
 *
 *     sh -c 'ulimit -n 20000 && deno run --unsafely-ignore-certificate-errors=127.0.0.1 \
 *       --allow-ffi --allow-read --allow-run --allow-net --allow-env \
 *       bench/tls_idle_rss.ts --cert cert.pem --key key.pem [--connections N] [--only ffinet_serve,deno_serve] \
 *       [--record-layer ffinet|openssl]'
 *
 * `--record-layer ffinet` has ffinet's server move TLS 1.3 records to
 * ffinet's own layer and free the `SSL` object after the handshake (off in
 * the library by default); the default, `openssl`, keeps OpenSSL's record
 * layer on every connection.
 *
 * The certificate is the one `../shared/bench/compare.sh tls` makes
 * (`$BENCH_BIN/tls/cert.pem`): self-signed with the CA flag, which Deno's
 * client refuses as a server certificate, hence the flag that skips
 * verification for 127.0.0.1 only. Needs a soft fd limit above the
 * connection count (both processes hold one fd per connection).
 *
 * @module
 */
import { integerFlag, parseArgs } from "../examples/_args.ts";
import { benchServer, exchange, runIdleRss, sleep } from "./_idle_rss.ts";

const args = parseArgs(Deno.args, {
  usage:
    "tls_idle_rss.ts --cert FILE --key FILE [--connections N] [--only a,b] [--record-layer ffinet|openssl]",
  strings: { connections: "10000", only: "", cert: "", key: "", "record-layer": "ffinet" },
});
const recordLayer = args.strings["record-layer"] ?? "openssl";
const count = integerFlag(args, "connections", 1, "a number of connections");
const certPath = args.strings.cert ?? "";
const keyPath = args.strings.key ?? "";
if (certPath === "" || keyPath === "") {
  console.error("tls_idle_rss.ts: --cert and --key are required");
  Deno.exit(2);
}
const caCert = Deno.readTextFileSync(certPath);
const here = new URL(".", import.meta.url).pathname;
const deno = Deno.execPath();
const servers: Record<string, string[]> = {
  ffinet_serve: benchServer(
    "https_serve.ts",
    "--cert",
    certPath,
    "--key",
    keyPath,
    "--record-layer",
    recordLayer,
  ),
  deno_serve: [deno, "run", "--allow-net", "--allow-read", `${here}ref/deno_https.ts`, "{port}"]
    .concat([certPath, keyPath]),
};
const request = new TextEncoder().encode("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");

await runIdleRss({
  title: `idle keep-alive TLS connections: ${count}`,
  servers,
  only: args.strings.only ?? "",
  count,
  // Warm up the server with one round of 200 connections, closed again.
  warmup: 200,
  warmupPauseMs: 500,
  batch: 100,
  base: "deno_serve",
  nameWidth: 13,
  ready: "stdout",
  async open(port, name) {
    const c = await Deno.connectTls({ hostname: "127.0.0.1", port, caCerts: [caCert] });
    await exchange(c, request, "Hello, World!", name);
    return c;
  },
  // The lowest RSS over the next 10 s: what the connections keep, once the
  // garbage of their handshakes has been collected (a single reading right
  // after the last handshake moved by 2x between runs).
  async settle(rss) {
    let after = Infinity;
    for (let i = 0; i < 20; i++) {
      await sleep(500);
      after = Math.min(after, rss());
    }
    return after;
  },
});
