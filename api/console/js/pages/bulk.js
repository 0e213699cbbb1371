// The bulk replay views: a filter, the dry-run count of what it matches,
// the recent bulk replays, then the replay itself with a live progress
// bar, pause, resume and cancel (POST /executions/v1/replays,
// GET …/replays, GET …/replays/{id}).
import { h, fmtTime, replace } from '../dom.js';
import { get, post, query, seg, postOnce } from '../api.js';
import { pageHeader, field, input, select, table, badge, link, confirmDialog, errorBox, announce, busy } from '../ui.js';
import { dispatcherOptions, filterForm } from './executions.js';

export async function render(ctx) {
  if (ctx.segments[1] && ctx.segments[1] !== 'new') return progressView(ctx, ctx.segments[1], names(await dispatcherOptions(ctx)));
  return newView(ctx);
}

async function newView(ctx) {
  const q = new URLSearchParams(ctx.query);
  if (!q.get('status')) q.set('status', 'failed');
  // An API key held to event types replays only theirs, one named in the
  // request: its one type is filled in, and its types are said (before,
  // its count was refused as if the key lacked the permission).
  const types = ctx.me.eventTypes;
  if (types && types.length === 1 && !q.get('eventType')) q.set('eventType', types[0]);
  const dispatchers = await dispatcherOptions(ctx);
  const { fields, read, els } = filterForm(q, dispatchers, { idPrefix: 'bulk' });
  // Only closed dispatches can be replayed.
  for (const o of [...els.status.options]) if (o.value === '' || o.value === 'running' || o.value === 'scheduled') o.remove();
  const actions = input({ id: 'bulk-actions', placeholder: 'action ids, comma-separated', value: q.get('actions') || '' });
  const config = select({ id: 'bulk-config' }, [['original', 'The one each ran with'], ['current', 'The current one (after a fix)']], q.get('config') || 'original');
  const rate = input({ type: 'number', id: 'bulk-rate', min: '0.01', max: '100', step: 'any', value: q.get('rate') || '10' });
  const result = h('div', { id: 'bulk-result', 'aria-live': 'polite' });
  const dry = h('button', { type: 'submit', class: 'primary', id: 'bulk-dry-run' }, 'Count matching dispatches');
  const form = h('form', { class: 'filters', id: 'bulk-form', 'aria-label': 'Which dispatches to replay' },
    fields,
    field('Actions', actions, 'Empty: in each, the actions that failed or were canceled.'),
    field('Configuration', config),
    field('Replays per second', rate, '0.01 to 100.'),
    types ? h('p', { class: 'muted', id: 'bulk-types' }, `Your API key replays events of ${types.length === 1 ? 'the type' : 'one of the types'} ${types.join(', ')} only: the event type is one of them.`) : null,
    h('div', { class: 'actions' }, dry));
  ctx.main.append(pageHeader('Bulk replay'),
    h('p', {}, 'Replays every dispatch the filter matches, throttled, as a durable job that survives restarts. First count what it matches; nothing starts until you confirm.'),
    form, result);
  if (ctx.can('VIEW_EXECUTIONS')) recentList(ctx, names(dispatchers));

  const request = () => {
    const f = read();
    const body = { rate: Number(rate.value) || undefined, config: config.value };
    for (const [k, v] of Object.entries(f)) if (v) body[k] = k === 'from' || k === 'to' ? Number(v) : v;
    const ids = actions.value.split(',').map((s) => s.trim()).filter(Boolean);
    if (ids.length) body.actions = ids;
    return body;
  };

  // A dry run counts what the form said then: changed since, its Start
  // would replay something else than the form shows.
  const stale = () => { if (result.firstChild) replace(result, h('p', { class: 'muted', text: 'The form changed: count again before replaying.' })); };
  form.addEventListener('input', stale);
  form.addEventListener('change', stale);
  // count runs the dry run of the form; focus, when the user asked for
  // it (not when the view counts it again on coming back).
  const count = async (focus) => {
    const body = request();
    // The form counted goes in the address, in place (the entry stays
    // one): back from a sample's dispatch, or reloaded, the view counts it
    // again. Before, it came back with the defaults, every failed
    // dispatch, one Count and one Replay away.
    const counted = `#/replays/new${query({ ...read(), actions: actions.value.trim(), config: config.value === 'original' ? '' : config.value,
      rate: rate.value === '10' ? '' : rate.value, counted: 1 })}`;
    if (location.hash !== counted) history.replaceState(history.state, '', counted);
    await busy(dry, async () => {
      let res;
      try {
        res = await post('/executions/v1/replays', { ...body, dryRun: true });
      } catch (err) {
        replace(result, errorBox(err));
        return;
      }
      const n = Math.max(0, res.matched - res.replayed - (res.stillPaused || 0) - (res.removed || 0)); // those are skipped
      const start = h('button', { type: 'button', class: 'primary', id: 'bulk-start', disabled: n <= 0 }, `Replay ${n} ${n === 1 ? 'dispatch' : 'dispatches'}…`);
      start.addEventListener('click', () => startBulk(ctx, body, n, start, result));
      replace(result, 
        h('h2', {}, 'Dry run'),
        h('p', {}, h('strong', { id: 'bulk-count', text: `${n} ${n === 1 ? 'dispatch matches' : 'dispatches match'}` }),
          res.replayed ? ` (and ${res.replayed} replayed already, which are skipped)` : '',
          res.stillPaused ? ` (and ${res.stillPaused} with a dispatcher still paused, which are skipped: resume it first)` : '',
          res.removed ? ` (and ${res.removed} none of whose actions to replay is an action of their event type's dispatchers now, deleted since or named for another type, which are skipped)` : '',
          res.withheld ? '. Which ones is shown with VIEW_EXECUTIONS.' : n > res.sample.length && res.sample.length ? `; the ${res.sample.length} that ended last:` : n ? ':' : '.'),
        res.sample.length ? table('A sample of the matching dispatches', ['Event', 'Type', 'Status', 'Started', 'Error classes'],
          res.sample.map((x) => [link(`#/executions/${seg(x.workflowId)}${query({ runId: x.runId })}`, x.eventId), x.eventType, badge(x.status),
            fmtTime(x.startTimestamp), x.errorClasses.join(', ')])) : null,
        h('div', { class: 'actions' }, start));
      announce(`${n} dispatches match.`);
      if (focus) start.focus();
    });
  };
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    count(true);
  });
  if (q.get('counted') && ctx.alive()) count(false); // left meanwhile: the address is another view's
}

