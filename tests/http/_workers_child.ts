/**
 * The main module for tests/http/workers_test.ts: `serve({ workers: N })` on
 * 127.0.0.1 and the port given. Each response names the thread that served
 * it: the Worker's name and its kernel thread id (from /proc/thread-self/stat).
 *
 *     _workers_child.ts PORT WORKERS
 *
 * @module
 */
import { isServeWorker, serve } from "../../http/mod.ts";
import { readProcFile } from "../../ffi/process.ts";

const port = Number(Deno.args[0] ?? 0);
const workers = Number(Deno.args[1] ?? 2);
// deno-lint-ignore no-explicit-any
const name: string = isServeWorker() ? String((globalThis as any).name) : "main";
// The kernel thread id: the first field of /proc/thread-self/stat (read through libc).
const tid = readProcFile("/proc/thread-self/stat").split(" ")[0];

serve({
  hostname: "127.0.0.1",
  port,
  workers,
  drainOnSignals: true,
  onListen(addr) {
    if (addr.transport === "tcp") {
      console.log(`listening on ${addr.hostname}:${addr.port} (${name})`);
    }
  },
}, () => new Response(`${name} ${tid}`));
