// dom.js builds the page from data without ever parsing it as HTML:
// elements are created one by one and every value lands as text
// (textContent) or as an attribute value. Event content is written by
// whoever sends events, so nothing here may interpret it. The page's
// Content-Security-Policy (Trusted Types) makes innerHTML and its kin
// throw, should anyone try.

// h returns a new element. props are attributes, except: class, text
// (textContent), on<event> functions (listeners), and the live
// properties value, checked, selected, disabled, readOnly, hidden,
// required, multiple. Children are nodes or strings (text); null,
// undefined and false are skipped; arrays are flattened.
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  setProps(el, props);
  append(el, children);
  return el;
}

const liveProps = new Set(['value', 'checked', 'selected', 'disabled', 'readOnly', 'hidden', 'required', 'multiple']);

function setProps(el, props) {
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = visible(v);
    // Read out or shown as a tooltip: their bidi controls are named too.
    else if (k === 'aria-label' || k === 'title') el.setAttribute(k, visible(v));
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (liveProps.has(k)) el[k] = v;
    else if (k === 'href' || k === 'src') el.setAttribute(k, safeURL(v));
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

// append adds children to el as nodes or text (a textarea's text is its
// value, kept as it is).
export function append(el, children) {
  const asText = el.tagName === 'TEXTAREA' ? String : visible;
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(asText(c)));
  }
  return el;
}

// bidiControls are the characters that make text read otherwise than it
// is: "\u202enimda" shows as "admin", "\u202elive" as "evil".
const bidiControls = /[\u202a-\u202e\u2066-\u2069]/g;

// visible is text as shown: its bidirectional controls written as their
// code points ([U+202E]), so that names and content read as they are.
export function visible(v) {
  return String(v).replace(bidiControls, (c) => `[U+${c.codePointAt(0).toString(16).toUpperCase()}]`);
}

// replace makes children (as append takes them) the only children of el.
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

// rebuild makes children the only children of el, as replace does, for a
// view that is shown anew as it changes: what the user did to what it
// replaces stays done. The <details> they opened or closed stay so, and
// the element that had the focus keeps it (not scrolled to). Each is
// matched by its id, else by its place under el. One that is gone (the
// Cancel button of a run now canceled) hands the focus to the view's
// first control, else to el itself: before, it fell to the page's body,
// and a keyboard user started over from the top.
export function rebuild(el, ...children) {
  const where = (node) => {
    if (node.id) return `#${node.id}`;
    const path = [];
    for (let n = node; n !== el; n = n.parentElement) path.unshift(`${n.tagName}${[...n.parentElement.children].indexOf(n)}`);
    return path.join('/');
  };
  const opened = new Map([...el.querySelectorAll('details')].map((d) => [where(d), d.open]));
  const active = document.activeElement;
  const focused = active && active !== el && el.contains(active) ? where(active) : null;
  replace(el, ...children);
  for (const d of el.querySelectorAll('details')) {
    const was = opened.get(where(d));
    if (was !== undefined) d.open = was;
  }
  if (focused && !el.contains(document.activeElement)) {
    const again = [...el.querySelectorAll('*')].find((n) => where(n) === focused) ||
      el.querySelector('button:not(:disabled), a[href], input:not(:disabled):not([type=hidden]), select:not(:disabled), textarea:not(:disabled)');
    again?.focus({ preventScroll: true });
    if (!el.contains(document.activeElement)) { // none, or one that takes no focus (in a closed <details>)
      el.tabIndex = -1;
      el.focus({ preventScroll: true });
    }
  }
  return el;
}

// clear removes every child of el.
export function clear(el) {
  el.replaceChildren();
  return el;
}

// safeURL lets through links within the console (#…, /…) and http(s) and
// blob: URLs; anything else (javascript:, data:) becomes "#".
export function safeURL(u) {
  const s = String(u);
  if (s.startsWith('#') || (s.startsWith('/') && !s.startsWith('//'))) return s;
  try {
    const p = new URL(s, location.href).protocol;
    if (p === 'http:' || p === 'https:' || p === 'blob:') return s;
  } catch { /* not a URL */ }
  return '#';
}

const svgNS = 'http://www.w3.org/2000/svg';

