/**
 * serve() asks for no more than FFI: code moved from `Deno.serve` runs with
 * `--allow-ffi` alone (the environment variables ffinet looks at read as
 * unset without `--allow-env`, and no prompt appears), and `workers`, which
 * re-runs the main module in Workers, is refused at once with the reason when
 * that module cannot be read.
 *
 * @module
 */
import { assert, assertEquals, assertMatch } from "@std/assert";

const APP = new URL("./fixtures/ffi_only_app.ts", import.meta.url).pathname;

function start(args: string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", "--allow-ffi", APP, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

Deno.test("permissions: serve() runs with --allow-ffi alone (no --allow-env, no --allow-net)", async () => {
  const child = start([]);
  const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  try {
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let out = "";
    while (!out.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      out += value;
    }
    const port = out.match(/listening on 127\.0\.0\.1:(\d+)/)?.[1];
    assert(port !== undefined, `no listening line: ${JSON.stringify(out)}`);
    const res = await fetch(`http://127.0.0.1:${port}/`);
    assertEquals(await res.text(), "ffi only");
    while (!(await reader.read()).done) { /* drain until the app exits */ }
    const status = await child.status;
    const stderr = await new Response(child.stderr).text();
    assertEquals(status.code, 0, stderr);
    assertEquals(stderr, "", "no warning, prompt or error on stderr");
  } finally {
    clearTimeout(timer);
  }
});

Deno.test("permissions: serve({ workers }) without --allow-read for the main module is refused at once", async () => {
  const child = start(["workers"]);
  const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  try {
    const out = await child.output();
    const text = new TextDecoder().decode(out.stdout);
    assertMatch(text, /^refused: Cannot serve with workers: .* needs --allow-read for it\n$/);
    assertEquals(out.code, 0);
  } finally {
    clearTimeout(timer);
  }
});
