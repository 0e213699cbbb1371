// app.js starts the console: it asks for a token (or API key), learns
// from GET /auth/v1/me what the token may do, and shows one view at a
// time, chosen by the address's #fragment so that every view can be
// linked to, reloaded and left with the Back button.
import { h, clear, uid, zoneLabel } from './dom.js';
import { get, token, setToken, clearToken, onUnauthorized, transient, waitFor } from './api.js';
import { errorBox, field, input, announce, confirmDialog, focusHeading, holder, pageHeader } from './ui.js';
import * as failures from './pages/failures.js';
import * as executions from './pages/executions.js';
import * as execution from './pages/execution.js';
import * as bulk from './pages/bulk.js';
import * as dispatchers from './pages/dispatchers.js';
import * as dispatcherPage from './pages/dispatcher.js';
import * as templates from './pages/templates.js';
import * as functions from './pages/functions.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const who = document.getElementById('who');

// The views, by the first segment of the path, with the permission
// without which they are not offered.
const views = {
  failures: { page: failures, perm: 'VIEW_EXECUTIONS', label: 'Failures' },
  executions: { page: executions, detail: execution, perm: 'VIEW_EXECUTIONS', label: 'Dispatches' },
  // Starting one needs REPLAY_EXECUTIONS; following one, as the API has it, VIEW_EXECUTIONS.
  replays: { page: bulk, perm: 'REPLAY_EXECUTIONS', detailPerm: 'VIEW_EXECUTIONS', label: 'Bulk replay', navHref: '#/replays/new' },
  dispatchers: { page: dispatchers, detail: dispatcherPage, perm: 'VIEW_DISPATCHERS', label: 'Dispatchers' },
  templates: { page: templates, detail: templates, perm: 'VIEW_TEMPLATES', label: 'Templates' },
  functions: { page: functions, detail: functions, perm: 'VIEW_FUNCTIONS', label: 'Functions' },
};

// maxPollWait bounds the wait between two tries of a live view's
// request that failed (ctx.every).
const maxPollWait = 30000;

let me = null; // GET /auth/v1/me of the current token
let generation = 0; // bumps on every navigation; stale work checks it
let disposers = [];

const can = (perm) => Boolean(me && me.permissions.includes(perm));

// The forms of the view (marked data-edits) that the user changed since
// they were loaded or saved. Leaving the view asks first, and a token
// that expires meanwhile is renewed in a dialog over the view, which
// keeps them: the user saves again.
const edited = new Set();
const markEdited = (ev) => {
  const form = ev.target.closest && ev.target.closest('[data-edits]');
  if (form) edited.add(form);
};
main.addEventListener('input', markEdited);
main.addEventListener('change', markEdited);
const unsaved = () => [...edited].some((el) => el.isConnected);
const confirmLeave = () => confirmDialog({ id: 'leave-dialog', title: 'Leave without saving?', confirm: 'Leave', danger: true,
  body: h('p', {}, 'Your changes on this page are not saved: leaving loses them. Cancel to stay and save them.') });
window.addEventListener('beforeunload', (ev) => {
  if (!unsaved()) return;
  ev.preventDefault();
  ev.returnValue = ''; // what older browsers look for
});

// Each history entry the console shows is numbered (history.state.n), so
// that a Back or Forward away from changes not saved can be undone, and
// redone when the user chooses to leave, without rewriting the history.
let shownN = 0; // the number of the entry on the screen
let asking = false; // the leave dialog is open
const entryN = () => (history.state && Number.isInteger(history.state.n) ? history.state.n : null);
function stampEntry() {
  let n = entryN();
  if (n === null) {
    n = shownN + 1;
    history.replaceState({ n }, '');
  }
  shownN = n;
}

