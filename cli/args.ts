// Options of one `httvps` command, through node:util's parseArgs (the same parser, with the
// same messages, on Node, Bun and Deno). Each command declares its options with their types,
// so an unknown option, a missing value or a value given to a switch is a UsageError naming
// the option, instead of a flag that is silently ignored or read as true.
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";

export class UsageError extends Error {
  readonly code = "usage";
}

/** `--help` and `-h`, which every command takes. */
const help = { help: { type: "boolean", short: "h" } } as const;

/** The positionals and the typed option values of `argv` (the words after the command name). */
export function parseOptions<const O extends ParseArgsOptionsConfig>(argv: string[], options: O) {
  try {
    return parseArgs({ args: argv, options: { ...options, ...help }, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError(usageMessage(e as Error & { code?: string }));
  }
}

export type ParsedOptions<O extends ParseArgsOptionsConfig> = ReturnType<typeof parseOptions<O>>;

/** parseArgs' message, shorter: "Unknown option '--sock'. To specify …" → "unknown option --sock". */
function usageMessage(e: Error & { code?: string }): string {
  const option = /'(-[^' ]+)/.exec(e.message)?.[1];
  if (option === undefined) return e.message.split("\n")[0]!;
  if (e.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") return `unknown option ${option}`;
  if (e.message.includes("does not take an argument")) return `${option} takes no value`;
  if (e.message.includes("ambiguous")) return `${option} needs a value (write ${option}=VALUE for one that starts with -)`;
  return `${option} needs a value`;
}

/** A whole-number option's value; UsageError when it is something else. */
export function wholeNumber<V extends object>(values: V, name: keyof V & string): number | undefined {
  const v: unknown = values[name];
  if (v === undefined) return undefined;
  if (typeof v !== "string" || !/^\d+$/.test(v)) throw new UsageError(`--${name}: expected a whole number, got "${String(v)}"`);
  return Number(v);
}

/** A limit's value: a whole number, or "none" to clear the limit (null). */
export function wholeNumberOrNone<V extends object>(values: V, name: keyof V & string): number | null | undefined {
  if (values[name] === "none") return null;
  return wholeNumber(values, name);
}

/** One of `choices`, or undefined when the option is absent. */
export function oneOf<V extends object, const C extends string>(
  values: V,
  name: keyof V & string,
  choices: readonly C[],
): C | undefined {
  const v: unknown = values[name];
  if (v === undefined) return undefined;
  if (typeof v !== "string" || !(choices as readonly string[]).includes(v)) {
    throw new UsageError(`--${name}: expected ${choices.join(", ")}, got "${String(v)}"`);
  }
  return v as C;
}
