/**
 * Name resolution through getaddrinfo on a pool thread (ffi/dns.ts), and
 * connect() by host name, as Deno.connect resolves it.
 */
import { assert, assertEquals, assertRejects } from "@std/assert";
import { AddressLookupError, resolveHost } from "../../ffi/dns.ts";
import type { InetAddress } from "../../ffi/sockaddr.ts";
import { connect, Listener } from "../../reactor/mod.ts";
import { waitFor, withFdCheck } from "../_helpers.ts";
import { onReactor, text } from "../reactor/_util.ts";

Deno.test("dns: localhost resolves to loopback addresses with the port set, no duplicates", async () => {
  const addrs = await resolveHost("localhost", { port: 8080 });
  assert(addrs.length >= 1, "localhost did not resolve");
  for (const a of addrs) {
    assertEquals(a.port, 8080);
    assert(a.address === "127.0.0.1" || a.address === "::1", `unexpected ${a.address}`);
  }
  assertEquals(new Set(addrs.map((a) => a.address)).size, addrs.length);
  const v4 = await resolveHost("localhost", { family: "inet" });
  assert(v4.every((a) => a.family === "inet") && v4.length >= 1);
  assertEquals(await resolveHost("127.0.0.1"), [{ family: "inet", address: "127.0.0.1", port: 0 }]);
});

Deno.test("dns: an unknown name is an AddressLookupError with its EAI code; bad input is refused", async () => {
  const e = await assertRejects(() => resolveHost("no-such-host.invalid"), AddressLookupError);
  assert(["EAI_NONAME", "EAI_AGAIN", "EAI_NODATA"].includes(e.code), e.code);
  assert(e.message.startsWith('Cannot resolve "no-such-host.invalid"'), e.message);
  await assertRejects(() => resolveHost(""), TypeError);
  await assertRejects(() => resolveHost("a\0b"), TypeError, "NUL");
  await assertRejects(() => resolveHost("localhost", { port: 70000 }), RangeError, "port");
  await assertRejects(() => resolveHost("x".repeat(2000)), RangeError);
});

Deno.test("connect: a host name (localhost) is resolved as Deno.connect does", () =>
  withFdCheck(async () => {
    await onReactor(async (reactor) => {
      using listener = Listener.listen(reactor, { host: "127.0.0.1", port: 0 }, (conn) => {
        conn.write(new TextEncoder().encode("hi"));
        conn.end();
      });
      const port = (listener.address() as InetAddress).port;
      const conn = await connect(reactor, { host: "localhost", port });
      assertEquals((conn.remoteAddress() as InetAddress).port, port);
      let got = "";
      conn.onData = (d) => got += text(d);
      await waitFor(() => got === "hi", 3000, "the greeting over localhost");
      conn.close();
      await assertRejects(
        () => connect(reactor, { host: "no-such-host.invalid", port }),
        AddressLookupError,
      );
      await waitFor(() => reactor.stats.registrations === 1, 2000, "the client to close");
    });
  }));
