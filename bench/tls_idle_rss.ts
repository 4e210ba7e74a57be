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
 *       bench/tls_idle_rss.ts --cert cert.pem --key key.pem [--connections N] [--only ffinet_serve,deno_serve]'
 *
 * The certificate is the one `../shared/bench/compare.sh tls` makes
 * (`$BENCH_BIN/tls/cert.pem`): self-signed with the CA flag, which Deno's
 * client refuses as a server certificate, hence the flag that skips
 * verification for 127.0.0.1 only. Needs a soft fd limit above the
 * connection count (both processes hold one fd per connection).
 *
 * @module
 */
import { readProcFile } from "../ffi/process.ts";
import { integerFlag, parseArgs } from "../examples/_args.ts";

const args = parseArgs(Deno.args, {
  usage: "tls_idle_rss.ts --cert FILE --key FILE [--connections N] [--only a,b]",
  strings: { connections: "10000", only: "", cert: "", key: "" },
});
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
  ffinet_serve: [
    deno,
    "run",
    "--allow-ffi",
    "--allow-env",
    "--allow-read",
    `${here}https_serve.ts`,
    "--port",
    "{port}",
    "--cert",
    certPath,
    "--key",
    keyPath,
  ],
  deno_serve: [deno, "run", "--allow-net", "--allow-read", `${here}ref/deno_https.ts`, "{port}"]
    .concat([certPath, keyPath]),
};
const onlyFlag = args.strings.only ?? "";
const only = onlyFlag === "" ? Object.keys(servers) : onlyFlag.split(",");

function rssKiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readProcFile(`/proc/${pid}/status`))?.[1] ?? NaN);
}

async function measure(name: string, cmd: string[], port: number) {
  const [exe, ...rest] = cmd.map((a) => a.replace("{port}", String(port)));
  const child = new Deno.Command(exe!, { args: rest, stdout: "piped", stderr: "inherit" }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (!seen.includes("listening on")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`Cannot start ${name}`);
    seen += value;
  }
  reader.releaseLock();
  const drained = child.stdout.pipeTo(new WritableStream()).catch(() => {});
  const conns: Deno.TlsConn[] = [];
  try {
    const req = new TextEncoder().encode("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    const open = async (n: number, keep: boolean) => {
      const batch = 100;
      for (let i = 0; i < n; i += batch) {
        await Promise.all(Array.from({ length: Math.min(batch, n - i) }, async () => {
          const c = await Deno.connectTls({ hostname: "127.0.0.1", port, caCerts: [caCert] });
          await c.write(req);
          const buf = new Uint8Array(1024);
          let got = "";
          while (!got.includes("Hello, World!")) {
            const r = await c.read(buf);
            if (r === null) throw new Error(`${name}: connection closed`);
            got += new TextDecoder().decode(buf.subarray(0, r));
          }
          if (keep) conns.push(c);
          else c.close();
        }));
      }
    };
    // Warm up the server with one round of 200 connections, closed again.
    await open(200, false);
    await new Promise((r) => setTimeout(r, 500));
    const before = rssKiB(child.pid);
    await open(count, true);
    // The lowest RSS over the next 10 s: what the connections keep, once the
    // garbage of their handshakes has been collected (a single reading right
    // after the last handshake moved by 2x between runs).
    let after = Infinity;
    for (let i = 0; i < 20; i++) {
      await new Promise((r) => setTimeout(r, 500));
      after = Math.min(after, rssKiB(child.pid));
    }
    return { name, before, after, perConnKiB: (after - before) / count };
  } finally {
    for (const c of conns) {
      try {
        c.close();
      } catch { /* already closed */ }
    }
    child.kill("SIGKILL");
    await child.status;
    await drained;
  }
}

let port = 12000 + Math.floor(Math.random() * 16000); // below the ephemeral range
const rows = [];
for (const name of only) {
  const cmd = servers[name];
  if (!cmd) throw new Error(`unknown server ${name}`);
  rows.push(await measure(name, cmd, port++));
}
console.log(`idle keep-alive TLS connections: ${count}`);
console.log("server        rss_before_MiB  rss_after_MiB  KiB_per_conn  x_deno_serve");
const base = rows.find((r) => r.name === "deno_serve");
for (const r of rows) {
  const x = base ? ((r.after - r.before) / (base.after - base.before)).toFixed(2) : "-";
  console.log(
    `${r.name.padEnd(13)} ${(r.before / 1024).toFixed(1).padStart(14)} ${
      (r.after / 1024).toFixed(1).padStart(14)
    } ${r.perConnKiB.toFixed(2).padStart(13)} ${x.padStart(13)}`,
  );
}
for (const r of rows) console.log(JSON.stringify({ ...r, connections: count }));
