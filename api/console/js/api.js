// api.js is the console's only way to the server: the public HTTP API,
// with the user's token or API key as a bearer token, as any client
// would call it. The server checks every request; the console only
// avoids offering what it would refuse.

const storageKey = 'dispatcher.console.token';

// How long a request waits for the whole answer: longer than the server
// itself waits on a request's behalf (DISPATCHER_REQUEST_TIMEOUT, which
// /auth/v1/me gives; the failures summary and a bulk replay's count at
// least 100 s), after which it
// answers 503.
let answerWait = 45_000;
let slowAnswerWait = 120_000;

// waitFor sets the waits from the server's own, in ms (none: the defaults).
export function waitFor(serverMs) {
  if (!(serverMs > 0)) return;
  answerWait = Math.max(45_000, serverMs + 15_000);
  slowAnswerWait = Math.max(120_000, Math.max(serverMs, 100_000) + 20_000);
}

// ApiError is a refused or failed request: status is the HTTP status,
// code and message the API's error body (code 10 for a missing
// permission, 104/117/118 for a missing, unknown or expired token).
export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.code = body && body.code;
    this.errorName = body && body.name;
  }
}

// transient says whether err is the server's or the network's passing
// trouble (no connection, a timeout, too many requests, a 5xx), which
// asking again later may get past, rather than an answer that stands.
export const transient = (err) => err instanceof ApiError && (err.status === 0 || err.status === 408 || err.status === 429 || err.status >= 500);

let unauthorized = () => {};

// onUnauthorized sets what happens when the server no longer accepts the
// token (401): the console asks for a new one.
export function onUnauthorized(fn) {
  unauthorized = fn;
}

// The token lives in the tab's session storage: closing the tab forgets
// it, and no other site can read it.
export function token() {
  return sessionStorage.getItem(storageKey) || '';
}

export function setToken(t) {
  sessionStorage.setItem(storageKey, t);
}

export function clearToken() {
  sessionStorage.removeItem(storageKey);
}

