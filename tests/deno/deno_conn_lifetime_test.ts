/**
 * The lifetime of the Deno-shaped adapters' objects: a program that never
 * calls `close()` leaks nothing (no CLOSE_WAIT, no fd) and exits; half-close
 * where the program asks for it (`closeWrite()`, `allowHalfOpen`); `ref()`
 * and `unref()` decide whether an open listener or connection keeps the
 * process alive.
 */
import { assert, assertEquals, assertRejects } from "@std/assert";
import { listen } from "../../deno/mod.ts";
import { sleep, waitFor } from "../_helpers.ts";
import { scaled } from "../ffi/_emulation.ts";
import {
  adapterTest,
  bounded,
  closeWaitCount,
  connectTo,
  dec,
  enc,
  readAll,
  runScript,
  socketFds,
  writeAll,
} from "./_deno_conn.ts";

Deno.test("process: exits by itself once every adapter is closed; stays up while one is open", async () => {
  const exchange = `
    const listener = listen({ hostname: "127.0.0.1", port: 0 });
    const serving = (async () => {
      for await (const c of listener) c.readable.pipeTo(c.writable);
    })();
    const conn = await connect({ port: listener.addr.port });
    await conn.write(new TextEncoder().encode("ping"));
    await conn.closeWrite();
    const buf = new Uint8Array(16);
    const n = await conn.read(buf);
    console.log(new TextDecoder().decode(buf.subarray(0, n ?? 0)));
    await conn.read(buf);
    conn.close();
  `;
  // Emulated, a child deno takes seconds to start (about 3.5 s under qemu-user,
  // 0.07 s natively): every window here is scaled() (unchanged natively).
  const done = await runScript(
    `${exchange}\nlistener.close();\nawait serving;\n`,
    scaled(15_000),
  );
  assert(done.exited, `the process did not exit: ${done.stderr}`);
  assertEquals(done.code, 0, done.stderr);
  assertEquals(done.stdout.trim(), "ping");

  // The same script without closing the listener: it keeps serving, like Deno.listen.
  const open = await runScript(exchange, scaled(3000));
  assertEquals(open.stdout.trim(), "ping");
  assertEquals(open.exited, false, "the process exited with a listener still open");
});

Deno.test(
  "lifetime: 100 connections read to EOF and never closed leave no CLOSE_WAIT and no fd",
  adapterTest(async () => {
    const baseline = socketFds();
    const listener = listen({ hostname: "127.0.0.1", port: 0 });
    const port = listener.addr.port;
    const COUNT = 100;
    const seen: number[] = [];
    // Code written for Deno.listen that reads each request to EOF and never
    // calls close(): half the connections with read(), half with readable.
    const serving = (async () => {
      let i = 0;
      for await (const conn of listener) {
        const viaStream = i++ % 2 === 1;
        (async () => {
          let total = 0;
          if (viaStream) {
            for await (const chunk of conn.readable) total += chunk.byteLength;
          } else {
            const buf = new Uint8Array(1024);
            for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) total += n;
          }
          seen.push(total);
        })();
      }
    })();
    await Promise.all(Array.from({ length: COUNT }, async (_, i) => {
      const client = await Deno.connect({ hostname: "127.0.0.1", port });
      try {
        await writeAll(client, enc.encode(`request ${i}`.padEnd(100, ".")));
        await client.closeWrite();
        // The server's side closes by itself: the client reads EOF.
        assertEquals(await bounded(client.read(new Uint8Array(8)), 10_000, "EOF"), null);
      } finally {
        client.close();
      }
    }));
    assertEquals(seen.length, COUNT);
    assert(seen.every((n) => n === 100), `some reads were short: ${seen}`);
    await waitFor(() => closeWaitCount(port) === 0, 10_000, "no socket in CLOSE_WAIT");
    // Only the listener's own fd is left (the shared reactor's two fds are open too).
    // Only the listener's socket is left of the test's sockets (Deno opens
    // other fds of its own on the way, so sockets are what is counted).
    await waitFor(() => socketFds() === baseline + 1, 10_000, "the socket count to return");
    listener.close();
    await serving;
  }),
);

Deno.test(
  "lifetime: a write right after read() gives null is still sent; a later one is BadResource",
  adapterTest(async () => {
    const server = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    try {
      const { conn, peer } = await connectTo(server);
      await peer.write(enc.encode("question"));
      await peer.closeWrite();
      const buf = new Uint8Array(64);
      assertEquals(await conn.read(buf), 8);
      assertEquals(await conn.read(buf), null);
      await conn.write(enc.encode("answer")); // in the same task as the EOF: sent
      assertEquals(dec.decode(await readAll(peer)), "answer"); // then EOF: it closed itself
      await assertRejects(
        () => conn.write(enc.encode("late")),
        Deno.errors.BadResource,
        "allowHalfOpen",
      );
      conn.close(); // does nothing now, and does not throw
      peer.close();
    } finally {
      server.close();
    }
  }),
);

