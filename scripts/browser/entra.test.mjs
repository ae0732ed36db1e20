// "Sign in with Entra ID" in a real browser: Debian's Chromium (playwright-core) on a reportroot
// configured with a real OpenID provider (the npm package oidc-provider, run by check.sh with
// scripts/browser/oidc-provider.mjs): the button, the provider's sign-in and consent pages, and
// the session it ends in, for someone who is no dashboard user (read-only, their tenant only)
// and for a dashboard user of the same name.
// Run: scripts/browser/check.sh (which sets the environment below).
import { test } from 'node:test';
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
const BASE = env('ENTRA_DASHBOARD_URL');
const PLAIN = env('DASHBOARD_URL');
const USER_A = env('USER_A_NAME');
const TENANT_A = env('TENANT_A');
const TENANT_B = env('TENANT_B');
const SHOTS = process.env.SCREENSHOTS || path.join(here, '../../target/screenshots');
const AXE = fs.readFileSync(path.join(here, 'node_modules/axe-core/axe.min.js'), 'utf8');
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

async function launch() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'reportroot-chromium-'));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, args: ARGS,
    viewport: { width: 1280, height: 800 },
  });
  const errors = [];
  const page = context.pages()[0] || (await context.newPage());
  page.on('pageerror', (e) => errors.push(`${page.url()}: ${e.message}`));
  page.on('console', (m) => {
    // The provider's own pages are not reportroot's to keep clean.
    if (m.type() === 'error' && page.url().startsWith(BASE)) errors.push(`${page.url()}: ${m.text()}`);
  });
  return { page, errors, close: async () => { await context.close(); fs.rmSync(dir, { recursive: true, force: true }); } };
}

/** Through the button, the provider's sign-in page (as `login`) and its consent page, back to the dashboard. */
async function signInWithEntra(page, login, next = '/dashboard/operator') {
  await page.goto(`${BASE}${next}`);
  await page.waitForURL(/\/dashboard\/signin/);
  await page.click('a#signin-entra');
  await page.waitForSelector('input[name=login]');
  await page.fill('input[name=login]', login);
  await page.fill('input[name=password]', 'anything');
  await page.click('button[type=submit]');
  // Consent (once per account and client).
  await page.waitForURL((url) => url.href.startsWith(BASE) || url.pathname.includes('/interaction/'));
  if (!page.url().startsWith(BASE)) {
    await Promise.all([page.waitForURL((url) => url.href.startsWith(BASE)), page.click('button[type=submit]')]);
  }
}

async function me(page) {
  return page.evaluate(async () => {
    const response = await fetch('/dashboard/api/me');
    return { status: response.status, body: await response.json() };
  });
}

function read(page, tenant) {
  return page.evaluate(async (tenant) => {
    const response = await fetch('/v1.0/reports/office365ActivationsUserCounts?$top=1', {
      headers: { 'X-Reportroot-Tenant': tenant, Accept: 'application/json' },
    });
    return response.status;
  }, tenant);
}

test('the sign-in page offers Entra ID only where it is configured, accessibly', async () => {
  const { page, errors, close } = await launch();
  try {
    await page.goto(`${PLAIN}/dashboard/signin`);
    assert.equal(await page.locator('a#signin-entra').count(), 0);
    await page.goto(`${BASE}/dashboard/signin?next=%2Fdashboard%2Foperator`);
    const link = page.locator('a#signin-entra');
    assert.equal(await link.textContent(), 'Sign in with Entra ID');
    assert.equal(await link.getAttribute('href'), '/dashboard/signin/oidc/start?next=%2Fdashboard%2Foperator');
    await page.screenshot({ path: path.join(SHOTS, 'signin-entra.png') });
    // Evaluated by the driver, as dashboard.test.mjs does: the page's CSP forbids inline scripts.
    await page.evaluate(AXE);
    const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
    const serious = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    assert.deepEqual(serious.map((v) => v.id), []);
    assert.deepEqual(errors, []);
  } finally {
    await close();
  }
});

test('someone of a known tenant signs in with Entra ID and reads that tenant only', async () => {
  const { page, errors, close } = await launch();
  try {
    await signInWithEntra(page, 'someone@fabrikam.example', '/dashboard/?from=2025-01-01');
    await page.waitForURL(`${BASE}/dashboard/?from=2025-01-01`);
    const who = await me(page);
    assert.equal(who.status, 200);
    assert.equal(who.body.name, 'someone@fabrikam.example (Entra ID)');
    assert.equal(who.body.operator, false);
    assert.deepEqual(who.body.tenants.map((t) => [t.id, t.write]), [[TENANT_A, false]]);
    await page.waitForSelector('main[data-ready="true"]', { timeout: 30000 });
    await page.screenshot({ path: path.join(SHOTS, 'entra-overview.png') });
    assert.deepEqual(errors, []);
    assert.equal(await read(page, TENANT_A), 200);
    assert.equal(await read(page, TENANT_B), 403);
  } finally {
    await close();
  }
});

test('a dashboard user of the same name signs in as that user', async () => {
  const { page, errors, close } = await launch();
  try {
    await signInWithEntra(page, USER_A, '/dashboard/');
    const who = await me(page);
    assert.equal(who.body.name, USER_A);
    assert.deepEqual(who.body.tenants.map((t) => t.id), [TENANT_A]);
    assert.deepEqual(errors, []);
  } finally {
    await close();
  }
});
