/**
 * The README's "Deploying" snippets must be excerpts of the configuration
 * files the deploy tests run (tests/deploy/fixtures/), so they cannot drift:
 * every line of a ```haproxy or ```nginx block appears in haproxy.cfg or
 * nginx.conf.
 */
import { assert } from "@std/assert";
import { FIXTURES, ROOT } from "./_deploy.ts";

const readme = Deno.readTextFileSync(`${ROOT}README.md`);
const start = readme.indexOf("\n## Deploying");
const reason = start < 0 ? 'README.md has no "## Deploying" section yet' : "";
if (reason) console.log(`skip: tests/deploy/readme_test.ts: ${reason}`);

Deno.test({
  name: "deploy: the README's HAProxy and nginx snippets are excerpts of the files the tests run",
  ignore: reason !== "",
  fn() {
    const end = readme.indexOf("\n## ", start + 1);
    const section = readme.slice(start, end < 0 ? undefined : end);
    const files: Record<string, string> = { haproxy: "haproxy.cfg", nginx: "nginx.conf" };
    let blocks = 0;
    for (const m of section.matchAll(/```(haproxy|nginx)\n([\s\S]*?)```/g)) {
      blocks++;
      const fixture = Deno.readTextFileSync(FIXTURES + files[m[1]!]!);
      const lines = new Set(fixture.split("\n").map((l) => l.trim()));
      for (const line of m[2]!.split("\n").map((l) => l.trim()).filter((l) => l !== "")) {
        assert(lines.has(line), `README ${m[1]} line not in ${files[m[1]!]}: ${line}`);
      }
    }
    assert(blocks >= 2, `expected a haproxy and an nginx block, found ${blocks}`);
  },
});
