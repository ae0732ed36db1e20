// The dashboard's tests in a real browser: Debian's Chromium driven by playwright-core, against a
// running reportroot demo (scripts/browser/check.sh starts it and sets the environment below).
// Run: node --test scripts/browser/dashboard.test.mjs
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (run scripts/browser/check.sh)`);
  return value;
};
const BASE = env('DASHBOARD_URL');
const HTTPS_BASE = env('DASHBOARD_HTTPS_URL');
const OPERATOR = { name: env('OPERATOR_NAME'), password: env('OPERATOR_PASSWORD') };
const USER_A = { name: env('USER_A_NAME'), password: env('USER_A_PASSWORD') };
const TENANT_A = env('TENANT_A');
const TENANT_B = env('TENANT_B');
const SHOTS = process.env.SCREENSHOTS || path.join(here, '../../target/screenshots');
const AXE = fs.readFileSync(path.join(here, 'node_modules/axe-core/axe.min.js'), 'utf8');
fs.mkdirSync(SHOTS, { recursive: true });

export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** A browser with a fresh profile, and the console errors of its pages. */
async function launch(viewport = { width: 1280, height: 800 }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'reportroot-chromium-'));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS,
    viewport, acceptDownloads: true, ignoreHTTPSErrors: true,
  });
  const errors = [];
  const watch = (page) => {
    page.on('console', (m) => { if (m.type() === 'error') errors.push(`${page.url()}: ${m.text()}`); });
    page.on('pageerror', (e) => errors.push(`${page.url()}: ${e.message}`));
  };
  context.on('page', watch);
  context.pages().forEach(watch);
  const page = context.pages()[0] || (await context.newPage());
  return { context, page, errors, close: async () => { await context.close(); fs.rmSync(dir, { recursive: true, force: true }); } };
}

async function signIn(page, user, next = '/dashboard/') {
  await page.goto(BASE + next);
  await page.waitForURL(/\/dashboard\/signin/);
  await page.fill('input[name=username]', user.name);
  await page.fill('input[name=password]', user.password);
  await Promise.all([page.waitForURL((url) => !url.pathname.startsWith('/dashboard/signin')), page.press('input[name=password]', 'Enter')]);
}

const ready = (page) => page.waitForSelector('main[data-ready="true"]', { timeout: 30000 });

/** A GET from inside the page (its cookie, same origin): status and text. */
function inPage(page, url, tenant, accept = 'application/json') {
  return page.evaluate(async ([url, tenant, accept]) => {
    const headers = { Accept: accept };
    if (tenant) headers['X-Reportroot-Tenant'] = tenant;
    const response = await fetch(url, { headers });
    return { status: response.status, text: await response.text() };
  }, [url, tenant, accept]);
}

async function registry(page) {
  return JSON.parse((await inPage(page, '/dashboard/api/registry')).text);
}

function seriesUrl(report, { from, to, interval, period }) {
  const args = [`from=${from}`, `to=${to}`];
  if (interval) args.push(`interval='${interval}'`);
  if (period) args.push(`period='${period}'`);
  return `/${report.version}/reports/${report.entitySet}/reportroot.series(${args.join(',')})`;
}

async function apiRows(page, report, options, tenant = TENANT_A) {
  const answer = await inPage(page, seriesUrl(report, options), tenant);
  assert.equal(answer.status, 200, answer.text);
  return JSON.parse(answer.text).value;
}

/** The options the report chart was drawn with, from its data attributes. */
async function chartOptions(page) {
  return page.$eval('#chart [data-chart]', (c) => ({
    points: Number(c.dataset.points), from: c.dataset.from, to: c.dataset.to,
    interval: c.dataset.interval, period: c.dataset.period,
  }));
}

async function axe(page, name) {
  await page.evaluate(AXE);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad.map((v) => `${name}: ${v.id} (${v.impact}) ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')}`), []);
}

const shot = (page, name) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });

let operator;
let reg;

before(async () => {
  operator = await launch();
});

after(async () => {
  if (operator) await operator.close();
});

test('the landing page links the dashboard, the API and $metadata', async () => {
  const { page } = operator;
  const response = await page.goto(BASE + '/');
  assert.equal(response.status(), 200);
  const csp = response.headers()['content-security-policy'];
  assert.match(csp, /default-src 'self'/);
  assert.doesNotMatch(csp, /unsafe-inline/);
  const links = await page.$$eval('a', (as) => as.map((a) => a.getAttribute('href')));
  for (const wanted of ['/dashboard/', '/v1.0/reports', '/v1.0/$metadata']) assert.ok(links.includes(wanted), wanted);
  await shot(page, 'landing');
  await axe(page, 'landing');
});

