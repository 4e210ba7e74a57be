/**
 * An HTTPS `serve()` in its own process, for the tests that measure it from
 * outside (its CPU time and RSS through /proc/<pid>/stat) or point scanners
 * at it. Configured through the environment:
 *
 * - FFINET_TLS_CERT, FFINET_TLS_KEY: PEM file paths (required);
 * - FFINET_WORKERS: serve Workers (default: none, one reactor);
 * - FFINET_HANDSHAKE_MS: handshakeTimeoutMs (default: serve()'s);
 *
 * - FFINET_PORT: the port (default: any free one).
 *
 * It prints `listening PORT` (once per Worker) and answers `ok` to every
 * request.
 *
 * @module
 */
import { serve } from "../../http/mod.ts";

const env = (name: string) => Deno.env.get(name);
const workers = env("FFINET_WORKERS");
const handshake = env("FFINET_HANDSHAKE_MS");
serve({
  hostname: "127.0.0.1",
  port: Number(env("FFINET_PORT") ?? 0),
  cert: Deno.readTextFileSync(env("FFINET_TLS_CERT")!),
  key: Deno.readTextFileSync(env("FFINET_TLS_KEY")!),
  ...(workers === undefined ? {} : { workers: Number(workers) }),
  ...(handshake === undefined ? {} : { handshakeTimeoutMs: Number(handshake) }),
  onListen: (addr) => console.log(`listening ${"port" in addr ? addr.port : 0}`),
}, () => new Response("ok"));