Deno.test(
  "half-close: with allowHalfOpen the program still writes after the peer's EOF, then closes",
  adapterTest(async () => {
    const listener = listen({ hostname: "127.0.0.1", port: 0, allowHalfOpen: true });
    try {
      const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
      const conn = await listener.accept();
      await client.write(enc.encode("the whole request"));
      await client.closeWrite();
      const request = dec.decode(await readAll(conn));
      assertEquals(request, "the whole request");
      await sleep(100); // a slow handler: the connection waits for it
      await conn.write(enc.encode(`got ${request.length} bytes`));
      conn.close();
      assertEquals(dec.decode(await readAll(client)), "got 17 bytes");
      client.close();
    } finally {
      listener.close();
    }
  }),
);

Deno.test(
  "half-close: closeWrite() first, the peer answers after our EOF, the connection closes at its EOF",
  adapterTest(async () => {
    const server = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    try {
      const { conn, peer } = await connectTo(server);
      await conn.write(enc.encode("ping"));
      await conn.closeWrite();
      assertEquals(dec.decode(await readAll(peer)), "ping");
      await sleep(100);
      await peer.write(enc.encode("pong"));
      peer.close();
      assertEquals(dec.decode(await readAll(conn)), "pong");
      // Both directions are done: the connection closed without close().
      await waitFor(() => conn.connection.state === "closed", 5000, "the connection to close");
    } finally {
      server.close();
    }
  }),
);

Deno.test("ref/unref: an unref'd listener or connection lets the process exit; ref() holds it again", async () => {
  // Nothing else holds the process: it exits at once although the listener
  // is open and an accept() is pending.
  const unrefd = await runScript(
    `
    const listener = listen({ hostname: "127.0.0.1", port: 0 });
    listener.unref();
    (async () => { for await (const c of listener) c.close(); })();
    console.log("listening");
    `,
    scaled(10_000), // emulated, the child's start-up takes seconds: see the test above
  );
  assert(unrefd.exited, `an unref'd listener kept the process alive: ${unrefd.stderr}`);
  assertEquals(unrefd.code, 0, unrefd.stderr);
  assertEquals(unrefd.stdout.trim(), "listening");

  // While a timer holds the process, the unref'd listener serves; then the process exits.
  const serving = await runScript(
    `
    const listener = listen({ hostname: "127.0.0.1", port: 0 });
    listener.unref();
    (async () => {
      for await (const c of listener) await c.readable.pipeTo(c.writable);
    })();
    const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
    await client.write(new TextEncoder().encode("echo me"));
    await client.closeWrite();
    const buf = new Uint8Array(16);
    const n = await client.read(buf);
    console.log(new TextDecoder().decode(buf.subarray(0, n ?? 0)));
    client.close();
    setTimeout(() => console.log("timer"), 300);
    `,
    scaled(10_000),
  );
  assert(serving.exited, `the process did not exit: ${serving.stderr}`);
  assertEquals(serving.code, 0, serving.stderr);
  assertEquals(serving.stdout.trim().split("\n"), ["echo me", "timer"]);

  // unref() then ref(): held again, like an open Deno.listen.
  const refd = await runScript(
    `
    const listener = listen({ hostname: "127.0.0.1", port: 0 });
    listener.unref();
    listener.ref();
    console.log("listening");
    `,
    scaled(3000),
  );
  assertEquals(refd.stdout.trim(), "listening");
  assertEquals(refd.exited, false, "a ref'd listener let the process exit");

  // A connection: unref'd, the process exits with it open; ref'd, it stays.
  const client = (ref: boolean) => `
    const server = Deno.listen({ hostname: "127.0.0.1", port: 0 }); // no accept: holds nothing
    const conn = await connect({ hostname: "127.0.0.1", port: server.addr.port });
    conn.unref();
    ${ref ? "conn.ref();" : ""}
    console.log("connected");
  `;
  const unrefdConn = await runScript(client(false), scaled(10_000));
  assert(unrefdConn.exited, `an unref'd connection kept the process alive: ${unrefdConn.stderr}`);
  assertEquals(unrefdConn.code, 0, unrefdConn.stderr);
  assertEquals(unrefdConn.stdout.trim(), "connected");
  const refdConn = await runScript(client(true), scaled(2000));
  assertEquals(refdConn.stdout.trim(), "connected");
  assertEquals(refdConn.exited, false, "a ref'd connection let the process exit");
});

Deno.test("lifetime: a server that reads 100 connections to EOF without close() exits by itself", async () => {
  const done = await runScript(
    `
    const listener = listen({ hostname: "127.0.0.1", port: 0 });
    const port = listener.addr.port;
    const clients = Array.from({ length: 100 }, async () => {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      await c.write(new Uint8Array(10));
      await c.closeWrite();
      await c.read(new Uint8Array(1)); // EOF once the server's side closes itself
      c.close();
    });
    let total = 0;
    for (let i = 0; i < 100; i++) {
      const conn = await listener.accept();
      const buf = new Uint8Array(64);
      for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) total += n;
    }
    await Promise.all(clients);
    listener.close();
    console.log(total);
    `,
    20_000,
  );
  assert(done.exited, `the process did not exit: ${done.stderr}`);
  assertEquals(done.code, 0, done.stderr);
  assertEquals(done.stdout.trim(), "1000");
});
