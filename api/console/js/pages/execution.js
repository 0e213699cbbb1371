// The dispatch view: one run of a dispatch (GET /executions/v1/{id}):
// every action's timeline with attempts, errors and durations, the
// event, the configuration it ran with, the runs of the event and who
// replayed or canceled it, the events its ordering key holds behind it,
// a link to the run in the Temporal Web UI; Replay, Cancel and Release,
// each after a confirmation, for those who may.
import { h, fmtTime, fmtDuration, pretty, uid, replace, rebuild } from '../dom.js';
import { get, post, query, seg, postOnce } from '../api.js';
import { pageHeader, badge, table, link, confirmDialog, errorBox, announce, busy, focusHeading, holder } from '../ui.js';

const open = (status) => status === 'running' || status === 'scheduled';

export async function render(ctx) {
  const workflowId = ctx.segments[1];
  const runId = ctx.query.get('runId') || '';
  const path = `/executions/v1/${seg(workflowId)}`;
  const head = h('div', {});
  const body = h('div', { id: 'execution' });
  const status = h('div', { id: 'status-line', 'aria-live': 'polite' });
  ctx.main.append(head, status, body);
  let shownStatus = null;
  let shownKey = null;
  let headerDone = false;

  // A failed request throws: ctx.every tries again when the failure may
  // pass, and shows it when it cannot.
  const load = async () => {
    const d = await get(`${path}${query({ runId })}`);
    if (!ctx.alive()) return false;
    if (!headerDone) {
      replace(head, pageHeader(`Dispatch of event ${d.eventId}`));
      headerDone = true;
      focusHeading(head); // drawn after the view rendered, which focused none
    }
    if (shownStatus !== null && shownStatus !== d.status) announce(`The run is now ${d.status}.`);
    shownStatus = d.status;
    // Rebuilt only when the run changed, so that a selection stays while
    // it waits (for hours, maybe); the time it has been open moves on in
    // place. Rebuilt, as it retries an action, say, the sections the user
    // opened stay open and the focus stays where it was.
    const key = JSON.stringify(d);
    if (key === shownKey) {
      for (const el of status.querySelectorAll('.elapsed')) el.textContent = elapsed(d);
      return open(d.status);
    }
    shownKey = key;
    rebuild(status, statusLine(ctx, d, load));
    rebuild(body, details(ctx, d));
    return open(d.status); // poll while it runs
  };
  ctx.every(1500, load);
}

// latestRun is the newest run of the event.
function latestRun(d) {
  return d.runs.reduce((a, b) => (b.startTimestamp > a.startTimestamp ? b : a), d.runs[0] || d);
}

// elapsed says how long an open run has been open: "so far", since
// "waiting for 6 min" read as the time left of a wait of a day.
const elapsed = (d) => `${d.status === 'scheduled' ? 'waiting' : 'running'} ${fmtDuration(Date.now() - d.startTimestamp)} so far`;

