/**
 * Benchmark server: ffinet's low-level entry point, `serveRaw()`, answering
 * every request with a prebuilt `"Hello, World!"` (`text/plain`), with the
 * repeated-head memo on (its opt-in fast path; `--no-memo` turns it off).
 * Compared against the C epoll server (`../shared/bench/c_http.c`).
 *
 *     deno run --allow-ffi --allow-env --allow-read bench/http_raw.ts --port 8000 [--no-memo]
 *
 * @module
 */
import { prebuilt, serveRaw } from "../http/raw.ts";
import { parseArgs } from "../examples/_args.ts";

const args = parseArgs(Deno.args, {
  usage: "http_raw.ts [--host H] [--port P] [--no-memo]",
  defaults: { host: "127.0.0.1", port: 8000 },
  booleans: ["no-memo"],
});
const hello = prebuilt(200, "Hello, World!", { contentType: "text/plain" });
serveRaw({
  hostname: args.host,
  port: args.port,
  repeatedHeadMemo: !args.booleans.has("no-memo"),
  onListen(addr) {
    if (addr.transport === "tcp") console.log(`listening on ${addr.hostname}:${addr.port}`);
  },
}, (_req, res) => res.sendPrebuilt(hello));
