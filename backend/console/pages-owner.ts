// The owner's pages: the overview, nodes (list, add three ways, enable/disable, weight, a node's
// health history and devices), gateways (their reports and per-gateway keys) and the audit log.
// An operator never gets a link to them, and the API answers 403 should one open them anyway.
import { html } from "hono/html";
import { SHADOWSOCKS_METHODS } from "../../protocol/ss-methods.ts";
import { ApiFailure, qs } from "./api-client.ts";
import { type AddRoute, field, type Form } from "./page-types.ts";
import { barChart, bytes, csrfField, type Html, table, type Viewer, when } from "./html.ts";
import { devicesTable } from "./pages-devices.ts";

// deno-lint-ignore no-explicit-any -- API answers read field by field
type Json = any;

const card = (label: string, value: unknown, id?: string) =>
  html`
    <div class="card">
      <div class="muted">${label}</div>
      <div class="n" ${id
        ? html`
          id="${id}"
        `
        : ""}>${String(value)}</div>
    </div>
  `;

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

function optionalWhole(f: Form, k: string, what: string): number | undefined {
  const v = field(f, k).trim();
  if (!v) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new ApiFailure(400, "validation_failed", `${what}: expected a whole number`);
  return n;
}

function nodeAddForms(v: Viewer): Html {
  const common = html`
    <label>Name (optional) <input name="name" maxlength="100"></label>
    <label>Region (optional) <input name="region" maxlength="64"></label>
    <label>Weight <input name="weight" inputmode="numeric" placeholder="1"></label>
  `;
  return html`<h2>Add a node</h2>
<form method="post" action="/admin/nodes">${csrfField(v)}<input type="hidden" name="mode" value="link">
<fieldset><legend>By ss:// link</legend><div class="row">
  <label>ss:// link <input name="ss_url" required autocomplete="off"></label>${common}
  <button type="submit">Add node</button></div></fieldset></form>
<form method="post" action="/admin/nodes">${csrfField(v)}<input type="hidden" name="mode" value="fields">
<fieldset><legend>By fields</legend><div class="row">
  <label>Name <input name="name" required maxlength="100"></label>
  <label>Host <input name="host" required></label>
  <label>Port <input name="port" required inputmode="numeric"></label>
  <label>Cipher <select name="method">${SHADOWSOCKS_METHODS.map((m) => html`<option>${m}</option>`)}</select></label>
  <label>Password <input name="password" type="password" required autocomplete="off"></label>
  <label>Region (optional) <input name="region" maxlength="64"></label>
  <label>Weight <input name="weight" inputmode="numeric" placeholder="1"></label>
  <button type="submit">Add node</button></div></fieldset></form>
<form method="post" action="/admin/nodes">${csrfField(v)}<input type="hidden" name="mode" value="outline">
<fieldset><legend>By Outline management API</legend><div class="row">
  <label>API URL (apiUrl) <input name="api_url" required autocomplete="off"></label>
  <label>Certificate sha256 (certSha256) <input name="cert_sha256" required></label>${common}
  <button type="submit">Add node</button></div></fieldset></form>`;
}

function nodeBody(f: Form): { path: string; body: Record<string, unknown> } {
  const opt = (k: string) => field(f, k).trim() || undefined;
  const shared = { name: opt("name"), region: opt("region"), weight: optionalWhole(f, "weight", "weight") };
  switch (field(f, "mode")) {
    case "link":
      return { path: "/api/v1/nodes/import", body: { ss_url: field(f, "ss_url").trim(), ...shared } };
    case "outline":
      return {
        path: "/api/v1/nodes/outline",
        body: { api_url: field(f, "api_url").trim(), cert_sha256: field(f, "cert_sha256").trim(), ...shared },
      };
    default:
      return {
        path: "/api/v1/nodes",
        body: {
          ...shared,
          name: field(f, "name").trim(),
          host: field(f, "host").trim(),
          port: optionalWhole(f, "port", "port"),
          method: field(f, "method"),
          password: field(f, "password"),
        },
      };
  }
}

