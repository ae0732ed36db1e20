// reportroot dashboard: the pages. Everything is drawn from the registry
// (/dashboard/api/registry): a report added there gets its tile, page and table here.
(function () {
  'use strict';
  const RR = (window.RR = window.RR || {});
  const el = RR.el;
  const pages = (RR.pages = {});

  const PRESETS = [
    ['30d', '30 d', 30], ['90d', '90 d', 90], ['180d', '180 d', 180], ['1y', '1 y', 365], ['all', 'All', null],
  ];
  /** How far back the overview's sparklines go, and what the change compares with. */
  const OVERVIEW_DAYS = 60;
  const CHANGE_DAYS = 7;
  /** Most tenants the operator view compares at once (one colour each). */
  const MAX_COMPARED = 8;

  const countProps = (report) => report.properties.filter((p) => p.kind === 'count');
  const labelOf = (report, name) => (report.properties.find((p) => p.name === name) || { label: name }).label;

  /** The interval that keeps a range's points few enough to draw and to fetch. */
  function autoInterval(days) {
    if (days <= 1100) return 'day';
    if (days <= 5000) return 'week';
    return 'month';
  }

  /**
   * The rows of a series as one point per date (`report.x`): each count summed over the
   * dimension's values, with the newest refresh date seen.
   */
  function byDate(report, rows, names) {
    const days = [];
    const sums = new Map();
    let refreshed = null;
    for (const row of rows) {
      const day = row[report.x];
      if (!sums.has(day)) {
        sums.set(day, Object.fromEntries(names.map((n) => [n, null])));
        days.push(day);
      }
      const point = sums.get(day);
      for (const name of names) {
        if (row[name] !== null && row[name] !== undefined) point[name] = (point[name] || 0) + Number(row[name]);
      }
      if (!refreshed || row[report.refreshDate] > refreshed) refreshed = row[report.refreshDate];
    }
    days.sort();
    return { days, point: (day) => sums.get(day), refreshed };
  }

  /** The period a report's series is asked for: per-period reports need one. */
  function periodFor(report, chosen) {
    return report.grain === 'per-period' ? chosen || 'D7' : null;
  }

  // ---------------------------------------------------------------- overview
  pages.overview = async function (main) {
    document.title = `Overview · ${RR.tenantName} · reportroot`;
    const grid = el('div', { class: 'tiles' });
    main.replaceChildren(
      el('h1', {}, `Overview: ${RR.tenantName}`),
      el('p', { class: 'lead' },
        `Each family's headline report at its latest refresh. The line shows the last ${OVERVIEW_DAYS} days; the change compares the latest date with ${CHANGE_DAYS} days before.`),
      grid
    );
    const to = RR.today();
    const from = RR.addDays(to, -OVERVIEW_DAYS);
    const tasks = RR.registry.families.map((family) => {
      const report = RR.reportByName(family.headline);
      const tile = el('article', { class: 'tile', 'data-family': family.name, 'data-entity': report.entitySet },
        el('h2', {}, el('a', { href: RR.href(`/dashboard/reports/${report.entitySet}`) }, family.name)),
        el('p', { class: 'muted' }, report.entitySet),
        el('p', { class: 'loading', role: 'status' }, 'Loading…'));
      grid.append(tile);
      return async () => {
        try {
          const options = { from, to, interval: 'day', period: periodFor(report) };
          const { rows } = await RR.series(report, RR.tenant, options);
          fillTile(tile, family, report, rows, options);
        } catch (error) {
          tile.querySelector('.loading').remove();
          RR.chartError(tile.appendChild(el('div')), report.entitySet, error.message);
        }
      };
    });
    await RR.limited(tasks, 4);
    RR.ready(main);
  };

  function fillTile(tile, family, report, rows, options) {
    tile.querySelector('.loading').remove();
    tile.setAttribute('data-from', options.from);
    tile.setAttribute('data-to', options.to);
    if (options.period) tile.setAttribute('data-period', options.period);
    const data = byDate(report, rows, family.numbers);
    if (data.days.length === 0) {
      tile.append(el('p', { class: 'empty', 'data-chart': report.entitySet, 'data-points': 0 }, 'No data in the last days.'));
      return;
    }
    const latestDay = data.days[data.days.length - 1];
    const latest = data.point(latestDay);
    tile.setAttribute('data-latest', latestDay);
    tile.append(el('p', { class: 'refreshed' }, RR.refreshedText(data.refreshed)));
    const list = el('dl', { class: 'numbers' });
    for (const name of family.numbers) {
      list.append(el('div', { 'data-property': name, 'data-value': latest[name] === null ? '' : latest[name] },
        el('dt', {}, labelOf(report, name)), el('dd', {}, RR.formatNumber(latest[name]))));
    }
    tile.append(list);
    const first = family.numbers[0];
    const before = data.point(RR.addDays(latestDay, -CHANGE_DAYS));
    if (before && before[first] && latest[first] !== null) {
      const change = ((latest[first] - before[first]) / before[first]) * 100;
      const arrow = change > 0 ? '▲' : change < 0 ? '▼' : '■';
      const text = `${change > 0 ? '+' : ''}${change.toFixed(1)} %`;
      tile.append(el('p', { class: 'change', 'data-change': change.toFixed(3) },
        el('span', { 'aria-hidden': 'true' }, arrow + ' '), text, ` ${labelOf(report, first)} vs ${CHANGE_DAYS} days before`));
    }
    const values = data.days.map((d) => data.point(d)[first]);
    tile.append(RR.sparkline(values, {
      entitySet: report.entitySet,
      label: `${labelOf(report, first)} from ${data.days[0]} to ${latestDay}: ${RR.formatNumber(Math.min(...values.filter((v) => v !== null)))} to ${RR.formatNumber(Math.max(...values.filter((v) => v !== null)))}`,
    }));
  }

  // ---------------------------------------------------------------- report page
  pages.report = async function (main, report) {
    document.title = `${report.entitySet} · ${RR.tenantName} · reportroot`;
    const params = RR.params();
    const state = {
      range: params.get('range') || '90d',
      from: params.get('from'),
      to: params.get('to'),
      interval: params.get('interval') || 'auto',
      period: params.get('period') || 'D7',
      metric: params.get('metric') || (countProps(report)[0] || {}).name,
      view: params.get('view') || 'stacked',
    };
    const refreshed = el('p', { class: 'refreshed', id: 'refreshed' }, 'Loading…');
    const chartBox = el('div', { class: 'chart-box', id: 'chart' });
    const summary = el('p', { class: 'muted', id: 'summary', role: 'status' });
    const tableBox = el('div', { id: 'table' });
    const controls = el('form', { class: 'controls', id: 'controls', onsubmit: (e) => e.preventDefault() });
    main.replaceChildren(
      el('p', { class: 'crumbs' }, el('a', { href: RR.href('/dashboard/') }, 'Overview'), ` › ${report.family}`),
      el('h1', {}, report.entitySet),
      el('p', { class: 'muted' }, `${report.function} · ${report.grain}${report.dimension ? ' by ' + report.dimension : ''} · ${RR.tenantName}`),
      refreshed, controls, chartBox, summary,
      el('h2', {}, 'Rows'), tableBox
    );
    let extent;
    try {
      extent = await RR.extent(report, RR.tenant);
    } catch (error) {
      refreshed.textContent = '';
      RR.chartError(chartBox, report.entitySet, error.message);
      RR.ready(main);
      return;
    }
    refreshed.textContent = RR.refreshedText(extent.refreshed);
    const last = extent.last || RR.today();
    const first = extent.first || last;
    let shownText = null;
    let shownUrl = null;

    const rangeOf = () => {
      const preset = PRESETS.find((p) => p[0] === state.range);
      if (state.range === 'custom' && state.from && state.to) return { from: state.from, to: state.to };
      if (!preset || preset[2] === null) return { from: first, to: last };
      return { from: RR.addDays(last, -(preset[2] - 1)), to: last };
    };

    const draw = async () => {
      const { from, to } = rangeOf();
      fromInput.value = from;
      toInput.value = to;
      const interval = state.interval === 'auto' ? autoInterval(RR.daysBetween(from, to)) : state.interval;
      const options = { from, to, interval, period: periodFor(report, state.period) };
      RR.setParams({ range: state.range, from: state.range === 'custom' ? from : null, to: state.range === 'custom' ? to : null,
        interval: state.interval === 'auto' ? null : state.interval, period: options.period, metric: report.dimension ? state.metric : null,
        view: report.dimension ? state.view : null });
      chartBox.setAttribute('aria-busy', 'true');
      let answer;
      try {
        answer = await RR.series(report, RR.tenant, options);
      } catch (error) {
        chartBox.removeAttribute('aria-busy');
        RR.chartError(chartBox, report.entitySet, error.message);
        summary.textContent = '';
        tableBox.replaceChildren();
        shownText = null;
        return;
      }
      chartBox.removeAttribute('aria-busy');
      shownText = answer.text;
      shownUrl = RR.seriesUrl(report, options);
      drawChart(report, answer.rows, state, chartBox, `${report.entitySet}, ${from} to ${to}`);
      const chart = chartBox.querySelector('[data-chart]');
      chart.setAttribute('data-from', from);
      chart.setAttribute('data-to', to);
      chart.setAttribute('data-interval', interval);
      if (options.period) chart.setAttribute('data-period', options.period);
      summary.textContent = `${answer.rows.length} rows from ${from} to ${to}, ${interval === 'day' ? 'daily' : interval + 'ly'}${options.period ? ', period ' + options.period : ''}.`;
      tableBox.replaceChildren(RR.table({
        caption: `${report.entitySet} rows, ${from} to ${to}`,
        id: 'rows',
        columns: tableOrder(report).map((p) => ({ key: p.name, label: p.label, numeric: p.kind === 'count', header: p.name === report.x })),
        rows: answer.rows,
      }));
    };

    // Controls: presets, custom dates, interval, period, dimension metric and view, downloads.
    const presetButtons = PRESETS.map(([key, label]) =>
      el('button', { type: 'button', class: 'preset', 'data-range': key, 'aria-pressed': String(state.range === key),
        onclick: () => { state.range = key; markPresets(); draw(); } }, label));
    const markPresets = () => presetButtons.forEach((b) => b.setAttribute('aria-pressed', String(b.dataset.range === state.range)));
    const fromInput = el('input', { type: 'date', id: 'from', min: first, max: last });
    const toInput = el('input', { type: 'date', id: 'to', min: first, max: last });
    const applyDates = el('button', { type: 'button', onclick: () => {
      if (!fromInput.value || !toInput.value || fromInput.value > toInput.value) {
        summary.textContent = 'Choose a start date on or before the end date.';
        return;
      }
      state.range = 'custom'; state.from = fromInput.value; state.to = toInput.value; markPresets(); draw();
    } }, 'Show');
    const select = (id, label, options, value, onchange) => [
      el('label', { for: id }, label),
      el('select', { id, onchange: (e) => onchange(e.target.value) },
        options.map(([v, text]) => el('option', { value: v, selected: v === value }, text))),
    ];
    controls.append(...[
      el('div', { class: 'group', role: 'group', 'aria-label': 'Date range' }, presetButtons),
      el('div', { class: 'group' }, el('label', { for: 'from' }, 'From'), fromInput, el('label', { for: 'to' }, 'To'), toInput, applyDates),
      el('div', { class: 'group' }, select('interval', 'Points', [['auto', 'Auto'], ['day', 'Daily'], ['week', 'Weekly'], ['month', 'Monthly']], state.interval, (v) => { state.interval = v; draw(); })),
      report.grain === 'per-period'
        ? el('div', { class: 'group' }, select('period', 'Period', RR.registry.periods.map((p) => [p, p.replace('D', '') + ' days']), state.period, (v) => { state.period = v; draw(); }))
        : null,
      report.dimension
        ? el('div', { class: 'group' },
          select('metric', 'Count', countProps(report).map((p) => [p.name, p.label]), state.metric, (v) => { state.metric = v; draw(); }),
          select('view', `By ${report.dimension}`, [['stacked', 'Stacked'], ['split', 'Split']], state.view, (v) => { state.view = v; draw(); }))
        : null,
      el('div', { class: 'group downloads' },
        el('button', { type: 'button', id: 'download-csv', onclick: () => download('csv') }, 'Download CSV'),
        el('button', { type: 'button', id: 'download-json', onclick: () => download('json') }, 'Download JSON')),
    ].filter(Boolean));

    const download = async (format) => {
      if (!shownUrl) return;
      const { from, to } = rangeOf();
      let text = shownText;
      let type = 'application/json';
      if (format === 'csv') {
        try {
          text = (await RR.get(`${shownUrl}?$format=text/csv`, RR.tenant, 'text/csv')).text;
        } catch (error) {
          summary.textContent = `The CSV could not be fetched: ${error.message}`;
          return;
        }
        type = 'text/csv';
      }
      const link = el('a', { href: URL.createObjectURL(new Blob([text], { type })), download: `${report.entitySet}-${from}-${to}.${format}` });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 10000);
    };

    await draw();
    RR.ready(main);
  };

  /** The table's columns: the chart's date and the dimension first, the rest as the API orders them. */
  function tableOrder(report) {
    const first = [report.x, report.dimension].filter(Boolean);
    return first.map((n) => report.properties.find((p) => p.name === n)).concat(report.properties.filter((p) => !first.includes(p.name)));
  }

  /** The report chart: one line per count, or per dimension value of the chosen count. */
  function drawChart(report, rows, state, box, title) {
    if (!report.dimension) {
      const names = countProps(report).map((p) => p.name);
      const data = byDate(report, rows, names);
      RR.chart(box, {
        entitySet: report.entitySet, title, points: rows.length,
        x: data.days.map(RR.dayToSeconds),
        series: names.map((n) => ({ label: labelOf(report, n), values: data.days.map((d) => data.point(d)[n]) })),
      });
      return;
    }
    const days = [...new Set(rows.map((r) => r[report.x]))].sort();
    const index = new Map(days.map((d, i) => [d, i]));
    const values = [...new Set(rows.map((r) => r[report.dimension]))].sort();
    const series = values.map((v) => ({ label: v, values: new Array(days.length).fill(null) }));
    for (const row of rows) {
      const s = series[values.indexOf(row[report.dimension])];
      s.values[index.get(row[report.x])] = row[state.metric] === null ? null : Number(row[state.metric]);
    }
    RR.chart(box, {
      entitySet: report.entitySet, title: `${title}: ${labelOf(report, state.metric)} by ${report.dimension}`,
      points: rows.length, stacked: state.view === 'stacked', x: days.map(RR.dayToSeconds), series,
    });
  }

  // ---------------------------------------------------------------- operator view
  pages.operator = async function (main) {
    document.title = 'All tenants · reportroot';
    const to = RR.today();
    const from = RR.addDays(to, -30);
    const tableBox = el('div', { id: 'tenants' }, el('p', { class: 'loading', role: 'status' }, 'Loading…'));
    const compareBox = el('section', { 'aria-labelledby': 'compare-title' });
    const lead = el('p', { class: 'lead' }, `${RR.me.tenants.length} tenants. Latest value of each key number; the lines show the last 30 days.`);
    main.replaceChildren(el('h1', {}, 'All tenants'), lead, tableBox, compareBox);
    // Every tenant's key numbers come from the server in one answer (the server chooses the
    // key numbers and reads the series next to the database); a very long list comes in pages.
    let answer;
    const found = [];
    let error = null;
    try {
      let skip = 0;
      do {
        const params = new URLSearchParams({ from, to, skip: String(skip) });
        answer = (await RR.get(`/dashboard/api/operator?${params}`)).json;
        found.push(...answer.tenants);
        skip = answer.nextSkip;
      } while (skip !== null && skip !== undefined);
    } catch (failure) {
      error = failure;
    }
    const keys = answer ? answer.keys.map((k) => ({ report: RR.reportByName(k.entitySet), name: k.name, label: k.label })) : [];
    const byId = new Map(found.map((t) => [t.id, t]));
    const rows = RR.me.tenants.map((tenant) => {
      const row = { id: tenant.id, tenant: tenant.displayName, refreshed: null };
      const numbers = byId.get(tenant.id);
      if (!numbers) return row;
      row.refreshed = numbers.refreshed;
      numbers.numbers.forEach((points, k) => {
        row[`k${k}`] = points.values.length ? points.values[points.values.length - 1] : null;
        row[`s${k}`] = points.values;
      });
      return row;
    });
    const columns = [{ key: 'tenant', label: 'Tenant', header: true, render: (v, row) => el('a', { href: `/dashboard/?tenant=${row.id}` }, v) }];
    keys.forEach((key, k) => {
      columns.push({ key: `k${k}`, label: key.label, numeric: true });
      columns.push({ key: `s${k}`, label: `${key.label}, 30 days`, sortValue: (row) => row[`k${k}`],
        render: (v) => RR.sparkline(v || [], { entitySet: key.report.entitySet, label: `${key.label}, last 30 days`, colour: RR.PALETTE[k] }) });
    });
    columns.push({ key: 'refreshed', label: 'Refreshed' });
    tableBox.replaceChildren(
      error ? el('p', { class: 'error', role: 'alert' }, `Some numbers could not be read: ${error.message}`) : '',
      RR.table({ caption: 'Tenants and their key numbers', id: 'tenant-table', columns, rows, initialSort: { key: 'tenant' } })
    );
    if (keys.length) compare(compareBox, keys);
    RR.ready(main);
  };

  /** The chart comparing chosen tenants on one key number. */
  function compare(box, keys) {
    const chosen = new Set(RR.me.tenants.slice(0, 3).map((t) => t.id));
    let key = 0;
    let range = '90d';
    const chartBox = el('div', { class: 'chart-box', id: 'compare-chart' });
    const tableBox = el('details', {}, el('summary', {}, 'The same numbers as a table'));
    const boxes = RR.me.tenants.map((tenant) => {
      const id = `compare-${tenant.id}`;
      return el('span', { class: 'check' },
        el('input', { type: 'checkbox', id, value: tenant.id, checked: chosen.has(tenant.id), onchange: (e) => {
          if (e.target.checked) {
            if (chosen.size >= MAX_COMPARED) { e.target.checked = false; return; }
            chosen.add(tenant.id);
          } else chosen.delete(tenant.id);
          draw();
        } }),
        el('label', { for: id }, tenant.displayName));
    });
    box.replaceChildren(
      el('h2', { id: 'compare-title' }, 'Compare tenants'),
      el('form', { class: 'controls', onsubmit: (e) => e.preventDefault() },
        el('div', { class: 'group' },
          el('label', { for: 'compare-key' }, 'Number'),
          el('select', { id: 'compare-key', onchange: (e) => { key = Number(e.target.value); draw(); } },
            keys.map((k, i) => el('option', { value: i }, k.label))),
          el('label', { for: 'compare-range' }, 'Range'),
          el('select', { id: 'compare-range', onchange: (e) => { range = e.target.value; draw(); } },
            PRESETS.filter((p) => p[2]).map(([v, text]) => el('option', { value: v, selected: v === range }, text)))),
        el('fieldset', { class: 'group tenants' }, el('legend', {}, `Tenants (at most ${MAX_COMPARED})`), boxes)),
      chartBox, tableBox);
    const draw = async () => {
      const { report, name, label } = keys[key];
      const to = RR.today();
      const days = PRESETS.find((p) => p[0] === range)[2];
      const from = RR.addDays(to, -(days - 1));
      const tenants = RR.me.tenants.filter((t) => chosen.has(t.id));
      const results = await RR.limited(tenants.map((t) => () =>
        RR.series(report, t.id, { from, to, interval: 'day', period: periodFor(report) })), 4);
      const failed = results.find((r) => !r.ok);
      if (failed) return RR.chartError(chartBox, report.entitySet, failed.error.message);
      const perTenant = results.map((r) => byDate(report, r.value.rows, [name]));
      const allDays = [...new Set(perTenant.flatMap((d) => d.days))].sort();
      const series = tenants.map((t, i) => ({ label: t.displayName, values: allDays.map((d) => { const p = perTenant[i].point(d); return p ? p[name] : null; }) }));
      const points = perTenant.reduce((n, d) => n + d.days.length, 0);
      RR.chart(chartBox, { entitySet: report.entitySet, title: `${label} by tenant, ${from} to ${to}`, x: allDays.map(RR.dayToSeconds), series, points });
      const rows = allDays.map((d, i) => Object.assign({ day: d }, ...series.map((s, j) => ({ [`t${j}`]: s.values[i] }))));
      tableBox.replaceChildren(el('summary', {}, 'The same numbers as a table'), RR.table({
        caption: `${label} by tenant`,
        columns: [{ key: 'day', label: 'Date', header: true }].concat(series.map((s, j) => ({ key: `t${j}`, label: s.label, numeric: true }))),
        rows,
      }));
    };
    draw();
  }

  // ---------------------------------------------------------------- import
  pages.import = async function (main) {
    document.title = 'Import · reportroot';
    const writable = RR.me.tenants.filter((t) => t.write);
    const result = el('section', { id: 'import-result', 'aria-live': 'polite' });
    const form = el('form', { class: 'import', id: 'import-form' },
      el('div', { class: 'field' }, el('label', { for: 'import-tenant' }, 'Into tenant'),
        el('select', { id: 'import-tenant', name: 'tenant' },
          writable.map((t) => el('option', { value: t.id, selected: t.id === RR.tenant }, t.displayName)))),
      el('div', { class: 'field' }, el('label', { for: 'import-files' }, 'Graph CSV exports (several at once)'),
        el('input', { type: 'file', id: 'import-files', name: 'file', multiple: true, accept: '.csv,text/csv', required: true })),
      el('div', { class: 'field check' }, el('input', { type: 'checkbox', id: 'import-skip', name: 'skipBadRows', value: 'on' }),
        el('label', { for: 'import-skip' }, 'Skip bad rows (write the good ones)')),
      el('button', { type: 'submit' }, 'Import'));
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      result.replaceChildren(el('p', { role: 'status' }, 'Importing…'));
      try {
        const answer = await RR.postForm('/dashboard/api/import', new FormData(form));
        showImport(result, answer);
      } catch (error) {
        result.replaceChildren(el('p', { class: 'error', role: 'alert' }, error.message));
      }
    });
    main.replaceChildren(
      el('h1', {}, 'Import'),
      el('p', { class: 'lead' }, "Upload the CSV files Microsoft 365's admin center or Graph exported. Each file is written whole or not at all (unless bad rows are skipped), as ", el('code', {}, 'reportroot import'), ' does.'),
      form, result);
    RR.ready(main);
  }

  function showImport(box, answer) {
    const problems = answer.files.flatMap((f) => f.problems.map((p) => ({ file: f.name, line: p.line, column: p.column, message: p.message })));
    box.replaceChildren(
      el('h2', {}, 'Result'),
      el('pre', { class: 'output', id: 'import-output' }, answer.lines.join('\n')),
      problems.length
        ? RR.table({
          caption: 'Bad rows', id: 'import-problems',
          columns: [{ key: 'file', label: 'File' }, { key: 'line', label: 'Line', numeric: true },
            { key: 'column', label: 'Column', numeric: true }, { key: 'message', label: 'Problem' }],
          rows: problems,
        })
        : el('p', {}, 'No bad rows.'));
  }
})();
