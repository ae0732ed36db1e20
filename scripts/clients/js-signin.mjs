// Microsoft's JavaScript libraries against reportroot over HTTPS, unchanged: @azure/identity's
// ClientSecretCredential signs in with reportroot as its authority host, and
// @microsoft/microsoft-graph-client's TokenCredentialAuthenticationProvider sends its tokens.
// The CA is trusted through NODE_EXTRA_CA_CERTS.
// Usage: HTTPS_BASE=https://127.0.0.1:PORT APP_JSON=app.json node js-signin.mjs
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { ClientSecretCredential } from "@azure/identity";
import { Client, ResponseType } from "@microsoft/microsoft-graph-client";
import { TokenCredentialAuthenticationProvider } from "@microsoft/microsoft-graph-client/authProviders/azureTokenCredentials/index.js";

const base = process.env.HTTPS_BASE;
const app = JSON.parse(readFileSync(process.env.APP_JSON, "utf8"));
const credential = new ClientSecretCredential(app.tenantId, app.clientId, app.clientSecret, {
  authorityHost: base,
  disableInstanceDiscovery: true,
});
const authProvider = new TokenCredentialAuthenticationProvider(credential, {
  scopes: ["https://graph.microsoft.com/.default"],
});
const host = new URL(base).host;
const client = Client.initWithMiddleware({
  authProvider,
  baseUrl: base,
  customHosts: new Set([host, new URL(base).hostname]),
});

for (const path of [
  "/reports/getOffice365ActivationsUserCounts",
  "/reports/getOffice365ActiveUserCounts(period='D7')",
  "/reports/getTeamsDeviceUsageDistributionUserCounts(period='D30')",
]) {
  const csv = await client.api(path).version("v1.0").responseType(ResponseType.TEXT).get();
  assert.match(csv, /^\uFEFF?Report Refresh Date,/, path);
  assert.ok(csv.trim().split("\n").length > 1, `${path}: no rows`);
}
const page = await client.api("/reports/office365ActiveUserCounts").version("v1.0").top(3).get();
assert.equal(page.value.length, 3, JSON.stringify(page));
console.log("js-signin: @azure/identity ClientSecretCredential + Graph client read the three seed reports and an entity set over HTTPS: ok");