// route splits the fragment into path segments and a query.
function route() {
  const frag = location.hash.replace(/^#\/?/, '');
  const [path, q = ''] = frag.split('?', 2);
  let segments;
  try {
    segments = path.split('/').filter(Boolean).map(decodeURIComponent);
  } catch {
    segments = ['%']; // a malformed escape (URIError): no view has that name
  }
  return { segments, query: new URLSearchParams(q) };
}

// navigate shows the view at fragment (e.g. "#/executions?status=failed").
export function navigate(fragment) {
  if (location.hash === fragment) render();
  else location.hash = fragment;
}

function renderNav(current) {
  clear(nav);
  clear(who);
  if (!me) return;
  const list = h('ul', {});
  for (const [name, v] of Object.entries(views)) {
    if (!can(v.perm)) continue; // what the user may not do is not offered
    const a = h('a', { href: v.navHref || `#/${name}` }, v.label);
    if (name === current) a.setAttribute('aria-current', 'page');
    list.append(h('li', {}, a));
  }
  nav.append(list);
  const tenant = me.tenant ? ` (tenant ${me.tenant})` : '';
  who.append(
    h('span', { class: 'muted', id: 'zone', title: 'The console shows times in the time zone of your browser' }, `Times in ${zoneLabel()}`),
    h('span', { class: 'muted', title: me.permissions.join(', ') }, `${me.kind !== 'apikey' ? `Signed in as ${me.subject}` : me.name ? `API key “${me.name}”` : `API key ${me.subject}`}${tenant}`),
    h('button', { type: 'button', class: 'link', id: 'sign-out', onclick: signOut }, 'Sign out'));
}

async function signOut() {
  if (unsaved() && !(await confirmLeave())) return;
  edited.clear();
  clearToken();
  me = null;
  announce('Signed out.');
  navigate('#/login');
}

// firstView is where a user lands: the failures when they may see them.
function firstView() {
  for (const [name, v] of Object.entries(views)) if (can(v.perm)) return v.navHref || `#/${name}`;
  return null;
}

let signingIn = false; // a token refused now was never accepted: the form says so

// trySignIn signs in with the token typed in tok: true once the server
// accepts it, else false, with why in out.
async function trySignIn(tok, out) {
  clear(out);
  // As copied from a curl line or a header: "Bearer eyJ…" is the token.
  setToken(tok.value.trim().replace(/^(authorization:\s*)?bearer\s+/i, ''));
  signingIn = true;
  try {
    me = await get('/auth/v1/me');
    waitFor(me.requestTimeoutMs);
    return true;
  } catch (err) {
    clearToken();
    me = null;
    out.append(err.status === 401
      ? h('div', { class: 'error', role: 'alert' }, h('strong', { text: 'Not accepted: ' }), `The server does not accept this token or API key (${err.message}).`)
      : errorBox(err));
    return false;
  } finally {
    signingIn = false;
  }
}

// dispose ends the view shown: its polls stop, their notes go, and what
// it still awaits finds it gone (ctx.alive). Before, the sign-in page
// that a refused token brought up kept the view's "retrying" note.
function dispose() {
  generation += 1;
  disposers.forEach((d) => d());
  disposers = [];
  // A question of the view left is answered no. Before, a Replay or
  // Cancel box stayed open over the next view after a Back, and
  // confirmed there it acted, unseen, for a page no longer shown.
  document.querySelectorAll('dialog.confirm[open]').forEach((d) => d.dispatchEvent(new Event('cancel')));
}

function loginView(message) {
  dispose();
  document.title = 'Sign in — Dispatcher console';
  renderNav(null);
  const tok = input({ type: 'password', id: 'login-token', name: 'token', required: true, autocomplete: 'off' });
  const out = h('div', { id: 'login-error' });
  const form = h('form', { class: 'card narrow', id: 'login-form', 'aria-labelledby': 'login-title' },
    h('h1', { id: 'login-title', tabindex: '-1', text: 'Sign in' }),
    h('p', {}, 'Paste an access token (a JWT, e.g. from ', h('code', {}, 'dispatcher token'), ') or an API key (', h('code', {}, 'dsp_…'), '). It stays in this tab only and is sent to this server alone.'),
    message ? h('p', { class: 'notice', role: 'alert', text: message }) : null,
    field('Token or API key', tok),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary', id: 'login-submit' }, 'Sign in')),
    out);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (!(await trySignIn(tok, out))) return;
    announce(`Signed in as ${me.subject}.`);
    const back = sessionStorage.getItem('dispatcher.console.after');
    sessionStorage.removeItem('dispatcher.console.after');
    navigate(back && back !== '#/login' ? back : firstView() || '#/');
  });
  clear(main).append(form);
  tok.focus();
}

