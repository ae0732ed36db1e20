// Microsoft's JavaScript Graph client (@microsoft/microsoft-graph-client) builds a $batch with
// its own BatchRequestContent (absolute urls cut to "/v1.0/..."), and parses the answer with its
// own BatchResponseContent, which reads headers["Content-Type"] to decide whether a body is
// JSON. Usage: BASE=http://127.0.0.1:PORT/v1.0 TOKEN=... node js-batch.mjs
import assert from "node:assert/strict";
import { BatchRequestContent, BatchResponseContent } from "@microsoft/microsoft-graph-client";

const base = process.env.BASE;
const token = process.env.TOKEN;
const requests = [
  { id: "1", request: new Request(`${base}/reports/office365ActivationsUserCounts?$top=2&$select=productType,activated`, { method: "GET" }) },
  { id: "2", request: new Request(`${base}/reports/getOffice365ActiveUserCounts(period='D7')?redirect=false`, { method: "GET" }) },
  { id: "3", request: new Request(`${base}/reports/nope`, { method: "GET" }) },
];
const content = await new BatchRequestContent(requests).getContent();
const response = await fetch(`${base}/$batch`, {
  method: "POST",
  headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
  body: JSON.stringify(content),
});
assert.equal(response.status, 200);
const parsed = new BatchResponseContent(await response.json());

const page = parsed.getResponseById("1");
assert.equal(page.status, 200);
const json = await page.json();
assert.equal(json.value.length, 2, JSON.stringify(json));
assert.deepEqual(Object.keys(json.value[0]).filter((k) => !k.startsWith("@")), ["productType", "activated"]);

const csv = parsed.getResponseById("2");
assert.equal(csv.status, 200);
assert.match(await csv.text(), /^\uFEFF?Report Refresh Date,/);

const error = parsed.getResponseById("3");
assert.equal(error.status, 400);
const envelope = await error.json();
assert.equal(envelope.error.code, "BadRequest");
assert.match(envelope.error.innerError["client-request-id"], /^[0-9a-f-]{36}$/);
console.log("js-batch: Microsoft's JavaScript client built, sent and parsed a $batch: ok");
