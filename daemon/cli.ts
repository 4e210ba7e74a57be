/**
 * `deno task serve`: the command line of ffinet's supervisor, as a file to
 * run (`deno run … daemon/cli.ts`, also by URL). It runs an app under a
 * supervisor in the foreground or as a daemon, and controls a running one
 * (`status`, `reload`, `stop`, `upgrade`). Run `deno task serve --help`
 * for the options; `cli/main.ts` holds the program, `supervisor/` the
 * supervisor it runs.
 *
 * @example
 * ```sh
 * deno task serve                                   # hello world on 127.0.0.1:8080
 * deno task serve ./app.ts --port 8080 --workers 4 -- --app-flag
 * deno task serve ./app.ts --daemon --pidfile /run/ffinet/app.pid
 * deno task serve status --pidfile /run/ffinet/app.pid
 * ```
 *
 * @module
 */
import { main } from "./cli/main.ts";

if (import.meta.main) Deno.exit(await main(Deno.args));
