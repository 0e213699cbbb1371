// The dispatchers list: a page at a time (RQL limit/offset), searchable
// by name or event type.
import { h, fmtTime, replace } from '../dom.js';
import { get, query, seg } from '../api.js';
import { pageHeader, field, input, table, link, badge, errorBox, pager, pageSize } from '../ui.js';

// rqlString quotes a user's text for an RQL pattern: characters that
// RQL or the URL would read otherwise are percent-encoded.
const rqlString = (s) => encodeURIComponent(s).replace(/[()*,]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

export async function render(ctx) {
  const q = ctx.query;
  const offset = Math.max(0, Number(q.get('offset')) || 0);
  const search = q.get('q') || '';
  const box = input({ id: 'dispatcher-search', type: 'search', value: search });
  const form = h('form', { class: 'filters inline', role: 'search', 'aria-label': 'Search dispatchers' },
    field('Name or event type contains', box),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'secondary' }, 'Search')));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    ctx.navigate(`#/dispatchers${query({ q: box.value.trim() })}`);
  });
  ctx.main.append(pageHeader('Dispatchers',
    ctx.can('CREATE_DISPATCHERS') ? h('a', { href: '#/dispatchers/new', class: 'button primary', id: 'new-dispatcher' }, 'New dispatcher') : null), form);
  const out = h('div', { id: 'dispatchers' });
  ctx.main.append(out);
  let rql = `sort(name)&limit(${pageSize},${offset})`;
  if (search) rql = `or(like(name,*${rqlString(search)}*),like(eventType,*${rqlString(search)}*))&${rql}`;
  let page;
  try {
    page = await get(`/dispatchers/v1?${rql}`);
  } catch (err) {
    replace(out, errorBox(err));
    return;
  }
  const rows = page.data.map((d) => [
    [link(`#/dispatchers/${seg(d.id)}`, d.name || d.id), d.enabled === false ? [' ', badge('paused')] : null],
    h('code', { text: d.eventType }),
    String(d.actions.length),
    d.description || '',
    (d.tags || []).join(', '),
    fmtTime(d.updateTimestamp),
  ]);
  const { count, nav } = pager('#/dispatchers', { q: search }, offset, page.data.length, page.page.total);
  replace(out, count,
    table('Dispatchers', ['Name', 'Event type', 'Actions', 'Description', 'Tags', 'Updated'], rows, { empty: 'No dispatcher.', id: 'dispatchers-table' }),
    nav);
}
