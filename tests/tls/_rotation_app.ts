/**
 * An HTTPS app for the rotation tests: `serve({ certFile, keyFile })` with
 * the PEM paths in FFINET_TEST_CERT / FFINET_TEST_KEY. Run by the
 * supervisor it serves the socket it is handed; with FFINET_TEST_PORT it
 * binds 127.0.0.1:PORT itself on FFINET_TEST_WORKERS serve Workers
 * (default 2) and prints `listening PORT` once per Worker. Every response
 * says which process and thread answered: `PID/THREAD`.
 *
 * @module
 */
import { serve } from "../../http/mod.ts";

if (import.meta.main) {
  const thread = (globalThis as { name?: string }).name || "main";
  const port = Deno.env.get("FFINET_TEST_PORT");
  const files = {
    certFile: Deno.env.get("FFINET_TEST_CERT")!,
    keyFile: Deno.env.get("FFINET_TEST_KEY")!,
  };
  const own = port === undefined ? {} : {
    hostname: "127.0.0.1",
    port: Number(port),
    workers: Number(Deno.env.get("FFINET_TEST_WORKERS") ?? 2),
  };
  serve({
    ...files,
    ...own,
    onListen: (addr) => console.log(`listening ${"port" in addr ? addr.port : 0}`),
  }, () => new Response(`${Deno.pid}/${thread}`));
}