function statusLine(ctx, d, reload) {
  const latest = latestRun(d);
  const isLatest = latest.runId === d.runId;
  const took = d.closeTimestamp ? fmtDuration(d.closeTimestamp - d.startTimestamp) : h('span', { class: 'elapsed' }, elapsed(d));
  const buttons = [];
  // An API key held to some event types acts only on dispatches of one
  // of them, as the API has it: the buttons it would be refused are not
  // offered (before, Replay was, and its refusal read as a missing
  // permission).
  const types = ctx.me.eventTypes;
  const ownType = !types || types.includes(d.eventType || (d.event || {}).type);
  if (ctx.can('REPLAY_EXECUTIONS') && ownType && isLatest && !open(d.status)) {
    buttons.push(h('button', { type: 'button', class: 'primary', id: 'replay-button', onclick: (ev) => replay(ctx, d, ev.currentTarget) }, 'Replay…'));
  }
  if (ctx.can('REPLAY_EXECUTIONS') && ownType && d.blocking) {
    buttons.push(h('button', { type: 'button', id: 'release-button', onclick: (ev) => release(ctx, d, ev.currentTarget, reload) }, 'Release the key…'));
  }
  if (ctx.can('CANCEL_EXECUTIONS') && ownType && open(d.status)) {
    buttons.push(h('button', { type: 'button', class: 'danger', id: 'cancel-button', onclick: (ev) => cancel(ctx, d, ev.currentTarget, reload) }, 'Cancel…'));
  }
  if (d.webUrl) {
    buttons.push(h('a', { href: d.webUrl, class: 'button secondary', target: '_blank', rel: 'noopener noreferrer', id: 'temporal-link' }, 'Open in Temporal Web UI ↗'));
  }
  return h('div', { class: 'card status' },
    h('p', {}, badge(d.status, { id: 'run-status' }), ' ',
      h('span', {}, `Run ${d.runId} of `), h('code', { text: d.workflowId }),
      d.replay ? h('span', {}, ` — a replay of run ${d.replay.of}${d.replay.requestedBy ? ` asked for by ${d.replay.requestedBy}` : ''}${d.replay.bulkReplayId ? ` (bulk replay ${d.replay.bulkReplayId})` : ''}`) : null),
    h('p', { class: 'muted' }, `Started ${fmtTime(d.startTimestamp)}, `, d.closeTimestamp ? `ended ${fmtTime(d.closeTimestamp)}, took ${took}` : took, `. Event type ${d.eventType}.`),
    isLatest ? null : h('p', { class: 'notice' }, 'A newer run of this event exists: ',
      link(`#/executions/${seg(d.workflowId)}${query({ runId: latest.runId })}`, `run ${latest.runId} (${latest.status})`, { id: 'latest-run' }), '.'),
    d.failure ? h('p', { class: 'error-text', text: d.failure }) : null,
    stuckScheduled(d),
    ordering(d),
    h('div', { class: 'actions' }, buttons));
}

// due says when an action scheduled by its startTimestamp runs, or was to
// run, and how late it started: its worker down at its time, a reminder
// goes late.
function due(a) {
  if (a.status === 'scheduled') return `Runs at ${fmtTime(a.dueTimestamp)}`;
  const late = a.startTimestamp ? a.startTimestamp - a.dueTimestamp : 0;
  return `Due at ${fmtTime(a.dueTimestamp)}${late >= 60000 ? `, started ${fmtDuration(late)} late` : ''}`;
}

// stuckScheduled says what to do about a scheduled run whose other
// actions failed for good: it is replayable only once its wait ends (as
// the API's 409 says). Before, the page offered Cancel alone, and no word.
function stuckScheduled(d) {
  const failed = d.actions.filter((a) => a.status === 'failed');
  if (d.status !== 'scheduled' || !failed.length) return null;
  return h('p', { class: 'notice', id: 'scheduled-failed' },
    `${failed.length === 1 ? '1 action' : `${failed.length} actions`} of this run failed for good while it waits for the start time of the others. ` +
    'It can be replayed once its wait ends; to retry now, cancel it, then replay the failed and the scheduled actions.');
}

// ordering says what the run does to its ordering key: it blocks it, or
// runs as its dispatch, and which events wait behind it.
function ordering(d) {
  const n = d.waiting ? d.waiting.count : 0;
  const events = n === 1 ? '1 event waits' : `${n} events wait`;
  if (!d.blocking && !n) return null;
  const text = d.blocking
    ? `This dispatch failed and blocks its ordering key: ${events} behind it until it is replayed or released.`
    : `${events} behind this dispatch for its turn on the ordering key.`;
  // Kept open across the reloads of a running dispatch (rebuild).
  const list = n ? h('details', { id: 'waiting' }, h('summary', {}, `Waiting events${n > d.waiting.workflowIds.length ? ` (the first ${d.waiting.workflowIds.length})` : ''}`),
    h('p', { class: 'muted', text: 'Each has no dispatch to open until its turn comes.' }),
    h('ol', {}, d.waiting.workflowIds.map((id) => h('li', {}, h('code', { text: id }))))) : null;
  return [h('p', { class: d.blocking ? 'notice' : 'muted', id: 'ordering' }, text), list];
}

