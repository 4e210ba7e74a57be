/**
 * An HTTPS server on two serve Workers for the resumption test: the
 * certificate paths come in FFINET_TLS_CERT/FFINET_TLS_KEY, the ticket key
 * rotation period (ms) in FFINET_TLS_ROTATION_MS (default an hour); each Worker
 * prints `listening PORT` and answers with its Worker name and whether the
 * TLS session was resumed.
 *
 * @module
 */
import { serve } from "../../http/mod.ts";

const name = (globalThis as { name?: string }).name ?? "main";
serve({
  hostname: "127.0.0.1",
  port: 0,
  workers: 2,
  cert: Deno.readTextFileSync(Deno.env.get("FFINET_TLS_CERT")!),
  key: Deno.readTextFileSync(Deno.env.get("FFINET_TLS_KEY")!),
  ticketKeyRotationMs: Number(Deno.env.get("FFINET_TLS_ROTATION_MS") ?? 3_600_000),
  onListen: (addr) => console.log(`listening ${"port" in addr ? addr.port : 0}`),
}, (_req, info) => new Response(`${name} resumed=${info.tls?.sessionReused}`));
