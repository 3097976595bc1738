// charts.js: the dashboard's three charts, drawn by Chart.js 4 (vendored in
// web/vendor/chart.js/, MIT; loaded by index.html as a classic script that
// defines window.Chart). Chart.js draws on a canvas and sets its sizes
// through the element's style object, which a Content-Security-Policy
// without 'unsafe-inline' allows (only style attributes in markup and
// <style> elements are blocked).

import { h } from './dom.js';
import { t } from './i18n.js';

const COLOURS = { formed: '#5b8fd6', designated: '#2f9e44', line1: '#1c5fb8', line2: '#237a36' };

function chartLib() {
    if (!window.Chart) throw new Error('Chart.js did not load (web/vendor/chart.js/chart.umd.min.js)');
    return window.Chart;
}

// A canvas in a sized box, with the chart's data also as a table for
// screen readers (the canvas itself says nothing to them).
function frame(name, label) {
    const canvas = h('canvas', { role: 'img', 'aria-label': label, dataset: { chart: name } });
    return { canvas, box: h('div.chart-box', canvas) };
}

function common(extra = {}) {
    return {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        plugins: { legend: { position: 'bottom' } },
        ...extra,
    };
}

// Formed vs designated per region. series: regionSeries(); selected: the
// code to mark; onPick(code) when a bar is clicked.
export function regionChart(series, { title, selected, onPick }) {
    const Chart = chartLib();
    const { canvas, box } = frame('regions', title);
    const marked = (base) => series.codes.map((c) => (selected && c !== selected ? base + '66' : base));
    const chart = new Chart(canvas, {
        type: 'bar',
        data: {
            labels: series.labels,
            datasets: [
                { label: t('chart.formed'), data: series.formed, backgroundColor: marked(COLOURS.formed), codes: series.codes },
                { label: t('chart.designated'), data: series.designated, backgroundColor: marked(COLOURS.designated), codes: series.codes },
            ],
        },
        options: common({
            indexAxis: series.codes.length > 8 ? 'y' : 'x',
            scales: { x: { beginAtZero: true, ticks: { precision: 0 } }, y: { beginAtZero: true, ticks: { precision: 0 } } },
            onClick: (ev, items) => {
                if (items && items.length && onPick) onPick(series.codes[items[0].index]);
            },
            onHover: (ev, items) => {
                ev.native.target.classList.toggle('pointer', !!(items && items.length));
            },
        }),
    });
    return { box, chart, canvas };
}

// Cumulative formed and designated over the years.
export function seriesChart(series) {
    const Chart = chartLib();
    const { canvas, box } = frame('series', t('chart.series'));
    const chart = new Chart(canvas, {
        type: 'line',
        data: {
            labels: series.years,
            datasets: [
                { label: t('chart.formed'), data: series.formed, borderColor: COLOURS.line1, backgroundColor: COLOURS.line1, tension: 0.2 },
                { label: t('chart.designated'), data: series.designated, borderColor: COLOURS.line2, backgroundColor: COLOURS.line2, tension: 0.2 },
            ],
        },
        options: common({ scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } }),
    });
    return { box, chart, canvas };
}

// Sentra per sector (horizontal bars: the API's long labels stay legible
// on a phone).
export function sectorChart(series, { onPick } = {}) {
    const Chart = chartLib();
    const { canvas, box } = frame('sectors', t('chart.sectors'));
    const chart = new Chart(canvas, {
        type: 'bar',
        data: {
            labels: series.labels,
            datasets: [{ label: t('chart.sentra'), data: series.counts, backgroundColor: COLOURS.formed }],
        },
        options: common({
            indexAxis: 'y',
            plugins: { legend: { display: false } },
            scales: { x: { beginAtZero: true, ticks: { precision: 0 } } },
            onClick: (ev, items) => {
                if (items && items.length && onPick) onPick(series.values[items[0].index]);
            },
        }),
    });
    return { box, chart, canvas };
}
