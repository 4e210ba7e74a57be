// Reference for `deno task bench`: an echo server on Node's net module.
import net from "node:net";
const port = Number(process.argv[2] ?? 9203);
net.createServer((socket) => {
  socket.setNoDelay(true);
  socket.on("error", () => {});
  socket.pipe(socket);
}).listen(port, "127.0.0.1", () => console.log(`listening on 127.0.0.1:${port}`));
