// The templates views: the list, and one template's form with a live
// preview: the saved template rendered against a sample event by
// POST /templates/v1/{id}/render as the sample changes, and after every
// save. The HTML part shows in a sandboxed frame that runs nothing.
import { h, fmtTime, pretty, replace } from '../dom.js';
import { get, getVersioned, post, seg } from '../api.js';
import { pageHeader, retitle, field, input, table, link, confirmDialog, errorBox, formError, announce, busy, pager, pageSize } from '../ui.js';

export async function render(ctx) {
  if (ctx.segments[1]) return detail(ctx, ctx.segments[1]);
  ctx.main.append(pageHeader('Templates',
    ctx.can('CREATE_TEMPLATES') ? h('a', { href: '#/templates/new', class: 'button primary', id: 'new-template' }, 'New template') : null));
  const offset = Math.max(0, Number(ctx.query.get('offset')) || 0);
  const page = await get(`/templates/v1?sort(name)&limit(${pageSize},${offset})`);
  const { count, nav } = pager('#/templates', {}, offset, page.data.length, page.page.total);
  ctx.main.append(count,
    table('Mail templates', ['Name', 'Subject', 'Updated'],
      page.data.map((t) => [link(`#/templates/${seg(t.id)}`, t.name), t.subject, fmtTime(t.updateTimestamp)]),
      { empty: 'No template.', id: 'templates-table' }),
    nav);
}

const sampleEvent = { type: 'user_deleted', content: { name: 'Ann', userId: 42, email: 'ann@example.com' } };

async function detail(ctx, id) {
  const isNew = id === 'new';
  const editable = isNew ? ctx.can('CREATE_TEMPLATES') : ctx.can('UPDATE_TEMPLATES');
  const [t, version] = isNew ? [{ name: '', subject: '', text: '', html: '' }, null] : await getVersioned(`/templates/v1/${seg(id)}`);
  if (!ctx.alive()) return;
  const header = pageHeader(isNew ? 'New template' : `Template ${t.name}`);
  ctx.main.append(header);
  if (!editable) ctx.main.append(h('p', { class: 'notice', text: `Read-only: changing templates needs the permission ${isNew ? 'CREATE_TEMPLATES' : 'UPDATE_TEMPLATES'}.` }));
  const name = input({ id: 't-name', value: t.name, readOnly: !editable, required: true });
  const subject = input({ id: 't-subject', value: t.subject, readOnly: !editable, class: 'code' });
  const text = h('textarea', { id: 't-text', rows: '6', class: 'code', spellcheck: 'false', readOnly: !editable }, t.text || '');
  const html = h('textarea', { id: 't-html', rows: '6', class: 'code', spellcheck: 'false', readOnly: !editable }, t.html || '');
  const msg = h('div', { id: 'template-message', 'aria-live': 'polite' });
  const save = editable ? h('button', { type: 'submit', class: 'primary', id: 'template-save' }, isNew ? 'Create' : 'Save template') : null;
  const form = h('form', { class: 'card', id: 'template-form', 'aria-label': 'Template', 'data-edits': '' },
    h('div', { class: 'grid' }, field('Name', name), field('Subject', subject, 'Go template: {{ .event.content.name }}.')),
    field('Text', text), field('HTML', html, 'Rendered with html/template: values are escaped.'),
    h('div', { class: 'actions' }, save), msg);
  const pending = h('p', { class: 'notice', id: 'preview-stale', hidden: true, text: 'The preview shows the saved template: save to see your changes.' });
  for (const el of [subject, text, html]) el.addEventListener('input', () => { pending.hidden = isNew; });

  const layout = h('div', { class: 'split' }, form);
  ctx.main.append(layout);
  let preview = null;
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = { name: name.value.trim(), subject: subject.value, text: text.value, html: html.value };
    await busy(save, async () => {
      try {
        if (isNew) {
          const created = await post('/templates/v1', body);
          announce('Template created.');
          ctx.navigate(`#/templates/${seg(created.id)}`);
          return;
        }
        await version.change('PUT', `/templates/v1/${seg(id)}`, body);
        t.name = body.name;
        retitle(header, `Template ${t.name}`);
        replace(msg, h('p', { class: 'ok', role: 'status', text: 'Saved.' }));
        ctx.saved(form);
        announce('Template saved.');
        pending.hidden = true;
        if (preview) preview();
      } catch (err) {
        formError(msg, err, { name, subject, text, html }, ctx.reload);
      }
    });
  });
  if (isNew) return;
  preview = previewPanel(ctx, id, layout, pending);
  if (ctx.can('DELETE_TEMPLATES')) {
    const remove = h('button', { type: 'button', class: 'danger', id: 'template-delete' }, 'Delete template…');
    remove.addEventListener('click', async () => {
      const ok = await confirmDialog({ title: ['Delete template ', h('bdi', {}, t.name), '?'], confirm: 'Delete', danger: true, body: h('p', {}, 'A template that a mail action uses cannot be deleted.') });
      if (!ok) return;
      try {
        await version.change('DELETE', `/templates/v1/${seg(id)}`);
        ctx.navigate('#/templates');
      } catch (err) {
        replace(msg, errorBox(err, ctx.reload));
      }
    });
    ctx.main.append(h('div', { class: 'actions' }, remove));
  }
}