test('signing in leads to the overview', async () => {
  const { page } = operator;
  await page.goto(BASE + '/dashboard/');
  await page.waitForURL(/\/dashboard\/signin/);
  await shot(page, 'signin');
  await axe(page, 'signin');
  await signIn(operator.page, OPERATOR);
  await ready(page);
  assert.equal(await page.textContent('nav .user'), OPERATOR.name);
  reg = await registry(page);
});

test('the overview shows every family with the numbers the API returns', async () => {
  const { page } = operator;
  await page.goto(`${BASE}/dashboard/?tenant=${TENANT_A}`);
  await ready(page);
  const tiles = await page.$$eval('.tile', (ts) => ts.map((t) => ({
    family: t.dataset.family, entity: t.dataset.entity, from: t.dataset.from, to: t.dataset.to, period: t.dataset.period,
    latest: t.dataset.latest,
    numbers: [...t.querySelectorAll('[data-property]')].map((n) => [n.dataset.property, n.dataset.value]),
    points: t.querySelector('[data-chart]') && Number(t.querySelector('[data-chart]').dataset.points),
    error: t.querySelector('.chart-error') && t.querySelector('.chart-error').textContent,
  })));
  assert.deepEqual(tiles.map((t) => t.family), reg.families.map((f) => f.name));
  for (const tile of tiles) {
    assert.equal(tile.error, null, `${tile.family}: ${tile.error}`);
    const family = reg.families.find((f) => f.name === tile.family);
    const report = reg.reports.find((r) => r.entitySet === family.headline);
    const rows = await apiRows(page, report, { from: tile.from, to: tile.to, interval: 'day', period: tile.period });
    assert.ok(rows.length > 0, `${tile.family} has rows`);
    const latest = rows.map((r) => r[report.x]).sort().at(-1);
    assert.equal(tile.latest, latest, tile.family);
    const atLatest = rows.filter((r) => r[report.x] === latest);
    assert.deepEqual(tile.numbers.map(([n]) => n), family.numbers);
    for (const [name, shown] of tile.numbers) {
      const sum = atLatest.reduce((s, r) => s + Number(r[name]), 0);
      assert.equal(Number(shown), sum, `${tile.family} ${name}`);
    }
    assert.equal(tile.points, new Set(rows.map((r) => r[report.x])).size, `${tile.family} sparkline points`);
  }
  await shot(page, 'overview');
  await axe(page, 'overview');
});

test("a report chart's data-points equals the rows in the chosen range, and re-draws on a change", async () => {
  const { page } = operator;
  const report = reg.reports.find((r) => r.entitySet === 'office365ActiveUserCounts');
  await page.goto(`${BASE}/dashboard/reports/${report.entitySet}?tenant=${TENANT_A}&range=30d`);
  await ready(page);
  let drawn = await chartOptions(page);
  assert.equal(drawn.points, (await apiRows(page, report, drawn)).length);
  assert.ok(drawn.points >= 28 && drawn.points <= 30, `30 days: ${drawn.points}`);
  assert.match(await page.textContent('#refreshed'), /^Refreshed \d+ days? ago|^Refreshed today/);
  await page.click('button[data-range="90d"]');
  await page.waitForFunction((from) => document.querySelector('#chart [data-chart]')?.dataset.from !== from, drawn.from);
  drawn = await chartOptions(page);
  const rows = await apiRows(page, report, drawn);
  assert.equal(drawn.points, rows.length);
  assert.ok(drawn.points > 60, `90 days: ${drawn.points}`);
  assert.equal(await page.$$eval('#rows tbody tr', (trs) => trs.length), rows.length);
  await page.click('button[data-range="all"]');
  await page.waitForFunction((n) => Number(document.querySelector('#chart [data-chart]')?.dataset.points) !== n, drawn.points);
  drawn = await chartOptions(page);
  assert.equal(drawn.points, (await apiRows(page, report, drawn)).length);
  await shot(page, 'report-office365ActiveUserCounts');
  await axe(page, 'report');

  const perPeriod = reg.reports.find((r) => r.grain === 'per-period');
  await page.goto(`${BASE}/dashboard/reports/${perPeriod.entitySet}?tenant=${TENANT_A}&range=180d`);
  await ready(page);
  drawn = await chartOptions(page);
  assert.equal(drawn.period, 'D7');
  assert.equal(drawn.points, (await apiRows(page, perPeriod, drawn)).length);
  await page.selectOption('#period', 'D30');
  await page.waitForFunction(() => document.querySelector('#chart [data-chart]')?.dataset.period === 'D30');
  drawn = await chartOptions(page);
  assert.equal(drawn.points, (await apiRows(page, perPeriod, drawn)).length);
  assert.ok(drawn.points > 0);
  await shot(page, `report-${perPeriod.entitySet}`);

  const split = reg.reports.find((r) => r.dimension && r.grain === 'per-dimension');
  await page.goto(`${BASE}/dashboard/reports/${split.entitySet}?tenant=${TENANT_A}&range=90d`);
  await ready(page);
  drawn = await chartOptions(page);
  assert.equal(drawn.points, (await apiRows(page, split, drawn)).length);
  await page.selectOption('#view', 'split');
  await page.waitForURL(/view=split/);
  await shot(page, `report-${split.entitySet}`);
});

