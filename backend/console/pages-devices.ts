// The devices pages, which operators see too: the list with search, filters, pagination and
// bulk actions; creating one (its access key, app links and their QR codes); a device's page
// with its live state, chart and sessions, the edit form and its actions.
import { html, raw } from "hono/html";
import { renderQrSvg } from "../../protocol/app-links/qr.ts";
import { ApiFailure, qs } from "./api-client.ts";
import { type AddRoute, backTo, type DeviceLinks, field, type Form, type PageResult } from "./page-types.ts";
import { barChart, bytes, csrfField, type Html, statusBadge, table, when } from "./html.ts";

const FILTERS = ["active", "disabled", "expired", "over_quota", "on_hold", "revoked", "online"] as const;
const PERIODS = ["none", "day", "week", "month"] as const;
const MIB = 1024 * 1024;
const PAGE = 25;

const bad = (message: string) => new ApiFailure(400, "validation_failed", message);

/** A whole number from a field; blank is null. */
function wholeNumber(f: Form, k: string, what: string, min: number): number | null {
  const v = field(f, k).trim();
  if (!v) return null;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw bad(`${what}: expected a whole number of at least ${min}`);
  return n;
}

/** The API body of the create and edit forms. */
function deviceBody(f: Form): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  const name = field(f, "name").trim();
  if (name) body.name = name;
  const mib = field(f, "quota_mib").trim();
  if (mib) {
    const n = Number(mib);
    if (!Number.isFinite(n) || n < 0) throw bad("data quota: expected a number of MiB");
    body.data_quota_bytes = Math.round(n * MIB);
  } else body.data_quota_bytes = null;
  const period = field(f, "quota_period");
  if ((PERIODS as readonly string[]).includes(period)) body.quota_period = period;
  const expiry = field(f, "expiry");
  if (expiry === "date") {
    const day = field(f, "expires_on");
    if (!/^\d{4}-\d{2}-\d{2}$/.test(day) || Number.isNaN(Date.parse(`${day}T23:59:59Z`))) {
      throw bad("expiry date: expected a date");
    }
    body.expires_at = `${day}T23:59:59Z`;
    body.expire_after_days = null;
  } else if (expiry === "first_connection") {
    body.expires_at = null;
    body.expire_after_days = wholeNumber(f, "expire_after_days", "days from the first connection", 1);
    if (body.expire_after_days === null) throw bad("days from the first connection: required for this expiry");
  } else {
    body.expires_at = null;
    body.expire_after_days = null;
  }
  body.max_sessions = wholeNumber(f, "max_sessions", "max sessions", 1);
  return body;
}

// deno-lint-ignore no-explicit-any -- a device as the API answers it
type DeviceJson = any;

function deviceFields(d?: DeviceJson): Html {
  const mode = d?.expiry_mode ?? "none";
  const sel = (on: boolean) => raw(on ? " selected" : "");
  return html`<div class="row">
  <label>Name <input name="name" maxlength="100" ${raw(d ? "" : "required")} value="${d?.name ?? ""}"></label>
  <label>Data quota (MiB, blank: none) <input name="quota_mib" inputmode="decimal" value="${
    d?.data_quota_bytes != null ? String(d.data_quota_bytes / MIB) : ""
  }"></label>
  <label>Quota resets <select name="quota_period">${
    PERIODS.map((p) =>
      html`
        <option value="${p}" ${sel((d?.quota_period ?? "none") === p)}>${p === "none" ? "never" : `every ${p}`}</option>
      `
    )
  }</select></label>
  <label>Max sessions (blank: no limit) <input name="max_sessions" inputmode="numeric" value="${d?.max_sessions ?? ""}"></label>
</div>
<div class="row">
  <label>Expiry <select name="expiry">
    <option value="none"${sel(mode === "none")}>never</option>
    <option value="date"${sel(mode === "date")}>on a date</option>
    <option value="first_connection"${sel(mode === "first_connection")}>N days from the first connection</option>
  </select></label>
  <label>Expiry date <input name="expires_on" type="date" value="${
    mode === "date" && d?.expires_at ? d.expires_at.slice(0, 10) : ""
  }"></label>
  <label>Days from the first connection <input name="expire_after_days" inputmode="numeric" value="${
    d?.expire_after_days ?? ""
  }"></label>
</div>`;
}

