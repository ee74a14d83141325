// The console's page shell and the small pieces every page draws with: sizes, times, statuses,
// SVG bar charts. Text goes through hono/html's `html`, which escapes every interpolated value,
// so names and other stored text always show as text; `raw` is kept for markup built here.
import { html, raw } from "hono/html";
import type { HtmlEscapedString } from "hono/utils/html";

export type Html = HtmlEscapedString | Promise<HtmlEscapedString>;

/** Who is signed in, as the pages need it: the navigation shows only what the role may open. */
export interface Viewer {
  name: string;
  role: "owner" | "operator";
  csrf: string;
}

const NAV: { href: string; label: string; ownerOnly: boolean }[] = [
  { href: "/admin", label: "Overview", ownerOnly: true },
  { href: "/admin/devices", label: "Devices", ownerOnly: false },
  { href: "/admin/nodes", label: "Nodes", ownerOnly: true },
  { href: "/admin/gateways", label: "Gateways", ownerOnly: true },
  { href: "/admin/audit", label: "Audit log", ownerOnly: true },
];

/** The hidden CSRF field every form carries. */
export const csrfField = (v: Viewer) => html`<input type="hidden" name="_csrf" value="${v.csrf}">`;

export function page(opts: { title: string; viewer?: Viewer; current?: string; body: Html }): Html {
  const v = opts.viewer;
  const nav = v
    ? html`
      <nav aria-label="Main">
        <ul>${NAV.filter((n) => !n.ownerOnly || v.role === "owner").map((n) =>
          html`<li><a href="${n.href}"${raw(n.href === opts.current ? ' aria-current="page"' : "")}>${n.label}</a></li>`
        )}</ul>
      </nav>
      <form method="post" action="/admin/sign-out">${csrfField(v)}<span class="muted">${v.name} (${v.role})</span>
              <button class="secondary" type="submit">Sign out</button></form>
    `
    : "";
  return html`
    <!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>${opts.title} · HTTVPS console</title>
        <link rel="stylesheet" href="/admin/assets/console.css">
        <script src="/admin/assets/console.js" defer></script>
      </head>
      <body>
        <header><span class="brand">HTTVPS</span>${nav}</header>
        <main>
    <h1>${opts.title}</h1>
    ${opts.body}
        </main>
      </body>
    </html>
  `;
}

/** Bytes in binary units. */
export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let x = n;
  while (x >= 1024 && i < units.length - 1) {
    x /= 1024;
    i++;
  }
  return `${i === 0 ? x : x.toFixed(1)} ${units[i]}`;
}

/** A time as UTC, minutes precision, in a <time> element with the exact instant. */
export function when(iso: string | null | undefined): Html | string {
  if (!iso) return "—";
  return html`<time datetime="${iso}">${iso.slice(0, 16).replace("T", " ")} UTC</time>`;
}

export const statusBadge = (s: string) => html`<span class="status-${s}">${s.replace("_", " ")}</span>`;

export interface SeriesPoint {
  t: string;
  bytes_up: number;
  bytes_down: number;
}

/**
 * A stacked bar chart of a usage series (up and down), as inline SVG with a text alternative:
 * no script, no library. `label` names it for screen readers.
 */
export function barChart(points: SeriesPoint[], label: string): Html {
  const W = 600;
  const H = 160;
  const pad = 16;
  const max = Math.max(1, ...points.map((p) => p.bytes_up + p.bytes_down));
  const bw = points.length ? (W - 2) / points.length : W;
  const total = points.reduce((n, p) => n + p.bytes_up + p.bytes_down, 0);
  const bars = points.map((p, i) => {
    // The top 14 units are the caption's.
    const hu = ((H - pad - 14) * p.bytes_up) / max;
    const hd = ((H - pad - 14) * p.bytes_down) / max;
    const x = (1 + i * bw).toFixed(1);
    const w = Math.max(1, bw - 1).toFixed(1);
    return `<rect class="down" x="${x}" y="${(H - pad - hd).toFixed(1)}" width="${w}" height="${hd.toFixed(1)}"></rect>` +
      `<rect class="up" x="${x}" y="${(H - pad - hd - hu).toFixed(1)}" width="${w}" height="${hu.toFixed(1)}"></rect>`;
  }).join("");
  return html`
    <figure>
      <svg class="chart" viewBox="0 0 ${W} ${H}" role="img"
        aria-label="${label}: ${bytes(total)} in total, peak ${bytes(max)}">
        <text x="2" y="10">peak ${bytes(max)} · total ${bytes(total)}</text>${raw(bars)}
    <line x1="0" y1="${H - pad}" x2="${W}" y2="${H - pad}" class="axis"></line>
    <text x="2" y="${H - 4}">${points[0]?.t.slice(0, 16).replace("T", " ") ?? ""}</text>
    <text x="${W - 2}" y="${H - 4}" text-anchor="end">${points.at(-1)?.t.slice(0, 16).replace("T", " ") ?? ""} UTC</text>
          </svg>
      <figcaption class="muted">${label} (dark: sent by devices, light: received)</figcaption>
    </figure>
  `;
}

/**
 * A table of rows under column heads: it scrolls inside itself rather than the page, and on a
 * phone each row becomes a block of "head: value" lines (the cells' data-label).
 */
export function table(heads: (string | Html)[], rows: Html[]): Html {
  return html`
    <div class="table-wrap">
      <table class="responsive">
        <thead>
          <tr>${heads.map((h) => html`<th>${h}</th>`)}</tr>
        </thead>
        <tbody>${rows}</tbody>
      </table>
    </div>
  `;
}
