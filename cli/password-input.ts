// A password for `httvps admin create` and `admin password`: typed at a terminal without echo
// (twice, to catch a typo), or the first line of stdin when stdin is not a terminal (scripts:
// `printf '%s\n' "$PW" | httvps admin create …`). Never from argv, where `ps` and the shell's
// history would show it.
import { UsageError } from "./args.ts";

async function readStdinLine(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks).toString("utf8").split(/\r?\n/)[0] ?? "";
}

/** One line typed at the terminal with nothing echoed; Ctrl-C or Ctrl-D gives up. */
function readHidden(prompt: string): Promise<string> {
  const stdin = process.stdin;
  return new Promise((resolve, reject) => {
    process.stderr.write(prompt);
    let text = "";
    const done = (err?: Error) => {
      stdin.off("data", onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write("\n");
      if (err) reject(err);
      else resolve(text);
    };
    const onData = (data: Buffer | string) => {
      for (const ch of String(data)) {
        if (ch === "\r" || ch === "\n") return done();
        if (ch === "\u0003" || ch === "\u0004") return done(new UsageError("no password given"));
        if (ch === "\u007f" || ch === "\b") text = text.slice(0, -1);
        else text += ch;
      }
    };
    stdin.setRawMode(true);
    stdin.resume();
    stdin.on("data", onData);
  });
}

export async function readPassword(what: string): Promise<string> {
  if (!process.stdin.isTTY) {
    const line = await readStdinLine();
    if (!line) throw new UsageError(`${what}: expected the password on the first line of stdin`);
    return line;
  }
  const first = await readHidden(`${what}: `);
  const again = await readHidden(`${what} (again): `);
  if (first !== again) throw new UsageError("the two passwords differ");
  return first;
}
