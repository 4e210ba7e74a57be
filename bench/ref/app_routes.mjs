// The app of `deno task bench --only app` (the same routes as compare.sh's `app` mode):
// a small Hono router of the kind a real service has (text, JSON, a path parameter with
// a query and a header, a JSON body). Each server's file only wires it to its server.
export function routes(app) {
  app.get("/", (c) => c.text("Hello, World!"));
  app.get("/json", (c) => c.json({ message: "Hello, World!" }));
  app.get("/user/:id", (c) =>
    c.json({
      id: c.req.param("id"),
      q: c.req.query("q") ?? null,
      agent: c.req.header("user-agent") ?? null,
    }));
  app.post("/echo", async (c) => c.json(await c.req.json()));
  return app;
}
