// The built-in decoy site, different on every install. One site served by every gateway would
// be a fingerprint: one search for its text or its ETag would list them all. So the site is
// generated from a random seed kept in DATA_DIR (decoy-seed, made once): a small business with
// its own name, trade, town, texts, page names, class names, colours, favicon and dates, built
// from the templates and word lists in deploy/decoy/ (the generator's inputs). The same seed
// gives the same site byte for byte, so an install keeps its site (and its ETags) across
// restarts; two seeds share no sentence. Operators should still serve their own site
// (GATEWAY_DECOY_DIR or GATEWAY_DECOY_UPSTREAM, docs/09): this is the fallback.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { renderTemplate, type TemplateValue } from "./decoy-template.ts";

/** The generator's inputs are broken (a file or a value missing): a stable code for a typed error. */
export class DecoyInputError extends Error {
  readonly code = "bad_decoy_inputs";
  constructor(message: string) {
    super(`decoy inputs: ${message}`);
    this.name = "DecoyInputError";
  }
}

/** deploy/decoy/ beside the code; the compiled binary carries a copy instead (useEmbeddedDecoyInputs). */
export const DEFAULT_DECOY_INPUTS = fileURLToPath(new URL("../deploy/decoy/", import.meta.url));

/** The generator's inputs: the files of deploy/decoy/ by relative path. */
export type DecoyInputs = ReadonlyMap<string, string>;

let embedded: DecoyInputs | undefined;

/** Use these inputs instead of reading deploy/decoy/ (the compiled binary's entry calls this). */
export function useEmbeddedDecoyInputs(files: { path: string; base64: string }[]): void {
  embedded = new Map(files.map((f) => [f.path, Buffer.from(f.base64, "base64").toString("utf8")]));
}

export function readDecoyInputs(dir = DEFAULT_DECOY_INPUTS): DecoyInputs {
  if (embedded) return embedded;
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.set(relative(dir, p).split("\\").join("/"), readFileSync(p, "utf8"));
    }
  };
  walk(dir);
  return out;
}

/** One file of the generated site: its path (no leading slash), body and modification time. */
export interface SiteFile {
  path: string;
  body: Uint8Array<ArrayBuffer>;
  mtime: Date;
}

const list = z.array(z.string()).min(1);
/** deploy/decoy/words.json: the word lists every choice is picked from. */
const wordsSchema = z.object({
  trades: z.array(z.object({
    kind: z.string(),
    suffixes: list,
    work: list.min(3),
    items: list.min(4),
    materials: list.min(2),
    clients: list.min(2),
    verbs: list,
    places: list,
  })).min(1),
  locales: z.array(z.object({ lang: z.string(), towns: list.min(3), regions: list })).min(1),
  first_names: list.min(2),
  surnames: list.min(2),
  streets: list,
  adjectives: list.min(2),
  fonts: z.object({ body: list, head: list }),
  classes: z.record(z.string(), list),
  pages: z.object({ home: list, about: list, visit: list, files: z.record(z.string(), list) }),
  css_paths: list,
  hours: z.object({ days: list, last_days: list, opens: list, closes: list, extra: list }),
  sentences: z.record(z.string(), list),
});
type Words = z.infer<typeof wordsSchema>;

/**
 * A deterministic stream of numbers from the seed: sha256(seed, counter) blocks. The same on
 * every runtime (no engine-specific Math.random), and plenty fast for a few hundred picks.
 */
class SeededRandom {
  private block = new Uint8Array(0);
  private at = 0;
  private counter = 0;
  constructor(private readonly seed: Uint8Array) {}

  /** A uniform integer in [0, n). */
  below(n: number): number {
    if (this.at + 4 > this.block.length) {
      this.block = createHash("sha256").update(this.seed).update(String(this.counter++)).digest();
      this.at = 0;
    }
    const v = new DataView(this.block.buffer, this.block.byteOffset).getUint32(this.at);
    this.at += 4;
    return Math.floor((v / 2 ** 32) * n);
  }

