// Draws the charts of a dexhil report page (report.html, compare.html) from its JSON data block
// with Chart.js (inlined before this script). Runs in the browser, offline. Text from the data
// only ever reaches the page as canvas text or textContent, never as HTML.
(function () {
  'use strict';
  const data = JSON.parse(document.getElementById('report-data').textContent);
  const palette = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
  const color = (i) => palette[i % palette.length];
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.font.size = 11;

  /** Vertical lines at data.events' times (x in s), for the signal plots. */
  const eventLines = {
    id: 'eventLines',
    afterDatasetsDraw(chart, _args, options) {
      const x = chart.scales.x;
      const area = chart.chartArea;
      const ctx = chart.ctx;
      ctx.save();
      for (const e of options.events || []) {
        const px = x.getPixelForValue(e.tS);
        if (px < area.left || px > area.right) continue;
        ctx.strokeStyle = e.fail ? '#b00020' : '#555';
        ctx.setLineDash(e.fail ? [] : [4, 3]);
        ctx.beginPath();
        ctx.moveTo(px, area.top);
        ctx.lineTo(px, area.bottom);
        ctx.stroke();
      }
      ctx.restore();
    },
  };

  /** Error bars: a dataset's `intervals` ([lo, hi] per bar, in data units) drawn over its bars. */
  const errorBars = {
    id: 'errorBars',
    afterDatasetsDraw(chart) {
      const y = chart.scales.y;
      const ctx = chart.ctx;
      ctx.save();
      ctx.strokeStyle = '#222';
      ctx.lineWidth = 1.5;
      chart.data.datasets.forEach((ds, i) => {
        if (!ds.intervals || !chart.isDatasetVisible(i)) return;
        chart.getDatasetMeta(i).data.forEach((bar, j) => {
          const iv = ds.intervals[j];
          if (!iv || !Number.isFinite(iv[0]) || !Number.isFinite(iv[1])) return;
          const top = y.getPixelForValue(iv[1]);
          const bottom = y.getPixelForValue(iv[0]);
          const cap = Math.min(8, bar.width / 4);
          ctx.beginPath();
          ctx.moveTo(bar.x, top);
          ctx.lineTo(bar.x, bottom);
          ctx.moveTo(bar.x - cap, top);
          ctx.lineTo(bar.x + cap, top);
          ctx.moveTo(bar.x - cap, bottom);
          ctx.lineTo(bar.x + cap, bottom);
          ctx.stroke();
        });
      });
      ctx.restore();
    },
  };

  /** Success-rate bars (%), one dataset per group, with their 95% intervals as error bars. */
  function rateChart(canvas, labels, groups) {
    return new Chart(canvas, {
      type: 'bar',
      data: {
        labels,
        datasets: groups.map((g, i) => ({
          label: `${g.label}: success, 95% interval`,
          data: g.rates.map((v) => 100 * v),
          intervals: g.intervals.map(([lo, hi]) => [100 * lo, 100 * hi]),
          backgroundColor: color(i) + 'aa',
        })),
      },
      options: { scales: { y: { min: 0, max: 100, title: { display: true, text: '% of judged trials' } } }, plugins: { legend: { position: 'bottom' } } },
      plugins: [errorBars],
    });
  }

  function runCharts() {
    const sc = data.scenarios;
    const charts = {
      rates: (c) => rateChart(c, sc.map((s) => s.name), [{ label: 'run', rates: sc.map((s) => s.rate), intervals: sc.map((s) => [s.lo, s.hi]) }]),
      durations: (c) => {
        const all = sc.flatMap((s) => s.durationsS);
        const max = Math.max(1, ...all);
        const bins = 20;
        const width = Math.ceil(max / bins) || 1;
        const labels = Array.from({ length: bins }, (_, i) => `${i * width}-${(i + 1) * width}`);
        return new Chart(c, {
          type: 'bar',
          data: {
            labels,
            datasets: sc.map((s, i) => {
              const counts = new Array(bins).fill(0);
              for (const d of s.durationsS) counts[Math.min(bins - 1, Math.floor(d / width))]++;
              return { label: s.name, data: counts, backgroundColor: color(i) };
            }),
          },
          options: { scales: { x: { stacked: true, title: { display: true, text: 'trial duration, s' } }, y: { stacked: true, title: { display: true, text: 'trials' } } }, plugins: { legend: { position: 'bottom' } } },
        });
      },
      kinds: (c) => {
        const kinds = [...new Set(sc.flatMap((s) => Object.keys(s.correctionsByKind)))].sort();
        return new Chart(c, {
          type: 'bar',
          data: { labels: kinds, datasets: sc.map((s, i) => ({ label: s.name, data: kinds.map((k) => s.correctionsByKind[k] || 0), backgroundColor: color(i) })) },
          options: { scales: { y: { title: { display: true, text: 'corrections' } } }, plugins: { legend: { position: 'bottom' } } },
        });
      },
      stages: (c) => {
        const labels = [];
        const rows = [];
        for (const s of sc) for (const st of s.stages) {
          labels.push(`${s.name} / ${st}`);
          rows.push(s.correctionsByStage[st] || {});
        }
        const kinds = [...new Set(rows.flatMap((r) => Object.keys(r)))].sort();
        return new Chart(c, {
          type: 'bar',
          data: { labels, datasets: kinds.map((k, i) => ({ label: k, data: rows.map((r) => r[k] || 0), backgroundColor: color(i) })) },
          options: { indexAxis: 'y', scales: { x: { stacked: true, title: { display: true, text: 'corrections' } }, y: { stacked: true, ticks: { autoSkip: false } } }, plugins: { legend: { position: 'right' } } },
        });
      },
      funnel: (c) => {
        const s = sc[Number(c.dataset.index)];
        return new Chart(c, {
          type: 'bar',
          data: { labels: s.stages, datasets: [{ label: '% of trials reaching the stage', data: s.reach.map((n) => (100 * n) / Math.max(1, s.trials)), backgroundColor: color(Number(c.dataset.index)) }] },
          options: { indexAxis: 'y', scales: { x: { min: 0, max: 100 } }, plugins: { legend: { display: false } } },
        });
      },
      plot: (c) => {
        const p = data.plots[Number(c.dataset.index)];
        const names = Object.keys(p.channels).sort();
        return new Chart(c, {
          type: 'line',
          data: {
            datasets: names.map((n, i) => ({
              label: n,
              data: p.channels[n].map(([x, y]) => ({ x, y })),
              borderColor: color(i),
              borderWidth: 1.2,
              pointRadius: 0,
              yAxisID: n.endsWith('torque_nm') ? 'y2' : 'y',
            })),
          },
          options: {
            parsing: false,
            scales: {
              x: { type: 'linear', title: { display: true, text: 's since trial start' } },
              y: { title: { display: true, text: 'N' } },
              y2: { position: 'right', title: { display: true, text: 'N·m' }, grid: { drawOnChartArea: false } },
            },
            plugins: { legend: { position: 'bottom', labels: { boxWidth: 10 } }, eventLines: { events: p.events } },
          },
          plugins: [eventLines],
        });
      },
    };
    return charts;
  }

  function compareCharts() {
    const sc = data.scenarios;
    return {
      rates: (c) =>
        rateChart(c, sc.map((s) => s.scenario).concat(['overall']), [
          { label: data.a.label, rates: sc.map((s) => s.a.rate).concat([data.overall.a.rate]), intervals: sc.map((s) => [s.a.lo, s.a.hi]).concat([[data.overall.a.lo, data.overall.a.hi]]) },
          { label: data.b.label, rates: sc.map((s) => s.b.rate).concat([data.overall.b.rate]), intervals: sc.map((s) => [s.b.lo, s.b.hi]).concat([[data.overall.b.lo, data.overall.b.hi]]) },
        ]),
      diff: (c) =>
        new Chart(c, {
          type: 'bar',
          data: {
            labels: sc.map((s) => s.scenario).concat(['overall']),
            datasets: [
              { label: 'B - A, 95% Newcombe interval (points)', data: sc.map((s) => [100 * s.diff.lo, 100 * s.diff.hi]).concat([[100 * data.overall.diff.lo, 100 * data.overall.diff.hi]]), backgroundColor: sc.map((s) => (s.verdict === 'REGRESSION' ? '#d62728' : s.verdict === 'IMPROVED' ? '#2ca02c' : '#7f7f7f')).concat(['#1f77b4']) },
            ],
          },
          options: { indexAxis: 'y', scales: { x: { title: { display: true, text: 'difference in success rate, points' } } }, plugins: { legend: { position: 'bottom' } } },
        }),
    };
  }

  const makers = data.kind === 'compare' ? compareCharts() : runCharts();
  const draw = (canvas) => {
    if (canvas.dataset.drawn) return;
    canvas.dataset.drawn = '1';
    makers[canvas.dataset.chart](canvas);
  };
  const lazy = 'IntersectionObserver' in window
    ? new IntersectionObserver((entries) => {
        for (const e of entries) if (e.isIntersecting) {
          lazy.unobserve(e.target);
          draw(e.target);
        }
      }, { rootMargin: '400px' })
    : undefined;
  for (const canvas of document.querySelectorAll('canvas[data-chart]')) {
    if (canvas.dataset.chart === 'plot' && lazy) lazy.observe(canvas);
    else draw(canvas);
  }
  document.body.dataset.ready = '1';
})();
