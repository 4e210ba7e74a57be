// Reference for bench/tls_idle_rss.ts: "Hello, World!" on Deno.serve over TLS (rustls).
// Usage: deno run --allow-net --allow-read deno_https.ts PORT CERT KEY
const port = Number(Deno.args[0] ?? 9443);
Deno.serve({
  hostname: "127.0.0.1",
  port,
  cert: Deno.readTextFileSync(Deno.args[1]!),
  key: Deno.readTextFileSync(Deno.args[2]!),
  onListen: () => console.log(`listening on 127.0.0.1:${port}`),
}, () => new Response("Hello, World!", { headers: { "content-type": "text/plain" } }));