  pick<T>(list: readonly T[]): T {
    if (list.length === 0) throw new DecoyInputError("an empty word list");
    return list[this.below(list.length)]!;
  }

  /** `k` distinct items in a random order. */
  some<T>(list: readonly T[], k: number): T[] {
    const pool = [...list];
    const out: T[] = [];
    while (out.length < k && pool.length > 0) out.push(pool.splice(this.below(pool.length), 1)[0]!);
    return out;
  }

  between(lo: number, hi: number): number {
    return lo + this.below(hi - lo + 1);
  }
}

const capitalise = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

function hsl(h: number, s: number, l: number): string {
  const a = (s / 100) * Math.min(l / 100, 1 - l / 100);
  const f = (n: number) => {
    const k = (n + h / 30) % 12;
    const c = l / 100 - a * Math.max(-1, Math.min(k - 3, 9 - k, 1));
    return Math.round(c * 255).toString(16).padStart(2, "0");
  };
  return `#${f(0)}${f(8)}${f(4)}`;
}

/** A 16×16 32-bit .ico: a mirrored 5×5 pattern in the accent colour on the paper colour, with a margin. */
function favicon(rnd: SeededRandom, fg: string, bg: string): Uint8Array<ArrayBuffer> {
  const cells: boolean[] = [];
  for (let y = 0; y < 5; y++) {
    const row = [0, 1, 2].map(() => rnd.below(2) === 1);
    cells.push(row[0]!, row[1]!, row[2]!, row[1]!, row[0]!);
  }
  const rgb = (hex: string) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  const [f, b] = [rgb(fg), rgb(bg)];
  const size = 16;
  const pixels = size * size * 4;
  const mask = size * 4; // 1 bit per pixel, rows padded to 4 bytes: all opaque
  const out = new Uint8Array(6 + 16 + 40 + pixels + mask);
  const v = new DataView(out.buffer);
  v.setUint16(2, 1, true); // type: icon
  v.setUint16(4, 1, true); // one image
  out[6] = size;
  out[7] = size;
  v.setUint16(10, 1, true); // planes
  v.setUint16(12, 32, true); // bits per pixel
  v.setUint32(14, 40 + pixels + mask, true);
  v.setUint32(18, 22, true);
  v.setUint32(22, 40, true); // BITMAPINFOHEADER
  v.setInt32(26, size, true);
  v.setInt32(30, size * 2, true); // XOR and AND bitmaps together
  v.setUint16(34, 1, true);
  v.setUint16(36, 32, true);
  v.setUint32(42, pixels + mask, true);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const cx = Math.floor((x - 3) / 2);
      const cy = Math.floor((y - 3) / 2);
      const on = cx >= 0 && cx < 5 && cy >= 0 && cy < 5 && x >= 3 && y >= 3 && cells[cy * 5 + cx];
      const [r, g, bl] = on ? f! : b!;
      const at = 62 + ((size - 1 - y) * size + x) * 4; // bottom-up rows, BGRA
      out.set([bl!, g!, r!, 255], at);
    }
  }
  return out;
}

/**
 * Fill a sentence's {slots} from `slots`; {Slot} gives the value with a capital first letter.
 * "a" before a vowel sound becomes "an" (a slot may have put an "oak" or an "honest" there).
 */
function fill(sentence: string, slots: Record<string, string>): string {
  return sentence
    .replace(/\{([A-Za-z0-9_]+)\}/g, (whole, name: string) => {
      const v = slots[name.toLowerCase()];
      if (v === undefined) throw new DecoyInputError(`no value for ${whole}`);
      return name[0] === name[0]!.toUpperCase() ? capitalise(v) : v;
    })
    .replace(/\b([Aa]) (?=[aeioAEIO]|[uU](?!s|ni)|hon|hour)/g, "$1n ");
}

const utf8 = new TextEncoder();
const DAY = 86_400_000;

/**
 * The whole site for one seed. `since` anchors its dates (the seed file's birth): the pages
 * were last edited in the weeks before it, and the footer's years end with its year.
 */