test('the table sorts, by mouse and by keyboard', async () => {
  const { page } = operator;
  await page.goto(`${BASE}/dashboard/reports/office365ActiveUserCounts?tenant=${TENANT_A}&range=30d`);
  await ready(page);
  const column = async (i) => page.$$eval(`#rows tbody tr`, (trs, i) => trs.map((tr) => tr.children[i].textContent), i);
  const headers = await page.$$eval('#rows thead th', (ths) => ths.map((th) => th.dataset.key));
  const exchange = headers.indexOf('exchange');
  const numbers = async () => (await column(exchange)).map((t) => Number(t.replace(/,/g, '')));
  await page.click('#rows thead th[data-key="exchange"] button');
  let values = await numbers();
  assert.deepEqual(values, [...values].sort((a, b) => a - b));
  assert.equal(await page.getAttribute('#rows thead th[data-key="exchange"]', 'aria-sort'), 'ascending');
  await page.focus('#rows thead th[data-key="exchange"] button');
  await page.keyboard.press('Enter');
  values = await numbers();
  assert.deepEqual(values, [...values].sort((a, b) => b - a));
  assert.equal(await page.getAttribute('#rows thead th[data-key="exchange"]', 'aria-sort'), 'descending');
});

test('keyboard: the skip link comes first and moves to the content', async () => {
  const { page } = operator;
  await page.goto(`${BASE}/dashboard/?tenant=${TENANT_A}`);
  await ready(page);
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.className), 'skip');
  await page.keyboard.press('Enter');
  assert.equal(await page.evaluate(() => location.hash), '#main');
});

test('download returns the same bytes as the API', async () => {
  const { page } = operator;
  const report = reg.reports.find((r) => r.entitySet === 'office365ActiveUserCounts');
  await page.goto(`${BASE}/dashboard/reports/${report.entitySet}?tenant=${TENANT_A}&range=90d`);
  await ready(page);
  const drawn = await chartOptions(page);
  const url = seriesUrl(report, drawn);
  for (const [button, accept, suffix] of [['#download-json', 'application/json', ''], ['#download-csv', 'text/csv', '?$format=text/csv']]) {
    const [download] = await Promise.all([page.waitForEvent('download'), page.click(button)]);
    const got = fs.readFileSync(await download.path(), 'utf8');
    const api = await inPage(page, url + suffix, TENANT_A, accept);
    assert.equal(api.status, 200, api.text);
    assert.equal(got, api.text, button);
    assert.ok(got.length > 100);
  }
});

