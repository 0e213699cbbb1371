// The dispatcher view: its fields and its actions, each saved on its own
// (PUT /dispatchers/v1/{id}, POST/PUT/DELETE …/actions/{actionId}), all
// against the version of the dispatcher the page shows (If-Match), which
// each save moves on; a new dispatcher is created first, then given actions. Without
// UPDATE_DISPATCHERS everything is shown read-only.
import { h, uid, replace, visible } from '../dom.js';
import { getVersioned, getAll, post, seg } from '../api.js';
import { pageHeader, retitle, field, input, select, badge, confirmDialog, errorBox, formError, announce, busy } from '../ui.js';

const list = (s) => s.split(',').map((x) => x.trim()).filter(Boolean);

export async function render(ctx) {
  const id = ctx.segments[1];
  const isNew = id === 'new';
  const editable = isNew ? ctx.can('CREATE_DISPATCHERS') : ctx.can('UPDATE_DISPATCHERS');
  const [[d, version], templates, functions] = await Promise.all([
    isNew ? [{ name: '', eventType: '', description: '', tags: [], actions: [] }, null] : getVersioned(`/dispatchers/v1/${seg(id)}`),
    ctx.can('VIEW_TEMPLATES') ? getAll('/templates/v1?select(id,name)&sort(name)').catch(() => null) : null,
    ctx.can('VIEW_FUNCTIONS') ? getAll('/functions/v1?select(id,name)&sort(name)').catch(() => null) : null,
  ]);
  if (!ctx.alive()) return;
  const paused = isNew ? null : badge('paused', { id: 'dispatcher-paused', hidden: d.enabled !== false });
  const header = pageHeader(isNew ? 'New dispatcher' : `Dispatcher ${d.name || d.id}`, paused);
  ctx.main.append(header);
  if (!editable) {
    ctx.main.append(h('p', { class: 'notice', text: `Read-only: changing dispatchers needs the permission ${isNew ? 'CREATE_DISPATCHERS' : 'UPDATE_DISPATCHERS'}.` }));
  }

  const name = input({ id: 'd-name', value: d.name || '', readOnly: !editable });
  const eventType = input({ id: 'd-eventType', value: d.eventType || '', required: true, readOnly: !editable });
  const description = h('textarea', { id: 'd-description', rows: '2', readOnly: !editable }, d.description || '');
  const tags = input({ id: 'd-tags', value: (d.tags || []).join(', '), readOnly: !editable });
  const enabled = h('input', { type: 'checkbox', id: 'd-enabled', checked: d.enabled !== false, disabled: !editable });
  const filter = h('textarea', { id: 'd-filter', rows: '2', class: 'code', spellcheck: 'false', placeholder: 'event.content.country == "BE"', readOnly: !editable }, d.filter || '');
  const orderKey = input({ id: 'd-ordering-key', value: (d.ordering && d.ordering.key) || '', placeholder: 'content.userId', readOnly: !editable });
  const onFailure = select({ id: 'd-ordering-onFailure', disabled: !editable },
    [['block', 'holds the events after it until it is replayed or released'], ['skip', 'lets the events after it go on']],
    (d.ordering && d.ordering.onFailure) || 'block');
  // What the form showed when loaded, or last saved.
  const shown = fieldsOf(d);
  const msg = h('div', { id: 'dispatcher-message', 'aria-live': 'polite' });
  const save = editable ? h('button', { type: 'submit', class: 'primary', id: 'dispatcher-save' }, isNew ? 'Create' : 'Save dispatcher') : null;
  const form = h('form', { class: 'card', id: 'dispatcher-form', 'aria-label': 'Dispatcher', 'data-edits': '' },
    h('div', { class: 'grid' }, field('Name', name), field('Event type', eventType, 'The type of the events it runs for.'),
      field('Tags', tags, 'Comma-separated.')),
    field('Description', description),
    h('div', { class: 'field checkbox' }, enabled, h('label', { for: enabled.id }, 'Enabled (when paused, its actions are skipped and the dispatch says so)')),
    field('Filter', filter, 'Optional: a CEL expression over the event; the dispatcher runs only when it is true. Empty: every event of its type.'),
    h('fieldset', { class: 'grid' }, h('legend', {}, 'Ordering (optional): one event at a time per key'),
      field('Key', orderKey, 'partitionKey, or content.<path>. Empty: no ordering.'), field('A failed dispatch', onFailure)),
    h('div', { class: 'actions' }, save), msg);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (!editable) return;
    // Only the fields changed here are sent (an update keeps those it is
    // not sent), so that a save does not undo what someone else changed
    // meanwhile: a pause in an incident, say. Should they have changed one
    // of these fields too, the save is refused (412) rather than undo it.
    const key = orderKey.value.trim();
    const now = { name: name.value.trim(), eventType: eventType.value.trim(), description: description.value, tags: list(tags.value),
      enabled: enabled.checked, filter: filter.value.trim(), ordering: key ? { key, onFailure: onFailure.value } : null };
    const body = {};
    for (const k of Object.keys(now)) {
      if (JSON.stringify(now[k]) !== JSON.stringify(shown[k])) body[k] = now[k];
    }
    if (!isNew && Object.keys(body).length === 0) {
      replace(msg, h('p', { class: 'ok', role: 'status', text: 'Nothing changed: nothing to save.' }));
      ctx.saved(form);
      return;
    }
    await busy(save, async () => {
      try {
        if (isNew) {
          const created = await post('/dispatchers/v1', { ...body, actions: [] });
          announce('Dispatcher created.');
          ctx.navigate(`#/dispatchers/${seg(created.id)}`);
          return;
        }
        const unaffected = (now) => Object.keys(body).every((k) => JSON.stringify(fieldsOf(now)[k]) === JSON.stringify(shown[k]));
        await version.change('PUT', `/dispatchers/v1/${seg(id)}`, body, unaffected);
        replace(msg, h('p', { class: 'ok', role: 'status', text: 'Saved.' }));
        announce('Dispatcher saved.');
        paused.hidden = enabled.checked;
        Object.assign(shown, now);
        d.name = now.name;
        retitle(header, `Dispatcher ${d.name || d.id}`);
        ctx.saved(form);
      } catch (err) {
        formError(msg, err, { name, eventType, description, tags, filter, 'ordering.key': orderKey, 'ordering.onFailure': onFailure }, ctx.reload);
      }
    });
  });
  ctx.main.append(form);
  if (isNew) return;

  const actions = h('div', { id: 'actions' });
  const heading = h('h2', { id: 'actions-heading', tabindex: '-1' });
  // recount counts the saved actions as the page shows them: an action
  // added or deleted changes them, and the rest of the page stays.
  const recount = () => { heading.textContent = `Actions (${actions.querySelectorAll('fieldset.action:not([data-action-id=""])').length})`; };
  const opts = { templates, functions, editable, version, recount };
  ctx.main.append(heading, actions);
  for (const a of d.actions) actions.append(actionCard(ctx, id, a, opts));
  recount();
  if (editable) {
    const add = h('button', { type: 'button', class: 'secondary', id: 'add-action' }, 'Add an action');
    add.addEventListener('click', () => {
      const card = actionCard(ctx, id, null, opts);
      actions.append(card);
      card.querySelector('select, input').focus();
    });
    ctx.main.append(h('div', { class: 'actions' }, add));
  }
  if (ctx.can('DELETE_DISPATCHERS')) {
    const remove = h('button', { type: 'button', class: 'danger', id: 'dispatcher-delete' }, 'Delete dispatcher…');
    remove.addEventListener('click', async () => {
      const ok = await confirmDialog({ id: 'delete-dialog', title: ['Delete dispatcher ', h('bdi', {}, d.name || d.id), '?'], confirm: 'Delete', danger: true,
        body: h('p', {}, 'Its actions go with it. Dispatches already started keep the configuration they loaded.') });
      if (!ok) return;
      try {
        await version.change('DELETE', `/dispatchers/v1/${seg(id)}`);
        announce('Dispatcher deleted.');
        ctx.navigate('#/dispatchers');
      } catch (err) {
        replace(msg, errorBox(err, ctx.reload));
      }
    });
    ctx.main.append(h('h2', { text: 'Danger zone' }), h('div', { class: 'actions' }, remove));
  }
}