// previewPanel renders the template against the sample event as it is
// typed (debounced) and returns a function that renders it again.
function previewPanel(ctx, id, layout, pending) {
  const sample = h('textarea', { id: 'preview-event', rows: '8', class: 'code', spellcheck: 'false' }, pretty(sampleEvent));
  const out = h('div', { id: 'preview', 'aria-live': 'polite' });
  layout.append(h('section', { class: 'card', 'aria-labelledby': 'h-preview' },
    h('h2', { id: 'h-preview', text: 'Preview' }), pending,
    field('Sample event (JSON)', sample, 'Edit it: the preview follows.'), out));
  let timer;
  let seq = 0;
  let frameURL = null;
  ctx.onDispose(() => { clearTimeout(timer); if (frameURL) URL.revokeObjectURL(frameURL); });
  const run = async () => {
    const mine = ++seq;
    let event;
    try {
      event = JSON.parse(sample.value);
    } catch (e) {
      replace(out, h('p', { class: 'error', role: 'alert', text: `The sample event is not valid JSON: ${e.message}` }));
      return;
    }
    let r;
    try {
      r = await post(`/templates/v1/${seg(id)}/render`, { event });
    } catch (err) {
      if (mine === seq) replace(out, errorBox(err));
      return;
    }
    if (mine !== seq || !ctx.alive()) return;
    const parts = [
      h('dl', { class: 'facts' }, h('dt', {}, 'Subject'), h('dd', { id: 'preview-subject', text: r.subject })),
      r.text ? [h('h3', {}, 'Text'), h('pre', { id: 'preview-text', class: 'mail-text', tabindex: '0' }, r.text)] : null,
    ];
    if (r.html) {
      // A blob: document in a frame with an empty sandbox: no script, no
      // form, no navigation, an origin of its own; it also inherits the
      // console's policy, so the preview shows no inline styles and no
      // remote images (the note says so). Opened on its own (a browser's
      // "show only this frame", its URL pasted) it has neither the sandbox
      // nor the console's policy, and the console's origin: the policy it
      // begins with, before anything of the template, runs nothing. No
      // policy stops a <meta http-equiv="refresh"> taking that tab to
      // another site: each http-equiv of the template is renamed, which
      // leaves it inert (the blob's type gives the charset).
      if (frameURL) URL.revokeObjectURL(frameURL);
      const policy = '<!DOCTYPE html><meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:; form-action \'none\'; base-uri \'none\'">';
      frameURL = URL.createObjectURL(new Blob([policy, r.html.replace(/http-equiv/gi, 'data-http-equiv')], { type: 'text/html;charset=utf-8' }));
      parts.push(h('h3', {}, 'HTML'),
        h('p', { class: 'muted', text: 'Shown without its styles and remote images, which the console\'s security policy blocks; mail clients show them as they choose.' }),
        h('iframe', { sandbox: '', src: frameURL, title: 'HTML part of the preview', class: 'mail-frame', referrerpolicy: 'no-referrer' }),
        h('details', {}, h('summary', {}, 'HTML source'), h('pre', { class: 'code', tabindex: '0' }, r.html)));
    }
    replace(out, parts);
  };
  sample.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(run, 300);
  });
  run();
  return run;
}
