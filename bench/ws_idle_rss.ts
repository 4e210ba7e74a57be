/**
 * Memory of idle WebSockets: starts an echo server (`ws_echo.ts`) as a
 * child process, opens `--connections` (default 10,000) WebSockets to it
 * (the handshake by hand on a TCP connection, then one 64-byte text
 * message echoed on each), holds them open and silent for `--idle-ms`
 * (default 1000), and reports the server's RSS (VmRSS from
 * /proc/<pid>/status) before and after, and per connection. Servers: ffinet's handler API (`upgradeWithHandlers`), ffinet's
 * Deno-shaped `upgradeWebSocket`, and `Deno.serve` with Deno's own
 * `Deno.upgradeWebSocket`.
 *
 *     sh -c 'ulimit -n 20000 && deno run --allow-ffi --allow-read --allow-run --allow-net --allow-env \
 *       bench/ws_idle_rss.ts [--connections N] [--only ffinet_handlers,ffinet_deno,deno_ws]'
 *
 * Needs a soft fd limit above the connection count (both processes hold one
 * fd per connection).
 *
 * @module
 */
import { readProcFile } from "../ffi/process.ts";
import { integerFlag, parseArgs } from "../examples/_args.ts";

const args = parseArgs(Deno.args, {
  usage: "ws_idle_rss.ts [--connections N] [--warmup N] [--idle-ms MS] [--only a,b]",
  strings: { connections: "10000", warmup: "200", "idle-ms": "1000", only: "" },
});
const count = integerFlag(args, "connections", 1, "a number of connections");
const warmup = integerFlag(args, "warmup", 0, "a number of connections");
const idleMs = integerFlag(args, "idle-ms", 0, "a whole number of milliseconds");
const here = new URL(".", import.meta.url).pathname;
const deno = Deno.execPath();
const echo = (...flags: string[]) => [
  deno,
  "run",
  "--allow-ffi",
  "--allow-env",
  "--allow-read",
  "--allow-net",
  `${here}ws_echo.ts`,
  "--port",
  "{port}",
  ...flags,
];
const servers: Record<string, string[]> = {
  ffinet_handlers: echo("--handlers"),
  ffinet_deno: echo(),
  deno_ws: echo("--deno-serve"),
};
const onlyFlag = args.strings.only ?? "";
const only = onlyFlag === "" ? Object.keys(servers) : onlyFlag.split(",");

function rssKiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readProcFile(`/proc/${pid}/status`))?.[1] ?? NaN);
}

const encoder = new TextEncoder();
const upgrade = encoder.encode(
  "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
);
/** A masked 64-byte text frame (mask key 1 2 3 4). */
const message = (() => {
  const payload = encoder.encode("x".repeat(64));
  const frame = new Uint8Array(2 + 4 + 64);
  frame.set([0x81, 0x80 | 64, 1, 2, 3, 4]);
  for (let i = 0; i < 64; i++) frame[6 + i] = payload[i]! ^ (i % 4 + 1);
  return frame;
})();
/** The 101 head and the echo: the head ends with CRLFCRLF, the echo is 2 + 64 bytes. */
const ECHO_BYTES = 66;

/** Open one WebSocket: handshake, one message and its echo. */
async function openSocket(port: number, name: string): Promise<Deno.TcpConn> {
  const c = await Deno.connect({ hostname: "127.0.0.1", port });
  await c.write(upgrade);
  const buf = new Uint8Array(1024);
  let got = new Uint8Array(0);
  let sent = false;
  for (;;) {
    const text = new TextDecoder().decode(got);
    const end = text.indexOf("\r\n\r\n");
    if (end >= 0) {
      if (!text.startsWith("HTTP/1.1 101")) throw new Error(`${name}: ${text.slice(0, 40)}`);
      if (!sent) {
        await c.write(message);
        sent = true;
      }
      if (got.length - (end + 4) >= ECHO_BYTES) return c;
    }
    const r = await c.read(buf);
    if (r === null) throw new Error(`${name}: connection closed`);
    const next = new Uint8Array(got.length + r);
    next.set(got);
    next.set(buf.subarray(0, r), got.length);
    got = next;
  }
}

async function waitListening(port: number): Promise<void> {
  const end = Date.now() + 30_000;
  for (;;) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch (e) {
      if (Date.now() > end) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

async function measure(name: string, cmd: string[], port: number) {
  const [exe, ...rest] = cmd.map((a) => a.replace("{port}", String(port)));
  const child = new Deno.Command(exe!, { args: rest, stdout: "null", stderr: "inherit" }).spawn();
  const conns: Deno.TcpConn[] = [];
  try {
    await waitListening(port);
    const open = async (n: number, keep: boolean) => {
      const batch = 200;
      for (let i = 0; i < n; i += batch) {
        const opened = await Promise.all(
          Array.from({ length: Math.min(batch, n - i) }, () => openSocket(port, name)),
        );
        if (keep) conns.push(...opened);
        else for (const c of opened) c.close();
      }
    };
    // Warm up the server with one round of sockets (200), closed again.
    await open(warmup, false);
    await new Promise((r) => setTimeout(r, 1000));
    const before = rssKiB(child.pid);
    await open(count, true);
    await new Promise((r) => setTimeout(r, idleMs));
    const after = rssKiB(child.pid);
    return { name, before, after, perConnKiB: (after - before) / count };
  } finally {
    for (const c of conns) c.close();
    child.kill("SIGKILL");
    await child.status;
  }
}

let port = 12000 + Math.floor(Math.random() * 16000); // below the ephemeral range
const rows = [];
for (const name of only) {
  const cmd = servers[name];
  if (!cmd) throw new Error(`unknown server ${name}`);
  rows.push(await measure(name, cmd, port++));
}
console.log(`idle WebSockets: ${count}, RSS read after ${idleMs} ms idle`);
console.log("server            rss_before_MiB  rss_after_MiB  KiB_per_conn  x_deno_ws");
const base = rows.find((r) => r.name === "deno_ws");
for (const r of rows) {
  const x = base ? ((r.after - r.before) / (base.after - base.before)).toFixed(2) : "-";
  console.log(
    `${r.name.padEnd(17)} ${(r.before / 1024).toFixed(1).padStart(14)} ${
      (r.after / 1024).toFixed(1).padStart(14)
    } ${r.perConnKiB.toFixed(2).padStart(13)} ${x.padStart(10)}`,
  );
}
for (const r of rows) console.log(JSON.stringify({ ...r, connections: count }));
