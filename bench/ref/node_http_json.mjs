// Reference for the JSON benchmark: JSON.stringify on Node's http module.
import http from "node:http";
const port = Number(process.argv[2] ?? 9202);
http.createServer((_req, res) => {
  const body = JSON.stringify({ message: "Hello, World!" });
  res.writeHead(200, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
  });
  res.end(body);
}).listen(port, "127.0.0.1", () => console.log(`listening on 127.0.0.1:${port}`));
