/**
 * Memory of idle WebSockets: starts an echo server (`ws_echo.ts`) as a
 * child process, opens `--connections` (default 10,000) WebSockets to it
 * (the handshake by hand on a TCP connection, then one 64-byte text
 * message echoed on each), holds them open and silent, and reports the
 * server's RSS (VmRSS from /proc/<pid>/status) before, and per connection
 * at each of the `--idle-ms` times after the last one was opened (default
 * 1 s, 10 s, 30 s and 45 s: V8 gives the memory of a connect burst back
 * after some seconds of idleness, not at once; both servers also send their
 * keep-alive ping at 30 s, which this client does not answer, and would
 * close at 60 s). Servers: ffinet's handler API (`upgradeWithHandlers`),
 * ffinet's Deno-shaped `upgradeWebSocket`, and `Deno.serve` with Deno's own
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
import { integerFlag, parseArgs } from "../examples/_args.ts";
import { idleTimes, runIdleRss } from "./_idle_rss.ts";

const args = parseArgs(Deno.args, {
  usage: "ws_idle_rss.ts [--connections N] [--warmup N] [--idle-ms MS,MS,...] [--only a,b]",
  strings: { connections: "10000", warmup: "200", "idle-ms": "1000,10000,30000,45000", only: "" },
});
const count = integerFlag(args, "connections", 1, "a number of connections");
const warmup = integerFlag(args, "warmup", 0, "a number of connections");
const readAt = idleTimes(args.strings["idle-ms"] ?? "");
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

await runIdleRss({
  title: `idle WebSockets: ${count}, KiB per connection after each idle time`,
  servers,
  only: args.strings.only ?? "",
  count,
  // Warm up the server with one round of sockets (200 by default), closed again.
  warmup,
  warmupPauseMs: 1000,
  batch: 200,
  base: "deno_ws",
  nameWidth: 17,
  ready: "connect",
  open: openSocket,
  readAt,
});