// choice is a select of the named items when they could be listed, else
// a text input.
function choice(idAttr, items, value, byName, editable) {
  if (!items) return input({ id: idAttr, value: value || '', readOnly: !editable });
  const opts = [['', '— choose —'], ...items.map((x) => [byName ? x.name : x.id, x.name])];
  if (value && !opts.some(([v]) => v === value)) opts.push([value, value]);
  return select({ id: idAttr, disabled: !editable }, opts, value || '');
}

// fieldsOf returns the fields of dispatcher d as its form shows them.
function fieldsOf(d) {
  return { name: d.name || '', eventType: d.eventType || '', description: d.description || '', tags: d.tags || [],
    enabled: d.enabled !== false, filter: d.filter || '',
    ordering: d.ordering ? { key: d.ordering.key, onFailure: d.ordering.onFailure || 'block' } : null };
}

// actionCard is one action's form; a = null is a new action.
function actionCard(ctx, dispatcherId, a, opts) {
  const { templates, functions, editable, version, recount } = opts;
  const p = uid('a');
  const isNew = !a;
  a = a || { type: 'mail', name: '', recipients: { to: [] }, data: null, tags: [] };
  const type = select({ id: `${p}-type`, disabled: !isNew }, [['mail', 'Mail'], ['task', 'Task']], a.type);
  const name = input({ id: `${p}-name`, value: a.name || '', readOnly: !editable, class: 'action-name' });
  const r = a.recipients || { to: [] };
  const tpl = choice(`${p}-template`, templates, a.templateId, false, editable);
  const to = input({ id: `${p}-to`, value: (r.to || []).join(', '), readOnly: !editable });
  const cc = input({ id: `${p}-cc`, value: (r.cc || []).join(', '), readOnly: !editable });
  const bcc = input({ id: `${p}-bcc`, value: (r.bcc || []).join(', '), readOnly: !editable });
  const fn = choice(`${p}-function`, functions, a.functionName, true, editable);
  const data = h('textarea', { id: `${p}-data`, rows: '4', class: 'code', spellcheck: 'false', readOnly: !editable }, a.data ? JSON.stringify(a.data, null, 2) : '');
  const tags = input({ id: `${p}-tags`, value: (a.tags || []).join(', '), readOnly: !editable });
  const start = input({ id: `${p}-start`, value: a.startTimestamp || '', placeholder: '2030-01-31T09:00:00Z', readOnly: !editable });
  const rp = a.retryPolicy || {};
  const num = (key, v, hint) => field(hint, input({ id: `${p}-${key}`, type: 'number', min: '0', step: 'any', value: v ?? '', readOnly: !editable }));
  const retry = h('fieldset', { class: 'grid' }, h('legend', {}, 'Retry policy (empty: the default, 10 attempts from 1 s, ×2, up to 5 min)'),
    num('maximumAttempts', rp.maximumAttempts, 'Attempts'), num('initialIntervalMs', rp.initialIntervalMs, 'First wait (ms)'),
    num('backoffCoefficient', rp.backoffCoefficient, 'Backoff ×'), num('maximumIntervalMs', rp.maximumIntervalMs, 'Longest wait (ms)'));
  const mail = h('div', { class: 'grid' }, field('Template', tpl), field('To', to, 'Comma-separated; may use {{ .event.content.email }}.'), field('Cc', cc), field('Bcc', bcc));
  const task = h('div', {}, h('div', { class: 'grid' }, field('Function', fn), field('Tags', tags, 'Comma-separated.'),
    field('Start at', start, 'Empty: now. ISO-8601 or epoch ms.')), field('Data (JSON object)', data, 'Strings may use {{ .event.content.x }}.'));
  const sync = () => { mail.hidden = type.value !== 'mail'; task.hidden = type.value !== 'task'; };
  type.addEventListener('change', sync);
  sync();
  const msg = h('div', { class: 'action-message', 'aria-live': 'polite' });
  const legend = h('legend', {}, isNew ? 'New action' : `Action ${a.name || a.id} (${a.type})`);
  const card = h('fieldset', { class: 'card action', 'data-action-id': a.id || '', 'data-edits': '' }, legend,
    h('div', { class: 'grid' }, field('Type', type), field('Name', name)), mail, task, retry);

  const body = () => {
    const b = { type: type.value, name: name.value.trim() };
    if (b.type === 'mail') {
      b.templateId = tpl.value;
      b.recipients = { to: list(to.value) };
      if (list(cc.value).length) b.recipients.cc = list(cc.value);
      if (list(bcc.value).length) b.recipients.bcc = list(bcc.value);
    } else {
      b.functionName = fn.value;
      b.tags = list(tags.value);
      if (data.value.trim()) {
        try {
          b.data = JSON.parse(data.value);
        } catch (e) {
          throw Object.assign(new Error(`data: not valid JSON: ${e.message}`), { local: true });
        }
      } else if (!isNew) b.data = null;
      if (start.value.trim()) b.startTimestamp = /^\d+$/.test(start.value.trim()) ? Number(start.value.trim()) : start.value.trim();
      else if (!isNew) b.startTimestamp = null;
    }
    const policy = {};
    for (const k of ['maximumAttempts', 'initialIntervalMs', 'backoffCoefficient', 'maximumIntervalMs']) {
      const v = card.querySelector(`#${p}-${k}`).value;
      if (v !== '') policy[k] = Number(v);
    }
    if (Object.keys(policy).length) b.retryPolicy = policy;
    else if (!isNew && a.retryPolicy) b.retryPolicy = null;
    return b;
  };

  // asLoaded says whether this action is, on the server, as the card was
  // loaded with or last saved it, for a change sent over someone else's
  // change (of another action, say). When the card does not know which
  // version of the action its save made, such a change asks for a reload.
  const asLoaded = () => {
    const loaded = a.updateTimestamp;
    return (now) => loaded !== undefined && (now.actions || []).some((x) => x.id === a.id && x.updateTimestamp === loaded);
  };
  // learn finds the version of the action that the card's save made
  // (the dispatcher at etag): read right after, it is the server's, if
  // the dispatcher is still at etag; else someone changed it meanwhile,
  // perhaps this very action, and the card cannot tell.
  const learn = async (etag) => {
    a.updateTimestamp = undefined;
    const [now, v] = await getVersioned(`/dispatchers/v1/${seg(dispatcherId)}`).catch(() => [null, null]);
    const mine = now && etag && v.etag === etag ? (now.actions || []).find((x) => x.id === a.id) : null;
    if (mine) a.updateTimestamp = mine.updateTimestamp;
  };
  if (editable) {
    const saveBtn = h('button', { type: 'button', class: 'primary action-save' }, isNew ? 'Add action' : 'Save action');
    saveBtn.addEventListener('click', () => busy(saveBtn, async () => {
      try {
        const b = body();
        if (isNew) {
          const created = await version.change('POST', `/dispatchers/v1/${seg(dispatcherId)}/actions`, b, () => true);
          // The card becomes the saved action's, in place: the page is
          // not drawn anew, which would drop what else is not saved.
          const saved = actionCard(ctx, dispatcherId, created, opts);
          ctx.saved(card);
          card.replaceWith(saved);
          recount();
          replace(saved.querySelector('.action-message'), h('p', { class: 'ok', role: 'status', text: 'Action added.' }));
          // The focus was on the button the new card replaced.
          saved.querySelector('.action-save')?.focus();
          announce('Action added.');
          return;
        }
        const r = await version.exchange('PUT', `/dispatchers/v1/${seg(dispatcherId)}/actions/${seg(a.id)}`, b, asLoaded());
        await learn(r.etag);
        a.name = b.name;
        legend.textContent = visible(`Action ${a.name || a.id} (${a.type})`);
        replace(msg, h('p', { class: 'ok', role: 'status', text: 'Action saved.' }));
        ctx.saved(card);
        announce('Action saved.');
      } catch (err) {
        const retryField = (k) => card.querySelector(`#${p}-${k}`);
        formError(msg, err, { type, name, templateId: tpl, 'recipients.to': to, 'recipients.cc': cc, 'recipients.bcc': bcc, functionName: fn, data, tags,
          startTimestamp: start, 'retryPolicy.maximumAttempts': retryField('maximumAttempts'), 'retryPolicy.initialIntervalMs': retryField('initialIntervalMs'),
          'retryPolicy.backoffCoefficient': retryField('backoffCoefficient'), 'retryPolicy.maximumIntervalMs': retryField('maximumIntervalMs') }, ctx.reload);
      }
    }));
    const buttons = [saveBtn];
    if (isNew) {
      buttons.push(h('button', { type: 'button', class: 'secondary', onclick: () => card.remove() }, 'Discard'));
    } else {
      const delBtn = h('button', { type: 'button', class: 'danger action-delete' }, 'Delete action…');
      delBtn.addEventListener('click', async () => {
        const ok = await confirmDialog({ title: ['Delete action ', h('bdi', {}, a.name || a.id), '?'], confirm: 'Delete', danger: true,
          body: h('p', {}, 'Dispatches from now on will not run it.') });
        if (!ok) return;
        try {
          await version.change('DELETE', `/dispatchers/v1/${seg(dispatcherId)}/actions/${seg(a.id)}`, undefined, asLoaded());
          announce('Action deleted.');
          ctx.saved(card);
          card.remove();
          recount();
          document.getElementById('actions-heading').focus(); // the focus was in the card
        } catch (err) {
          replace(msg, errorBox(err, ctx.reload));
        }
      });
      buttons.push(delBtn);
    }
    card.append(h('div', { class: 'actions' }, buttons));
  }
  card.append(msg);
  return card;
}