test("upload imports the good file and shows the bad file's line and column", async () => {
  const { page } = operator;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'reportroot-upload-'));
  const header = 'Report Refresh Date,Product Type,Assigned,Activated,Shared Computer Activation';
  const good = path.join(dir, 'office365ActivationsUserCounts.csv');
  fs.writeFileSync(good, `${header}\n2020-01-05,VISIO CLIENT,40,31,2\n2020-01-05,PROJECT CLIENT,12,9,0\n`);
  const bad = path.join(dir, 'activations-bad.csv');
  fs.writeFileSync(bad, `${header}\n2020-01-06,VISIO CLIENT,40,31,2\n2020-01-06,PROJECT CLIENT,twelve,9,0\n`);
  await page.goto(`${BASE}/dashboard/import?tenant=${TENANT_A}`);
  await ready(page);
  await page.selectOption('#import-tenant', TENANT_A);
  await page.setInputFiles('#import-files', [good, bad]);
  await page.click('form.import button[type=submit]');
  await page.waitForSelector('#import-output');
  const output = await page.textContent('#import-output');
  assert.match(output, /office365ActivationsUserCounts\.csv: office365ActivationsUserCounts imported: 2 inserted, 0 updated, 0 unchanged/);
  assert.match(output, /activations-bad\.csv:3:3: /);
  assert.match(output, /activations-bad\.csv: rejected, nothing written \(1 bad rows/);
  assert.match(output, /2 files \(1 rejected\): 2 inserted/);
  const problem = await page.$$eval('#import-problems tbody tr', (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));
  assert.deepEqual(problem[0].slice(0, 3), ['activations-bad.csv', '3', '3']);
  await shot(page, 'import');
  await axe(page, 'import');
  const stored = await inPage(page, "/v1.0/reports/office365ActivationsUserCounts?$filter=reportRefreshDate%20eq%202020-01-05", TENANT_A);
  assert.equal(JSON.parse(stored.text).value.length, 2);
  const none = await inPage(page, "/v1.0/reports/office365ActivationsUserCounts?$filter=reportRefreshDate%20eq%202020-01-06", TENANT_A);
  assert.equal(JSON.parse(none.text).value.length, 0);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('writes without the CSRF token are refused', async () => {
  const { page } = operator;
  await page.goto(`${BASE}/dashboard/?tenant=${TENANT_A}`);
  await ready(page);
  const statuses = await page.evaluate(async (tenant) => {
    const form = new FormData();
    form.append('tenant', tenant);
    form.append('file', new Blob(['x']), 'x.csv');
    const upload = await fetch('/dashboard/api/import', { method: 'POST', body: form });
    const write = await fetch('/v1.0/reports/office365ActivationsUserCounts', {
      method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Reportroot-Tenant': tenant },
      body: JSON.stringify({ reportRefreshDate: '2020-02-01', productType: 'VISIO CLIENT', assigned: 1, activated: 1, sharedComputerActivation: 0 }),
    });
    const signout = await fetch('/dashboard/signout', { method: 'POST', redirect: 'manual' });
    return [upload.status, write.status, signout.status];
  }, TENANT_A);
  assert.deepEqual(statuses, [403, 403, 403]);
  // Still signed in: the refused sign-out did nothing.
  assert.equal((await inPage(page, '/dashboard/api/me')).status, 200);
});

test('the operator view lists every tenant and compares them', async () => {
  const { page } = operator;
  await page.goto(`${BASE}/dashboard/operator?tenant=${TENANT_A}`);
  await ready(page);
  await page.waitForSelector('#compare-chart [data-chart]');
  const me = JSON.parse((await inPage(page, '/dashboard/api/me')).text);
  assert.equal(await page.$$eval('#tenant-table tbody tr', (trs) => trs.length), me.tenants.length);
  const points = Number(await page.getAttribute('#compare-chart [data-chart]', 'data-points'));
  assert.ok(points > 0);
  const before = await page.$$eval('#tenant-table tbody th', (ths) => ths.map((th) => th.textContent));
  await page.click('#tenant-table thead th[data-key="tenant"] button');
  const after = await page.$$eval('#tenant-table tbody th', (ths) => ths.map((th) => th.textContent));
  assert.deepEqual(after, [...before].reverse());
  await shot(page, 'operator');
  await axe(page, 'operator');
});

test('a user of tenant A sees neither the pages nor the data of tenant B', async () => {
  const user = await launch();
  try {
    const { page } = user;
    await signIn(page, USER_A);
    await ready(page);
    const me = JSON.parse((await inPage(page, '/dashboard/api/me')).text);
    assert.deepEqual(me.tenants.map((t) => t.id), [TENANT_A]);
    assert.equal(me.operator, false);
    assert.deepEqual(await page.$$eval('#tenant-select option', (os) => os.map((o) => o.value)), [TENANT_A]);
    const pageB = await page.goto(`${BASE}/dashboard/?tenant=${TENANT_B}`);
    assert.equal(pageB.status(), 403);
    assert.match(await page.textContent('main'), /no access/);
    const reportB = await page.goto(`${BASE}/dashboard/reports/office365ActiveUserCounts?tenant=${TENANT_B}`);
    assert.equal(reportB.status(), 403);
    const operatorPage = await page.goto(`${BASE}/dashboard/operator`);
    assert.equal(operatorPage.status(), 403);
    await page.goto(`${BASE}/dashboard/?tenant=${TENANT_A}`);
    await ready(page);
    const report = reg.reports.find((r) => r.entitySet === 'office365ActiveUserCounts');
    const options = { from: '2000-01-01', to: '2100-01-01', interval: 'month' };
    const dataB = await inPage(page, seriesUrl(report, options), TENANT_B);
    assert.ok([401, 403].includes(dataB.status), `tenant B's series: ${dataB.status}`);
    const rowsB = await inPage(page, '/v1.0/reports/office365ActiveUserCounts?$top=1', TENANT_B);
    assert.ok([401, 403].includes(rowsB.status), `tenant B's rows: ${rowsB.status}`);
    assert.equal((await inPage(page, seriesUrl(report, options), TENANT_A)).status, 200);
    assert.deepEqual(user.errors.filter((e) => !/status of 403/.test(e)), []);
  } finally {
    await user.close();
  }
});

test('pages fit a phone-width screen', async () => {
  const phone = await launch({ width: 390, height: 844 });
  try {
    const { page } = phone;
    await signIn(page, OPERATOR);
    for (const [name, url] of [['overview', `/dashboard/?tenant=${TENANT_A}`],
      ['report', `/dashboard/reports/office365ActiveUserCounts?tenant=${TENANT_A}&range=90d`]]) {
      await page.goto(BASE + url);
      await ready(page);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 1, `${name} overflows by ${overflow}px`);
      await shot(page, `phone-${name}`);
    }
  } finally {
    await phone.close();
  }
});

