// `httvps node …`: the Outline node pool through the admin API — add (by ss:// link, by
// fields or by an Outline management API), list, update, enable, disable, remove.
// deno-lint-ignore-file no-explicit-any -- the commands print the API's JSON answers, whose shapes docs/02 and the OpenAPI document own
import type { Env } from "../config/config.ts";
import { parseOutlineManagerConfig } from "../backend/outline-api.ts";
import { adminCall, output, type Print, table } from "./admin-api.ts";
import { type ParsedOptions, UsageError, wholeNumber } from "./args.ts";

export const NODE_OPTIONS = {
  "ss-url": { type: "string" },
  "outline-api": { type: "string" },
  host: { type: "string" },
  port: { type: "string" },
  method: { type: "string" },
  password: { type: "string" },
  name: { type: "string" },
  region: { type: "string" },
  weight: { type: "string" },
  json: { type: "boolean" },
} as const;

/** The node fields `node update` sets. */
function nodeFields(values: ParsedOptions<typeof NODE_OPTIONS>["values"]): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const k of ["name", "host", "method", "password"] as const) if (values[k] !== undefined) body[k] = values[k];
  if (values.region !== undefined) body.region = values.region === "none" ? null : values.region;
  const port = wholeNumber(values, "port");
  if (port !== undefined) body.port = port;
  const weight = wholeNumber(values, "weight");
  if (weight !== undefined) body.weight = weight;
  return body;
}

export async function nodeCommand(env: Env, args: ParsedOptions<typeof NODE_OPTIONS>, print: Print): Promise<void> {
  const [sub, id] = args.positionals;
  const { values } = args;
  const json = values.json === true;
  switch (sub) {
    case "add": {
      const ssUrl = values["ss-url"];
      const common: Record<string, unknown> = {};
      const name = values.name;
      if (name) common.name = name;
      const region = values.region;
      if (region) common.region = region;
      const weight = wholeNumber(values, "weight");
      if (weight !== undefined) common.weight = weight;
      const outlineApi = values["outline-api"];
      let n;
      if (outlineApi) {
        // The installer's line as printed; parsed here so a typo never reaches the server, and the pin is normalised.
        let cfg;
        try {
          cfg = parseOutlineManagerConfig(outlineApi);
        } catch (e) {
          throw new UsageError(`--outline-api: ${(e as Error).message}`);
        }
        const host = values.host;
        n = await adminCall(env, "POST", "/api/v1/nodes/outline", {
          api_url: cfg.apiUrl,
          cert_sha256: cfg.certSha256,
          ...(host ? { host } : {}),
          ...common,
        });
      } else if (ssUrl) {
        n = await adminCall(env, "POST", "/api/v1/nodes/import", { ss_url: ssUrl, ...common });
      } else {
        const host = values.host;
        const port = wholeNumber(values, "port");
        const method = values.method ?? "chacha20-ietf-poly1305";
        const password = values.password;
        if (!host || !port || !password) {
          throw new UsageError(
            "node add needs --ss-url URL, --outline-api JSON, or --host H --port P --password PW [--method M]",
          );
        }
        n = await adminCall(env, "POST", "/api/v1/nodes", {
          name: name ?? `${host}:${port}`,
          host,
          port,
          method,
          password,
          ...common,
        });
      }
      output(
        print,
        json,
        n,
        () =>
          `added node ${n.id} (${n.name}, ${n.host}:${n.port}, ${n.method}${
            n.api_url ? ", per-device keys through its management API" : ""
          })`,
      );
      return;
    }
    case "list": {
      const { nodes } = await adminCall(env, "GET", "/api/v1/nodes");
      const rows = nodes.map((n: any) => ({
        ...n,
        status: n.health.status,
        latency_ms: n.health.latency_ms,
        address: `${n.host}:${n.port}`,
      }));
      print(
        json
          ? JSON.stringify(nodes, null, 2)
          : table(rows, ["id", "name", "address", "method", "enabled", "status", "latency_ms", "sessions_active", "weight"]),
      );
      return;
    }
    case "remove": {
      if (!id) throw new UsageError("node remove needs a node id");
      const r = await adminCall(env, "DELETE", `/api/v1/nodes/${encodeURIComponent(id)}`);
      output(print, json, r, () => `removed node ${id}`);
      return;
    }
    case "update":
    case "enable":
    case "disable": {
      if (!id) throw new UsageError(`node ${sub} needs a node id`);
      const body = sub === "update" ? nodeFields(values) : { enabled: sub === "enable" };
      if (!Object.keys(body).length) {
        throw new UsageError("node update needs a change: --name, --host, --port, --method, --password, --region, --weight");
      }
      const n = await adminCall(env, "PATCH", `/api/v1/nodes/${encodeURIComponent(id)}`, body);
      output(
        print,
        json,
        n,
        () =>
          `${sub === "update" ? "updated" : sub + "d"} node ${n.id} (${n.name}, weight ${n.weight}, ${
            n.enabled ? "enabled" : "disabled"
          })`,
      );
      return;
    }
    default:
      throw new UsageError("node: expected add, list, update, enable, disable or remove");
  }
}
