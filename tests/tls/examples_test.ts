/**
 * The TLS examples, started exactly as their header's run line says (so a
 * permission missing from it fails here), driven by real clients: openssl
 * s_client through the echo server; and the HTTPS hello fixture the
 * benchmarks run, through curl. Both stop cleanly on SIGTERM.
 */
import { assertEquals, assertStringIncludes } from "@std/assert";
import { startExample, startScript } from "../_example_server.ts";
import { makePki } from "./_certs.ts";
import { runClient } from "./_server.ts";

Deno.test("examples/tls_echo.ts: s_client's bytes come back over TLS; SIGTERM stops it", async () => {
  const p = await makePki();
  const server = await startExample("tls_echo.ts", ["--cert", p.certPath, "--key", p.keyPath]);
  try {
    const out = await runClient(
      "openssl",
      [
        "s_client",
        "-connect",
        `127.0.0.1:${server.port}`,
        "-CAfile",
        p.caPath,
        "-servername",
        "localhost",
        "-alpn",
        "echo",
        "-verify_return_error",
      ],
      "echo me\n",
      { holdMs: 700 },
    );
    assertStringIncludes(out.stdout, "echo me", out.stderr);
    assertStringIncludes(out.stdout, "ALPN protocol: echo");
    const status = await server.stop();
    assertEquals(status.code, 0, server.output());
    assertStringIncludes(server.output(), "TLSv1.3 TLS_AES_256_GCM_SHA384 alpn=echo sni=localhost");
  } finally {
    await server.stop();
    await p.remove();
  }
});

Deno.test("the HTTPS hello fixture (benchmarks): keep-alive and Connection: close (curl)", async () => {
  const p = await makePki();
  const server = await startScript(new URL("./_https_hello.ts", import.meta.url).pathname, {
    flags: ["--allow-ffi", "--allow-read"],
    args: ["--port", "0", "--cert", p.certPath, "--key", p.keyPath],
  });
  try {
    const url = `https://localhost:${server.port}/`;
    const out = await runClient("curl", ["-sS", "--cacert", p.caPath, url, url], undefined);
    assertEquals(out.stdout, "Hello, World!Hello, World!", out.stderr);
    const close = await runClient("curl", [
      "-sS",
      "--cacert",
      p.caPath,
      "-H",
      "Connection: close",
      "-D",
      "-",
      url,
    ], undefined);
    assertStringIncludes(close.stdout.toLowerCase(), "connection: close");
    assertEquals((await server.stop()).code, 0, server.output());
  } finally {
    await server.stop();
    await p.remove();
  }
});