function details(ctx, d) {
  const out = [];
  out.push(h('section', { 'aria-labelledby': 'h-actions' }, h('h2', { id: 'h-actions', text: 'Actions' }),
    d.only && d.only.length ? h('p', { class: 'muted', title: d.only.join(', ') }, `This run ran only the ${d.only.length === 1 ? 'action' : 'actions'} ${actionNames(d, d.only)}.`) : null,
    d.actionsUnknown ? h('p', { class: 'notice', id: 'actions-unknown', text: 'No worker answered (are they running?): the actions as planned, their progress unknown.' }) : null,
    timeline(d)));
  out.push(h('section', { 'aria-labelledby': 'h-event' }, h('h2', { id: 'h-event', text: 'Event' }),
    h('dl', { class: 'facts' },
      h('dt', {}, 'Id'), h('dd', { text: d.event.id }),
      h('dt', {}, 'Type'), h('dd', { text: d.event.type }),
      h('dt', {}, 'Created'), h('dd', { text: fmtTime(d.event.creationTimestamp) }),
      d.event.source ? [h('dt', {}, 'Source'), h('dd', { text: d.event.source })] : null),
    withheld(ctx, d, 'event.content') || h('pre', { class: 'json', id: 'event-content', tabindex: '0', 'aria-label': 'Event content (JSON)' }, pretty(d.event.content))));
  out.push(h('section', { 'aria-labelledby': 'h-config' }, h('h2', { id: 'h-config', text: 'Configuration it ran with' }), config(ctx, d)));
  out.push(h('section', { 'aria-labelledby': 'h-runs' }, h('h2', { id: 'h-runs', text: 'Runs of this event' }),
    table('Every run of the event, its first dispatch and its replays', ['Run', 'Status', 'Started', 'Took', 'Replay of', 'Asked for by'],
      [...d.runs].sort((a, b) => a.startTimestamp - b.startTimestamp).map((r) => [
        r.runId === d.runId ? h('strong', {}, `${r.runId} (shown)`) : link(`#/executions/${seg(r.workflowId)}${query({ runId: r.runId })}`, r.runId),
        badge(r.status), fmtTime(r.startTimestamp), r.closeTimestamp ? fmtDuration(r.closeTimestamp - r.startTimestamp) : '—',
        r.replay ? r.replay.of : '', r.replay ? (r.replay.requestedBy || '') + (r.replay.bulkReplayId ? ` (bulk ${r.replay.bulkReplayId})` : '') : '',
      ]), { id: 'runs-table' })));
  out.push(h('section', { 'aria-labelledby': 'h-audit' }, h('h2', { id: 'h-audit', text: 'Replays and cancellations' }),
    table('Who replayed or canceled this dispatch, and when', ['When', 'What', 'Who', 'Run', 'New run', 'Actions', 'Configuration'],
      d.audit.map((a) => [fmtTime(a.timestamp), a.operation + (a.bulkReplayId ? ` (bulk ${a.bulkReplayId})` : ''), a.actor, a.runId || '', a.newRunId || '',
        a.actions && a.actions.length ? h('span', { title: a.actions.join(', ') }, actionNames(d, a.actions)) : (a.operation === 'replay' ? 'the failed ones' : ''), a.config || '']),
      { empty: 'Never replayed nor canceled.', id: 'audit-table' })));
  return out;
}

function withheld(ctx, d, part) {
  const perm = d.withheld && d.withheld[part];
  return perm ? h('p', { class: 'notice', text: `Not shown: it needs the permission ${perm}, which your ${holder(ctx.me)} does not hold.` }) : null;
}

