/**
 * The flag parser every example server shares: `--host`, `--port`, named
 * booleans and extra string flags, `--help`, and a clear error (exit 2) for
 * anything else.
 *
 * @module
 */

/** What {@linkcode parseArgs} understands. */
export interface ArgsSpec {
  /** One usage line for `--help` and errors. */
  usage: string;
  /** Defaults for `--host` and `--port`. */
  defaults?: { host?: string; port?: number };
  /** Flags without a value, e.g. `reuse-port`. */
  booleans?: string[];
  /** Flags with a value, e.g. `workers`, and their defaults. */
  strings?: Record<string, string>;
}

/** The parsed flags. */
export interface Args {
  /** `--host`. */
  host: string;
  /** `--port` (0 asks the kernel for a free one). */
  port: number;
  /** The boolean flags that were given. */
  booleans: Set<string>;
  /** Every string flag, given or defaulted. */
  strings: Record<string, string>;
  /** Arguments that are not flags. */
  rest: string[];
}

/**
 * Parse `argv` or exit: prints usage and exits 0 for `--help`, prints the
 * problem and exits 2 for an unknown flag, a missing value or a bad port.
 *
 * @example
 * ```ts ignore
 * const args = parseArgs(Deno.args, { usage: "echo.ts [--host H] [--port P]" });
 * ```
 */
export function parseArgs(argv: string[], spec: ArgsSpec): Args {
  const fail = (msg: string): never => {
    console.error(`${msg}\nusage: ${spec.usage}`);
    Deno.exit(2);
  };
  const out: Args = {
    host: spec.defaults?.host ?? "127.0.0.1",
    port: spec.defaults?.port ?? 0,
    booleans: new Set(),
    strings: { ...spec.strings },
    rest: [],
  };
  const booleans = new Set(spec.booleans ?? []);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--help" || arg === "-h") {
      console.log(`usage: ${spec.usage}`);
      Deno.exit(0);
    }
    if (!arg.startsWith("--")) {
      out.rest.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    if (booleans.has(name)) {
      if (eq >= 0) fail(`--${name} takes no value`);
      out.booleans.add(name);
      continue;
    }
    if (name !== "host" && name !== "port" && !(spec.strings && name in spec.strings)) {
      fail(`unknown flag --${name}`);
    }
    const value = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined) fail(`--${name} needs a value`);
    if (name === "host") out.host = value!;
    else if (name === "port") {
      const port = Number(value);
      if (!/^\d+$/.test(value!) || port > 65535) fail(`--port ${value} is not a port (0-65535)`);
      out.port = port;
    } else out.strings[name] = value!;
  }
  return out;
}

/**
 * Read string flag `name` as an integer of at least `min`, or exit 2 saying
 * `--NAME VALUE is not <what>` (e.g. "a whole number of milliseconds").
 *
 * @example
 * ```ts ignore
 * const ms = integerFlag(args, "drain-ms", 0, "a whole number of milliseconds");
 * ```
 */
export function integerFlag(args: Args, name: string, min: number, what: string): number {
  const text = args.strings[name];
  const v = Number(text);
  if (!Number.isInteger(v) || v < min) {
    console.error(`--${name} ${text} is not ${what}`);
    Deno.exit(2);
  }
  return v;
}
