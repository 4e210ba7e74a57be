/**
 * A small HTTP/1.1 app on ffinet's `serve()` (the `Deno.serve`-shaped
 * server in `http/`).
 *
 * Routes: `GET /` → "Hello, World!"; `GET /stats` → process counters as
 * JSON; `GET /slow` → answers after 500 ms (for drain tests);
 * `POST /echo` → the body back. Anything else → 404. `HEAD` works on every
 * route (no body, GET's headers).
 *
 * To serve a privileged port (80) as an unprivileged user, run the app under
 * the supervisor: `deno task serve --user USER --port 80 examples/http_server.ts`
 * binds as root and starts each worker as USER from the start. Dropping
 * privileges inside this process instead would keep the files root opened
 * before the drop (Deno's module cache among them) open for writing.
 *
 * SIGTERM/SIGINT: stop accepting, finish in-flight requests (up to
 * `--drain-ms`), close idle keep-alive connections, exit 0.
 *
 * Run it with exactly the permissions it needs (`--allow-env`: `/stats`
 * reports `FFINET_WORKER_ID`):
 *
 *     deno run --allow-ffi --allow-env examples/http_server.ts --host 127.0.0.1 --port 8080
 *
 * @module
 */
import { serve } from "../http/mod.ts";
import { integerFlag, parseArgs } from "./_args.ts";

const args = parseArgs(Deno.args, {
  usage: "http_server.ts [--host H] [--port P] [--reuse-port] [--idle-timeout-ms N] " +
    "[--header-timeout-ms N] [--drain-ms N] [--busy-wait-ms N] [--slice-ms N]",
  defaults: { host: "127.0.0.1", port: 8080 },
  booleans: ["reuse-port"],
  strings: {
    "idle-timeout-ms": "60000",
    "header-timeout-ms": "10000",
    "drain-ms": "10000",
    "busy-wait-ms": "10",
    "slice-ms": "10",
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

console.log(`listening on ${args.host}:${server.addr.port}`);
await server.finished;
