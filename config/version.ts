// The software's version, as package.json has it (config/config.test.ts checks they agree):
// the backend's OpenAPI document and the gateway's reports carry it, and a compiled binary has
// no package.json to read it from.
export const HTTVPS_VERSION = "0.1.0";
