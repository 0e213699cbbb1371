// ui.js holds the console's shared pieces: error explanations, status
// badges, form fields, dialogs, charts, announcements.
import { h, svg, uid, clear, fmtTime, visible } from './dom.js';
import { query } from './api.js';

// announce tells screen readers what just happened.
export function announce(message) {
  const live = document.getElementById('live');
  live.textContent = '';
  // A new text node, a moment later, is announced even when the text
  // repeats.
  setTimeout(() => { live.textContent = message; }, 50);
}

// explain returns what a failed request means for the user, in words.
export function explain(err) {
  const msg = err && err.message ? err.message : String(err);
  // Found wrong here, before the server was asked.
  if (err && err.local) return { title: 'Check the input', text: msg };
  switch (err && err.status) {
    case 403:
      return {
        title: 'Not allowed',
        text: `The server refused this (403): ${msg}. If you need it, ask an administrator for a token or API key that allows it.`,
      };
    case 401:
      return { title: 'Signed out', text: `The server no longer accepts your token or API key (${msg}). Sign in again.` };
    case 404:
      return { title: 'Not found', text: `${msg}. It may have been deleted, or belong to another tenant.` };
    case 409:
      return { title: 'Not possible now', text: msg };
    case 412:
      return {
        title: 'Changed by someone else',
        text: 'It was changed since this page showed it, so this change was not saved. Reload the page to see it as it is now, then make the change again.',
      };
    case 400:
    case 413:
      return { title: 'The server refused the input', text: msg };
    case 429:
      return { title: 'Too many requests', text: `${msg}. Wait a moment and try again.` };
    case 0:
      return { title: 'No connection', text: msg };
    default:
      return { title: 'The server failed', text: `${msg}. Try again; if it persists, the server's log says why.` };
  }
}

// errorBox shows err, explained, as an alert. reload, if given, shows
// the view anew: offered when someone else changed what it shows (412).
export function errorBox(err, reload) {
  const e = explain(err);
  return h('div', { class: 'error', role: 'alert' }, h('strong', { text: `${e.title}: ` }), e.text,
    reload && err && err.status === 412 ? [' ', h('button', { type: 'button', class: 'secondary reload', onclick: reload }, 'Reload (drops the changes not saved)')] : null);
}

// formError shows err in msg, as errorBox does, and when it names a
// field of the form ("retryPolicy.maximumAttempts: …", as a 400 or a
// check made here does) that fields maps to a control, marks the control
// invalid, ties the message to it and moves the focus there: keyboard and
// screen reader users land on what to fix. Before, the focus stayed on the
// button and no control said it was wrong. Editing the control takes the
// mark and the message away, which no longer hold.
const marks = new WeakMap(); // msg → takes its field's mark away

export function formError(msg, err, fields, reload) {
  marks.get(msg)?.(); // the error before: this one replaces it
  // A refused token is the sign-in dialog's to say; said here too, its
  // "Signed out" stayed once signed in again. Not one refused for a token
  // replaced since the request left, which asks for no sign-in: the form
  // says it was not saved.
  if (err && err.signIn) {
    clear(msg);
    return;
  }
  const box = errorBox(err, reload);
  box.id = uid('error');
  clear(msg).append(box);
  if (!err || !(err.local || err.status === 400)) return;
  // "text or html: …" names text first.
  const named = /^([A-Za-z][\w.[\]]*)(?: or [A-Za-z][\w.[\]]*)*:/.exec(err.message || '');
  if (!named) return;
  // The field named, or the one it is part of: recipients.to[0] is To's.
  const name = `${named[1]}.`;
  const key = Object.keys(fields).filter((k) => name.startsWith(`${k}.`) || name.startsWith(`${k}[`))
    .sort((a, b) => b.length - a.length)[0];
  const control = key && fields[key];
  if (!control || control.disabled || control.readOnly || !control.offsetParent) return;
  const described = control.getAttribute('aria-describedby');
  control.setAttribute('aria-invalid', 'true');
  control.setAttribute('aria-describedby', [described, box.id].filter(Boolean).join(' '));
  const edited = new AbortController();
  const unmark = () => {
    edited.abort();
    marks.delete(msg);
    control.removeAttribute('aria-invalid');
    if (described) control.setAttribute('aria-describedby', described);
    else control.removeAttribute('aria-describedby');
  };
  marks.set(msg, unmark);
  control.addEventListener('input', () => {
    unmark();
    box.remove();
  }, { signal: edited.signal });
  control.focus();
}

// showError replaces the contents of el with err, explained.
export function showError(el, err) {
  clear(el).append(errorBox(err));
}

const statusLabels = {
  running: 'Running', scheduled: 'Scheduled', completed: 'Completed', failed: 'Failed', canceled: 'Canceled',
  canceling: 'Canceling', succeeded: 'Succeeded', pending: 'Pending', paused: 'Paused', waiting: 'Waiting', skipped: 'Skipped',
};

