// The dashboard's benchmark in Chromium (bench/dashboard.sh sets the environment): render times
// from the Performance API, the first view's transfer, and the report function's throughput
// (wrk) alone and while 5 dashboards refresh their data every second.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { chromium } from 'playwright-core';

const BASE = process.env.DASHBOARD_URL;
const USER = { name: process.env.OPERATOR_NAME, password: process.env.OPERATOR_PASSWORD };
const TENANT = process.env.TENANT;
const RUNS = Number(process.env.RUNS || 5);
const WRK_SECONDS = Number(process.env.WRK_SECONDS || 10);
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

async function launch() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'reportroot-bench-chromium-'));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, args: ARGS, viewport: { width: 1280, height: 800 },
  });
  return { context, close: async () => { await context.close(); fs.rmSync(dir, { recursive: true, force: true }); } };
}

async function signIn(page) {
  await page.goto(`${BASE}/dashboard/signin`);
  await page.fill('input[name=username]', USER.name);
  await page.fill('input[name=password]', USER.password);
  await Promise.all([page.waitForURL((u) => !u.pathname.startsWith('/dashboard/signin')), page.press('input[name=password]', 'Enter')]);
}

/** ms from navigation start until the page marked itself drawn. */
async function renderMs(page, url) {
  await page.goto(BASE + url);
  await page.waitForSelector('main[data-ready="true"]', { timeout: 60000 });
  return Number(await page.getAttribute('main', 'data-ready-ms'));
}

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

function wrk(url, token) {
  const out = execFileSync('wrk', ['-t2', '-c16', `-d${WRK_SECONDS}s`, '-H', `Authorization: Bearer ${token}`, url], { encoding: 'utf8' });
  return Number(/Requests\/sec:\s+([\d.]+)/.exec(out)[1]);
}

const result = {};
const { context, close } = await launch();
try {
  const page = context.pages()[0] || (await context.newPage());
  await signIn(page);
  const overview = `/dashboard/?tenant=${TENANT}`;
  const report = `/dashboard/reports/office365ActiveUserCounts?tenant=${TENANT}&range=all`;
  await renderMs(page, overview); // warm the database's and the browser's caches once
  const times = { overview: [], report: [] };
  for (let i = 0; i < RUNS; i++) {
    times.overview.push(await renderMs(page, overview));
    times.report.push(await renderMs(page, report));
  }
  result.overviewMs = median(times.overview);
  result.reportMs = median(times.report);
  result.reportPoints = Number(await page.getAttribute('#chart [data-chart]', 'data-points'));

  // The first view: a new browser (empty cache) signs in and lands on the overview.
  const fresh = await launch();
  try {
    const first = fresh.context.pages()[0] || (await fresh.context.newPage());
    await first.goto(`${BASE}/dashboard/signin?next=${encodeURIComponent(overview)}`);
    const signinBytes = await first.evaluate(() => performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))
      .reduce((n, e) => n + e.transferSize, 0));
    await first.fill('input[name=username]', USER.name);
    await first.fill('input[name=password]', USER.password);
    await Promise.all([first.waitForURL((u) => u.pathname === '/dashboard/'), first.press('input[name=password]', 'Enter')]);
    await first.waitForSelector('main[data-ready="true"]', { timeout: 60000 });
    const entries = await first.evaluate(() => performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))
      .map((e) => ({ name: e.name, transfer: e.transferSize, body: e.encodedBodySize })));
    result.firstViewBytes = signinBytes + entries.reduce((n, e) => n + e.transfer, 0);
    result.firstViewRequests = entries.length;
    result.largest = entries.sort((a, b) => b.transfer - a.transfer).slice(0, 3).map((e) => `${e.name.replace(BASE, '')} ${e.transfer}`);
  } finally {
    await fresh.close();
  }

  // Throughput of the report function, alone and with 5 dashboards re-reading their data
  // (every series call of the overview) every second.
  const fn = `${BASE}/beta/reports/getOffice365ActiveUserCounts(period='D7')?$format=application/json`;
  result.alone = wrk(fn, process.env.TOKEN);
  const dashboards = [];
  for (let i = 0; i < 5; i++) {
    const p = await context.newPage();
    await p.goto(BASE + overview);
    await p.waitForSelector('main[data-ready="true"]');
    const urls = await p.evaluate(() => performance.getEntriesByType('resource').map((e) => e.name).filter((n) => n.includes('reportroot.series')));
    dashboards.push({ page: p, urls });
  }
  let refreshes = 0;
  let running = true;
  const loops = dashboards.map(async ({ page: p, urls }) => {
    while (running) {
      const started = Date.now();
      await p.evaluate(async ([urls, tenant]) => Promise.all(urls.map((u) => fetch(u, { headers: { 'X-Reportroot-Tenant': tenant } }).then((r) => r.text()))), [urls, TENANT]);
      refreshes++;
      await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (Date.now() - started))));
    }
  });
  result.withDashboards = wrk(fn, process.env.TOKEN);
  running = false;
  await Promise.all(loops);
  result.dashboardRefreshesPerSecond = refreshes / WRK_SECONDS;
  result.seriesCallsPerRefresh = dashboards[0].urls.length;
} finally {
  await close();
}
console.log(JSON.stringify(result));