// recentList shows the recent bulk replays, those running first, each
// linked to its progress: one started elsewhere, or left, is found again.
async function recentList(ctx, named) {
  const box = h('section', { id: 'bulk-recent', 'aria-labelledby': 'h-bulk-recent' }, h('h2', { id: 'h-bulk-recent', text: 'Recent bulk replays' }));
  ctx.main.append(box);
  let res;
  try {
    res = await get('/executions/v1/replays?limit=20');
  } catch (err) {
    box.append(errorBox(err));
    return;
  }
  if (!ctx.alive()) return;
  box.append(table('Recent bulk replays', ['Bulk replay', 'Status', 'Requested by', 'Started', 'Filter'],
    res.data.map((b) => [link(`#/replays/${seg(b.id)}`, b.id), badge(b.paused ? 'paused' : b.status), b.requestedBy || '—', fmtTime(b.startTimestamp), h('span', { title: filterText(b.filter, new Map()) }, filterText(b.filter, named))]),
    { id: 'bulk-recent-table', empty: 'None yet.' }));
}

// names maps the ids of dispatchers (dispatcherOptions) to their names.
const names = (dispatchers) => new Map((dispatchers || []).filter((d) => d.name).map((d) => [d.id, d.name]));

// filterValue says the value v of a bulk replay's filter's field k: a
// time as a date, a dispatcher by its name when named knows it.
const filterValue = (k, v, named) => (k === 'from' || k === 'to' ? fmtTime(v) : k === 'dispatcherId' && named.has(v) ? named.get(v) : String(v));

// filterText says a bulk replay's filter on one line.
const filterText = (f, named) => Object.entries(f || {}).filter(([, v]) => v !== undefined && v !== null && v !== '')
  .map(([k, v]) => `${k} ${filterValue(k, v, named)}`).join(', ');