// render shows the view the fragment names.
async function render() {
  dispose();
  const mine = generation;
  edited.clear();
  stampEntry();
  const { segments, query } = route();
  if (!token()) {
    if (segments[0] !== 'login') sessionStorage.setItem('dispatcher.console.after', location.hash);
    loginView();
    return;
  }
  if (!me) {
    try {
      me = await get('/auth/v1/me');
      waitFor(me.requestTimeoutMs);
    } catch (err) {
      if (err.status !== 401) {
        clear(main).append(errorBox(err));
      }
      return;
    }
  }
  if (mine !== generation) return;
  if (segments[0] === 'login' || segments.length === 0) {
    const first = firstView();
    if (first) {
      navigate(first);
      return;
    }
    renderNav(null);
    clear(main).append(h('h1', { tabindex: '-1', text: 'Nothing to show' }),
      h('p', {}, `Your ${holder(me)} holds none of the permissions the console's views need (VIEW_EXECUTIONS, VIEW_DISPATCHERS, VIEW_TEMPLATES, VIEW_FUNCTIONS). It holds: ${me.permissions.join(', ') || 'none'}.`));
    return;
  }
  const view = views[segments[0]];
  renderNav(segments[0]);
  clear(main);
  if (!view) {
    document.title = 'Not found — Dispatcher console';
    main.append(h('h1', { tabindex: '-1', text: 'Not found' }), h('p', {}, 'There is no such view. ', h('a', { href: '#/' }, 'Start over')));
    return;
  }
  const perm = segments.length > 1 && segments[1] !== 'new' && view.detailPerm ? view.detailPerm : view.perm;
  if (!can(perm)) {
    document.title = 'Not allowed — Dispatcher console';
    main.append(h('h1', { tabindex: '-1', text: 'Not allowed' }),
      h('p', { role: 'alert' }, `This view needs the permission ${perm}, which your ${holder(me)} does not hold. Ask an administrator for one that does.`));
    return;
  }
  const page = segments.length > 1 && view.detail ? view.detail : view.page;
  // The view draws in a container of its own, which the next view (or
  // the sign-in page) takes out of the page: what a view still loading
  // draws once it is left goes nowhere. Before, it appeared below the
  // next view, or under the sign-in form after signing out.
  const area = h('div', { class: 'view' });
  // failed shows why the view could not go on (a 401: the sign-in asks).
  // One that failed before its heading still names itself, to the tab and
  // to a screen reader, which the focus takes there. Before, only the
  // error showed, and the focus was left on the page's body.
  const failed = (err) => {
    if (err.status === 401) return;
    if (!area.querySelector('h1')) area.append(pageHeader(err.status === 404 ? 'Not found' : `${view.label}: not loaded`));
    area.append(errorBox(err));
    focusHeading(area);
  };
  // Until the view shows something (its first answer may be long in
  // coming): before, a blank page.
  const loading = h('p', { class: 'muted', id: 'view-loading', role: 'status', text: 'Loading…' });
  const shown = () => {
    if (area.textContent.trim() === '') return false;
    loading.remove();
    return true;
  };
  new MutationObserver((_, o) => shown() && o.disconnect()).observe(area, { childList: true, subtree: true, characterData: true });
  main.append(area, loading);
  const ctx = {
    main: area, segments, query, me, can,
    // navigate follows what the user just did (saved, deleted): it
    // does not ask to leave. Not once the user has left the view (a slow
    // answer): before, it took them back from where they had gone, and
    // dropped the changes they had begun there without asking.
    navigate: (fragment) => {
      if (mine !== generation) return;
      edited.clear();
      navigate(fragment);
    },
    // reload shows the view anew, as the server has it now, dropping
    // the changes not saved (the user asked for it); not once left.
    reload: () => {
      if (mine !== generation) return;
      edited.clear();
      render();
    },
    // saved says that form's changes are saved.
    saved: (form) => edited.delete(form),
    alive: () => mine === generation,
    onDispose: (fn) => disposers.push(fn),
    // every runs fn now and then every ms until the view changes or fn
    // returns false. When fn fails for want of the server (transient: no
    // connection, a 5xx), it runs again all the same, each time twice as
    // late, up to maxPollWait, with a small note that says so until it
    // succeeds, and, while it never has, the reason in the view, which
    // has nothing else to show (before, an empty page); any other error
    // shows and stops.
    every: (ms, fn) => {
      let timer;
      let wait = ms;
      let succeeded = false;
      let reason = null; // why fn fails, shown while it never succeeded
      const note = h('p', { class: 'poll-state', id: 'poll-state', role: 'status', hidden: true });
      document.body.append(note);
      const tick = async () => {
        if (mine !== generation) return;
        let more = true;
        try {
          more = await fn();
          wait = ms;
          note.hidden = true;
          succeeded = true;
          if (reason) reason.remove();
          reason = null;
        } catch (err) {
          if (mine !== generation) return;
          if (!transient(err)) {
            note.hidden = true; // no retry comes
            failed(err);
            return;
          }
          wait = Math.min(wait * 2, maxPollWait);
          const retry = `retrying in ${Math.round(wait / 1000)} s…`;
          // A status is the server's answer: not a lost connection.
          note.textContent = err.status ? `The server is unavailable: ${retry}` : `Connection lost: ${retry}`;
          note.title = err.message;
          note.hidden = false;
          if (!succeeded && !reason) {
            reason = errorBox(err);
            area.append(reason);
          }
        }
        if (more !== false && mine === generation) timer = setTimeout(tick, wait);
      };
      disposers.push(() => {
        clearTimeout(timer);
        note.remove();
      });
      tick();
    },
  };
  // Until the view names itself (pageHeader): a view that fails to load
  // does not keep the title of the one before.
  document.title = `${view.label} — Dispatcher console`;
  try {
    await page.render(ctx);
  } catch (err) {
    if (mine === generation) failed(err);
  }
  if (mine === generation) {
    focusHeading(main);
  }
}

