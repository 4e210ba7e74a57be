/**
 * The HAProxy topology on separate "hosts": network namespaces the test
 * makes (client, balancer, two servers), joined by veth pairs with private
 * addresses that exist only inside them, torn down after. The servers see
 * the client's own address, and the balancer's address on their link as the
 * proxy. Skipped with a printed reason where namespaces cannot be made.
 */
import { assert, assertEquals } from "@std/assert";
import { available, Proc, render, serverStates, startApp } from "./_deploy.ts";
import { waitFor } from "../_helpers.ts";

const decoder = new TextDecoder();
const TAG = `ffn${Deno.pid}`;
const NS = { client: `${TAG}-c`, lb: `${TAG}-lb`, app1: `${TAG}-a1`, app2: `${TAG}-a2` };

async function ip(...args: string[]): Promise<void> {
  const out = await new Deno.Command("ip", { args, stdout: "null", stderr: "piped" }).output();
  if (!out.success) throw new Error(`ip ${args.join(" ")}: ${decoder.decode(out.stderr).trim()}`);
}

const reason = await (async () => {
  if (Deno.uid() !== 0) return "not root: cannot make network namespaces";
  if (!(await available("haproxy", ["-v"]))) return "haproxy is not installed";
  if (!(await available("curl", ["--version"]))) return "curl is not installed";
  try {
    await ip("netns", "add", `${TAG}-probe`);
    await ip("netns", "del", `${TAG}-probe`);
    return "";
  } catch (e) {
    return `cannot make a network namespace: ${(e as Error).message}`;
  }
})();
if (reason) console.log(`skip: tests/deploy/netns_test.ts: ${reason}`);

/** Link namespaces `a` and `b` with a veth pair on a /30-ish private subnet. */
async function link(a: string, aAddr: string, b: string, bAddr: string, n: number): Promise<void> {
  const va = `${TAG}a${n}`.slice(0, 15), vb = `${TAG}b${n}`.slice(0, 15);
  await ip("link", "add", va, "netns", a, "type", "veth", "peer", "name", vb, "netns", b);
  await ip("-n", a, "addr", "add", `${aAddr}/24`, "dev", va);
  await ip("-n", b, "addr", "add", `${bAddr}/24`, "dev", vb);
  await ip("-n", a, "link", "set", va, "up");
  await ip("-n", b, "link", "set", vb, "up");
}

Deno.test({
  name:
    "netns: client, HAProxy and two ffinet servers on separate namespaces; the servers see the client's address",
  ignore: reason !== "",
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "ffinet-netns-" });
    const made: string[] = [];
    const procs: Proc[] = [];
    try {
      for (const ns of Object.values(NS)) {
        await ip("netns", "add", ns);
        made.push(ns);
        await ip("-n", ns, "link", "set", "lo", "up");
      }
      await link(NS.client, "10.201.3.1", NS.lb, "10.201.3.2", 3);
      await link(NS.lb, "10.201.1.1", NS.app1, "10.201.1.2", 1);
      await link(NS.lb, "10.201.2.1", NS.app2, "10.201.2.2", 2);
      const exec = (ns: string) => ["ip", "netns", "exec", ns];
      const trust = ["--trusted", "10.201.0.0/16", "--proxy", "v2"];
      const apps = await Promise.all([
        startApp("app1", 8000, ["--host", "10.201.1.2", ...trust], exec(NS.app1)),
        startApp("app2", 8000, ["--host", "10.201.2.2", ...trust], exec(NS.app2)),
      ]);
      procs.push(...apps.map((a) => a.proc));
      Deno.writeTextFileSync(
        `${dir}/haproxy.cfg`,
        render("haproxy_netns.cfg", {
          DIR: dir,
          LB_FRONT: "10.201.3.2",
          APP1: "10.201.1.2",
          APP2: "10.201.2.2",
        }),
      );
      const haproxy = new Proc("ip", [
        ...exec(NS.lb).slice(1),
        "haproxy",
        "-f",
        `${dir}/haproxy.cfg`,
        "-db",
      ]);
      procs.push(haproxy);
      await waitFor(
        async () => {
          try {
            const s = await serverStates(`${dir}/admin.sock`, "be");
            return s.get("app1") === 2 && s.get("app2") === 2;
          } catch {
            return false;
          }
        },
        10_000,
        `both servers up:\n${haproxy.lines.join("\n")}`,
      );
      const seen = new Set<string>();
      for (let i = 0; i < 4; i++) {
        const out = await new Deno.Command("ip", {
          args: [
            ...exec(NS.client).slice(1),
            "curl",
            "-sS",
            "--max-time",
            "10",
            "-w",
            "\n%{local_ip} %{local_port}",
            "http://10.201.3.2:8080/who",
          ],
          stdout: "piped",
          stderr: "piped",
        }).output();
        const text = decoder.decode(out.stdout);
        assert(out.success, `curl in ${NS.client}: ${decoder.decode(out.stderr)}${text}`);
        const lines = text.trimEnd().split("\n");
        const [localIp, localPort] = lines.pop()!.split(" ");
        const reply = JSON.parse(lines.join("\n"));
        assertEquals(localIp, "10.201.3.1");
        assertEquals(reply.remoteAddr, { hostname: "10.201.3.1", port: Number(localPort) });
        assertEquals(reply.proxy.destination, { hostname: "10.201.3.2", port: 8080 });
        const lbSide = reply.server === "app1" ? "10.201.1.1" : "10.201.2.1";
        assertEquals(reply.proxy.proxyAddress.hostname, lbSide);
        assertEquals(reply.proxy.crc32c, true);
        seen.add(reply.server);
      }
      assertEquals([...seen].sort(), ["app1", "app2"]);
      // the servers' addresses are not reachable from the client's namespace
      const direct = await new Deno.Command("ip", {
        args: [
          ...exec(NS.client).slice(1),
          "curl",
          "-sS",
          "--max-time",
          "2",
          "http://10.201.1.2:8000/who",
        ],
        stdout: "null",
        stderr: "null",
      }).output();
      assert(!direct.success, "the client reached a server directly");
    } finally {
      await Promise.all(procs.map((p) => p.stop()));
      for (const ns of made) await ip("netns", "del", ns).catch(() => {});
      await Deno.remove(dir, { recursive: true });
    }
  },
});
