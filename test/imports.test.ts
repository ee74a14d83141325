// The module graph stays a layered tree: no import cycle anywhere, and no folder imports a
// folder above it (docs/01-architecture.md, "Layers"). Read from the sources themselves, so
// a new import that breaks either rule fails here, on every runtime, before anyone has to
// untangle it.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * Lowest first. A module may import its own folder and the folders of lower layers; folders
 * on one layer do not import each other. Folders not listed (test/, bench/, scripts/, the
 * root's mod.ts) may import anything, and so may tests and test support (`*.test.ts`,
 * `*.testing.ts`, `testing.ts`): they put the parts together.
 */
const LAYERS: readonly (readonly string[])[] = [
  ["protocol"], // pure codecs and shapes: frames, errors, addresses, access keys, the control-plane API
  ["logging", "config"],
  ["transport", "runtime"], // byte streams and datagrams; the per-runtime servers
  ["shadowsocks"],
  ["backend", "gateway", "client"], // the three parts: none imports another
  ["cli"], // the httvps command puts them together
];

const root = fileURLToPath(new URL("..", import.meta.url));
const SKIP = new Set(["node_modules", "dist", "data"]);

function sourceFiles(dir = root, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    if (SKIP.has(name) || name.startsWith(".")) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) sourceFiles(p, out);
    else if (name.endsWith(".ts") && !name.endsWith(".d.ts")) out.push(relative(root, p).split("\\").join("/"));
  }
  return out.sort();
}

// Statements start a line (so commented-out imports, which start with // or *, do not count);
// `[^;]` keeps a match inside one statement. Type-only imports count: a cycle of types is
// still two modules that cannot be understood one without the other.
const STATIC = /^\s*(?:import|export)\s[^;]*?\sfrom\s*["']([^"']+)["']/gm;
const BARE = /^\s*import\s*["']([^"']+)["']/gm;
const DYNAMIC = /\bimport\(\s*["']([^"']+)["']\s*\)/g;

/** The relative .ts modules `source` (the text of `file`) imports, as paths from the root. */
function importsOf(file: string, source: string): string[] {
  const out = new Set<string>();
  for (const re of [STATIC, BARE, DYNAMIC]) {
    for (const m of source.matchAll(re)) {
      const spec = m[1]!;
      if (!spec.startsWith(".") || !spec.endsWith(".ts")) continue;
      out.add(relative(root, resolve(root, dirname(file), spec)).split("\\").join("/"));
    }
  }
  return [...out].sort();
}

type Graph = ReadonlyMap<string, readonly string[]>;

/** Every cycle, once, as "a → b → a" starting from its smallest module (Tarjan's components, then one loop through each). */
function findCycles(graph: Graph): string[] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const c: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        c.push(w);
      } while (w !== v);
      if (c.length > 1 || (graph.get(v) ?? []).includes(v)) components.push(c);
    }
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return components.map((c) => {
    const members = new Set(c);
    const start = [...c].sort()[0]!;
    // A shortest way back to the start inside the component names the modules to look at.
    const prev = new Map<string, string>([[start, ""]]);
    const queue = [start];
    let last = start;
    search: while (queue.length) {
      const v = queue.shift()!;
      for (const w of [...(graph.get(v) ?? [])].sort()) {
        if (w === start) {
          last = v;
          break search;
        }
        if (members.has(w) && !prev.has(w)) {
          prev.set(w, v);
          queue.push(w);
        }
      }
    }
    const path = [start];
    for (let v = last; v !== start; v = prev.get(v)!) path.splice(1, 0, v);
    return [...path, start].join(" → ");
  }).sort();
}

const isTestCode = (file: string) => /(\.test|\.testing)\.ts$|(^|\/)testing\.ts$/.test(file);
const folderOf = (file: string) => (file.includes("/") ? file.slice(0, file.indexOf("/")) : "");
const layerOf = (folder: string) => LAYERS.findIndex((l) => l.includes(folder));

/** Imports that go up or sideways between layers, as "from → to". */
function layerViolations(graph: Graph): string[] {
  const out: string[] = [];
  for (const [file, imports] of graph) {
    const from = folderOf(file);
    const layer = layerOf(from);
    if (layer < 0 || isTestCode(file)) continue;
    for (const target of imports) {
      const to = folderOf(target);
      if (to === from) continue;
      const targetLayer = layerOf(to);
      if (targetLayer < 0 || targetLayer >= layer) out.push(`${file} → ${target}`);
    }
  }
  return out.sort();
}

function repositoryGraph(): Map<string, string[]> {
  return new Map(sourceFiles().map((f) => [f, importsOf(f, readFileSync(join(root, f), "utf8"))]));
}

describe("the module graph", () => {
  test("the checks themselves: imports are read, cycles and upward imports are found", () => {
    const source = [
      'import { a } from "./a.ts";',
      "import type {",
      "  B,",
      '} from "../x/b.ts";',
      'export { c } from "./c.ts";',
      'import "./side-effect.ts";',
      "const d = await imp" + 'ort("./d.ts");', // split, or this file would import ./d.ts itself
      '// import { e } from "./e.ts";',
      ' * import { f } from "./f.ts";',
      'import { z } from "zod";',
    ].join("\n");
    assert.deepEqual(importsOf("y/file.ts", source), ["x/b.ts", "y/a.ts", "y/c.ts", "y/d.ts", "y/side-effect.ts"]);

    const g = new Map([
      ["p/a.ts", ["p/b.ts"]],
      ["p/b.ts", ["p/c.ts"]],
      ["p/c.ts", ["p/a.ts", "p/d.ts"]],
      ["p/d.ts", []],
      ["q/self.ts", ["q/self.ts"]],
    ]);
    assert.deepEqual(findCycles(g), ["p/a.ts → p/b.ts → p/c.ts → p/a.ts", "q/self.ts → q/self.ts"]);
    assert.deepEqual(findCycles(new Map([["p/a.ts", ["p/b.ts"]], ["p/b.ts", []]])), []);

    assert.deepEqual(
      layerViolations(
        new Map([
          ["protocol/x.ts", ["transport/y.ts", "protocol/z.ts"]],
          ["gateway/g.ts", ["backend/b.ts", "protocol/x.ts", "gateway/upstream/u.ts"]],
          ["gateway/g.test.ts", ["cli/main.ts"]],
          ["cli/main.ts", ["gateway/g.ts", "test/helper.ts"]],
          ["test/e2e/t.ts", ["cli/main.ts"]],
        ]),
      ),
      ["cli/main.ts → test/helper.ts", "gateway/g.ts → backend/b.ts", "protocol/x.ts → transport/y.ts"],
    );
  });

  const graph = repositoryGraph();

  test("every relative import names a module that exists", () => {
    const missing = [...graph].flatMap(([file, imports]) => imports.filter((t) => !graph.has(t)).map((t) => `${file} → ${t}`));
    assert.deepEqual(missing, []);
    assert.ok(graph.size > 100, `read ${graph.size} modules`);
  });

  test("no import cycle", () => {
    assert.deepEqual(findCycles(graph), []);
  });

  test("every folder is on a layer and imports only its own and lower layers", () => {
    const assembly = ["bench", "scripts", "test"]; // free to import anything
    const unplaced = new Set([...graph.keys()].map(folderOf).filter((f) => f !== "" && layerOf(f) < 0 && !assembly.includes(f)));
    assert.deepEqual([...unplaced], [], "a folder that is on no layer: put it in LAYERS");
    assert.deepEqual(layerViolations(graph), []);
  });
});