// renewSignIn asks for a token again in a dialog over the view, which
// keeps the changes not saved yet. One of another tenant shows the view
// anew: what it shows was the other tenant's.
let renewing = false;
function renewSignIn(err) {
  renewing = true;
  const before = me;
  clearToken();
  me = null;
  const titleId = uid('dlg');
  const tok = input({ type: 'password', id: 'signin-token', name: 'token', required: true, autocomplete: 'off' });
  const out = h('div', { id: 'signin-error' });
  const leave = h('button', { type: 'button', class: 'secondary', id: 'signin-sign-out' }, 'Sign out');
  const form = h('form', {},
    field('Token or API key', tok),
    h('div', { class: 'actions' }, leave, h('button', { type: 'submit', class: 'primary', id: 'signin-submit' }, 'Sign in')),
    out);
  const dlg = h('dialog', { class: 'dialog', id: 'signin-dialog', 'aria-labelledby': titleId },
    h('h2', { id: titleId, text: 'Sign in again' }),
    h('p', { class: 'notice', role: 'alert', text: `The server no longer accepts your ${holder(before)} (${err.message}). Sign in again to go on: this page and your changes stay, to be saved again.` }),
    form);
  const close = () => {
    renewing = false;
    dlg.close();
    dlg.remove();
  };
  // Esc would lose the changes without a word: Sign out says it. A
  // browser may close the dialog all the same (a second Esc): then the
  // sign-in page, as without changes.
  dlg.addEventListener('cancel', (ev) => ev.preventDefault());
  dlg.addEventListener('close', () => {
    if (!renewing) return;
    renewing = false;
    dlg.remove();
    edited.clear();
    sessionStorage.setItem('dispatcher.console.after', location.hash);
    loginView(`The server no longer accepts your ${holder(before)} (${err.message}). Sign in again.`);
  });
  leave.addEventListener('click', () => {
    close();
    edited.clear();
    signOut();
  });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (!(await trySignIn(tok, out))) return;
    close();
    if ((me.tenant || '') !== (before.tenant || '')) {
      render();
      return;
    }
    renderNav(route().segments[0]);
    announce(`Signed in again as ${me.subject}. Save your changes again.`);
  });
  document.body.append(dlg);
  dlg.showModal();
  tok.focus();
}

onUnauthorized((err) => {
  if (renewing || signingIn) return;
  if (unsaved() && me) {
    renewSignIn(err);
    return;
  }
  const was = me ? holder(me) : 'token or API key';
  clearToken();
  me = null;
  sessionStorage.setItem('dispatcher.console.after', location.hash);
  loginView(`The server no longer accepts your ${was} (${err.message}). Sign in again.`);
});

document.getElementById('skip').addEventListener('click', (ev) => {
  ev.preventDefault();
  (main.querySelector('h1') || main).focus();
});
window.addEventListener('hashchange', async () => {
  let n = entryN();
  if (n === shownN) return; // back on the view's entry: our return, or nothing moved
  if (renewing || asking || unsaved()) {
    // Back to the view, at once: a Back or Forward is undone by as many
    // steps; a link's new entry, numbered, is left ahead.
    if (n === null) {
      n = shownN + 1;
      history.replaceState({ n }, '');
    }
    history.go(shownN - n);
    if (renewing || asking) return;
    asking = true;
    const leave = await confirmLeave();
    asking = false;
    if (!leave) return;
    edited.clear();
    history.go(n - shownN);
    return;
  }
  render().then(() => {
    const h1 = main.querySelector('h1');
    // Not from under the user: one who began typing in the view's form
    // while its list loaded keeps the field.
    if (h1 && !main.contains(document.activeElement)) h1.focus();
  });
});
render();
