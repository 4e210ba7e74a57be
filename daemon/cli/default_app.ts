/**
 * The app `deno task serve` runs when it is given none: a hello-world HTTP
 * server on {@linkcode serve} from `http/`.
 *
 * - `GET /` (and any other path) answers `Hello, World!`.
 * - Under a supervisor or systemd socket activation (`LISTEN_FDS`), it
 *   serves on the inherited listening socket; run alone, it listens on
 *   `127.0.0.1:8080` (or `$HOST`/`$PORT`).
 * - As a supervised worker (`FFINET_WORKER_ID` set), SIGTERM drains it:
 *   it stops accepting, finishes the requests in flight and exits 0.
 *
 * @example
 * ```sh
 * deno run --allow-net --allow-env --allow-read --allow-ffi daemon/cli/default_app.ts
 * curl http://127.0.0.1:8080/   # Hello, World!
 * ```
 *
 * @module
 */
import { checkInteger } from "../../ffi/validate.ts";
import { serve } from "../../http/mod.ts";

/** The greeting every request gets. */
const GREETING = "Hello, World!";

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // no --allow-env: the defaults
  }
}

if (import.meta.main) {
  const activated = (env("LISTEN_FDS") ?? "") !== "";
  const port = checkInteger("start the default app", "PORT", Number(env("PORT") ?? 8080), 0, 65535);
  serve(
    activated ? {} : { hostname: env("HOST") ?? "127.0.0.1", port },
    () => new Response(GREETING, { headers: { "content-type": "text/plain" } }),
  );
}
