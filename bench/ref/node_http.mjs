// Reference for `deno task bench`: "Hello, World!" on Node's http module.
import http from "node:http";
const port = Number(process.argv[2] ?? 9202);
http.createServer((_req, res) => {
  res.writeHead(200, { "content-type": "text/plain", "content-length": "13" });
  res.end("Hello, World!");
}).listen(port, "127.0.0.1", () => console.log(`listening on 127.0.0.1:${port}`));