test('signing out ends the session, on the server too', async () => {
  const { page, context } = operator;
  await page.goto(`${BASE}/dashboard/?tenant=${TENANT_A}`);
  await ready(page);
  const cookie = (await context.cookies(BASE)).find((c) => c.name === 'reportroot_session');
  assert.ok(cookie, 'a session cookie');
  assert.equal(cookie.httpOnly, true);
  await Promise.all([page.waitForURL(/\/dashboard\/signin|\/$/), page.click('form.signout button')]);
  await page.goto(BASE + '/');
  assert.equal((await inPage(page, '/dashboard/api/me')).status, 401);
  await page.goto(BASE + '/dashboard/');
  await page.waitForURL(/\/dashboard\/signin/);
  // The old cookie, sent again, is refused: the session was revoked, not only forgotten.
  const replay = await fetch(`${BASE}/dashboard/api/me`, { headers: { Cookie: `reportroot_session=${cookie.value}` } });
  assert.equal(replay.status, 401);
});

test('over HTTPS: signed in with a Secure cookie, the overview drawn from the API', async () => {
  // The demo's own HTTPS listener (its certificate is from the demo's local CA, which this
  // profile does not know: the launch ignores certificate errors, nothing else differs).
  const https = await launch();
  try {
    const { page, context, errors } = https;
    await page.goto(`${HTTPS_BASE}/dashboard/?tenant=${TENANT_A}`);
    await page.waitForURL(/\/dashboard\/signin/);
    await page.fill('input[name=username]', OPERATOR.name);
    await page.fill('input[name=password]', OPERATOR.password);
    await Promise.all([page.waitForURL((url) => !url.pathname.startsWith('/dashboard/signin')), page.press('input[name=password]', 'Enter')]);
    await ready(page);
    const cookie = (await context.cookies(HTTPS_BASE)).find((c) => c.name === 'reportroot_session');
    assert.ok(cookie, 'a session cookie over HTTPS');
    assert.equal(cookie.secure, true, 'Secure over HTTPS');
    assert.equal(cookie.httpOnly, true);
    const tiles = await page.$$eval('[data-chart]', (charts) => charts.map((c) => Number(c.dataset.points)));
    assert.ok(tiles.length > 0 && tiles.some((n) => n > 0), `charts drawn over HTTPS: ${tiles}`);
    const me = await page.evaluate(async () => (await fetch('/dashboard/api/me')).status);
    assert.equal(me, 200);
    assert.deepEqual(errors, []);
  } finally {
    await https.close();
  }
});

test('no console errors on any page', () => {
  assert.deepEqual(operator.errors.filter((e) => !/status of 40[13]/.test(e)), []);
});
