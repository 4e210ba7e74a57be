/**
 * nginx in front of an ffinet server (tests/deploy/fixtures/nginx.conf,
 * rendered into a private temp dir): the stream module's `proxy_protocol on`
 * delivers the client address curl used.
 */
import { assertEquals } from "@std/assert";
import { available, curl, freePort, Proc, render, startApp } from "./_deploy.ts";
import { waitFor } from "../_helpers.ts";

const STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so";

const reason = !(await available("nginx", ["-v"]))
  ? "nginx is not installed (Debian packages: nginx-light, libnginx-mod-stream)"
  : !(await Deno.stat(STREAM_MODULE).then(() => true, () => false))
  ? `${STREAM_MODULE} is missing (Debian package: libnginx-mod-stream)`
  : !(await available("curl", ["--version"]))
  ? "curl is not installed"
  : "";
if (reason) console.log(`skip: tests/deploy/nginx_test.ts: ${reason}`);

Deno.test({
  name: "nginx: stream proxy_protocol on delivers the client address curl used",
  ignore: reason !== "",
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "ffinet-nginx-" });
    const app = await startApp("app1", 0, ["--proxy", "v1", "--trusted", "127.0.0.1"]);
    let nginx: Proc | undefined;
    try {
      const port = freePort();
      Deno.writeTextFileSync(
        `${dir}/nginx.conf`,
        render("nginx.conf", { STREAM_MODULE, DIR: dir, PORT: port, APP: app.port }),
      );
      nginx = new Proc("nginx", ["-e", "stderr", "-p", dir, "-c", `${dir}/nginx.conf`]);
      // nginx is up once it accepts; until then curl is refused
      let got: Awaited<ReturnType<typeof curl>> | undefined;
      await waitFor(
        async () => {
          try {
            got = await curl(`http://127.0.0.1:${port}/who`, ["--interface", "127.0.0.3"]);
            return true;
          } catch {
            return false;
          }
        },
        10_000,
        `nginx to serve:\n${nginx.lines.join("\n")}`,
      );
      const { reply, localIp, localPort } = got!;
      assertEquals(localIp, "127.0.0.3");
      assertEquals(reply.remoteAddr, { hostname: "127.0.0.3", port: localPort });
      assertEquals(reply.proxy?.version, 1);
      assertEquals(reply.proxy?.destination, { hostname: "127.0.0.1", port });
      assertEquals(reply.proxy?.proxyAddress.hostname, "127.0.0.1");
      // a second request, from another source port
      const again = await curl(`http://127.0.0.1:${port}/who`, ["--interface", "127.0.0.4"]);
      assertEquals(again.reply.remoteAddr, { hostname: "127.0.0.4", port: again.localPort });
    } catch (e) {
      throw new Error(
        `${(e as Error).message}\nnginx:\n${nginx?.lines.join("\n")}\napp:\n${
          app.proc.lines.join("\n")
        }`,
        { cause: e },
      );
    } finally {
      await nginx?.stop();
      await app.proc.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
