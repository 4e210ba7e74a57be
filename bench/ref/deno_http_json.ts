// Reference for the JSON benchmark: Response.json on Deno.serve.
const port = Number(Deno.args[0] ?? 9200);
Deno.serve({
  hostname: "127.0.0.1",
  port,
  onListen: () => console.log(`listening on 127.0.0.1:${port}`),
}, () => Response.json({ message: "Hello, World!" }));
