// reportroot dashboard: start-up, the API calls, navigation. The pages are in pages.js, the
// charts and tables in charts.js. Data comes from the OData API with the session cookie and
// the tenant in X-Reportroot-Tenant (granted tenants only: the server checks).
(function () {
  'use strict';
  const RR = (window.RR = window.RR || {});
  const el = RR.el;

  /** An API failure, with the message the server gave (Graph's error envelope). */
  class ApiFailure extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }
  RR.ApiFailure = ApiFailure;

  async function failure(response) {
    let message = `${response.status} ${response.statusText}`;
    try {
      const body = await response.json();
      if (body && body.error && body.error.message) message = `${body.error.message} (${response.status})`;
    } catch (_) {
      /* not JSON: keep the status line */
    }
    if (response.status === 401) {
      message = 'Your session has ended: sign in again.';
      signIn();
    }
    return new ApiFailure(response.status, message);
  }

  /** GET a URL of this server for `tenant`; the answer's text and parsed JSON. */
  RR.get = async function (url, tenant, accept) {
    const headers = { Accept: accept || 'application/json' };
    if (tenant) headers['X-Reportroot-Tenant'] = tenant;
    let response;
    try {
      response = await fetch(url, { headers, credentials: 'same-origin' });
    } catch (error) {
      throw new ApiFailure(0, `The server could not be reached (${error.message}).`);
    }
    if (!response.ok) throw await failure(response);
    const text = await response.text();
    if ((accept || 'application/json').includes('json')) return { text, json: JSON.parse(text) };
    return { text };
  };

  /** POST a form (multipart) with the session's CSRF token. */
  RR.postForm = async function (url, form) {
    const response = await fetch(url, {
      method: 'POST', body: form, credentials: 'same-origin',
      headers: { 'X-CSRF-Token': RR.me.csrfToken, Accept: 'application/json' },
    });
    if (!response.ok) throw await failure(response);
    return response.json();
  };

  /** The URL of the series function of `report` over [from, to]. */
  RR.seriesUrl = function (report, { from, to, interval, period }) {
    const args = [`from=${from}`, `to=${to}`];
    if (interval) args.push(`interval='${interval}'`);
    if (period) args.push(`period='${period}'`);
    return `/${report.version}/reports/${report.entitySet}/reportroot.series(${args.join(',')})`;
  };

  /** The series rows of `report` for `tenant`, with the answer's exact text. */
  RR.series = async function (report, tenant, options) {
    const { text, json } = await RR.get(RR.seriesUrl(report, options), tenant);
    return { text, rows: json.value || [] };
  };

  /** The oldest and newest date (`report.x`) stored for `tenant`, or nulls. */
  RR.extent = async function (report, tenant) {
    const base = `/${report.version}/reports/${report.entitySet}?$select=${report.x},${report.refreshDate}&$top=1&$orderby=`;
    const [first, last] = await Promise.all([
      RR.get(base + encodeURIComponent(`${report.x} asc`), tenant),
      RR.get(base + encodeURIComponent(`${report.x} desc`), tenant),
    ]);
    const a = (first.json.value || [])[0];
    const b = (last.json.value || [])[0];
    return { first: a ? a[report.x] : null, last: b ? b[report.x] : null, refreshed: b ? b[report.refreshDate] : null };
  };

  /** `YYYY-MM-DD` of `date` (UTC). */
  RR.isoDay = function (date) {
    return date.toISOString().slice(0, 10);
  };
  RR.addDays = function (day, n) {
    const d = new Date(RR.dayToSeconds(day) * 1000);
    d.setUTCDate(d.getUTCDate() + n);
    return RR.isoDay(d);
  };
  RR.daysBetween = function (a, b) {
    return Math.round((RR.dayToSeconds(b) - RR.dayToSeconds(a)) / 86400);
  };
  RR.today = function () {
    return RR.isoDay(new Date());
  };

  /** "Refreshed 2 days ago" from a reportRefreshDate. */
  RR.refreshedText = function (day) {
    if (!day) return 'No data yet';
    const n = RR.daysBetween(day, RR.today());
    const ago = n <= 0 ? 'today' : n === 1 ? '1 day ago' : `${n} days ago`;
    return `Refreshed ${ago} (${day})`;
  };

  /** Runs `tasks` (functions returning promises) at most `limit` at a time. */
  RR.limited = async function (tasks, limit) {
    const results = new Array(tasks.length);
    let next = 0;
    const worker = async () => {
      while (next < tasks.length) {
        const i = next++;
        try {
          results[i] = { ok: true, value: await tasks[i]() };
        } catch (error) {
          results[i] = { ok: false, error };
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
    return results;
  };

  /** A link to a dashboard page, keeping the tenant. */
  RR.href = function (path, params) {
    const query = new URLSearchParams(params || {});
    if (RR.tenant && !query.has('tenant')) query.set('tenant', RR.tenant);
    const text = query.toString();
    return text ? `${path}?${text}` : path;
  };

  RR.params = function () {
    return new URLSearchParams(location.search);
  };

  /** Replaces the query (no reload) so that the page can be linked as it is. */
  RR.setParams = function (values) {
    const query = RR.params();
    for (const [name, value] of Object.entries(values)) {
      if (value === null || value === undefined || value === '') query.delete(name);
      else query.set(name, value);
    }
    history.replaceState(null, '', `${location.pathname}?${query.toString()}`);
  };

  function signIn() {
    location.assign(`/dashboard/signin?next=${encodeURIComponent(location.pathname + location.search)}`);
  }

  RR.reportByName = function (name) {
    return RR.registry.reports.find((r) => r.entitySet.toLowerCase() === String(name).toLowerCase());
  };

  function nav() {
    const here = location.pathname;
    const link = (path, text) =>
      el('a', { href: RR.href(path), 'aria-current': here === path ? 'page' : undefined }, text);
    const tenantSelect = el('select', {
      id: 'tenant-select',
      onchange: (event) => {
        const query = RR.params();
        query.set('tenant', event.target.value);
        location.assign(`${location.pathname}?${query.toString()}`);
      },
    }, RR.me.tenants.map((t) => el('option', { value: t.id, selected: t.id === RR.tenant }, t.displayName)));
    const reportSelect = el('select', {
      id: 'report-select',
      onchange: (event) => {
        if (event.target.value) location.assign(RR.href(`/dashboard/reports/${event.target.value}`));
      },
    }, el('option', { value: '' }, 'Go to a report…'),
    RR.registry.families.map((family) =>
      el('optgroup', { label: family.name }, family.reports.map((name) => el('option', { value: name }, name)))
    ));
    const signOut = el('form', { method: 'post', action: '/dashboard/signout', class: 'signout' },
      el('input', { type: 'hidden', name: 'csrf', value: RR.me.csrfToken }),
      el('button', { type: 'submit' }, 'Sign out'));
    document.getElementById('nav').replaceChildren(
      el('ul', {},
        el('li', {}, link('/dashboard/', 'Overview')),
        RR.me.operator ? el('li', {}, link('/dashboard/operator', 'All tenants')) : null,
        RR.me.tenants.some((t) => t.write) ? el('li', {}, link('/dashboard/import', 'Import')) : null),
      el('label', { for: 'report-select', class: 'visually-hidden' }, 'Report'), reportSelect,
      el('label', { for: 'tenant-select' }, 'Tenant'), tenantSelect,
      el('span', { class: 'user' }, RR.me.name), signOut
    );
  }

  /** Marks a page drawn (tests and the benchmark wait for it), with when, in ms since navigation. */
  RR.ready = function (main) {
    main.setAttribute('data-ready-ms', performance.now().toFixed(1));
    main.setAttribute('data-ready', 'true');
  };

  /** Shows a failure in the main area. */
  RR.fail = function (message) {
    const main = document.getElementById('main');
    main.replaceChildren(el('p', { class: 'error', role: 'alert' }, message));
    RR.ready(main);
  };

  async function start() {
    let me;
    let registry;
    try {
      const [meAnswer, registryAnswer] = await Promise.all([
        fetch('/dashboard/api/me', { credentials: 'same-origin', headers: { Accept: 'application/json' } }),
        RR.get('/dashboard/api/registry'),
      ]);
      if (meAnswer.status === 401) return signIn();
      if (!meAnswer.ok) throw await failure(meAnswer);
      me = await meAnswer.json();
      registry = registryAnswer.json;
    } catch (error) {
      return RR.fail(error.message);
    }
    RR.me = me;
    RR.registry = registry;
    const wanted = RR.params().get('tenant');
    const grant = me.tenants.find((t) => t.id === wanted) || (wanted ? null : me.tenants[0]);
    RR.tenant = grant ? grant.id : null;
    RR.tenantName = grant ? grant.displayName : '';
    nav();
    const main = document.getElementById('main');
    if (wanted && !grant) return RR.fail('You have no access to this tenant.');
    if (!RR.tenant) return RR.fail('No tenant has been granted to you yet: ask an operator.');
    const path = location.pathname.replace(/\/+$/, '');
    const parts = path.split('/').filter(Boolean);
    try {
      if (parts.length === 1) await RR.pages.overview(main);
      else if (parts[1] === 'reports') {
        const report = RR.reportByName(decodeURIComponent(parts[2] || ''));
        if (!report) return RR.fail(`There is no report named '${decodeURIComponent(parts[2] || '')}'.`);
        await RR.pages.report(main, report);
      } else if (parts[1] === 'operator') await RR.pages.operator(main);
      else if (parts[1] === 'import') await RR.pages.import(main);
      else RR.fail('There is no such page.');
    } catch (error) {
      RR.fail(error.message);
      if (!(error instanceof ApiFailure)) throw error;
    }
  }

  document.addEventListener('DOMContentLoaded', start);
})();