// badge shows a status as a word with a colour; the word carries the
// meaning, the colour only helps.
export function badge(status, props = {}) {
  const s = String(status || 'unknown');
  return h('span', { class: `badge badge-${s.replace(/[^a-z]/g, '')}`, ...props }, statusLabels[s] || s);
}

// focusHeading moves the focus to the heading in root when nothing has
// it: a view names itself to a screen reader as it appears.
export function focusHeading(root) {
  const h1 = root.querySelector('h1');
  if (h1 && document.activeElement === document.body) h1.focus();
}

// field returns a label and control pair; control gets an id if it has
// none, and hint is tied to it with aria-describedby.
export function field(label, control, hint) {
  if (!control.id) control.id = uid('f');
  const parts = [h('label', { for: control.id, text: label }), control];
  if (hint) {
    const hid = uid('hint');
    control.setAttribute('aria-describedby', hid);
    parts.push(h('span', { class: 'hint', id: hid, text: hint }));
  }
  return h('div', { class: 'field' }, parts);
}

// holder names what the user signed in with, as the server sees it.
export const holder = (me) => (me.kind === 'apikey' ? 'API key' : 'token');

// input returns an <input>; select a <select> of [value, label] pairs.
export const input = (props) => h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', ...props });
export function select(props, options, value) {
  return h('select', props, options.map(([v, l]) => h('option', { value: v, selected: v === value }, l)));
}

// confirmDialog asks a question in a modal dialog and resolves true when
// the user confirms. title is text or nodes (names in a <bdi>, so that a
// right-to-left one keeps its place); body is nodes; the dialog is keyboard usable (Esc
// cancels) and focus starts on Cancel, the safe choice. check, if given,
// says whether the choices made in body can be confirmed: until it does,
// the confirm button is disabled. dismiss names the safe choice where
// "Cancel" would mean the other (cancelling a bulk replay). Leaving the
// view answers it as Cancel does (app.js, dispose).
export function confirmDialog({ title, body, confirm = 'Confirm', dismiss = 'Cancel', danger = false, id, check }) {
  return new Promise((resolve) => {
    const titleId = uid('dlg');
    const cancelBtn = h('button', { type: 'button', class: 'secondary', id: id && `${id}-cancel` }, dismiss);
    const okBtn = h('button', { type: 'button', class: danger ? 'danger' : 'primary', id: id && `${id}-confirm` }, confirm);
    const dlg = h('dialog', { 'aria-labelledby': titleId, class: 'dialog confirm', id },
      h('h2', { id: titleId }, title),
      h('div', { class: 'dialog-body' }, body),
      h('div', { class: 'actions' }, cancelBtn, okBtn));
    let answered = false;
    const done = (ok) => {
      if (answered) return;
      answered = true;
      dlg.close();
      dlg.remove();
      resolve(ok);
    };
    cancelBtn.addEventListener('click', () => done(false));
    okBtn.addEventListener('click', () => done(true));
    dlg.addEventListener('cancel', () => done(false));
    if (check) {
      const update = () => { okBtn.disabled = !check(); };
      dlg.addEventListener('change', update);
      update();
    }
    document.body.append(dlg);
    dlg.showModal();
    cancelBtn.focus();
  });
}

// trendChart draws counts as bars in an SVG with a text alternative;
// from and bucketMs label each bar's span.
export function trendChart({ counts, from, bucketMs }, { width = 720, height = 120, label = 'Failures over time' } = {}) {
  const n = counts.length || 1;
  const peak = Math.max(1, ...counts);
  const bw = width / n;
  const total = counts.reduce((a, b) => a + b, 0);
  const busiest = counts.indexOf(Math.max(...counts, 0));
  const summary = total === 0
    ? `${label}: none from ${fmtTime(from)} to ${fmtTime(from + n * bucketMs)}.`
    : `${label}: ${total} from ${fmtTime(from)} to ${fmtTime(from + n * bucketMs)}, most (${counts[busiest]}) from ${fmtTime(from + busiest * bucketMs)}.`;
  const chart = svg('svg', { viewBox: `0 0 ${width} ${height}`, class: 'chart', role: 'img', 'aria-label': summary, preserveAspectRatio: 'none' });
  counts.forEach((c, i) => {
    const bh = c === 0 ? 0 : Math.max(2, (c / peak) * height);
    const bar = svg('rect', { x: i * bw + 1, y: height - bh, width: Math.max(1, bw - 2), height: bh, class: 'bar' },
      svg('title', {}, `${c} from ${fmtTime(from + i * bucketMs)}`));
    chart.append(bar);
  });
  chart.append(svg('line', { x1: 0, y1: height - 0.5, x2: width, y2: height - 0.5, class: 'axis' }));
  // Labels as text below the chart, which stretches to the page's width.
  const ticks = h('div', { class: 'ticks', 'aria-hidden': 'true' }, h('span', {}, fmtTime(from)), h('span', {}, fmtTime(from + n * bucketMs)));
  return h('figure', { class: 'trend' }, chart, ticks, h('figcaption', { class: 'visually-hidden', text: summary }));
}

