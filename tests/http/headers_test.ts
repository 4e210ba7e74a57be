/**
 * `HttpHeaders`: repeated fields joined with ", ", except `Cookie`, joined
 * with "; " (RFC 9110 §5.3, RFC 6265 §5.4), and `webPairs()` merging cookie
 * lines for a web `Headers` (which would join them with ", ").
 *
 * @module
 */
import { assertEquals } from "@std/assert";
import { HttpHeaders } from "../../http/mod.ts";

Deno.test("headers: repeated fields join with ', ', Cookie lines with '; '", () => {
  const h = new HttpHeaders([
    "cookie",
    "a=1",
    "accept",
    "text/html",
    "cookie",
    "b=2; c=3",
    "accept",
    "*/*",
  ]);
  assertEquals(h.get("Cookie"), "a=1; b=2; c=3");
  assertEquals(h.get("accept"), "text/html, */*");
  assertEquals(h.getAll("cookie"), ["a=1", "b=2; c=3"]);
  assertEquals(h.get("missing"), null);
  assertEquals(new HttpHeaders(["cookie", "only=1"]).get("cookie"), "only=1");
});

Deno.test("headers: webPairs() makes one Cookie field where the first stood; pairs() keeps them", () => {
  const list = ["host", "x", "cookie", "a=1", "x-y", "1", "cookie", "b=2", "cookie", "c=3"];
  const h = new HttpHeaders(list);
  assertEquals(h.webPairs(), [["host", "x"], ["cookie", "a=1; b=2; c=3"], ["x-y", "1"]]);
  assertEquals(h.pairs().length, 5);
  assertEquals(new Headers(h.webPairs()).get("cookie"), "a=1; b=2; c=3");
  // Without two cookie lines it is pairs() as is.
  const one = new HttpHeaders(["cookie", "a=1", "x", "1", "x", "2"]);
  assertEquals(one.webPairs(), one.pairs());
  assertEquals(new Headers(one.webPairs()).get("x"), "1, 2");
  // The list it wraps is never changed.
  assertEquals(list.length, 10);
  assertEquals(h.getAll("cookie"), ["a=1", "b=2", "c=3"]);
});
