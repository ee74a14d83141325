// The API's shapes, once, one file per concept under schemas/. Request bodies are validated
// with these and /api/v1/openapi.json is generated from the same objects (zod 4's JSON Schema
// output), so the document cannot drift from what the handlers accept.
export * from "./schemas/admins.ts";
export * from "./schemas/devices.ts";
export * from "./schemas/gateway-api.ts";
export * from "./schemas/gateways.ts";
export * from "./schemas/nodes.ts";
export * from "./schemas/usage.ts";