export function generateDecoySite(seed: Uint8Array, inputs: DecoyInputs, since: Date): SiteFile[] {
  let json: unknown;
  try {
    json = JSON.parse(inputs.get("words.json") ?? "");
  } catch {
    throw new DecoyInputError("words.json is missing or not JSON");
  }
  const parsed = wordsSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new DecoyInputError(`words.json: ${issue.path.join(".")}: ${issue.message}`);
  }
  const words: Words = parsed.data;
  const template = (name: string) => {
    const t = inputs.get(name);
    if (t === undefined) throw new DecoyInputError(`${name} is missing`);
    return t;
  };
  const rnd = new SeededRandom(seed);

  const trade = rnd.pick(words.trades);
  const locale = rnd.pick(words.locales);
  const [town, town2, town3] = rnd.some(locale.towns, 3);
  const [first, first2] = rnd.some(words.first_names, 2);
  const [surname, surname2] = rnd.some(words.surnames, 2);
  const suffix = rnd.pick(trade.suffixes);
  const siteName = rnd.pick([
    `${surname} ${suffix}`,
    `${surname} & ${surname2}`,
    `${surname} & ${surname2} ${suffix}`,
    `${town} ${suffix}`,
    `${first} ${surname} ${suffix}`,
    `${rnd.pick(words.streets)} ${suffix}`,
  ]);
  const year = since.getUTCFullYear();
  const year0 = year - rnd.between(2, 14);
  const [work, work2, work3] = rnd.some(trade.work, 3);
  const [item, item2] = rnd.some(trade.items, 2);
  const [material, material2] = rnd.some(trade.materials, 2);
  const [client, client2] = rnd.some(trade.clients, 2);
  const [adj, adj2] = rnd.some(words.adjectives, 2);
  const slots: Record<string, string> = {
    site: siteName,
    kind: trade.kind,
    work: work!,
    work2: work2!,
    work3: work3!,
    item: item!,
    item2: item2!,
    material: material!,
    material2: material2!,
    client: client!,
    client2: client2!,
    verb: rnd.pick(trade.verbs),
    place: rnd.pick(trade.places),
    town: town!,
    town2: town2!,
    town3: town3!,
    region: rnd.pick(locale.regions),
    first: first!,
    first2: first2!,
    surname: surname!,
    adj: adj!,
    adj2: adj2!,
    year0: String(year0),
    years: String(year - year0),
    weeks: String(rnd.between(2, 8)),
    n: String(rnd.between(3, 40)),
    street: `${rnd.between(2, 140)} ${rnd.pick(words.streets)}`,
  };
  const say = (group: string, k = 1) => rnd.some(words.sentences[group] ?? [], k).map((s) => fill(s, slots));

  // Names a prober could search for: the pages, the stylesheet and every class differ per install.
  const [aboutLabel, visitLabel] = [rnd.pick(words.pages.about), rnd.pick(words.pages.visit)];
  const fileFor = (label: string) => rnd.pick(words.pages.files[label] ?? [label.toLowerCase().replace(/[^a-z]+/g, "-")]);
  const aboutPath = `/${fileFor(aboutLabel)}.html`;
  const visitPath = `/${fileFor(visitLabel)}.html`;
  const cssPath = fill(rnd.pick(words.css_paths), { hex: createHash("sha256").update(seed).digest("hex").slice(0, 8) });
  const classes = Object.fromEntries(Object.entries(words.classes).map(([role, names]) => [`c_${role}`, rnd.pick(names)]));

  const hue = rnd.below(360);
  const colours = {
    paper: hsl((hue + rnd.between(20, 60)) % 360, rnd.between(15, 40), rnd.between(95, 98)),
    ink: hsl(hue, rnd.between(10, 30), rnd.between(10, 18)),
    muted: hsl(hue, rnd.between(5, 20), rnd.between(36, 46)),
    rule: hsl(hue, rnd.between(10, 25), rnd.between(82, 88)),
    accent: hsl((hue + rnd.between(150, 210)) % 360, rnd.between(40, 70), rnd.between(30, 42)),
    panel: hsl((hue + rnd.between(20, 60)) % 360, rnd.between(15, 35), rnd.between(90, 93)),
  };
  const layout: Record<string, TemplateValue> = {
    ...classes,
    ...colours,
    lang: locale.lang,
    site_name: siteName,
    css_path: cssPath,
    font_body: rnd.pick(words.fonts.body),
    font_head: rnd.pick(words.fonts.head),
    width: String(rnd.between(56, 72)),
    base: String(rnd.between(15, 18)),
    footer: `© ${year0}–${year} ${siteName}. ${say("footer")[0]}`,
  };
  const nav = (current: string) =>
    [["/", rnd.pick(words.pages.home)], [aboutPath, aboutLabel], [visitPath, visitLabel]].map(([href, label]) => ({
      href: href!,
      label: label!,
      current: href === current ? ' aria-current="page"' : "",
    }));
  const homeNav = nav("/");
  const page = (
    path: string,
    title: string,
    description: string,
    contentTemplate: string,
    content: Record<string, TemplateValue>,
  ) =>
    renderTemplate(template("layout.html"), {
      ...layout,
      title,
      description,
      nav: path === "/" ? homeNav : homeNav.map((n) => ({ ...n, current: n.href === path ? ' aria-current="page"' : "" })),
      content: renderTemplate(template(contentTemplate), { ...layout, ...content }),
    });

  const tagline = say("tagline")[0]!;
  const missingTitle = say("missing_title")[0]!;
  const itemTexts = rnd.some(words.sentences.item ?? [], 4);
  const items = rnd.some(trade.items, 4).map((it, i) => ({
    title: `${capitalise(it)}, ${rnd.pick(locale.towns)}`,
    meta: `${capitalise(rnd.pick(trade.materials))}, ${rnd.between(year0, year)}`,
    text: fill(itemTexts[i] ?? "", { ...slots, item: it, client: rnd.pick(trade.clients), material: rnd.pick(trade.materials) }),
  }));
  const h = words.hours;
  const hours = `Open ${rnd.pick(h.days)}–${rnd.pick(h.last_days)}, ${rnd.pick(h.opens)}–${rnd.pick(h.closes)}.${
    rnd.pick(h.extra)
  }`;
  const files: Array<[string, string | Uint8Array<ArrayBuffer>]> = [
    [
      "index.html",
      page("/", `${siteName} — ${tagline}`, say("description")[0]!, "home.html", {
        headline: say("headline")[0]!,
        intro: say("intro", 2).join(" "),
        items,
        note_heading: say("note_heading")[0]!,
        note: say("note", 2).join(" "),
      }),
    ],
    [
      aboutPath.slice(1),
      page(aboutPath, `${aboutLabel} — ${siteName}`, say("description")[0]!, "about.html", {
        heading: aboutLabel,
        paragraphs: say("about", 4).map((text) => ({ text })),
        steps_heading: say("steps_heading")[0]!,
        steps: say("step", 4).map((text) => ({ text })),
      }),
    ],
    [
      visitPath.slice(1),
      page(visitPath, `${visitLabel} — ${siteName}`, say("description")[0]!, "visit.html", {
        heading: visitLabel,
        paragraphs: say("visit", 3).map((text) => ({ text })),
        address: `${slots.street}, ${town}`,
        hours,
      }),
    ],
    [
      "404.html",
      page("/404", `${missingTitle} — ${siteName}`, "", "404.html", { missing_title: missingTitle, missing: say("missing")[0]! }),
    ],
    [cssPath.slice(1), renderTemplate(template("style.css"), layout)],
    ["favicon.ico", favicon(rnd, colours.accent, colours.paper)],
    ["robots.txt", template("robots.txt")],
  ];
  // Edited in the weeks before the install, each file at its own moment, to the second (as nginx shows them).
  const edited = since.getTime() - rnd.between(3, 120) * DAY;
  return files.map(([path, body]) => ({
    path,
    body: typeof body === "string" ? utf8.encode(body) : body,
    mtime: new Date(Math.floor((edited - rnd.below(14 * DAY)) / 1000) * 1000),
  }));
}
