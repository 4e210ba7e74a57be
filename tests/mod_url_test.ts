/**
 * `mod.ts` imports nothing outside the repository, so a Deno program can
 * import ffinet by URL. Served here from the working tree over a loopback
 * HTTP server; a child process with no config file imports it and uses it.
 */
import { assert, assertEquals } from "@std/assert";

const root = new URL("../", import.meta.url);

Deno.test("mod.ts works when imported by URL from a plain HTTP server", async () => {
  const requested: string[] = [];
  const ac = new AbortController();
  let port = 0;
  const listening = Promise.withResolvers<void>();
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    signal: ac.signal,
    onListen: (addr) => {
      port = addr.port;
      listening.resolve();
    },
  }, async (req) => {
    const path = new URL(req.url).pathname;
    requested.push(path);
    if (path.includes("..") || !path.endsWith(".ts")) return new Response("no", { status: 404 });
    try {
      const body = await Deno.readFile(new URL(`.${path}`, root));
      return new Response(body, { headers: { "content-type": "application/typescript" } });
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
  await listening.promise;
  const dir = await Deno.makeTempDir();
  try {
    const script = `${dir}/main.ts`;
    await Deno.writeTextFile(
      script,
      `import { Socket, Reactor, Interest } from "http://127.0.0.1:${port}/mod.ts";
const [a, b] = Socket.pair();
const reactor = new Reactor();
const buf = new Uint8Array(16);
let got = "";
const reg = reactor.register(a.fd, Interest.READABLE, () => {
  const n = a.read(buf);
  if (n) got += new TextDecoder().decode(buf.subarray(0, n));
  reactor.stop();
});
b.write(new TextEncoder().encode("by url"));
await reactor.run();
reg.deregister();
a.close();
b.close();
reactor.close();
console.log(got);
`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--no-config",
        "--no-lock",
        "--allow-ffi",
        `--allow-import=127.0.0.1:${port}`,
        script,
      ],
      cwd: dir,
      env: { DENO_DIR: `${dir}/cache` },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assertEquals(new TextDecoder().decode(out.stdout).trim(), "by url", stderr);
    assert(out.success, stderr);
    // Only library files were fetched, all from this server.
    assert(requested.includes("/mod.ts"));
    assert(requested.length >= 10, `only ${requested.length} modules were fetched`);
    for (const path of requested) {
      assert(/^\/(mod\.ts|(ffi|reactor|tls|http)(\/[a-z_0-9]+)+\.ts)$/.test(path), path);
    }
  } finally {
    ac.abort();
    await server.finished;
    await Deno.remove(dir, { recursive: true });
  }
});
