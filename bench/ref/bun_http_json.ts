// Reference for the JSON benchmark: Response.json on Bun.serve (run with `bun`, not Deno).
// deno-lint-ignore-file no-explicit-any
const Bun = (globalThis as any).Bun;
const port = Number((globalThis as any).process.argv[2] ?? 9204);
Bun.serve({
  hostname: "127.0.0.1",
  port,
  fetch: () => Response.json({ message: "Hello, World!" }),
});
console.log(`listening on 127.0.0.1:${port}`);
