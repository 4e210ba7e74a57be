// Reference for `deno task bench --only app`: the Hono app on Deno.serve.
import { Hono } from "npm:hono@4.13.23";
import { routes } from "./app_routes.mjs";
const port = Number(Deno.args[0] ?? 9300);
Deno.serve({
  hostname: "127.0.0.1",
  port,
  onListen: () => console.log(`listening on 127.0.0.1:${port}`),
}, routes(new Hono()).fetch);
