// Reference for `deno task bench`: "Hello, World!" on Deno.serve.
const port = Number(Deno.args[0] ?? 9200);
Deno.serve({
  hostname: "127.0.0.1",
  port,
  onListen: () => console.log(`listening on 127.0.0.1:${port}`),
}, () => new Response("Hello, World!", { headers: { "content-type": "text/plain" } }));
