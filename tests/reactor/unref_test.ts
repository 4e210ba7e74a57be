/**
 * `Reactor.unref()`: a running reactor that is unref'd does not keep the
 * process alive; `ref()` makes it do so again; events are still handled
 * while something else keeps the process alive. Checked in child processes.
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import { runBounded } from "../_helpers.ts";

const REACTOR_MOD = new URL("../../reactor/mod.ts", import.meta.url).href;

/** Run `code` (with `Reactor` imported) in a new Deno process, at most 30 s. */
async function run(code: string) {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/main.ts`;
    await Deno.writeTextFile(
      file,
      `import { Listener, Reactor } from ${JSON.stringify(REACTOR_MOD)};\n${code}`,
    );
    return await runBounded(
      Deno.execPath(),
      { args: ["run", "--allow-all", "--no-lock", file], env: { NO_COLOR: "1" } },
      30_000,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("reactor unref: an unref'd running reactor lets the process exit", async () => {
  const r = await run(
    `const reactor = new Reactor();\nreactor.unref();\nvoid reactor.run();\n` +
      `setTimeout(() => console.log("done"), 50);\n`,
  );
  assertEquals([r.code, r.stdout], [0, "done\n"], r.stderr);
});

Deno.test("reactor unref: ref() after unref() keeps the process alive", async () => {
  const r = await run(
    `const reactor = new Reactor();\nreactor.unref();\nreactor.ref();\nvoid reactor.run();\n` +
      `Deno.unrefTimer(setTimeout(() => { console.log("alive"); Deno.exit(3); }, 1000));\n`,
  );
  assertEquals([r.code, r.stdout], [3, "alive\n"], r.stderr);
});

Deno.test("reactor unref: events are handled promptly while another task keeps the process alive", async () => {
  const r = await run(`
const reactor = new Reactor();
reactor.unref();
const running = reactor.run();
const listener = Listener.listen(reactor, { host: "127.0.0.1", port: 0 }, (conn) => {
  conn.onData = (d) => { conn.write(d); conn.close(); };
});
const port = listener.address().port;
const worst = [];
for (let i = 0; i < 5; i++) {
  await new Promise((r) => setTimeout(r, 150)); // let the reactor park
  const t0 = performance.now();
  const c = await Deno.connect({ hostname: "127.0.0.1", port });
  await c.write(new Uint8Array([1]));
  await c.read(new Uint8Array(1));
  c.close();
  worst.push(performance.now() - t0);
}
console.log(Math.max(...worst) < 1000 ? "prompt" : "slow " + worst.join(","));
listener.close();
reactor.stop();
await running;
reactor.close();
`);
  assertEquals([r.code, r.stdout], [0, "prompt\n"], r.stderr);
  assert(!r.stderr.includes("error"), r.stderr);
});