// svg returns a new SVG element with attributes attrs.
export function svg(tag, attrs, ...children) {
  const el = document.createElementNS(svgNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  append(el, children);
  return el;
}

let ids = 0;
// uid returns a fresh element id with prefix.
export function uid(prefix) {
  ids += 1;
  return `${prefix}-${ids}`;
}

const pad = (n, w = 2) => String(n).padStart(w, '0');

// fmtTime shows epoch milliseconds as a date and time of the browser's
// time zone, which zoneLabel names.
export function fmtTime(ms) {
  if (ms === undefined || ms === null || ms === 0) return '—';
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

// zoneLabel names the browser's time zone and its offset from UTC at
// that moment, e.g. "Europe/Brussels (UTC+01:00)": a time shown without
// it reads as UTC to an operator holding UTC logs.
export function zoneLabel(at = new Date()) {
  const off = -at.getTimezoneOffset();
  const utc = `UTC${off < 0 ? '-' : '+'}${pad(Math.floor(Math.abs(off) / 60))}:${pad(Math.abs(off) % 60)}`;
  const name = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (name === 'UTC' || name === 'Etc/UTC') return 'UTC';
  return name ? `${name} (${utc})` : utc;
}

// fmtDuration shows a span of milliseconds briefly; no-break spaces keep
// it on one line.
export function fmtDuration(ms) {
  if (ms === undefined || ms === null || Number.isNaN(ms)) return '—';
  const nb = '\u00a0';
  if (ms < 1000) return `${Math.round(ms)}${nb}ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)}${nb}s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}${nb}min ${s % 60}${nb}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}${nb}h ${Math.floor((s % 3600) / 60)}${nb}min`;
  return `${Math.floor(s / 86400)}${nb}d ${Math.floor((s % 86400) / 3600)}${nb}h`;
}

// toLocalInput turns epoch milliseconds into a datetime-local value, to
// the millisecond (the input's step must allow it): cut to the minute, a
// filter from Failures widened by up to 59 s what a bulk replay matched.
export function toLocalInput(ms) {
  if (!ms) return '';
  // Or a date as the API takes it (ISO 8601), in a link made by hand:
  // before, the field stayed empty, and the next Search dropped it.
  const d = new Date(/^\d+$/.test(ms) ? Number(ms) : ms);
  if (Number.isNaN(d.getTime())) return '';
  const v = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
  const s = d.getSeconds();
  const m = d.getMilliseconds();
  if (!s && !m) return v;
  return `${v}:${pad(s)}${m ? `.${String(m).padStart(3, '0')}` : ''}`;
}

// fromLocalInput turns a datetime-local value into epoch milliseconds, or
// "" when empty.
export function fromLocalInput(v) {
  if (!v) return '';
  const t = new Date(v).getTime();
  return Number.isNaN(t) ? '' : String(t);
}

// maxPretty bounds the text pretty shows: an event may be megabytes.
const maxPretty = 256 * 1024;

// pretty shows a JSON value indented as JSON.stringify(v, null, 2) does,
// at most maxPretty characters of it: it stops writing, and reading v,
// once it has that many (JSON.stringify wrote the whole first: 4,000
// nested arrays, whose indentation grows with their depth, made half a
// gigabyte of text and froze the page). A value nested deeper than the
// browser's stack lets it go is not shown.
export function pretty(v) {
  const out = [];
  let size = 0;
  const put = (s) => {
    out.push(s);
    size += s.length;
    return size <= maxPretty;
  };
  const write = (x, indent) => {
    if (x === null || typeof x !== 'object') return put(JSON.stringify(x) ?? 'null');
    const list = Array.isArray(x);
    const keys = list ? null : Object.keys(x);
    const n = list ? x.length : keys.length;
    if (n === 0) return put(list ? '[]' : '{}');
    const inner = `${indent}  `;
    if (!put(list ? '[' : '{')) return false;
    for (let i = 0; i < n; i += 1) {
      if (!put(`${i ? ',' : ''}\n${inner}${list ? '' : `${JSON.stringify(keys[i])}: `}`)) return false;
      if (!write(list ? x[i] : x[keys[i]], inner)) return false;
    }
    return put(`\n${indent}${list ? ']' : '}'}`);
  };
  try {
    if (write(v, '')) return out.join('');
  } catch {
    return '(nested too deeply to show here: read it through the API)';
  }
  return `${out.join('').slice(0, maxPretty)}\n… (more: read the whole of it through the API)`;
}
