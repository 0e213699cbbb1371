// The functions views: the list, and one function's form. Its secret and
// header values are write-only: the API never returns them, the form
// only ever sends new ones.
import { h, fmtTime, replace } from '../dom.js';
import { get, getVersioned, post, seg } from '../api.js';
import { pageHeader, retitle, field, input, select, table, link, confirmDialog, errorBox, formError, announce, busy, pager, pageSize } from '../ui.js';

export async function render(ctx) {
  if (ctx.segments[1]) return detail(ctx, ctx.segments[1]);
  ctx.main.append(pageHeader('Functions',
    ctx.can('CREATE_FUNCTIONS') ? h('a', { href: '#/functions/new', class: 'button primary', id: 'new-function' }, 'New function') : null));
  const offset = Math.max(0, Number(ctx.query.get('offset')) || 0);
  const page = await get(`/functions/v1?sort(name)&limit(${pageSize},${offset})`);
  const { count, nav } = pager('#/functions', {}, offset, page.data.length, page.page.total);
  ctx.main.append(count,
    table('Task functions', ['Name', 'Kind', 'Calls', 'Timeout', 'Secret', 'Headers', 'Updated'],
      page.data.map((f) => [link(`#/functions/${seg(f.id)}`, f.name), f.kind, f.kind === 'temporal' ? `task queue ${f.taskQueue}` : f.url,
        f.timeoutSeconds ? `${f.timeoutSeconds} s` : '', f.hasSecret ? 'set' : '—', (f.headerNames || []).join(', '), fmtTime(f.updateTimestamp)]),
      { empty: 'No function.', id: 'functions-table' }),
    nav);
}

// defaultTimeout is the server's timeout of a call to an HTTP function
// that sets none (dispatcher.DefaultFunctionTimeout), in seconds.
const defaultTimeout = 30;