// timeline shows each action as a row: its times, a bar of when it ran
// within the dispatch, its attempts, its last error.
function timeline(d) {
  const t0 = d.startTimestamp;
  const end = Math.max(d.closeTimestamp || Date.now(), ...d.actions.map((a) => a.finishTimestamp || 0));
  const span = Math.max(1, end - t0);
  const rows = d.actions.map((a) => {
    const start = a.startTimestamp || null;
    const finish = a.finishTimestamp || null;
    const left = start ? ((start - t0) / span) * 100 : 0;
    const width = start ? Math.max(0.8, (((finish || end) - start) / span) * 100) : 0;
    const bar = h('div', { class: 'track', 'aria-hidden': 'true' },
      start ? h('div', { class: `span span-${a.status}`, style: null }) : null);
    if (start) {
      // Geometry through the CSSOM, not a style attribute: the policy
      // allows no inline styles.
      bar.firstChild.style.marginLeft = `${left.toFixed(2)}%`;
      bar.firstChild.style.width = `${Math.min(width, 100 - left).toFixed(2)}%`;
    }
    return [
      h('div', {}, h('strong', {}, actionName(a)), h('div', { class: 'muted', text: `${a.type} action ${a.actionId}` })),
      badge(a.status),
      String(a.attempts),
      start ? fmtTime(start) : 'not started',
      start && finish ? fmtDuration(finish - start) : start ? 'running' : '—',
      bar,
      h('div', {},
        // A canceled action's class is its status: "Canceled canceled
        // before it began" said it twice.
        a.lastError ? [a.status === 'canceled' && a.lastError.class === 'Canceled' ? null : [h('code', { text: a.lastError.class }), ' '],
          h('span', { class: 'message', text: a.lastError.message })] : null,
        a.skipReason ? h('div', { class: 'muted', text: `skipped (${a.skipReason})${a.skipDetail ? `: ${a.skipDetail}` : ''}` }) : null,
        a.carriedFrom ? h('div', { class: 'muted', text: `Not run by this replay: as run ${a.carriedFrom} left it` }) : null,
        a.httpStatus ? h('div', { class: 'muted', text: `HTTP ${a.httpStatus}` }) : null,
        a.messageId ? h('div', { class: 'muted', text: `Message-ID ${a.messageId}` }) : null,
        a.dueTimestamp ? h('div', { class: 'muted', text: due(a) }) : null,
        a.nextAttemptTimestamp ? h('div', { class: 'muted', text: `Next attempt at ${fmtTime(a.nextAttemptTimestamp)}` }) : null),
    ];
  });
  return table('Each action of the run: status, attempts, when it ran and its last error',
    ['Action', 'Status', 'Attempts', 'Started', 'Took', `Timeline (${fmtDuration(span)})`, 'Last error / result'], rows,
    { empty: 'No action ran (no dispatcher matched, or the configuration is withheld).', id: 'actions-table' });
}

function config(ctx, d) {
  if (!d.config) return h('p', { class: 'muted', text: 'No configuration was loaded.' });
  const parts = [h('p', { class: 'muted', text: `Configuration version ${d.config.version}${d.config.pinned ? ', pinned by the replay' : ''}.` })];
  parts.push(withheld(ctx, d, 'config.dispatchers') ||
    h('details', { id: 'config-dispatchers' }, h('summary', {}, `Dispatchers (${d.config.dispatchers.length})`),
      h('pre', { class: 'json', tabindex: '0' }, pretty(d.config.dispatchers))));
  parts.push(withheld(ctx, d, 'config.functions') ||
    h('details', { id: 'config-functions' }, h('summary', {}, `Functions (${d.config.functions.length})`),
      h('pre', { class: 'json', tabindex: '0' }, pretty(d.config.functions))));
  return parts;
}

// replay asks which actions to replay, and with which configuration,
// then starts the replay and shows its run.
// actionName names an action by its dispatcher's name and its own, each
// isolated: a right-to-left override in one must not reorder the other.
function actionName(a) {
  return [h('bdi', { text: a.dispatcherName || a.dispatcherId }), ' / ', h('bdi', { text: a.actionName || a.actionId })];
}

