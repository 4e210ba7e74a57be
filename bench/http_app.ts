/**
 * Benchmark server: the Hono app of `bench/ref/app_routes.mjs` (the routes
 * of `../shared/bench/compare.sh app`) on ffinet's `serve()`, its handler
 * `app.fetch` unchanged.
 *
 *     deno run --allow-ffi --allow-env --allow-read bench/http_app.ts --port 8000
 *
 * Prints `listening on HOST:PORT` once it accepts connections.
 *
 * @module
 */
import { Hono } from "npm:hono@4.13.23";
import { serve } from "../http/serve.ts";
import { parseArgs } from "../examples/_args.ts";
import { routes } from "./ref/app_routes.mjs";

const args = parseArgs(Deno.args, {
  usage: "http_app.ts [--host H] [--port P]",
  defaults: { host: "127.0.0.1", port: 8000 },
});
serve({
  hostname: args.host,
  port: args.port,
  onListen(addr) {
    if (addr.transport === "tcp") console.log(`listening on ${addr.hostname}:${addr.port}`);
  },
}, routes(new Hono()).fetch);
