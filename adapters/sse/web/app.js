// llmgate demo chat page: plain JS, no build step.
// Streams an answer over EventSource, shows the connection state, reconnects with
// exponential backoff and jitter, and resumes after the last event it rendered
// (Last-Event-ID / lastEventId), so text is never lost or repeated.
'use strict';

(function () {
  const params = new URLSearchParams(location.search);
  // Heartbeat watchdog: no event (heartbeats included) for this long forces a reconnect.
  const HEARTBEAT_TIMEOUT_MS = Number(params.get('hbTimeoutMs')) || 45000;
  const BACKOFF_BASE_MS = Number(params.get('backoffMs')) || 500;
  const BACKOFF_MAX_MS = 15000;
  const MAX_ATTEMPTS = 12;
  // Error codes of id-less error events that a reconnect may cure.
  const TRANSIENT = ['unavailable', 'timeout', 'upstream', 'io', 'closed', 'again'];

  const $ = (id) => document.getElementById(id);
  const ui = {
    state: $('state'), log: $('log'), answer: $('answer'), notice: $('notice'),
    form: $('form'), prompt: $('prompt'), send: $('send'), stop: $('stop'),
    key: $('key'), model: $('model'),
  };
  ui.key.value = localStorage.getItem('llmgate.key') || '';

  let s = null; // the current stream: {id, lastSeq, es, attempt, finished, watchdog, retryTimer}

  function setState(name, text) {
    ui.state.dataset.state = name;
    ui.state.className = 'state ' + name;
    ui.state.textContent = text || name;
  }

  function authHeaders() {
    const k = ui.key.value.trim();
    localStorage.setItem('llmgate.key', k);
    return k ? { Authorization: 'Bearer ' + k } : {};
  }

  async function api(path, body) {
    const r = await fetch(path, {
      method: 'POST',
      headers: Object.assign({ 'Content-Type': 'application/json' }, authHeaders()),
      body: body === undefined ? '{}' : JSON.stringify(body),
    });
    const j = await r.json().catch(() => ({}));
    if (!r.ok) {
      const e = (j && j.error) || {};
      throw new Error((e.code || r.status) + ': ' + (e.message || r.statusText));
    }
    return j;
  }

  function addMessage(role, text) {
    const d = document.createElement('div');
    d.className = 'msg ' + role;
    d.textContent = text;
    ui.log.appendChild(d);
    return d;
  }

  function armWatchdog() {
    clearTimeout(s.watchdog);
    s.watchdog = setTimeout(() => {
      ui.notice.textContent = 'no heartbeat, reconnecting';
      reconnect();
    }, HEARTBEAT_TIMEOUT_MS);
  }

  // Applies one event once: ids are "<stream_id>.<seq>" and seq only grows.
  function accept(ev) {
    armWatchdog();
    if (!ev.lastEventId) return true; // heartbeats and id-less errors
    const dot = ev.lastEventId.lastIndexOf('.');
    const seq = Number(ev.lastEventId.slice(dot + 1));
    if (!(seq > s.lastSeq)) return false; // a duplicate: already rendered
    s.lastSeq = seq;
    return true;
  }

  function finish(state, text) {
    if (!s) return;
    s.finished = true;
    clearTimeout(s.watchdog);
    clearTimeout(s.retryTimer);
    if (s.es) s.es.close();
    s.es = null;
    ui.stop.disabled = true;
    ui.send.disabled = false;
    setState(state, text);
  }

  async function eventsUrl() {
    let url = '/v1/chat/streams/' + encodeURIComponent(s.id) + '/events';
    if (ui.key.value.trim()) {
      // EventSource cannot send Authorization: get a fresh short-lived token.
      url = (await api('/v1/chat/streams/' + encodeURIComponent(s.id) + '/token')).events_url;
    }
    if (s.lastSeq > 0) {
      url += (url.includes('?') ? '&' : '?') + 'lastEventId=' +
        encodeURIComponent(s.id + '.' + s.lastSeq);
    }
    return url;
  }

  async function connect() {
    const cur = s;
    let url;
    try {
      url = await eventsUrl();
    } catch (e) {
      if (cur === s) scheduleRetry(String(e.message || e));
      return;
    }
    if (cur !== s || s.finished) return;
    setState(s.attempt ? 'reconnecting' : 'connecting',
             s.attempt ? 'reconnecting (attempt ' + s.attempt + ')' : 'connecting');
    const es = new EventSource(url);
    s.es = es;
    armWatchdog();
    es.onopen = () => {
      if (cur !== s) return;
      s.attempt = 0;
      ui.notice.textContent = '';
      setState('open', 'open');
    };
    es.addEventListener('start', (ev) => { if (cur === s) accept(ev); });
    es.addEventListener('heartbeat', (ev) => { if (cur === s) accept(ev); });
    es.addEventListener('content', (ev) => {
      if (cur !== s || !accept(ev)) return;
      const d = JSON.parse(ev.data);
      ui.answer.textContent += d.data.content;
    });
    es.addEventListener('done', (ev) => {
      if (cur !== s || !accept(ev)) return;
      const d = JSON.parse(ev.data).data;
      ui.answer.dataset.finishReason = d.finish_reason;
      finish('done', 'done (' + d.finish_reason + ')');
    });
    es.addEventListener('error', (ev) => {
      if (cur !== s) return;
      if (ev.data) { // a server-sent error event, not a connection error
        accept(ev);
        const d = JSON.parse(ev.data).data;
        ui.notice.textContent = 'error: ' + d.code + ': ' + d.message;
        // Without an id it is the adapter's word about this connection; a transient one
        // (chat service unreachable) is retried. With an id it ends the stream itself.
        if (!ev.lastEventId && TRANSIENT.includes(d.code)) {
          reconnect();
          return;
        }
        finish('error', 'error (' + d.code + ')');
        return;
      }
      if (s.finished) return;
      reconnect();
    });
  }

  function scheduleRetry(reason) {
    if (!s || s.finished) return;
    s.attempt += 1;
    if (s.attempt > MAX_ATTEMPTS) {
      finish('closed', 'closed (gave up)');
      ui.notice.textContent = 'could not reconnect: ' + reason;
      return;
    }
    // Exponential backoff with full jitter, so a restarted adapter is not hit in lockstep.
    const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (s.attempt - 1));
    const wait = Math.floor(cap / 2 + Math.random() * cap / 2);
    setState('reconnecting', 'reconnecting (attempt ' + s.attempt + ')');
    ui.state.dataset.attempt = String(s.attempt);
    clearTimeout(s.retryTimer);
    s.retryTimer = setTimeout(connect, wait);
  }

  // Takes over from EventSource's own retry: we control backoff and the resume point.
  function reconnect() {
    if (!s || s.finished) return;
    clearTimeout(s.watchdog);
    if (s.es) s.es.close();
    s.es = null;
    scheduleRetry('connection lost');
  }

  ui.form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const text = ui.prompt.value.trim();
    if (!text) return;
    if (s && !s.finished) finish('closed', 'closed');
    addMessage('user', text);
    if (ui.answer.textContent) addMessage('assistant', ui.answer.textContent);
    ui.answer.textContent = '';
    ui.answer.hidden = false;
    delete ui.answer.dataset.finishReason;
    ui.notice.textContent = '';
    ui.send.disabled = true;
    setState('connecting', 'connecting');
    try {
      const r = await api('/v1/chat/streams', {
        model: ui.model.value.trim() || 'demo',
        messages: [{ role: 'user', content: text }],
      });
      s = { id: r.stream_id, lastSeq: 0, es: null, attempt: 0, finished: false };
      ui.answer.dataset.streamId = r.stream_id;
      ui.stop.disabled = false;
      ui.prompt.value = '';
      connect();
    } catch (err) {
      ui.send.disabled = false;
      ui.notice.textContent = String(err.message || err);
      setState('error', 'error');
    }
  });

  ui.stop.addEventListener('click', async () => {
    if (!s || s.finished) return;
    try {
      await api('/v1/chat/streams/' + encodeURIComponent(s.id) + '/cancel');
      ui.notice.textContent = 'stopped';
    } catch (err) {
      ui.notice.textContent = String(err.message || err);
    }
    // The stream ends with its done event (finish_reason "cancelled") if still open.
  });
})();