// sparkline draws counts small, for a table row; label says what they are.
export function sparkline(counts, label) {
  const n = counts.length || 1;
  const peak = Math.max(1, ...counts);
  const w = 96;
  const hgt = 20;
  const line = svg('svg', { viewBox: `0 0 ${w} ${hgt}`, class: 'spark', role: 'img', 'aria-label': label, width: w, height: hgt });
  counts.forEach((c, i) => {
    const bh = c === 0 ? 0 : Math.max(1.5, (c / peak) * hgt);
    line.append(svg('rect', { x: (i * w) / n, y: hgt - bh, width: Math.max(1, w / n - 0.5), height: bh, class: 'bar' }));
  });
  return line;
}

// table returns a table with a caption, column headers and rows of cells
// (nodes or text).
export function table(caption, headers, rows, { empty = 'Nothing to show.', id } = {}) {
  const body = rows.length
    ? rows.map((cells) => h('tr', {}, cells.map((c) => h('td', {}, c))))
    : [h('tr', {}, h('td', { colspan: headers.length, class: 'muted', text: empty }))];
  return h('div', { class: 'table-wrap' },
    h('table', { id },
      h('caption', { class: 'visually-hidden', text: caption }),
      h('thead', {}, h('tr', {}, headers.map((t) => h('th', { scope: 'col', text: t })))),
      h('tbody', {}, body)));
}

// link returns a link to a console view.
export const link = (href, text, props = {}) => h('a', { href, ...props }, text);

// pageSize is how many items a list page shows: the API's most.
export const pageSize = 50;

// pager returns the count of a list page ("51–66 of 66") and the links to
// the pages around it: base is the list's fragment, params its other
// query parameters, offset and shown the page's first item and its items.
// The next page begins after the items shown: a page of large items holds
// fewer than pageSize (the API's page.limit says how many).
// Past the end (a link kept while items were deleted), it says so and
// links to the last page: before, "1001–1000 of 5".
export function pager(base, params, offset, shown, total) {
  const past = shown === 0 && offset > 0;
  const count = past ? `Nothing from item ${offset + 1} on: there ${total === 1 ? 'is 1' : `are ${total}`}.`
    : total ? `${offset + 1}–${offset + shown} of ${total}` : '';
  const back = past ? Math.max(0, Math.ceil(total / pageSize) - 1) * pageSize : Math.max(0, offset - pageSize);
  return {
    count: h('p', { class: 'muted' }, count),
    nav: h('nav', { class: 'pager', 'aria-label': 'Pages' },
      offset > 0 ? link(`${base}${query({ ...params, offset: back })}`, past ? '« The last page' : '« Previous') : null,
      shown > 0 && offset + shown < total ? link(`${base}${query({ ...params, offset: offset + shown })}`, 'Next »') : null),
  };
}

// busy marks a button as working while fn runs and returns fn's result;
// a press meanwhile does nothing. The button is not disabled, which
// would move the focus to the page's body: a keyboard user who pressed
// Save or Pause had to start over from the top (Tab, Tab, …).
export async function busy(button, fn) {
  // Pressed again while it works, in a browser that runs the button's own
  // handler before the capturing one below: nothing again.
  if (button.getAttribute('aria-busy') === 'true') return undefined;
  const ignore = (ev) => {
    ev.preventDefault(); // a form's submit too
    ev.stopImmediatePropagation();
  };
  button.addEventListener('click', ignore, true);
  button.setAttribute('aria-disabled', 'true');
  button.setAttribute('aria-busy', 'true');
  // Said, seen and heard, once it takes longer than a moment: before, a
  // dimmed button was all there was for up to 45 s.
  const note = h('span', { class: 'busy-note', role: 'status', text: 'Waiting for the server…' });
  const later = setTimeout(() => button.after(note), 1000);
  try {
    return await fn();
  } finally {
    clearTimeout(later);
    note.remove();
    button.removeEventListener('click', ignore, true);
    button.removeAttribute('aria-disabled');
    button.removeAttribute('aria-busy');
  }
}

// pageHeader returns a page's heading, which takes the focus after a
// navigation so that keyboard and screen reader users start there.
export function pageHeader(title, ...extra) {
  const header = h('div', { class: 'page-header' }, h('h1', { tabindex: '-1', text: title }), extra);
  // Once the header is in the page: a view that was left while it loaded
  // draws nowhere, and must not name the tab either (before, the
  // Functions view could stay titled "Dispatches").
  queueMicrotask(() => {
    if (header.isConnected) document.title = `${visible(title)} — Dispatcher console`;
  });
  return header;
}

// retitle names a view anew after a rename was saved: its heading (from
// pageHeader) and the tab's title.
export function retitle(header, title) {
  header.querySelector('h1').textContent = visible(title);
  document.title = `${visible(title)} — Dispatcher console`;
}
