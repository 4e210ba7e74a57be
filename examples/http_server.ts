/**
 * A small HTTP/1.1 app on ffinet's `serve()` (the `Deno.serve`-shaped
 * server in `http/`).
 *
 * Routes: `GET /` → "Hello, World!"; `GET /stats` → process counters as
 * JSON; `GET /slow` → answers after 500 ms (for drain tests);
 * `POST /echo` → the body back. Anything else → 404. `HEAD` works on every
 * route (no body, GET's headers).
 *
 * `--user-id`/`--group-id`: after binding (e.g. port 80 as root), drop to
 * that uid/gid (supplementary groups cleared) before serving.
 *
 * SIGTERM/SIGINT: stop accepting, finish in-flight requests (up to
 * `--drain-ms`), close idle keep-alive connections, exit 0.
 *
 *     deno run --allow-ffi --allow-env examples/http_server.ts --host 127.0.0.1 --port 8080
 *
 * @module
 */
import { setgid, setgroups, setuid } from "../ffi/process.ts";
import { serve } from "../http/mod.ts";
import { integerFlag, parseArgs } from "./_args.ts";

const args = parseArgs(Deno.args, {
  usage: "http_server.ts [--host H] [--port P] [--reuse-port] [--idle-timeout-ms N] " +
    "[--header-timeout-ms N] [--drain-ms N] [--busy-wait-ms N] [--slice-ms N] [--user-id UID] " +
    "[--group-id GID]",
  defaults: { host: "127.0.0.1", port: 8080 },
  booleans: ["reuse-port"],
  strings: {
    "idle-timeout-ms": "60000",
    "header-timeout-ms": "10000",
    "drain-ms": "10000",
    "busy-wait-ms": "10",
    "slice-ms": "10",
    "user-id": "",
    "group-id": "",
  },
});
const ms = (name: string, min = 0) =>
  integerFlag(args, name, min, "a whole number of milliseconds");

let requests = 0;
const HELLO = { headers: { "content-type": "text/plain" } };

async function handler(req: Request): Promise<Response> {
  requests++;
  const path = new URL(req.url).pathname;
  const get = req.method === "GET" || req.method === "HEAD";
  if (path === "/" && get) return new Response("Hello, World!", HELLO);
  if (path === "/stats" && get) {
    return Response.json({
      pid: Deno.pid,
      worker: Deno.env.get("FFINET_WORKER_ID") ?? null,
      requests,
    });
  }
  if (path === "/slow" && get) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    return new Response("slow\n");
  }
  if (path === "/echo" && req.method === "POST") {
    return new Response(await req.bytes(), {
      headers: { "content-type": "application/octet-stream" },
    });
  }
  return new Response("Not Found\n", { status: 404 });
}

let server;
try {
  server = serve({
    hostname: args.host,
    port: args.port,
    reusePort: args.booleans.has("reuse-port"),
    idleTimeoutMs: ms("idle-timeout-ms"),
    headerTimeoutMs: ms("header-timeout-ms"),
    drainTimeoutMs: ms("drain-ms"),
    maxHeaderBytes: 8192,
    maxBodyBytes: 1024 * 1024,
    drainOnSignals: true,
    reactor: { busyWaitMs: ms("busy-wait-ms"), sliceMs: ms("slice-ms", 1) },
    onListen() {},
  }, handler);
} catch (e) {
  console.error((e as Error).message);
  Deno.exit(1);
}

// Started as root to bind a privileged port: drop to the configured
// user/group now that the socket is bound, before serving anything.
try {
  const gid = args.strings["group-id"]!, uid = args.strings["user-id"]!;
  if (gid !== "" || uid !== "") setgroups([]);
  if (gid !== "") setgid(Number(gid));
  if (uid !== "") setuid(Number(uid));
} catch (e) {
  console.error(`Cannot drop privileges: ${(e as Error).message}`);
  Deno.exit(1);
}

console.log(`listening on ${args.host}:${server.addr.port}`);
await server.finished;
