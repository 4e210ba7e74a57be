/**
 * The main module for tests/http/workers_crash_test.ts: `serve({ workers: 2 })`
 * on 127.0.0.1 and the port given. `GET /crash` makes the Worker that serves
 * it die of an uncaught async error (a rejected promise nobody handles);
 * every other request is answered with the Worker's name.
 *
 *     _workers_crash_child.ts PORT
 *
 * @module
 */
import { isServeWorker, serve } from "../../http/mod.ts";

const port = Number(Deno.args[0] ?? 0);
// deno-lint-ignore no-explicit-any
const name: string = isServeWorker() ? String((globalThis as any).name) : "main";

serve({
  hostname: "127.0.0.1",
  port,
  workers: 2,
  drainOnSignals: true,
  onListen() {
    console.log(`listening (${name})`);
  },
}, (req) => {
  if (new URL(req.url).pathname === "/crash") {
    setTimeout(() => Promise.reject(new Error(`crash of ${name}`)), 10);
  }
  return new Response(name);
});
