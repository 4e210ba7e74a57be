/**
 * The package as a user meets it: every entry point of deno.json names its
 * exports one by one, is type-checked and doc-linted on its own by the
 * test task, and every public symbol's `@example` imports through the
 * package's public specifiers (what a user can write), never a file path
 * inside the repository.
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";

const ROOT = new URL("../", import.meta.url);
const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT)));
const NAME: string = config.name;
const ENTRIES: [string, string][] = Object.entries(config.exports as Record<string, string>);

interface DocSymbol {
  name: string;
  declarations: {
    location: { filename: string };
    jsDoc?: { tags?: { kind: string; doc?: string }[] };
  }[];
}

async function publicSymbols(entry: string): Promise<DocSymbol[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["doc", "--json", entry],
    cwd: ROOT.pathname,
    stdin: "null",
  }).output();
  assert(out.success, new TextDecoder().decode(out.stderr));
  const json = JSON.parse(new TextDecoder().decode(out.stdout));
  return Object.values(json.nodes as Record<string, { symbols?: DocSymbol[] }>)
    .flatMap((m) => m.symbols ?? []);
}

Deno.test("every entry point names its exports (no `export *`)", async () => {
  for (const [, file] of ENTRIES) {
    const text = await Deno.readTextFile(new URL(file, ROOT));
    assertEquals(text.match(/^export \*/gm), null, `${file} re-exports with export *`);
  }
});

Deno.test("the test task doc-lints and checks every entry point on its own", () => {
  const doc: string = config.tasks.doc;
  const check: string = config.tasks.check;
  for (const [, file] of ENTRIES) {
    const path = file.replace(/^\.\//, "");
    assert(
      doc.includes(`deno doc --lint ${path} `) || doc.endsWith(`deno doc --lint ${path}`),
      path,
    );
    const folder = path.includes("/") ? path.slice(0, path.indexOf("/") + 1) : path;
    assert(check.includes(` ${folder}`), `check task misses ${folder}`);
  }
});

Deno.test("every public @example imports through the package's public specifiers", async () => {
  const bad: string[] = [];
  let examples = 0;
  for (const [, file] of ENTRIES) {
    for (const symbol of await publicSymbols(file)) {
      for (const d of symbol.declarations) {
        for (const tag of d.jsDoc?.tags ?? []) {
          if (tag.kind !== "example" || tag.doc === undefined) continue;
          examples++;
          for (const m of tag.doc.matchAll(/from "([^"]+)"/g)) {
            const spec = m[1]!;
            if (spec === NAME || spec.startsWith(`${NAME}/`) || /^(npm|node|jsr):/.test(spec)) {
              continue;
            }
            bad.push(`${file} › ${symbol.name}: ${spec}`);
          }
        }
      }
    }
  }
  assert(examples > 100, `only ${examples} examples found`);
  assertEquals(bad, []);
});
