// Structured one-line JSON logs. Fields whose names look secret are masked before
// anything is written, so a careless `log.info({ token })` cannot leak a credential.
export type Level = "debug" | "info" | "warn" | "error";
const order: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const secretField = /token|password|secret|api_?key|authorization|cookie|^key$/i;

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

export type LogSink = (line: string, level: Level) => void;

const stderrSink: LogSink = (line) => {
  process.stderr.write(line + "\n");
};

export function redact(value: unknown, depth = 0): unknown {
  if (depth > 4 || value === null || typeof value !== "object") return value;
  if (value instanceof Error) return { name: value.name, message: value.message, code: (value as { code?: unknown }).code };
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = secretField.test(k) ? "[redacted]" : redact(v, depth + 1);
  return out;
}

export function createLogger(level: Level = "info", base: Record<string, unknown> = {}, sink: LogSink = stderrSink): Logger {
  const min = order[level];
  const write = (lvl: Level, msg: string, fields?: Record<string, unknown>) => {
    if (order[lvl] < min) return;
    const rec = {
      ts: new Date().toISOString(),
      level: lvl,
      msg,
      ...(redact(base) as object),
      ...(redact(fields ?? {}) as object),
    };
    sink(JSON.stringify(rec), lvl);
  };
  return {
    debug: (m, f) => write("debug", m, f),
    info: (m, f) => write("info", m, f),
    warn: (m, f) => write("warn", m, f),
    error: (m, f) => write("error", m, f),
    child: (fields) => createLogger(level, { ...base, ...fields }, sink),
  };
}

/** A logger that keeps lines in memory: for tests that grep logs for secrets. */
export function memoryLogger(level: Level = "debug"): Logger & { lines: string[] } {
  const lines: string[] = [];
  const logger = createLogger(level, {}, (line) => lines.push(line));
  return Object.assign(logger, { lines });
}