async function startBulk(ctx, body, n, button, result) {
  const ok = await confirmDialog({
    id: 'bulk-dialog',
    title: `Replay ${n} ${n === 1 ? 'dispatch' : 'dispatches'}?`,
    confirm: 'Start the bulk replay',
    body: h('p', {}, `At most ${body.rate || 10} a second, each as a new run of its dispatch, with ${body.config === 'current' ? 'the current configuration' : 'the configuration it ran with'}. ${
      body.actions?.length ? 'Only the actions named run again.' : 'Every action that failed in a dispatch runs again, those of its other dispatchers too.'} It can be paused or canceled; replays started run on.`),
  });
  if (!ok) return;
  await busy(button, async () => {
    try {
      const st = await postOnce('/executions/v1/replays', body);
      announce('Bulk replay started.');
      if (ctx.can('VIEW_EXECUTIONS')) {
        ctx.navigate(`#/replays/${seg(st.id)}`);
      } else { // its progress is read with VIEW_EXECUTIONS
        replace(result, h('p', { id: 'bulk-started' }, 'Bulk replay ', h('code', { text: st.id }), ' started. Its progress is shown with VIEW_EXECUTIONS.'));
      }
    } catch (err) {
      result.append(errorBox(err));
    }
  });
}

function progressView(ctx, id, named) {
  ctx.main.append(pageHeader('Bulk replay'), h('p', { class: 'muted' }, h('code', { text: id })));
  const bar = h('progress', { id: 'bulk-progress', max: '1', value: '0', 'aria-labelledby': 'bulk-percent' });
  const percent = h('span', { id: 'bulk-percent', class: 'percent' }, '0 %');
  const state = h('div', { id: 'bulk-state', 'aria-live': 'polite' });
  const controls = h('div', { class: 'actions' });
  const details = h('div', {});
  // The answers to the buttons: the progress, redrawn every second, would
  // take them away.
  const problems = h('div', { id: 'bulk-problems' });
  // Shown with the first answer: before, "0 %" stood above the 404 of a
  // bulk replay id that does not exist.
  const card = h('div', { class: 'card', hidden: true }, h('div', { class: 'progress-row' }, bar, percent), state, controls);
  ctx.main.append(card, problems, details);
  let last = null;
  let known = false; // a progress was read once
  let unreached = false; // problems says a button's request got no answer

  const act = async (verb, button) => {
    if (verb === 'cancel') {
      const ok = await confirmDialog({ id: 'bulk-cancel-dialog', title: 'Cancel this bulk replay?', confirm: 'Cancel the bulk replay', dismiss: 'Keep it running', danger: true,
        body: h('p', {}, 'It starts no further replays; those started run on.') });
      if (!ok) return;
    }
    await busy(button, async () => {
      try {
        const st = await post(`/executions/v1/replays/${seg(id)}/${verb}`);
        announce(verb === 'pause' ? 'Paused.' : verb === 'resume' ? 'Resumed.' : 'Cancellation requested.');
        replace(problems);
        show(st);
      } catch (err) {
        replace(problems, errorBox(err));
        unreached = err.status === 0;
      }
    });
  };

  const show = (st) => {
    card.hidden = false;
    const p = st.progress;
    const done = st.status !== 'running' && st.status !== 'paused';
    const total = Math.max(p.matched, p.processed);
    const frac = total === 0 ? (done ? 1 : 0) : p.processed / total;
    if (!st.progressUnknown) { // else the last known stays
      bar.max = 1;
      bar.value = frac;
      percent.textContent = `${Math.floor(frac * 100)} %`;
    } else if (!known) {
      // None known yet: before, "0 %" of a bulk replay half done.
      bar.removeAttribute('value'); // indeterminate
      percent.textContent = '? %';
    }
    known = known || !st.progressUnknown;
    const shown = st.status === 'running' && p.paused ? 'paused' : st.status;
    replace(state, 
      // Replays that failed again, beside the badge: before, a bulk replay
      // whose every replay failed stood there a green "Completed".
      h('p', {}, badge(shown, { id: 'bulk-status' }), p.failed ? [' ', h('span', { class: 'badge badge-failed', id: 'bulk-failed-again' }, `${p.failed} failed again, canceled or not started`)] : null, ' ', st.progressUnknown
        ? (done ? 'Progress unknown: no worker answered for it (the workers are down or busy); look again later.'
          : 'Progress unknown: no worker answers for it now (the workers are down or busy). It goes on once one does; pause and cancel work meanwhile.')
        // "up to" while it runs: the runs a replay superseded already, which
        // the dry run left out, leave the count as each page is read.
        : `${p.processed} of ${done ? total : `up to ${total}`} handled: ${p.replayed} replayed, ${p.skipped} skipped; of the replays ${p.succeeded} succeeded, ${p.failed} failed, ${p.pending} still running${p.scheduled ? ` (${p.scheduled} waiting for their start time)` : ''}.`),
      h('p', { class: 'muted' }, `Started ${fmtTime(st.startTimestamp)} by ${st.requestedBy || 'unknown'}${st.closeTimestamp ? `, ended ${fmtTime(st.closeTimestamp)}` : ''}; at most ${st.rate} a second, ${st.config} configuration.`));
    const buttons = [];
    // An API key held to some event types acts only on bulk replays of one of them, as the API has it.
    const types = ctx.me.eventTypes;
    const mayAct = ctx.can('REPLAY_EXECUTIONS') && (!types || types.includes((st.filter || {}).eventType));
    if (mayAct && st.status === 'running') {
      // Unknown, it may be paused or not: both are offered.
      if (p.paused || st.progressUnknown) buttons.push(h('button', { type: 'button', class: 'primary', id: 'bulk-resume', onclick: (ev) => act('resume', ev.currentTarget) }, 'Resume'));
      if (!p.paused && (p.remaining > 0 || p.matched === 0 || st.progressUnknown)) buttons.push(h('button', { type: 'button', class: 'secondary', id: 'bulk-pause', onclick: (ev) => act('pause', ev.currentTarget) }, 'Pause'));
      buttons.push(h('button', { type: 'button', class: 'danger', id: 'bulk-cancel', onclick: (ev) => act('cancel', ev.currentTarget) }, 'Cancel…'));
    }
    if (p.failed) {
      buttons.push(link(`#/executions${query({ bulkReplayId: id, status: 'failed' })}`, 'Its failed replays', { class: 'button secondary', id: 'bulk-failed-link' }),
        link(`#/executions${query({ bulkReplayId: id, status: 'canceled' })}`, 'Its canceled replays', { class: 'button secondary' }));
    }
    buttons.push(link(`#/executions${query({ bulkReplayId: id })}`, 'Its replays', { class: 'button secondary' }));
    if (st.webUrl) buttons.push(h('a', { href: st.webUrl, class: 'button secondary', target: '_blank', rel: 'noopener noreferrer' }, 'Open in Temporal Web UI ↗'));
    // Rebuilt only when they change, so that focus stays on them.
    const key = `${st.status}/${p.paused}/${p.remaining > 0}/${Boolean(st.progressUnknown)}/${p.failed > 0}`;
    if (key !== last) {
      // The pressed button goes with the old ones: focus moves to the one
      // that takes its place (Pause ⇄ Resume), not to the page's body.
      // Whatever had it: "Its replays" has no id, and once the canceled
      // bulk replay's buttons went, the focus fell to the page's body.
      const focused = controls.contains(document.activeElement);
      replace(controls, buttons);
      last = key;
      if (focused) (controls.querySelector('#bulk-pause, #bulk-resume') || controls.querySelector('button, a'))?.focus();
    }
    const f = st.filter || {};
    replace(details, 
      h('h2', {}, 'Filter'),
      h('dl', { class: 'facts' }, Object.entries(f).map(([k, v]) => [h('dt', { text: k }), h('dd', { text: filterValue(k, v, named), title: k === 'dispatcherId' ? v : null, id: `bulk-filter-${k}` })])),
      p.errors && p.errors.length ? [h('h2', {}, 'Latest problems'), h('ul', {}, p.errors.map((e) => h('li', { text: e })))] : null);
    return !done;
  };

  // A failed request throws: ctx.every tries again when the failure may
  // pass, and shows it when it cannot.
  ctx.every(1000, async () => {
    const st = await get(`/executions/v1/replays/${seg(id)}`);
    // Answered again: the progress says what the button did. Before, "No
    // connection" stayed under it until the next press.
    if (unreached) replace(problems);
    unreached = false;
    return show(st);
  });
}
