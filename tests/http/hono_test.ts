/**
 * A Hono app runs unchanged on ffinet's `serve(app.fetch)`: routing with
 * params, JSON in and out, headers, status codes (201, 404, 500 through
 * `app.onError`) and middleware, checked with `fetch` over 127.0.0.1.
 *
 * @module
 */
import { assertEquals, assertMatch } from "@std/assert";
import { Hono } from "npm:hono@4.13.19";
import { startServer } from "./_serve.ts";

function makeApp(): Hono {
  const app = new Hono();
  // middleware: timing header on every response, and a guard on /admin
  app.use("*", async (c, next) => {
    const t0 = performance.now();
    await next();
    c.header("x-response-time", `${(performance.now() - t0).toFixed(1)}ms`);
    c.header("x-powered-by", "hono-on-ffinet");
  });
  app.use("/admin/*", async (c, next) => {
    if (c.req.header("authorization") !== "Bearer secret") return c.text("nope", 401);
    await next();
  });
  app.get("/", (c) => c.text("Hello Hono!"));
  app.get("/users/:id", (c) => c.json({ id: c.req.param("id"), q: c.req.query("q") ?? null }));
  app.get(
    "/posts/:post/comments/:comment",
    (c) => c.json({ post: c.req.param("post"), comment: c.req.param("comment") }),
  );
  app.post("/users", async (c) => {
    const body = await c.req.json<{ name: string }>();
    return c.json({ created: body.name, length: body.name.length }, 201, { location: "/users/7" });
  });
  app.get("/admin/panel", (c) => c.text("panel"));
  app.get(
    "/headers",
    (c) => c.json({ ua: c.req.header("user-agent"), x: c.req.header("x-thing") }),
  );
  app.get("/boom", () => {
    throw new Error("boom (expected by the test)");
  });
  app.onError((err, c) => c.json({ error: err.message }, 500));
  app.notFound((c) => c.json({ error: "not found", path: c.req.path }, 404));
  return app;
}

Deno.test("hono: an unchanged Hono app on serve(app.fetch): routing, params, JSON, headers, 201/401/404/500, middleware", async () => {
  const app = makeApp();
  const server = startServer({}, app.fetch);
  const base = `http://127.0.0.1:${server.port}`;
  try {
    {
      const r = await fetch(`${base}/`);
      assertEquals(r.status, 200);
      assertEquals(await r.text(), "Hello Hono!");
      assertEquals(r.headers.get("x-powered-by"), "hono-on-ffinet");
      assertMatch(r.headers.get("x-response-time") ?? "", /^\d+\.\dms$/);
      assertMatch(r.headers.get("content-type") ?? "", /^text\/plain/);
    }
    {
      const r = await fetch(`${base}/users/42?q=abc`);
      assertEquals(r.status, 200);
      assertMatch(r.headers.get("content-type") ?? "", /^application\/json/);
      assertEquals(await r.json(), { id: "42", q: "abc" });
    }
    {
      const r = await fetch(`${base}/posts/p1/comments/c%202`);
      assertEquals(await r.json(), { post: "p1", comment: "c 2" });
    }
    {
      const r = await fetch(`${base}/users`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ name: "Ada Lovelace" }),
      });
      assertEquals(r.status, 201);
      assertEquals(r.headers.get("location"), "/users/7");
      assertEquals(await r.json(), { created: "Ada Lovelace", length: 12 });
    }
    {
      const r = await fetch(`${base}/admin/panel`);
      assertEquals(r.status, 401);
      assertEquals(await r.text(), "nope");
      const ok = await fetch(`${base}/admin/panel`, {
        headers: { authorization: "Bearer secret" },
      });
      assertEquals(ok.status, 200);
      assertEquals(await ok.text(), "panel");
    }
    {
      const r = await fetch(`${base}/headers`, {
        headers: { "user-agent": "hono-test/1", "x-thing": "v1" },
      });
      assertEquals(await r.json(), { ua: "hono-test/1", x: "v1" });
    }
    {
      const r = await fetch(`${base}/missing/route`);
      assertEquals(r.status, 404);
      assertEquals(await r.json(), { error: "not found", path: "/missing/route" });
    }
    {
      const r = await fetch(`${base}/boom`);
      assertEquals(r.status, 500);
      assertEquals(await r.json(), { error: "boom (expected by the test)" });
      assertEquals(r.headers.get("x-powered-by"), "hono-on-ffinet");
    }
    {
      // HEAD through Hono's GET route: no body, same content-type
      const r = await fetch(`${base}/users/1`, { method: "HEAD" });
      assertEquals(r.status, 200);
      assertEquals(await r.text(), "");
      assertMatch(r.headers.get("content-type") ?? "", /^application\/json/);
    }
  } finally {
    await server.close();
  }
});