const usageText = (d: DeviceJson) =>
  d.data_quota_bytes != null
    ? `${bytes(d.quota_used_bytes)} of ${bytes(d.data_quota_bytes)}${d.quota_period !== "none" ? ` this ${d.quota_period}` : ""}`
    : `${bytes(d.bytes_up + d.bytes_down)} in total`;

/** A QR code of `text` as inline SVG, named for screen readers and findable by the tests. */
function qr(text: string, label: string, key: string): Html {
  return html`
    <figure class="qr" data-qr="${key}">
      <div role="img" aria-label="QR code: ${label}">${raw(renderQrSvg(text, 4))}</div>
      <figcaption>${label}</figcaption>
    </figure>
  `;
}

/** The credentials of a device just created or rotated: shown once. */
function credentials(
  links: DeviceLinks | undefined,
  d: { device_id: string; token: string; name: string; app: DeviceJson },
): Html {
  const key = links?.accessKey?.(d);
  const apps = links?.appLinks?.({ name: d.name, app: d.app });
  return html`<p class="notice" role="status">Shown once: copy the access key or scan its QR code now. Only its hash is kept.</p>
${
    key
      ? html`<h2>Access key (httvps connect)</h2><p class="secret" id="access-key">${key}</p>${
        qr(key, "access key", "access-key")
      }`
      : html`
        <h2>Credentials</h2>
        <dl>
          <dt>Device id</dt>
          <dd class="secret" id="device-id">${d.device_id}</dd>
          <dt>Token</dt>
          <dd class="secret" id="device-token">${d.token}</dd>
        </dl>
        <p class="muted">Set GATEWAY_PUBLIC_URL on the backend to get a ready access key here.</p>
      `
  }
${apps ? appLinksSection(apps) : ""}
<p><a href="/admin/devices/${d.device_id}">Open the device's page</a> · <a href="/admin/devices">All devices</a></p>`;
}

function appLinksSection(apps: { ssconf: string; ss_url: string; subscription_url: string }): Html {
  const rows = [
    ["ssconf", "Outline key (ssconf://)", apps.ssconf],
    ["ss-url", "Shadowsocks link (ss://)", apps.ss_url],
    ["subscription", "Subscription URL (Clash, sing-box, v2rayN…)", apps.subscription_url],
  ] as const;
  return html`
    <h2>App links</h2>
    <div class="links">${rows.map(([k, label, link]) =>
      html`<div><p class="secret" id="link-${k}">${link}</p>${qr(link, label, k)}</div>`
    )}</div>
  `;
}

export function devicesTable(devices: DeviceJson[], selectable: boolean): Html {
  const heads = ["Name", "Status", "Online", "Usage", "Last seen", "Expires"];
  const selectAll = html`<input type="checkbox" data-select-all aria-label="Select all devices on this page">`;
  return html`
    ${table(
      selectable ? [selectAll, ...heads] : heads,
      devices.map((d) =>
        html`<tr>${
          selectable
            ? html`<td><input type="checkbox" name="ids" value="${d.id}" form="bulk" aria-label="Select ${d.name}"></td>`
            : ""
        }<td class="name" data-label="Name"><a href="/admin/devices/${d.id}">${d.name}</a></td>
<td data-label="Status">${statusBadge(d.status)}</td>
<td data-label="Online">${d.online ? html`<span class="online">online (${d.sessions_active})</span>` : "no"}</td>
<td data-label="Usage">${usageText(d)}</td>
<td data-label="Last seen">${when(d.last_seen_at)}</td>
<td data-label="Expires">${
          d.expiry_mode === "first_connection" && !d.expires_at
            ? `${d.expire_after_days} days after first use`
            : when(d.expires_at)
        }</td></tr>`
      ),
    )}${devices.length ? "" : html`<p class="muted">No devices match.</p>`}
  `;
}

