// Reference for `deno task bench`: "Hello, World!" on Bun.serve (run with `bun`, not Deno).
// deno-lint-ignore-file no-explicit-any
const Bun = (globalThis as any).Bun;
const port = Number((globalThis as any).process.argv[2] ?? 9204);
Bun.serve({
  hostname: "127.0.0.1",
  port,
  fetch: () => new Response("Hello, World!", { headers: { "content-type": "text/plain" } }),
});
console.log(`listening on 127.0.0.1:${port}`);
