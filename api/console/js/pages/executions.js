// The dispatches view: search by event id, event type, dispatcher,
// status, error class and time, a page at a time (GET /executions/v1
// with a page token), never the whole list.
import { h, replace, fmtTime, fmtDuration, toLocalInput, fromLocalInput } from '../dom.js';
import { get, getAll, query, seg } from '../api.js';
import { pageHeader, field, input, select, table, badge, link, errorBox } from '../ui.js';

const pageSize = 50;
const filterNames = ['eventId', 'eventType', 'dispatcherId', 'status', 'errorClass', 'from', 'to', 'bulkReplayId'];
const statuses = [['', 'Any'], ['failed', 'Failed'], ['completed', 'Completed'], ['running', 'Running'], ['scheduled', 'Scheduled'], ['canceled', 'Canceled']];

// dispatcherOptions lists the dispatchers to choose from, by name: all
// of them, up to getAll's cap.
export async function dispatcherOptions(ctx) {
  if (!ctx.can('VIEW_DISPATCHERS')) return null;
  try {
    return await getAll('/dispatchers/v1?select(id,name,eventType)&sort(name)');
  } catch {
    return null;
  }
}

// filterForm returns the filter fields filled from q, and a function that
// reads them back.
export function filterForm(q, dispatchers, { withStatus = true, idPrefix = 'f' } = {}) {
  const els = {
    eventId: input({ id: `${idPrefix}-eventId`, value: q.get('eventId') || '' }),
    eventType: input({ id: `${idPrefix}-eventType`, value: q.get('eventType') || '' }),
    dispatcherId: dispatchers
      ? select({ id: `${idPrefix}-dispatcherId` }, [['', 'Any'], ...dispatchers.map((d) => [d.id, `${d.name || d.id} (${d.eventType})`])], q.get('dispatcherId') || '')
      : input({ id: `${idPrefix}-dispatcherId`, value: q.get('dispatcherId') || '', placeholder: '24 hex digits' }),
    status: select({ id: `${idPrefix}-status` }, statuses, q.get('status') || ''),
    errorClass: input({ id: `${idPrefix}-errorClass`, value: q.get('errorClass') || '', placeholder: 'e.g. HTTPPermanent' }),
    from: input({ type: 'datetime-local', step: '0.001', id: `${idPrefix}-from`, value: toLocalInput(q.get('from')) }),
    to: input({ type: 'datetime-local', step: '0.001', id: `${idPrefix}-to`, value: toLocalInput(q.get('to')) }),
  };
  if (dispatchers && q.get('dispatcherId') && !dispatchers.some((d) => d.id === q.get('dispatcherId'))) {
    els.dispatcherId.append(h('option', { value: q.get('dispatcherId'), selected: true }, q.get('dispatcherId')));
  }
  const fields = [
    field('Event id', els.eventId),
    field('Event type', els.eventType),
    field('Dispatcher', els.dispatcherId),
    withStatus ? field('Status', els.status) : null,
    field('Error class', els.errorClass),
    field('Started from', els.from),
    field('Started before', els.to),
  ];
  const read = () => ({
    eventId: els.eventId.value.trim(),
    eventType: els.eventType.value.trim(),
    dispatcherId: els.dispatcherId.value.trim(),
    status: withStatus ? els.status.value : '',
    errorClass: els.errorClass.value.trim(),
    from: fromLocalInput(els.from.value),
    to: fromLocalInput(els.to.value),
  });
  return { fields, read, els };
}

export async function render(ctx) {
  const q = ctx.query;
  const dispatchers = await dispatcherOptions(ctx);
  const names = new Map((dispatchers || []).map((d) => [d.id, d.name]));
  const { fields, read } = filterForm(q, dispatchers);
  const form = h('form', { class: 'filters', id: 'search-form', role: 'search', 'aria-label': 'Search dispatches' },
    fields, h('div', { class: 'actions' },
      h('button', { type: 'submit', class: 'primary', id: 'search-submit' }, 'Search'),
      h('a', { href: '#/executions', class: 'button secondary' }, 'Clear')));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const f = read();
    if (q.get('bulkReplayId')) f.bulkReplayId = q.get('bulkReplayId');
    if (q.get('replayed')) f.replayed = q.get('replayed');
    ctx.navigate(`#/executions${query(f)}`);
  });
  ctx.main.append(pageHeader('Dispatches'), form);
  if (q.get('bulkReplayId')) {
    ctx.main.append(h('p', { class: 'notice' }, `The replays that bulk replay ${q.get('bulkReplayId')} started. `,
      link(`#/replays/${seg(q.get('bulkReplayId'))}`, 'Its progress')));
  }
  const out = h('div', { id: 'results', 'aria-live': 'polite' }, h('p', { class: 'muted', text: 'Loading…' }));
  ctx.main.append(out);
  const params = {};
  for (const n of filterNames) if (q.get(n)) params[n] = q.get(n);
  // replayed=hide leaves out the runs that a replay has superseded, as
  // the failures view counts them: the API fills each page with the
  // others (before, they were left out of each page here, and a list
  // after a bulk replay was pages of nothing).
  const hideReplayed = q.get('replayed') === 'hide';
  const shownParams = { ...params, replayed: q.get('replayed') };
  let page;
  try {
    page = await get(`/executions/v1${query({ ...params, hideReplayed: hideReplayed || null, limit: pageSize, pageToken: q.get('pageToken') })}`);
  } catch (err) {
    replace(out, errorBox(err));
    return;
  }
  const runs = page.data;
  const rows = runs.map((x) => [
    link(`#/executions/${seg(x.workflowId)}${query({ runId: x.runId })}`, x.eventId, { class: 'event-link' }),
    x.eventType,
    badge(x.status),
    fmtTime(x.startTimestamp),
    x.closeTimestamp ? fmtDuration(x.closeTimestamp - x.startTimestamp) : '—',
    x.failedActionCount ? String(x.failedActionCount) : '',
    x.errorClasses.join(', '),
    x.dispatcherIds.map((id) => names.get(id) || id).join(', '),
    // Apart: before, "replay by adminreplayed since".
    [x.replay ? `replay${x.replay.requestedBy ? ` by ${x.replay.requestedBy}` : ''}` : '',
      x.replay && x.replayedAs ? '; ' : '',
      x.replayedAs ? link(`#/executions/${seg(x.workflowId)}${query({ runId: x.replayedAs })}`, 'replayed since', { class: 'replayed' }) : ''],
  ]);
  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages' },
    q.get('pageToken') ? link(`#/executions${query(shownParams)}`, '« First page') : null,
    page.page.nextPageToken ? link(`#/executions${query({ ...shownParams, pageToken: page.page.nextPageToken })}`, 'Next page »', { id: 'next-page', rel: 'next' }) : null);
  replace(out, 
    h('p', { class: 'muted' }, `${runs.length} ${runs.length === 1 ? 'run' : 'runs'} on this page (${pageSize} a page), running first, then the most recently ended first.`),
    hideReplayed ? h('p', { class: 'notice', id: 'replayed-hidden' },
      'Runs that a replay has superseded are not shown. ',
      link(`#/executions${query(params)}`, 'Show them')) : null,
    table('Dispatches matching the search', ['Event', 'Type', 'Status', 'Started', 'Took', 'Failed actions', 'Error classes', 'Dispatchers', ''], rows,
      { empty: 'No dispatch matches.', id: 'executions-table' }),
    pager);
}
