/**
 * Memory of idle keep-alive connections: starts a server as a child process,
 * opens `--connections` (default 10,000) keep-alive connections to it, sends
 * one request on each and reads the response, then reports the server's RSS
 * (VmRSS from /proc/<pid>/status) before and after, and per connection:
 * 1 s after the last connection was opened, or at each of the `--idle-ms`
 * times (e.g. `--idle-ms 1000,10000,30000`).
 *
 *     sh -c 'ulimit -n 20000 && deno run --allow-ffi --allow-read --allow-run --allow-net --allow-env \
 *       bench/http_idle_rss.ts [--connections N] [--idle-ms MS,MS,...] [--only ffinet_serve,deno_serve,...]'
 *
 * Needs a soft fd limit above the connection count (both processes hold one
 * fd per connection).
 *
 * @module
 */
import { integerFlag, parseArgs } from "../examples/_args.ts";
import { benchServer, exchange, idleTimes, runIdleRss } from "./_idle_rss.ts";

const args = parseArgs(Deno.args, {
  usage: "http_idle_rss.ts [--connections N] [--idle-ms MS,MS,...] [--only a,b]",
  strings: { connections: "10000", "idle-ms": "1000", only: "" },
});
const count = integerFlag(args, "connections", 1, "a number of connections");
const readAt = idleTimes(args.strings["idle-ms"] ?? "");
const here = new URL(".", import.meta.url).pathname;
const deno = Deno.execPath();
const servers: Record<string, string[]> = {
  ffinet_serve: benchServer("http_serve.ts"),
  ffinet_raw: benchServer("http_raw.ts"),
  deno_serve: [deno, "run", "--allow-net", `${here}ref/deno_http.ts`, "{port}"],
  node_http: ["node", `${here}ref/node_http.mjs`, "{port}"],
};
const request = new TextEncoder().encode("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");

await runIdleRss({
  title: `idle keep-alive connections: ${count}`,
  servers,
  only: args.strings.only ?? "",
  count,
  // Warm up the server with one round of 200 connections, closed again.
  warmup: 200,
  warmupPauseMs: 500,
  batch: 200,
  base: "deno_serve",
  nameWidth: 13,
  ready: "stdout",
  async open(port, name) {
    const c = await Deno.connect({ hostname: "127.0.0.1", port });
    await exchange(c, request, "Hello, World!", name);
    return c;
  },
  readAt,
});
