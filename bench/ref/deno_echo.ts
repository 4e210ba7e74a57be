// Reference for `deno task bench`: an echo server on Deno's own Deno.listen.
const port = Number(Deno.args[0] ?? 9201);
const listener = Deno.listen({ hostname: "127.0.0.1", port });
console.log(`listening on 127.0.0.1:${port}`);
for await (const conn of listener) {
  conn.setNoDelay(true);
  conn.readable.pipeTo(conn.writable).catch(() => {});
}
