import { assert, assertEquals } from "@std/assert";
import { IFF, networkInterfaces } from "../../ffi/interfaces.ts";
import { formatIPv6 } from "../../ffi/inet.ts";
import { openFile } from "../../ffi/process.ts";
import { O } from "../../ffi/constants.ts";
import { close, read } from "../../ffi/syscalls.ts";
import { withFdCheck } from "../_helpers.ts";

/**
 * Read a /proc file through libc: Deno refuses /proc/self/* (and so
 * /proc/net) to anything short of --allow-all.
 */
function readProcFile(path: string): string {
  const fd = openFile(path, O.RDONLY | O.CLOEXEC);
  try {
    const decoder = new TextDecoder();
    const buf = new Uint8Array(65536);
    let text = "";
    for (;;) {
      const n = read(fd, buf);
      if (n < 0) throw new Error(`Cannot read ${path}: errno ${-n}`);
      if (n === 0) return text + decoder.decode();
      text += decoder.decode(buf.subarray(0, n), { stream: true });
    }
  } finally {
    close(fd);
  }
}

interface IpAddrInfo {
  family: string;
  local?: string;
  prefixlen: number;
}

interface IpLink {
  ifname: string;
  flags: string[];
  addr_info: IpAddrInfo[];
}

/** `ip -j addr`, or null when `ip` is not installed. */
async function ipAddr(): Promise<IpLink[] | null> {
  try {
    const out = await new Deno.Command("ip", {
      args: ["-j", "addr"],
      stdout: "piped",
      stderr: "null",
    })
      .output();
    if (!out.success) return null;
    return JSON.parse(new TextDecoder().decode(out.stdout)) as IpLink[];
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

function key(family: string, address: string, prefix: number): string {
  return `${family} ${address}/${prefix}`;
}

Deno.test("interfaces: lo is up and loopback with 127.0.0.1/8", () =>
  withFdCheck(() => {
    const lo = networkInterfaces().find((i) => i.name === "lo");
    if (lo === undefined) throw new Error("lo is not listed");
    assert(lo.up);
    assert(lo.loopback);
    assert((lo.flags & IFF.UP) !== 0 && (lo.flags & IFF.LOOPBACK) !== 0);
    const v4 = lo.addresses.find((a) => a.family === "inet");
    assertEquals(v4, {
      family: "inet",
      address: "127.0.0.1",
      netmask: "255.0.0.0",
      prefixLength: 8,
    });
    const v6 = lo.addresses.find((a) => a.family === "inet6");
    if (v6 !== undefined) {
      assertEquals(v6.address, "::1");
      assertEquals(v6.prefixLength, 128);
      assertEquals(v6.scopeId, 0);
    }
  }));

Deno.test("interfaces: names are unique and every address is well-formed", () =>
  withFdCheck(() => {
    const list = networkInterfaces();
    assert(list.length > 0);
    assertEquals(new Set(list.map((i) => i.name)).size, list.length);
    for (const ifc of list) {
      assertEquals(ifc.up, (ifc.flags & IFF.UP) !== 0);
      assertEquals(ifc.loopback, (ifc.flags & IFF.LOOPBACK) !== 0);
      for (const a of ifc.addresses) {
        if (a.family === "inet") {
          assert(/^\d+\.\d+\.\d+\.\d+$/.test(a.address), a.address);
          assert(a.prefixLength >= 0 && a.prefixLength <= 32);
          assertEquals("scopeId" in a, false);
        } else {
          assert(a.address.includes(":"), a.address);
          assert(a.prefixLength >= 0 && a.prefixLength <= 128);
          assertEquals(typeof a.scopeId, "number");
          if (a.address.startsWith("fe80:")) assert(a.scopeId! > 0, "link-local has a scope");
        }
      }
    }
  }));

Deno.test("interfaces: agree with `ip -j addr` (names, flags, addresses)", async () => {
  const ip = await ipAddr();
  if (ip === null) {
    console.log("ip is not installed: compared with /proc only");
    return;
  }
  await withFdCheck(() => {
    const ours = networkInterfaces();
    assertEquals(ours.map((i) => i.name).sort(), ip.map((l) => l.ifname).sort());
    for (const link of ip) {
      const ifc = ours.find((i) => i.name === link.ifname)!;
      assertEquals(ifc.up, link.flags.includes("UP"), `${link.ifname} up`);
      assertEquals(ifc.loopback, link.flags.includes("LOOPBACK"), `${link.ifname} loopback`);
      const expected = link.addr_info
        .filter((a) => (a.family === "inet" || a.family === "inet6") && a.local !== undefined)
        .map((a) => key(a.family, a.local!, a.prefixlen))
        .sort();
      const actual = ifc.addresses.map((a) => key(a.family, a.address, a.prefixLength)).sort();
      assertEquals(actual, expected, `${link.ifname} addresses`);
    }
  });
});

Deno.test("interfaces: agree with /proc/net/dev names and /proc/net/if_inet6", () =>
  withFdCheck(() => {
    const dev = readProcFile("/proc/net/dev");
    let inet6: string | null;
    try {
      inet6 = readProcFile("/proc/net/if_inet6");
    } catch {
      inet6 = null; // no IPv6 in this kernel
    }
    const ours = networkInterfaces();
    const devNames = dev.split("\n").slice(2).filter((l) => l.includes(":"))
      .map((l) => l.slice(0, l.indexOf(":")).trim());
    assertEquals(ours.map((i) => i.name).sort(), devNames.sort());
    if (inet6 === null) {
      console.log("skip: interfaces: the IPv6 half: /proc/net/if_inet6 is absent (no IPv6)");
      return;
    }
    const expected = inet6.trim().split("\n").filter((l) => l.length > 0).map((l) => {
      const [hex, , prefix, , , name] = l.trim().split(/\s+/);
      const bytes = new Uint8Array(16);
      for (let i = 0; i < 16; i++) bytes[i] = parseInt(hex!.slice(2 * i, 2 * i + 2), 16);
      return `${name} ${key("inet6", formatIPv6(bytes), parseInt(prefix!, 16))}`;
    }).sort();
    const actual = ours.flatMap((i) =>
      i.addresses.filter((a) => a.family === "inet6")
        .map((a) => `${i.name} ${key(a.family, a.address, a.prefixLength)}`)
    ).sort();
    assertEquals(actual, expected);
  }));