export function devicePages(add: AddRoute, links: DeviceLinks | undefined): void {
  add("get", "/admin/devices", async ({ c, api, viewer }) => {
    const q = c.req.query("q")?.slice(0, 100) ?? "";
    const status = (FILTERS as readonly string[]).includes(c.req.query("status") ?? "") ? c.req.query("status")! : "";
    const cursor = c.req.query("cursor") ?? "";
    const list = await api.get(`/api/v1/devices${qs({ q: q.trim(), status, cursor, limit: PAGE, order: "desc" })}`);
    const here = `/admin/devices${qs({ q, status, cursor })}`;
    return {
      title: "Devices",
      current: "/admin/devices",
      body: html`
        <form method="get" action="/admin/devices" class="row" role="search">
          <label>Search by name or id <input name="q" type="search" value="${q}"></label>
          <label>Show <select name="status"><option value="">all</option>${FILTERS.map((f) =>
            html`
              <option value="${f}" ${raw(f === status ? " selected" : "")}>${f.replace("_", " ")}</option>
            `
          )}</select></label>
          <button type="submit">Filter</button>
        </form>
        <form method="post" action="/admin/devices/bulk" id="bulk" class="row">${csrfField(viewer)}
          <input type="hidden" name="back" value="${here}">
          <label>With the selected devices <select name="action">
            <option value="disable">disable</option><option value="enable">enable</option>
            <option value="reset_usage">reset usage</option><option value="revoke">revoke</option>
          </select></label>
          <button type="submit" data-confirm="Apply this action to the selected devices?">Apply</button>
        </form>
        ${devicesTable(list.devices, true)}
        <div class="pager">${cursor ? html`<a href="/admin/devices${qs({ q, status })}">First page</a>` : ""}${list.next_cursor
          ? html`<a href="/admin/devices${qs({ q, status, cursor: list.next_cursor })}">Next page</a>`
          : ""}</div>
        <h2 id="new">New device</h2>
        <form method="post" action="/admin/devices">${csrfField(viewer)}<fieldset><legend>New device</legend>${deviceFields()}
          <button type="submit">Create device</button></fieldset></form>
      `,
    };
  });

  add("post", "/admin/devices", async ({ api, form }) => {
    const d = await api.send("POST", "/api/v1/devices", deviceBody(form));
    return { title: `Device created: ${d.name}`, current: "/admin/devices", body: credentials(links, d) };
  });

  add("post", "/admin/devices/bulk", async ({ c, api, form }) => {
    const ids = ([] as string[]).concat(form.ids ?? []);
    if (!ids.length) throw bad("select at least one device");
    await api.send("POST", "/api/v1/devices/bulk", { action: field(form, "action"), ids });
    return c.redirect(backTo(form, "/admin/devices"), 303);
  });

  const devicePath = (id: string) => `/api/v1/devices/${encodeURIComponent(id)}`;

  add("get", "/admin/devices/:id", async ({ c, api, viewer }) => {
    const id = c.req.param("id")!;
    const bucket = c.req.query("bucket") === "day" ? "day" : "hour";
    const d = await api.get(devicePath(id));
    const [usage, sessions, app] = await Promise.all([
      api.get(`${devicePath(id)}/usage?bucket=${bucket}`),
      api.get(`${devicePath(id)}/sessions?limit=20`),
      d.revoked_at ? Promise.resolve(null) : api.get(`${devicePath(id)}/app`).catch(() => null),
    ]);
    const apps = app ? links?.appLinks?.({ name: d.name, app }) : undefined;
    const here = `/admin/devices/${d.id}`;
    const action = (path: string, label: string, cls = "secondary", confirm?: string) =>
      html`
        <form method="post" action="${here}/${path}"
          class="inline">${csrfField(viewer)}<button type="submit" class="${cls}"${raw(
            confirm ? ` data-confirm="${confirm}"` : "",
          )}>${label}</button></form>
      `;
    return {
      title: `Device: ${d.name}`,
      current: "/admin/devices",
      body: html`
        <section data-refresh="5" aria-live="polite" aria-label="Live state">
        <div class="cards">
          <div class="card"><div class="muted">Status</div><div class="n" id="device-status">${statusBadge(d.status)}</div></div>
          <div class="card"><div class="muted">Online now</div><div class="n" id="device-online">${d.online
            ? `yes (${d.sessions_active})`
            : "no"}</div></div>
          <div class="card"><div class="muted">Traffic</div><div class="n" id="device-traffic" data-bytes="${d.bytes_up +
            d.bytes_down}">${bytes(d.bytes_up + d.bytes_down)}</div></div>
          <div class="card"><div class="muted">Quota</div><div>${usageText(d)}</div></div>
          <div class="card"><div class="muted">Last seen</div><div>${when(d.last_seen_at)}</div></div>
          <div class="card"><div class="muted">Expires</div><div>${d.expiry_mode === "first_connection" && !d.expires_at
            ? `${d.expire_after_days} days after first use`
            : when(d.expires_at)}</div></div>
        </div>
        <h2>Traffic by ${bucket}</h2>
        <p><a href="${here}?bucket=hour"${raw(
          bucket === "hour" ? ' aria-current="true"' : "",
        )}>last 24 hours</a> · <a href="${here}?bucket=day"${raw(
          bucket === "day" ? ' aria-current="true"' : "",
        )}>last 30 days</a></p>
        ${barChart(
          usage.series?.points ?? [],
          bucket === "hour" ? "Traffic per hour, last 24 hours" : "Traffic per day, last 30 days",
        )}
        <h2>Sessions</h2>
        ${table(
          ["Opened", "State", "Gateway", "Node", "Traffic"],
          sessions.sessions.map((s: DeviceJson) =>
            html`
              <tr>
                <td data-label="Opened">${when(s.opened_at)}</td>
                <td data-label="State">${s.online
                  ? html`<span class="online">online</span>`
                  : s.closed_at
                  ? `closed (${s.close_reason ?? "?"})`
                  : "stale"}</td>
                <td data-label="Gateway" class="wrap">${s.gateway_id}</td>
                <td data-label="Node" class="wrap">${s.node_id && viewer.role === "owner"
                  ? html`<a href="/admin/nodes/${s.node_id}">${s.node_id}</a>`
                  : s.node_id ?? "—"}</td>
                <td data-label="Traffic">${bytes(s.bytes_up + s.bytes_down)}</td>
              </tr>
            `
          ),
        )}${sessions.sessions.length ? "" : html`<p class="muted">No sessions yet.</p>`}
        </section>
        ${d.revoked_at ? html`<p class="error">Revoked ${when(d.revoked_at)}.</p>` : html`
          <h2>Actions</h2>
          <p>${d.disabled ? action("enable", "Enable") : action("disable", "Disable")}${action(
            "reset-usage",
            "Reset usage",
          )}${action("rotate", "Rotate token", "secondary", "The old access key stops working. Rotate?")}${action(
            "revoke",
            "Revoke",
            "danger",
            "Revoke this device? Its sessions end and it cannot be undone.",
          )}</p>
          <h2>Edit</h2>
          <form method="post" action="${here}">${csrfField(viewer)}<fieldset><legend>Limits</legend>${deviceFields(d)}
          <button type="submit">Save</button></fieldset></form>
          ${apps ? appLinksSection(apps) : ""}
        `}
      `,
    };
  });

  add("post", "/admin/devices/:id", async ({ c, api, form }) => {
    const id = c.req.param("id")!;
    await api.send("PATCH", devicePath(id), deviceBody(form));
    return c.redirect(`/admin/devices/${encodeURIComponent(id)}`, 303);
  });

  const simple = (path: string, run: (api: Parameters<Parameters<AddRoute>[2]>[0]["api"], id: string) => Promise<unknown>) =>
    add("post", `/admin/devices/:id/${path}`, async ({ c, api }): Promise<PageResult> => {
      const id = c.req.param("id")!;
      await run(api, id);
      return c.redirect(`/admin/devices/${encodeURIComponent(id)}`, 303);
    });
  simple("disable", (api, id) => api.send("PATCH", devicePath(id), { disabled: true }));
  simple("enable", (api, id) => api.send("PATCH", devicePath(id), { disabled: false }));
  simple("reset-usage", (api, id) => api.send("POST", `${devicePath(id)}/reset-usage`));
  simple("revoke", (api, id) => api.send("DELETE", devicePath(id)));

  add("post", "/admin/devices/:id/rotate", async ({ c, api }) => {
    const id = c.req.param("id")!;
    const d = await api.get(devicePath(id));
    const r = await api.send("POST", `${devicePath(id)}/rotate-token`);
    return { title: `New token: ${d.name}`, current: "/admin/devices", body: credentials(links, { ...r, name: d.name }) };
  });
}