async function detail(ctx, id) {
  const isNew = id === 'new';
  const editable = isNew ? ctx.can('CREATE_FUNCTIONS') : ctx.can('UPDATE_FUNCTIONS');
  const [f, version] = isNew ? [{ name: '', kind: 'http', url: '', headerNames: [] }, null] : await getVersioned(`/functions/v1/${seg(id)}`);
  if (!ctx.alive()) return;
  const header = pageHeader(isNew ? 'New function' : `Function ${f.name}`);
  ctx.main.append(header);
  if (!editable) ctx.main.append(h('p', { class: 'notice', text: `Read-only: changing functions needs the permission ${isNew ? 'CREATE_FUNCTIONS' : 'UPDATE_FUNCTIONS'}.` }));
  const name = input({ id: 'fn-name', value: f.name, readOnly: !editable });
  const kind = select({ id: 'fn-kind', disabled: !editable }, [['http', 'HTTP (POST to a URL)'], ['temporal', 'Temporal child workflow']], f.kind || 'http');
  const url = input({ id: 'fn-url', type: 'url', value: f.url || '', readOnly: !editable });
  const timeout = input({ id: 'fn-timeout', type: 'number', min: '1', max: '600', placeholder: String(defaultTimeout), readOnly: !editable });
  const taskQueue = input({ id: 'fn-taskQueue', value: f.taskQueue || '', readOnly: !editable });
  const secret = input({ id: 'fn-secret', type: 'password', autocomplete: 'new-password', readOnly: !editable });
  const removeSecret = h('input', { type: 'checkbox', id: 'fn-secret-remove' });
  const headers = h('textarea', { id: 'fn-headers', rows: '3', class: 'code', spellcheck: 'false', readOnly: !editable });
  const secretField = field('Secret', secret, ' ');
  const headersField = field('Headers', headers, ' ');
  // stored shows what the server holds of the write-only parts: on load,
  // and after every save (a secret removed is no longer "set").
  const stored = (fn) => {
    const names = fn.headerNames || [];
    timeout.value = fn.timeoutSeconds || '';
    secret.value = '';
    secret.placeholder = fn.hasSecret ? 'set — type to replace it' : 'none';
    removeSecret.checked = false;
    removeSecret.disabled = !editable || !fn.hasSecret;
    secretField.querySelector('.hint').textContent = `Write-only: never shown. ${fn.hasSecret ? 'One is set; leave empty to keep it.' : ''}`;
    headers.value = '';
    headers.placeholder = names.length ? `${names.join(': …\n')}: …` : 'Name: value, one a line';
    headersField.querySelector('.hint').textContent = `Write-only values. ${names.length ? `Set: ${names.join(', ')}. ` : ''}Leave empty to keep them; anything typed replaces them all.`;
  };
  stored(f);
  const http = h('div', {}, h('div', { class: 'grid' }, field('URL', url, 'https to a public address, unless the server allows others. A new URL takes the secret and headers typed again: they go to it only then.'), field('Timeout (s)', timeout, `Per call. Empty: the default, ${defaultTimeout} s.`)),
    h('div', { class: 'grid' },
      secretField,
      h('div', { class: 'field checkbox' }, removeSecret, h('label', { for: removeSecret.id }, 'Remove the secret'))),
    headersField);
  const temporal = h('div', {}, field('Task queue', taskQueue));
  const sync = () => { http.hidden = kind.value !== 'http'; temporal.hidden = kind.value !== 'temporal'; };
  kind.addEventListener('change', sync);
  sync();
  const msg = h('div', { id: 'function-message', 'aria-live': 'polite' });
  const save = editable ? h('button', { type: 'submit', class: 'primary', id: 'function-save' }, isNew ? 'Create' : 'Save function') : null;
  const form = h('form', { class: 'card', id: 'function-form', 'aria-label': 'Function', 'data-edits': '' },
    h('div', { class: 'grid' }, field('Name', name), field('Kind', kind)), http, temporal, h('div', { class: 'actions' }, save), msg);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = { name: name.value.trim(), kind: kind.value };
    if (kind.value === 'http') {
      body.url = url.value.trim();
      // Emptied, it is the default again. The API keeps the timeout a
      // change leaves out (or sends as null): the default is sent.
      if (timeout.value) body.timeoutSeconds = Number(timeout.value);
      else if (!isNew) body.timeoutSeconds = defaultTimeout;
      if (secret.value) body.secret = secret.value;
      else if (removeSecret.checked) body.secret = '';
      if (headers.value.trim()) {
        // A line that is no header is said, not dropped: before, one
        // without its colon was, and on a function's page the headers
        // sent empty removed every header stored, under "Saved.".
        body.headers = {};
        const lines = headers.value.split('\n');
        for (const [n, line] of lines.entries()) {
          const i = line.indexOf(':');
          if (!line.trim()) continue;
          if (i <= 0 || !line.slice(0, i).trim()) {
            replace(msg, errorBox(Object.assign(new Error(`Headers, line ${n + 1}: write it as Name: value`), { local: true })));
            headers.focus();
            return;
          }
          body.headers[line.slice(0, i).trim()] = line.slice(i + 1).trim();
        }
      }
    } else {
      body.taskQueue = taskQueue.value.trim();
    }
    await busy(save, async () => {
      try {
        if (isNew) {
          const created = await post('/functions/v1', body);
          announce('Function created.');
          ctx.navigate(`#/functions/${seg(created.id)}`);
          return;
        }
        await version.change('PUT', `/functions/v1/${seg(id)}`, body);
        const now = await get(`/functions/v1/${seg(id)}`);
        stored(now);
        f.name = now.name;
        retitle(header, `Function ${f.name}`);
        replace(msg, h('p', { class: 'ok', role: 'status', text: 'Saved.' }));
        ctx.saved(form);
        announce('Function saved.');
      } catch (err) {
        formError(msg, err, { name, kind, url, timeoutSeconds: timeout, secret, headers, taskQueue }, ctx.reload);
      }
    });
  });
  ctx.main.append(form);
  if (!isNew && ctx.can('DELETE_FUNCTIONS')) {
    const remove = h('button', { type: 'button', class: 'danger', id: 'function-delete' }, 'Delete function…');
    remove.addEventListener('click', async () => {
      const ok = await confirmDialog({ title: ['Delete function ', h('bdi', {}, f.name), '?'], confirm: 'Delete', danger: true, body: h('p', {}, 'A function that a task action uses cannot be deleted.') });
      if (!ok) return;
      try {
        await version.change('DELETE', `/functions/v1/${seg(id)}`);
        ctx.navigate('#/functions');
      } catch (err) {
        replace(msg, errorBox(err, ctx.reload));
      }
    });
    ctx.main.append(h('div', { class: 'actions' }, remove));
  }
}
