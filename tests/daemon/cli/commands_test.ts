/**
 * `serve`'s command table (`daemon/cli/commands.ts`): every row is a
 * subcommand the parser accepts, a `--help` line, and a client with its
 * own exit codes; the parser's error names the table's commands.
 */
import { assert, assertEquals, assertStringIncludes, assertThrows } from "@std/assert";
import { COMMAND_NAMES, COMMANDS, commandUsage, runCommand } from "../../../daemon/cli/commands.ts";
import { HELP, parseServeArgs, UsageError } from "../../../daemon/cli/args.ts";

/** Run `fn` with console.log/error captured. */
async function captured(fn: () => Promise<number>): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const { log, error } = console;
  console.log = (...a: unknown[]) => void lines.push(a.join(" "));
  console.error = (...a: unknown[]) => void lines.push(a.join(" "));
  try {
    return { code: await fn(), out: lines.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

Deno.test("cli commands: every row is a subcommand and a --help line", () => {
  assertEquals(COMMANDS.map((c) => c.name), ["status", "reload", "stop", "upgrade"]);
  assertEquals([...COMMAND_NAMES], COMMANDS.map((c) => c.name));
  for (const c of COMMANDS) {
    assertEquals(parseServeArgs([c.name]).command, c.name);
    assertStringIncludes(HELP, `deno task serve ${c.name} ${c.usage}`);
    assertStringIncludes(commandUsage(), c.help.split("\n")[0]!);
  }
  // A word that is neither a command nor a file names the table's commands.
  const e = assertThrows(() => parseServeArgs(["upgrad"]), UsageError);
  assertStringIncludes(e.message, "commands are status, reload, stop, upgrade");
});

Deno.test("cli commands: each row's client answers a missing supervisor with its own exit code", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ffinet-commands-" });
  try {
    const pidfile = `${dir}/serve.pid`;
    // LSB: status 3 (not running); stop succeeds (nothing to stop); reload
    // and upgrade fail.
    const expected: Record<string, number> = { status: 3, reload: 1, stop: 0, upgrade: 1 };
    for (const c of COMMANDS) {
      const { code, out } = await captured(() =>
        runCommand(parseServeArgs([c.name, "--pidfile", pidfile]))
      );
      assertEquals(code, expected[c.name], `${c.name}: ${out}`);
      assertStringIncludes(out, `not running (no pid file ${pidfile})`);
      if (code !== 0 && c.name !== "status") assertStringIncludes(out, `Cannot ${c.name}`);
    }
    const json = await captured(() =>
      runCommand(parseServeArgs(["status", "--json", "--pidfile", pidfile]))
    );
    assertEquals(JSON.parse(json.out).running, false);
    assert(
      await runCommand(parseServeArgs([])).then(() => false, (e) => e instanceof RangeError),
      "run is not a client command",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
