// reportroot dashboard: charts (uPlot), sparklines (SVG) and sortable tables.
// Every chart element carries data-chart="<entitySet>" and data-points="<points drawn>".
(function () {
  'use strict';
  const RR = (window.RR = window.RR || {});

  // Okabe–Ito: told apart with every common colour-vision deficiency. Yellow last: it is
  // faint on white.
  RR.PALETTE = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00', '#000000', '#F0E442'];

  const SVG = 'http://www.w3.org/2000/svg';

  /** An element with attributes and children (strings become text). */
  RR.el = function (tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name === 'class') node.className = value;
      else if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
      else if (value === true) node.setAttribute(name, '');
      else node.setAttribute(name, String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  };
  const el = RR.el;

  /** `YYYY-MM-DD` → seconds since the epoch (UTC midnight), as uPlot's x axis takes. */
  RR.dayToSeconds = function (day) {
    const [y, m, d] = day.split('-').map(Number);
    return Date.UTC(y, m - 1, d) / 1000;
  };

  RR.formatNumber = function (n) {
    if (n === null || n === undefined || Number.isNaN(n)) return '–';
    return Number(n).toLocaleString('en-US');
  };

  /** A readable error in place of a chart: never a blank area. */
  RR.chartError = function (container, entitySet, message) {
    container.replaceChildren(
      el('div', { class: 'chart chart-error', 'data-chart': entitySet, 'data-points': 0, role: 'alert' },
        el('strong', {}, 'Could not draw this chart. '), message)
    );
  };

  /**
   * A time-series chart. `x`: seconds; `series`: [{label, values}] (values aligned with x,
   * null where missing); `stacked`: each series drawn on top of the ones before.
   */
  RR.chart = function (container, { entitySet, x, series, stacked, title, points }) {
    container.replaceChildren();
    const holder = el('div', {
      class: 'chart', 'data-chart': entitySet, 'data-points': points === undefined ? x.length : points,
      role: 'img', 'aria-label': title + ' (the table below has the same numbers)',
    });
    container.append(holder);
    if (x.length === 0) {
      holder.append(el('p', { class: 'empty' }, 'No rows in this range.'));
      return null;
    }
    let shown = series.map((s) => s.values);
    if (stacked) {
      const sums = new Array(x.length).fill(0);
      shown = series.map((s) => s.values.map((v, i) => (sums[i] += v || 0)));
    }
    const opts = {
      width: Math.max(280, holder.clientWidth || container.clientWidth || 600),
      height: 320,
      scales: { x: { time: true } },
      axes: [{}, { size: 70, values: (u, ticks) => ticks.map((t) => RR.formatNumber(t)) }],
      legend: { live: true },
      cursor: { drag: { x: true, y: false } },
      series: [{ label: 'Date', value: (u, v) => (v == null ? '–' : new Date(v * 1000).toISOString().slice(0, 10)) }].concat(
        series.map((s, i) => {
          const colour = RR.PALETTE[i % RR.PALETTE.length];
          return {
            label: s.label,
            stroke: colour,
            width: 2,
            fill: stacked ? colour + '55' : undefined,
            value: (u, v, si, idx) => (idx == null ? '–' : RR.formatNumber(series[i].values[idx])),
            points: { show: x.length < 60 },
          };
        })
      ),
    };
    if (stacked) {
      // Fill each band down to the series below it, not to zero.
      opts.bands = series.slice(1).map((s, i) => ({ series: [i + 2, i + 1] }));
    }
    const plot = new uPlot(opts, [x].concat(shown), holder);
    if (window.ResizeObserver) {
      const observer = new ResizeObserver(() => {
        const width = Math.max(280, holder.clientWidth);
        if (Math.abs(width - plot.width) > 4) plot.setSize({ width, height: 320 });
      });
      observer.observe(holder);
    }
    return plot;
  };

  /** A small line of `values` as SVG; the label says what it shows. */
  RR.sparkline = function (values, { entitySet, label, colour }) {
    const w = 120;
    const h = 32;
    const svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
    svg.setAttribute('width', w);
    svg.setAttribute('height', h);
    svg.setAttribute('class', 'sparkline');
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-label', label);
    svg.setAttribute('data-chart', entitySet);
    const numbers = values.filter((v) => v !== null && v !== undefined);
    svg.setAttribute('data-points', numbers.length);
    if (numbers.length < 2) return svg;
    const min = Math.min(...numbers);
    const max = Math.max(...numbers);
    const span = max - min || 1;
    const step = w / (values.length - 1);
    let path = '';
    values.forEach((v, i) => {
      if (v === null || v === undefined) return;
      const px = (i * step).toFixed(1);
      const py = (h - 3 - ((v - min) / span) * (h - 6)).toFixed(1);
      path += (path ? 'L' : 'M') + px + ' ' + py;
    });
    const line = document.createElementNS(SVG, 'path');
    line.setAttribute('d', path);
    line.setAttribute('fill', 'none');
    line.setAttribute('stroke', colour || RR.PALETTE[0]);
    line.setAttribute('stroke-width', '1.5');
    svg.append(line);
    return svg;
  };

  /**
   * A sortable table. `columns`: [{key, label, numeric, render?}]; `rows`: objects. Clicking
   * (or Enter/Space on) a column's button sorts by it; again reverses. `aria-sort` says how.
   */
  RR.table = function ({ columns, rows, caption, id, initialSort }) {
    const table = el('table', { class: 'data', id });
    if (caption) table.append(el('caption', {}, caption));
    const headRow = el('tr');
    const body = el('tbody');
    let sortKey = initialSort ? initialSort.key : null;
    let descending = initialSort ? !!initialSort.descending : false;
    const cell = (column, row) => {
      const value = row[column.key];
      if (column.render) return column.render(value, row);
      if (column.numeric) return RR.formatNumber(value);
      return value === null || value === undefined ? '' : String(value);
    };
    const draw = () => {
      const sorted = rows.slice();
      if (sortKey !== null) {
        const column = columns.find((c) => c.key === sortKey);
        const value = column.sortValue || ((row) => row[sortKey]);
        sorted.sort((a, b) => {
          const va = value(a);
          const vb = value(b);
          if (va === vb) return 0;
          if (va === null || va === undefined) return 1;
          if (vb === null || vb === undefined) return -1;
          const order = column.numeric ? va - vb : String(va).localeCompare(String(vb));
          return descending ? -order : order;
        });
      }
      body.replaceChildren(
        ...sorted.map((row) =>
          el('tr', {}, columns.map((c) => el(c.header ? 'th' : 'td', { class: c.numeric ? 'num' : undefined, scope: c.header ? 'row' : undefined }, cell(c, row))))
        )
      );
      headRow.querySelectorAll('th').forEach((th) => {
        const key = th.dataset.key;
        th.setAttribute('aria-sort', key === sortKey ? (descending ? 'descending' : 'ascending') : 'none');
      });
    };
    for (const column of columns) {
      const button = el('button', {
        type: 'button', class: 'sort',
        onclick: () => {
          if (sortKey === column.key) descending = !descending;
          else {
            sortKey = column.key;
            descending = false;
          }
          draw();
        },
      }, column.label);
      headRow.append(el('th', { scope: 'col', 'data-key': column.key, class: column.numeric ? 'num' : undefined }, button));
    }
    table.append(el('thead', {}, headRow), body);
    draw();
    return el('div', { class: 'table-scroll', tabindex: 0, role: 'region', 'aria-label': caption || 'Table' }, table);
  };
})();
