// `httvps admin …`: the admin accounts (owners only: the CLI uses ADMIN_TOKEN). Passwords come
// from a prompt or stdin (cli/password-input.ts), never from the command line. An account is
// named by its id or its name.
// deno-lint-ignore-file no-explicit-any -- the commands print the API's JSON answers, whose shapes docs/02 and the OpenAPI document own
import type { Env } from "../config/config.ts";
import { AdminApiError, adminCall, output, type Print, table } from "./admin-api.ts";
import { oneOf, type ParsedOptions, UsageError, wholeNumberOrNone } from "./args.ts";
import { readPassword } from "./password-input.ts";

export const ADMIN_OPTIONS = {
  name: { type: "string" },
  role: { type: "string" },
  "own-devices-only": { type: "boolean" },
  "all-devices": { type: "boolean" },
  "max-devices": { type: "string" },
  json: { type: "boolean" },
} as const;

const ROLES = ["owner", "operator"] as const;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The account's id, from an id or a name (names match whatever their case). */
async function accountId(env: Env, ref: string | undefined, sub: string): Promise<string> {
  if (!ref) throw new UsageError(`admin ${sub} needs an account name or id`);
  if (UUID.test(ref)) return ref;
  const { admins } = await adminCall(env, "GET", "/api/v1/admins");
  const found = admins.find((a: any) => a.name.toLowerCase() === ref.toLowerCase());
  if (!found) throw new AdminApiError("not_found", `no admin account named ${ref}`, 404);
  return found.id;
}

const accountText = (a: any) =>
  `${a.name} (${a.role}${a.own_devices_only ? ", own devices only" : ""}${
    a.max_devices === null ? "" : `, at most ${a.max_devices} devices`
  }${a.disabled ? ", disabled" : ""}) ${a.id}`;

export async function adminCommand(env: Env, args: ParsedOptions<typeof ADMIN_OPTIONS>, print: Print): Promise<void> {
  const [sub, ref, ...rest] = args.positionals;
  const { values } = args;
  const json = values.json === true;
  if (rest.length) throw new UsageError(`admin ${sub}: unexpected "${rest[0]}"`);
  if (values["own-devices-only"] && values["all-devices"]) {
    throw new UsageError("--own-devices-only or --all-devices, not both");
  }
  const scope = values["own-devices-only"] ? true : values["all-devices"] ? false : undefined;
  switch (sub) {
    case "create": {
      if (ref) throw new UsageError(`admin create: unexpected "${ref}" (the name goes in --name)`);
      const name = values.name;
      const role = oneOf(values, "role", ROLES);
      if (!name || !role) throw new UsageError("admin create needs --name NAME --role owner|operator");
      const body: Record<string, unknown> = { name, role };
      if (scope !== undefined) body.own_devices_only = scope;
      const max = wholeNumberOrNone(values, "max-devices");
      if (max !== undefined) body.max_devices = max;
      body.password = await readPassword(`password for ${name}`);
      const a = await adminCall(env, "POST", "/api/v1/admins", body);
      output(print, json, a, () => `created ${accountText(a)}`);
      return;
    }
    case "list": {
      const { admins } = await adminCall(env, "GET", "/api/v1/admins");
      output(print, json, admins, () =>
        table(admins.map((a: any) => ({ ...a, disabled: a.disabled ? "yes" : "no" })), [
          "id",
          "name",
          "role",
          "own_devices_only",
          "max_devices",
          "devices_created",
          "disabled",
          "created_at",
        ]));
      return;
    }
    case "update": {
      const id = await accountId(env, ref, sub);
      const body: Record<string, unknown> = {};
      const role = oneOf(values, "role", ROLES);
      if (role) body.role = role;
      if (scope !== undefined) body.own_devices_only = scope;
      const max = wholeNumberOrNone(values, "max-devices");
      if (max !== undefined) body.max_devices = max;
      if (!Object.keys(body).length) {
        throw new UsageError("admin update needs a change: --role, --own-devices-only, --all-devices, --max-devices");
      }
      const a = await adminCall(env, "PATCH", `/api/v1/admins/${id}`, body);
      output(print, json, a, () => `updated ${accountText(a)}`);
      return;
    }
    case "disable":
    case "enable": {
      const id = await accountId(env, ref, sub);
      const a = await adminCall(env, "PATCH", `/api/v1/admins/${id}`, { disabled: sub === "disable" });
      output(print, json, a, () => `${sub}d ${accountText(a)}${sub === "disable" ? "; its sessions ended" : ""}`);
      return;
    }
    case "password": {
      const id = await accountId(env, ref, sub);
      const password = await readPassword(`new password for ${ref}`);
      const a = await adminCall(env, "POST", `/api/v1/admins/${id}/password`, { password });
      output(print, json, a, () => `set the password of ${a.name}; its sessions ended`);
      return;
    }
    default:
      throw new UsageError("admin: expected create, list, update, disable, enable or password");
  }
}