// send sends method to path with body as JSON and returns the decoded
// answer and its ETag; it throws an ApiError for any status but 2xx.
async function send(method, path, body, headers = {}) {
  const h = { Accept: 'application/json', ...headers };
  const t = token();
  if (t) h.Authorization = `Bearer ${t}`;
  const init = { method, headers: h, cache: 'no-store', credentials: 'omit', redirect: 'error' };
  if (body !== undefined) {
    h['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  // A request that gets no answer (a proxy or a network that holds it,
  // a frozen server) ends: before, a live view waited on it for good,
  // saying nothing. The server answers a request whose work outlasts its
  // own timeout 503 first (DISPATCHER_REQUEST_TIMEOUT, 30 s by default;
  // the failures summary and a bulk replay's count 100 s).
  const slow = path.startsWith('/executions/v1/failures') || (method === 'POST' && path === '/executions/v1/replays');
  const wait = slow ? slowAnswerWait : answerWait;
  const ctl = new AbortController(); // not AbortSignal.timeout: older browsers lack it
  const timer = setTimeout(() => ctl.abort(), wait);
  init.signal = ctl.signal;
  let res;
  let text;
  try {
    res = await fetch(path, init);
    text = await res.text();
  } catch (e) {
    // A request that left may have been done, its answer lost: before, a
    // replay started so was said not to be.
    const after = method === 'GET' ? '' : ': what was asked may have been done or not; reload to see';
    if (!ctl.signal.aborted) throw new ApiError(0, { message: `the server could not be reached (${e.message})${after}` });
    throw new ApiError(0, { message: `the server did not answer within ${Math.round(wait / 1000)} s${after}` });
  } finally {
    clearTimeout(timer);
  }
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      if (res.ok) {
        // Another server's page (a sign-in proxy's, say): before, a view
        // drew it as data and failed on it with a script's error.
        throw new ApiError(502, { message: `the answer is not the API's JSON (${res.headers.get('Content-Type') || 'no type'}): a proxy or a sign-in page between you and the server?` });
      }
      // A proxy's error page (HTML) is not shown as its markup; a
      // server's plain text is.
      const type = res.headers.get('Content-Type') || 'no type';
      data = { message: /^text\/plain\b/i.test(type) ? text.slice(0, 500)
        : `HTTP ${res.status}, an answer that is not the API's JSON (${type}): from a proxy or a gateway between you and the server?` };
    }
  }
  if (!res.ok) {
    const err = new ApiError(res.status, data);
    // Only for the token in use: an answer to one signed out of, or
    // replaced, since the request left says nothing of it.
    if (res.status === 401 && t && t === token()) {
      err.signIn = true; // the sign-in asked for says it: a form need not
      unauthorized(err);
    }
    throw err;
  }
  // A proxy that compresses the answer may weaken its ETag (W/"…"); the
  // version it names is the same, and If-Match takes only strong ones.
  const etag = res.headers.get('ETag');
  return { data, etag: etag && etag.replace(/^W\//, '') };
}

// request sends method to path with body as JSON and returns the decoded
// answer; it throws an ApiError for any status but 2xx.
export async function request(method, path, body, headers = {}) {
  return (await send(method, path, body, headers)).data;
}

// Version is the version (ETag) of the dispatcher, template or function a
// page shows (the record at path). Its changes send it (If-Match), so that
// a change made on what the page shows cannot undo one made since by
// someone else: the server refuses it (412). Each change's answer carries
// the version that follows, and a page's changes go one at a time, so its
// own changes do not refuse each other.
export class Version {
  constructor(path, etag) {
    this.path = path;
    this.etag = etag;
    this.last = Promise.resolve();
  }

  // change sends method to path with body, as request does. When the
  // record changed meanwhile (412), unaffected, if given, is asked with
  // the record as it is now whether the change still means what it meant
  // (someone else changed other fields): then it is sent again, against
  // the version now; else the refusal stands. The page has not seen that
  // version, only checked the fields of this change: the version it
  // keeps stays the one it has seen, so that each later change is checked
  // so too, and none undoes what the page still shows stale.
  async change(method, path, body, unaffected) {
    return (await this.exchange(method, path, body, unaffected)).data;
  }

  // exchange is change, but returns the answer's ETag too: the version of
  // the record that the change made.
  exchange(method, path, body, unaffected) {
    const attempt = (etag) => send(method, path, body, etag ? { 'If-Match': etag } : {});
    const run = async () => {
      try {
        const r = await attempt(this.etag);
        if (r.etag) this.etag = r.etag;
        return r;
      } catch (err) {
        if (err.status !== 412 || !unaffected) throw err;
        const now = await send('GET', this.path);
        if (!unaffected(now.data)) throw err;
        return attempt(now.etag);
      }
    };
    const p = this.last.then(run, run);
    this.last = p.catch(() => {});
    return p;
  }
}

// getVersioned returns the record at path and its Version.
export async function getVersioned(path) {
  const r = await send('GET', path);
  return [r.data, new Version(path, r.etag)];
}

export const get = (path) => request('GET', path);
export const post = (path, body, headers) => request('POST', path, body, headers);

// getAll returns the items of every page of the list at path (an RQL
// query without limit), 50 a request as the API pages them, up to cap
// items: for pickers, which must offer every choice, not the first page.
// The cap is the most dispatchers, templates or functions a tenant may
// have: at 1,000 before, a template past it could not be chosen, and an
// action's own showed as a bare id.
export async function getAll(path, cap = 10000) {
  const items = [];
  const sep = path.includes('?') ? '&' : '?';
  for (let limited = 0; ;) {
    let page;
    try {
      page = await get(`${path}${sep}limit(50,${items.length})`);
      limited = 0;
    } catch (err) {
      // Thousands of items take more requests than a token's burst: the
      // rate limit's 429 asks to wait a second, and the page is asked
      // again, up to 30 times.
      if (err.status !== 429 || ++limited > 30) throw err;
      await new Promise((done) => setTimeout(done, 1000));
      continue;
    }
    items.push(...page.data);
    if (page.data.length === 0 || items.length >= Math.min(page.page.total, cap)) return items;
  }
}

// query returns "?k=v&…" of the non-empty values of params, or "".
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

// seg encodes one path segment; "." and "..", which encodeURIComponent
// leaves alone, would move the path.
export const seg = (s) => encodeURIComponent(s).replace(/^\.\.?$/, (d) => d.replaceAll('.', '%2E'));

// unanswered holds the Idempotency-Key of each request postOnce sent
// that got no answer (or a passing failure, or a sign-in to do), by its
// path and body, and when it was first sent.
const unanswered = new Map();

// sameRequestWithin is how long a request sent again counts as the one
// whose answer was lost: one sent later is a new request (the same
// filter, an hour later, replays the failures since). Before (a review),
// it counted as the first for as long as the page stayed open, and was
// answered with that bulk replay.
const sameRequestWithin = 10 * 60 * 1000;

// postOnce posts body to path, as post does, with an Idempotency-Key:
// a request sent again after its answer was lost (a dropped connection,
// a timeout, a 5xx, a 429, a sign-in) carries the key it had, so that the
// server answers it with what the first did (alreadyStarted) rather than
// doing it again. Before, each press took a fresh key, and a bulk replay
// whose answer was lost was started a second time.
export async function postOnce(path, body) {
  const what = `${path}\n${JSON.stringify(body)}`;
  let sent = unanswered.get(what);
  if (!sent || Date.now() - sent.at > sameRequestWithin) {
    // getRandomValues, unlike randomUUID, works on plain http too.
    sent = { at: Date.now(), key: `console-${Array.from(crypto.getRandomValues(new Uint8Array(16)), (x) => x.toString(16).padStart(2, '0')).join('')}` };
    unanswered.set(what, sent);
  }
  try {
    const res = await post(path, body, { 'Idempotency-Key': sent.key });
    unanswered.delete(what);
    return res;
  } catch (err) {
    if (!transient(err) && err.status !== 401) unanswered.delete(what); // answered: a new press is a new request
    throw err;
  }
}