// actionNames names the actions of ids by their names in the run or in
// the configuration it ran with (an action an earlier replay made is in
// the latter only), by their ids where neither has them.
function actionNames(d, ids) {
  const named = new Map();
  for (const disp of (d.config && d.config.dispatchers) || []) for (const a of disp.actions || []) named.set(a.id, a.name);
  for (const a of d.actions) if (a.actionName) named.set(a.actionId, a.actionName);
  return ids.map((id) => named.get(id) || id).join(', ');
}

async function replay(ctx, d, button) {
  const line = document.getElementById('status-line');
  // A replay runs, by default, the actions that did not succeed; skipped
  // ones (a paused dispatcher, a filter) are not failures, and the
  // configuration they were skipped by skips them again: the server runs
  // them only with the current one, and refuses to with the original.
  const skipped = d.actions.filter((a) => a.status === 'skipped');
  const failed = d.actions.filter((a) => a.status !== 'succeeded' && a.status !== 'skipped');
  const group = uid('which');
  const onlyFailed = h('input', { type: 'radio', name: group, id: 'replay-failed', checked: true, value: 'failed' });
  const onlyFailedText = h('span', {});
  const choose = h('input', { type: 'radio', name: group, id: 'replay-choose', value: 'choose' });
  const boxes = d.actions.map((a) => h('input', { type: 'checkbox', value: a.actionId, checked: failed.includes(a), id: uid('act') }));
  const list = h('fieldset', { class: 'choices', id: 'replay-actions', disabled: true },
    h('legend', {}, 'Actions to run again'),
    d.actions.map((a, i) => h('div', {}, boxes[i], ' ', h('label', { for: boxes[i].id },
      actionName(a), a.status === 'skipped' ? ` (${a.type}, skipped: runs again only with the current configuration)` : ` (${a.type}, ${a.status})`))));
  const cfg = uid('cfg');
  const original = h('input', { type: 'radio', name: cfg, id: 'replay-original', checked: true, value: 'original' });
  const current = h('input', { type: 'radio', name: cfg, id: 'replay-current', value: 'current' });
  let forced = false; // choosing was made the only way, not chosen
  const sync = () => {
    // With the current configuration, the default takes the skipped ones too.
    const n = failed.length + (current.checked ? skipped.length : 0);
    onlyFailedText.textContent = current.checked
      ? `Those that failed, were canceled or were skipped (${n})`
      : `Only those that failed or were canceled (${n})`;
    onlyFailed.disabled = n === 0; // nothing to take: choosing is the only way
    if (onlyFailed.disabled && !choose.checked) {
      choose.checked = true;
      forced = true;
    } else if (!onlyFailed.disabled && forced) {
      // The default takes something again (every action was skipped, and
      // the current configuration runs them): it is the choice again.
      onlyFailed.checked = true;
      forced = false;
    }
    list.disabled = !choose.checked;
    d.actions.forEach((a, i) => {
      if (a.status !== 'skipped') return;
      boxes[i].disabled = original.checked;
      boxes[i].checked = current.checked;
    });
  };
  for (const el of [onlyFailed, choose]) el.addEventListener('change', () => { forced = false; sync(); });
  for (const el of [original, current]) el.addEventListener('change', sync);
  sync();
  const ok = await confirmDialog({
    id: 'replay-dialog',
    title: ['Replay the dispatch of event ', h('bdi', {}, d.eventId), '?'],
    confirm: 'Replay',
    check: () => !choose.checked || boxes.some((b) => b.checked && !b.disabled),
    body: [
      h('p', {}, 'A new run of the same dispatch starts; actions not chosen are not run again (no mail is sent twice): those of them that failed show in the new run as failed still, until a replay of it makes them.'),
      h('fieldset', { class: 'choices' }, h('legend', {}, 'Which actions'),
        h('div', {}, onlyFailed, ' ', h('label', { for: onlyFailed.id }, onlyFailedText)),
        h('div', {}, choose, ' ', h('label', { for: choose.id }, 'Choose actions'))),
      list,
      h('fieldset', { class: 'choices' }, h('legend', {}, 'Configuration'),
        h('div', {}, original, ' ', h('label', { for: original.id }, 'The one it ran with')),
        h('div', {}, current, ' ', h('label', { for: current.id }, 'The current one (after a fix)'))),
      skipped.length ? h('p', { class: 'muted', id: 'replay-skipped-note' },
        `${skipped.length === 1 ? '1 action was' : `${skipped.length} actions were`} skipped (a paused dispatcher, or a filter): the configuration it ran with skips ${skipped.length === 1 ? 'it' : 'them'} again, so only the current one can run ${skipped.length === 1 ? 'it' : 'them'}.`) : null,
    ],
  });
  if (!ok) return;
  const req = { runId: d.runId, config: current.checked ? 'current' : 'original' };
  if (choose.checked) req.actions = boxes.filter((b) => b.checked && !b.disabled).map((b) => b.value);
  await busy(button, async () => {
    try {
      const res = await postOnce(`/executions/v1/${seg(d.workflowId)}/replay`, req);
      if (!ctx.alive()) return; // left meanwhile: the replay shows on the dispatch's page
      announce(res.alreadyStarted ? 'This run had been replayed already: showing that replay.' : 'Replay started.');
      ctx.navigate(`#/executions/${seg(res.workflowId)}${query({ runId: res.runId })}`);
    } catch (err) {
      if (ctx.alive() && err.status !== 401) sayInstead(line, errorBox(err)); // 401: the sign-in asks
    }
  });
}