export function ownerPages(add: AddRoute): void {
  add("get", "/admin", async ({ c, api, viewer }) => {
    if (viewer.role !== "owner") return c.redirect("/admin/devices", 303);
    const o = await api.get("/api/v1/stats/overview");
    return {
      title: "Overview",
      current: "/admin",
      body: html`<section data-refresh="10" aria-live="polite" aria-label="Live figures">
<div class="cards">
${card("Sessions online", o.sessions_online, "sessions-online")}
${card("Devices online", o.devices.online)}
${card("Devices active today", o.devices.active_today)}
${card("Devices", o.devices.total)}
${card("Traffic, 24 hours", bytes(o.traffic_24h.bytes_up + o.traffic_24h.bytes_down))}
${card("Traffic, 30 days", bytes(o.traffic_30d.bytes_up + o.traffic_30d.bytes_down))}
</div>
<h2>Traffic, last 24 hours</h2>${barChart(o.traffic_24h.points, "Traffic per hour, last 24 hours")}
<h2>Traffic, last 30 days</h2>${barChart(o.traffic_30d.points, "Traffic per day, last 30 days")}
<h2>Nodes by health</h2>
<div class="cards">${card("Up", o.nodes.up)}${card("Down", o.nodes.down)}${card("Unknown", o.nodes.unknown)}${
        card("Disabled", o.nodes.disabled)
      }</div>
<h2>Gateways by last report</h2>${gatewayTable(o.gateways, viewer, false)}
</section>`,
    };
  });

  // ---- nodes

  add("get", "/admin/nodes", async ({ api, viewer }) => {
    const { nodes } = await api.get("/api/v1/nodes");
    return {
      title: "Nodes",
      current: "/admin/nodes",
      body: html`
        ${table(
          ["Name", "Address", "Health", "Latency", "Load", "Weight", "Enabled"],
          nodes.map((n: Json) =>
            html`
              <tr>
                <td class="name" data-label="Name"><a href="/admin/nodes/${n.id}">${n.name}</a>${n.region
                  ? html`
                    <span class="muted">${n.region}</span>
                  `
                  : ""}</td>
                <td data-label="Address" class="wrap">${n.host}:${n.port}</td>
                <td data-label="Health"><span class="${n.enabled ? n.health.status : "unknown"}">${n.enabled
                  ? n.health.status
                  : "disabled"}</span></td>
                <td data-label="Latency">${n.health.latency_ms != null ? `${n.health.latency_ms} ms` : "—"}</td>
                <td data-label="Load">${plural(n.sessions_active, "session")}, ${plural(n.devices_assigned, "device")}</td>
                <td data-label="Weight">
                  <form method="post" action="/admin/nodes/${n.id}" class="inline">${csrfField(viewer)}
              <input name="weight" inputmode="numeric" size="5" value="${n.weight}" aria-label="Weight of ${n.name}">
              <button type="submit" class="secondary">Set</button></form>
                </td>
                <td data-label="Enabled">
                  <form method="post" action="/admin/nodes/${n.id}" class="inline">${csrfField(viewer)}
              <input type="hidden" name="enabled" value="${n.enabled ? "false" : "true"}">
              <button type="submit" class="secondary" aria-label="${n.enabled ? "Disable" : "Enable"} ${n.name}">${n.enabled
                ? "Disable"
                : "Enable"}</button></form>
                </td>
              </tr>
            `
          ),
        )}${nodes.length ? "" : html`<p class="muted">No nodes yet: gateways connect directly.</p>`}
        ${nodeAddForms(viewer)}
      `,
    };
  });

  add("post", "/admin/nodes", async ({ c, api, form }) => {
    const { path, body } = nodeBody(form);
    const n = await api.send("POST", path, body);
    return c.redirect(`/admin/nodes/${encodeURIComponent(n.id)}`, 303);
  });

  add("post", "/admin/nodes/:id", async ({ c, api, form }) => {
    const id = c.req.param("id")!;
    const body: Record<string, unknown> = {};
    const enabled = field(form, "enabled");
    if (enabled) body.enabled = enabled === "true";
    const weight = optionalWhole(form, "weight", "weight");
    if (weight !== undefined) body.weight = weight;
    await api.send("PATCH", `/api/v1/nodes/${encodeURIComponent(id)}`, body);
    return c.redirect(field(form, "back") === "node" ? `/admin/nodes/${encodeURIComponent(id)}` : "/admin/nodes", 303);
  });

  add("get", "/admin/nodes/:id", async ({ c, api }) => {
    const path = `/api/v1/nodes/${encodeURIComponent(c.req.param("id")!)}`;
    const [n, health, usage, devs] = await Promise.all([
      api.get(path),
      api.get(`${path}/health?limit=200`),
      api.get(`${path}/usage?bucket=hour`),
      api.get(`${path}/devices?limit=50`),
    ]);
    const checks: Json[] = health.checks.slice(-20).reverse();
    return {
      title: `Node: ${n.name}`,
      current: "/admin/nodes",
      body: html`
        <div class="cards">
        ${card("Health", n.enabled ? n.health.status : "disabled")}${card(
          "Latency",
          n.health.latency_ms != null ? `${n.health.latency_ms} ms` : "—",
        )}
        ${card("Sessions", n.sessions_active)}${card("Devices", n.devices_assigned)}${card("Weight", n.weight)}
        </div>
        <p class="wrap">${n.host}:${n.port} · ${n.method}${n.region
          ? html`
            · region ${n.region}
          `
          : ""}${n.api_url
          ? html`
            · Outline API ${n.api_url}
          `
          : ""}</p>
        ${n.health.last_error ? html`<p class="error">Last error: ${n.health.last_error}</p>` : ""}
        <h2>Traffic, last 24 hours</h2>${barChart(usage.series?.points ?? [], "Traffic through this node per hour")}
        <h2>Health history</h2>
        <p class="muted">${health.checks.length} checks since ${when(health.from)}; up: ${health.checks.filter((x: Json) =>
          x.status === "up"
        ).length}.</p>
        ${table(
          ["Checked", "Status", "Latency", "Error"],
          checks.map((k) =>
            html`
              <tr>
                <td data-label="Checked">${when(k.checked_at)}</td>
                <td data-label="Status" class="${k.status}">${k.status}</td>
                <td data-label="Latency">${k.latency_ms != null ? `${k.latency_ms} ms` : "—"}</td>
                <td data-label="Error" class="wrap">${k.error ?? ""}</td>
              </tr>
            `
          ),
        )}
        <h2>Devices on this node</h2>${devicesTable(devs.devices, false)}
      `,
    };
  });

  // ---- gateways

  add("get", "/admin/gateways", async ({ api, viewer }) => {
    const { gateways } = await api.get("/api/v1/gateways");
    return {
      title: "Gateways",
      current: "/admin/gateways",
      body: html`${gatewayTable(gateways, viewer, true)}${issueKeyForm(viewer)}`,
    };
  });

  add("post", "/admin/gateways", async ({ api, form }) => {
    const g = await api.send("POST", "/api/v1/gateways", { name: field(form, "name").trim() });
    return {
      title: `Key for gateway ${g.name}`,
      current: "/admin/gateways",
      body: html`
        <p class="notice" role="status">Shown once: set it as the gateway's GATEWAY_API_KEY, with GATEWAY_ID=${g.name}.</p>
        <p class="secret" id="gateway-key">${g.api_key}</p>
        <p><a href="/admin/gateways">All gateways</a></p>
      `,
    };
  });

  add("post", "/admin/gateways/:id/revoke", async ({ c, api }) => {
    await api.send("DELETE", `/api/v1/gateways/${encodeURIComponent(c.req.param("id")!)}`);
    return c.redirect("/admin/gateways", 303);
  });

  // ---- audit log

  add("get", "/admin/audit", async ({ c, api }) => {
    const cursor = c.req.query("cursor") ?? "";
    const action = c.req.query("action")?.slice(0, 64) ?? "";
    const list = await api.get(`/api/v1/audit${qs({ cursor, action, limit: 50 })}`);
    return {
      title: "Audit log",
      current: "/admin/audit",
      body: html`
        <form method="get" action="/admin/audit" class="row" role="search">
        <label>Action (or a prefix ending in a dot) <input name="action" value="${action}"></label><button type="submit">Filter</button></form>
        ${table(
          ["When", "Who", "Action", "Target", "From", "Detail"],
          list.entries.map((e: Json) =>
            html`
              <tr>
                <td data-label="When">${when(e.at)}</td>
                <td data-label="Who" class="wrap">${e.actor.name}</td>
                <td data-label="Action">${e.action}</td>
                <td data-label="Target" class="wrap">${e.target_type ?? ""} ${e.target_id ?? ""}</td>
                <td data-label="From">${e.address ?? "—"}</td>
                <td data-label="Detail" class="wrap">${e.detail ? JSON.stringify(e.detail) : ""}</td>
              </tr>
            `
          ),
        )}
        <div class="pager">${cursor ? html`<a href="/admin/audit${qs({ action })}">Newest</a>` : ""}${list.next_cursor
          ? html`<a href="/admin/audit${qs({ action, cursor: list.next_cursor })}">Older</a>`
          : ""}</div>
      `,
    };
  });
}

