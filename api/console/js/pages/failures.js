// The failures view: failed dispatches grouped by cause (error class) and
// dispatcher, with counts and a trend over time (GET /executions/v1/failures).
import { h, replace } from '../dom.js';
import { get, query, seg } from '../api.js';
import { pageHeader, trendChart, sparkline, table, link, select, field, errorBox } from '../ui.js';

const hour = 3600 * 1000;
// ranges: how far back, and in how many bars.
const ranges = {
  '24h': { label: 'Last 24 hours', span: 24 * hour, buckets: 24 },
  '7d': { label: 'Last 7 days', span: 7 * 24 * hour, buckets: 28 },
  '30d': { label: 'Last 30 days', span: 30 * 24 * hour, buckets: 30 },
};

export async function render(ctx) {
  const key = ranges[ctx.query.get('range')] ? ctx.query.get('range') : '24h';
  const range = ranges[key];
  const picker = select({ id: 'failures-range' }, Object.entries(ranges).map(([k, r]) => [k, r.label]), key);
  // Picked with the mouse, the period shows at once; with the keyboard,
  // on Enter: the arrow keys step through the periods (each a change,
  // which reloaded the view and took the focus from the picker).
  let byKeys = false;
  const show = () => picker.value !== key && ctx.navigate(`#/failures?range=${picker.value}`);
  picker.addEventListener('pointerdown', () => { byKeys = false; });
  picker.addEventListener('keydown', (ev) => {
    byKeys = true;
    if (ev.key === 'Enter') show();
  });
  picker.addEventListener('change', () => { if (!byKeys) show(); });
  ctx.main.append(pageHeader('Failures', h('div', { class: 'toolbar' }, field('Period', picker, 'With the keyboard: choose, then Enter'))));
  const from = Date.now() - range.span;
  const out = h('div', { id: 'failures' }, h('p', { class: 'muted', text: 'Loading…' }));
  ctx.main.append(out);
  let data;
  try {
    data = await get(`/executions/v1/failures${query({ from, buckets: range.buckets })}`);
  } catch (err) {
    replace(out, errorBox(err));
    return;
  }
  // The lists leave out the runs replayed since, which the counts leave
  // out too.
  const since = `#/executions${query({ status: 'failed', from, replayed: 'hide' })}`;
  const parts = [
    h('p', { id: 'failures-summary' },
      h('strong', {}, `${data.failed} failed ${data.failed === 1 ? 'dispatch' : 'dispatches'}`),
      ` in the ${range.label.toLowerCase()}`,
      data.superseded ? `, not counting ${data.superseded} failed ${data.superseded === 1 ? 'run' : 'runs'} that a replay has since superseded` : '',
      '. ', link(since, 'List them')),
    data.truncated ? h('p', { class: 'notice', text: 'More failed dispatches match than a summary reads: the counts cover the newest 20,000.' }) : null,
    trendChart(data.trend, { label: 'Failed dispatches over time' }),
  ];
  // An API key held to event types replays only theirs, one named in the
  // request: a group of one of its types is replayed by that type, the
  // others are not offered (before, every Replay… link was refused, as if
  // the key lacked the permission).
  const types = ctx.me.eventTypes;
  const rows = data.groups.map((g) => {
    const who = g.dispatcherName || g.dispatcherId || '(before any dispatcher ran)';
    const filter = { status: 'failed', errorClass: g.errorClass, dispatcherId: g.dispatcherId, from };
    const type = g.sample.eventType;
    // A deleted dispatcher's group is not offered either: its bulk
    // replay would skip every dispatch.
    const mayReplay = ctx.can('REPLAY_EXECUTIONS') && (!types || types.includes(type)) && !g.removed;
    const replayFilter = types ? { ...filter, eventType: type } : filter;
    return [
      h('span', { class: 'count', text: String(g.count) }),
      h('code', { class: 'token', text: g.errorClass }),
      h('span', {}, g.dispatcherId && ctx.can('VIEW_DISPATCHERS') ? link(`#/dispatchers/${seg(g.dispatcherId)}`, who) : who,
        g.removed ? [' ', h('span', { class: 'muted removed', text: '(deleted, or moved to another event type, since: no replay runs it)' })] : null),
      h('div', {}, h('span', { class: 'message', text: g.sample.message || '' }), ' ',
        g.sample.workflowId ? link(`#/executions/${seg(g.sample.workflowId)}${query({ runId: g.sample.runId })}`, 'example', { 'aria-label': `An example dispatch of ${g.errorClass} for ${who}` }) : null),
      sparkline(g.trend || [], `${g.count} over the period`),
      h('div', { class: 'row-actions' },
        link(`#/executions${query({ ...filter, replayed: 'hide' })}`, 'Dispatches', { 'aria-label': `Dispatches that failed with ${g.errorClass} for ${who}` }),
        mayReplay ? link(`#/replays/new${query(replayFilter)}`, 'Replay…', { 'aria-label': `Replay the dispatches that failed with ${g.errorClass} for ${who}` }) : null),
    ];
  });
  parts.push(h('h2', { text: 'By cause and dispatcher' }),
    table('Failed dispatches by error class and dispatcher, most frequent first',
      ['Count', 'Error class', 'Dispatcher', 'Sample error', 'Trend', ''], rows,
      { empty: 'No failed dispatches in this period.', id: 'failure-groups' }));
  replace(out, parts);
}