// release lets the events behind a blocking dispatch go on without it.
function release(ctx, d, button, reload) {
  return act(ctx, d, button, reload, 'release', 'The ordering key is released.', {
    id: 'release-dialog',
    title: ['Release the ordering key of event ', h('bdi', {}, d.eventId), '?'],
    confirm: 'Release the key',
    body: h('p', {}, 'The events waiting behind this dispatch run, in order. This dispatch is not run again: replay it instead to run its failed actions first.'),
  });
}

function cancel(ctx, d, button, reload) {
  return act(ctx, d, button, reload, 'cancel', 'Cancellation requested.', {
    id: 'cancel-dialog',
    title: ['Cancel the dispatch of event ', h('bdi', {}, d.eventId), '?'],
    confirm: 'Cancel the dispatch',
    dismiss: 'Keep it', // not "Cancel" beside "Cancel the dispatch"
    danger: true,
    body: h('p', {}, 'Actions that have not run yet (e.g. waiting for their start time) will not run. Calls in flight finish first.'),
  });
}

// act asks to confirm dialog, then posts the dispatch's action (cancel,
// release), says it is done and shows the dispatch again; on this
// dispatch's page only: before, an answer that came once the user had
// opened another dispatch said it there.
async function act(ctx, d, button, reload, action, done, dialog) {
  if (!(await confirmDialog(dialog))) return;
  const line = document.getElementById('status-line');
  await busy(button, async () => {
    try {
      await post(`/executions/v1/${seg(d.workflowId)}/${action}`);
      if (!ctx.alive()) return;
      announce(done);
      await reload();
      // Said on the page too: a release changes little else on it.
      if (ctx.alive()) sayInstead(line, h('p', { class: 'ok', role: 'status', id: 'act-done', text: done }));
    } catch (err) {
      if (ctx.alive() && err.status !== 401) sayInstead(line, errorBox(err)); // 401: the sign-in asks
    }
  });
}

// sayInstead shows what an action on the run ended in, in place of what
// the one before it ended in: before, each failed replay added its error
// under the others', which no longer held.
function sayInstead(line, said) {
  for (const old of line.querySelectorAll(':scope > .error, :scope > #act-done')) old.remove();
  line.append(said);
}