function gatewayTable(gateways: Json[], viewer: Viewer, withKeys: boolean): Html {
  const heads = ["Gateway", "Version", "Runtime", "Last report", "Sessions"];
  return html`
    ${table(
      withKeys ? [...heads, "Key"] : heads,
      gateways.map((g) =>
        html`<tr><td class="name" data-label="Gateway">${g.name}</td><td data-label="Version">${g.version ?? "—"}</td>
<td data-label="Runtime">${g.runtime ?? "—"}</td><td data-label="Last report">${when(g.last_report_at)}</td>
<td data-label="Sessions">${g.sessions_active}</td>${
          withKeys
            ? html`<td data-label="Key">${
              g.key && !g.key.revoked_at
                ? html`<form method="post" action="/admin/gateways/${g.key.id}/revoke" class="inline">${csrfField(viewer)}
<button type="submit" class="danger" data-confirm="Revoke this gateway's key?" aria-label="Revoke key of ${g.name}">Revoke key</button></form>`
                : g.key
                ? "revoked"
                : "shared key"
            }</td>`
            : ""
        }</tr>`
      ),
    )}${gateways.length ? "" : html`<p class="muted">No gateway has reported yet.</p>`}
  `;
}

function issueKeyForm(v: Viewer): Html {
  return html`<h2>Issue a gateway key</h2>
<form method="post" action="/admin/gateways" class="row">${csrfField(v)}
<label>Gateway id (its GATEWAY_ID) <input name="name" required pattern="[A-Za-z0-9._\\-]+" maxlength="64"></label>
<button type="submit">Issue key</button></form>`;
}
