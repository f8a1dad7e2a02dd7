'use strict';
// The incident console: plain DOM code, no build step, nothing fetched but
// this service's own API. The app key lives in sessionStorage only, so it is
// gone when the tab closes. Routes are in the hash (#/incidents/ID), which is
// what webhook messages link to.
(() => {
  const KEY_SLOT = 'alert-intake.app-key';
  // The API sits next to the console: /console -> /api, /prod/console -> /prod/api.
  const BASE = location.pathname.replace(/\/console\/?$/, '');
  const REFRESH_SECONDS = 15;
  const KINDS = ['standard', 'blueking', 'aliyun-prometheus', 'jiankongbao', 'prometheus', 'grafana',
    'zabbix', 'pagerduty', 'n9e', 'aws-cloudwatch', 'sentry'];
  const INCIDENT_EVENTS = ['i_new', 'a_merge', 'i_ack', 'i_unack', 'i_rslv', 'i_reopen', 'i_comm', 'i_storm', 'i_m_flapping', 'i_assign', 'i_escalate'];
  const ALERT_EVENTS = ['a_new', 'a_update', 'a_close'];
  const WEBHOOK_KINDS = ['generic', 'slack', 'feishu', 'dingtalk', 'wecom'];
  const CODE_WORDS = {
    InvalidParameter: 'The service refused the request',
    InvalidContentType: 'The service refused the body type',
    MethodNotAllowed: 'The service does not take this action here',
    Unauthorized: 'The app key was not accepted',
    AccessDenied: 'Access denied',
    RouteNotFound: 'The service has no such route',
    ResourceNotFound: 'Not found',
    RequestTooFrequently: 'Too many requests',
    InternalError: 'The service failed',
    NetworkError: 'The service could not be reached',
    BadInput: 'Check the form',
  };

  const main = document.getElementById('main');
  const flashBox = document.getElementById('flash');
  const noticeBox = document.getElementById('notice');
  let timers = [];
  let channelNames = new Map();

  // ---------------------------------------------------------------- helpers

  /** An element with attributes (on* = listeners) and children (text is never parsed as HTML). */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
      else if (name === 'class') el.className = value;
      else if (name === 'value') el.value = value;
      else if (name === 'checked') el.checked = true;
      else el.setAttribute(name, value === true ? '' : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : String(child));
    }
    return el;
  }

  let fieldCount = 0;
  /** A labelled control: the label names it for screen readers and clicks. */
  function field(labelText, control, hint) {
    if (!control.id) control.id = 'f' + (++fieldCount);
    const hintEl = hint ? h('p', { class: 'hint', id: control.id + '-hint' }, hint) : null;
    if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
    return h('div', {}, h('label', { for: control.id }, labelText), control, hintEl);
  }

  function checkbox(labelText, attrs) {
    const box = h('input', Object.assign({ type: 'checkbox' }, attrs));
    return h('label', { class: 'inline' }, box, labelText);
  }

  function select(options, current, attrs) {
    return h('select', attrs || {}, options.map(([value, text]) =>
      h('option', { value, selected: value === current }, text)));
  }

  function pad(n) { return String(n).padStart(2, '0'); }
  /** Unix seconds as local `YYYY-MM-DD HH:MM:SS`. */
  function when(seconds) {
    if (seconds === null || seconds === undefined) return '—';
    const d = new Date(seconds * 1000);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }
  function timeEl(seconds) {
    return h('time', { datetime: new Date(seconds * 1000).toISOString() }, when(seconds));
  }

  function badge(kind, value) { return h('span', { class: `badge ${kind}-${value}` }, value); }
  function chips(labels) {
    const entries = Object.entries(labels || {});
    return entries.length ? entries.map(([k, v]) => h('span', { class: 'chip' }, `${k}=${v}`)) : h('span', { class: 'muted' }, 'none');
  }
  function channelName(id) { return id ? (channelNames.get(id) || id) : '—'; }
  function channelLink(id) { return id ? h('a', { href: `#/channels/${id}` }, channelName(id)) : '—'; }

  function conditionsText(groups) {
    if (!groups || !groups.length) return 'every event';
    return groups.map((all) => all.map((c) => `${c.key} ${c.oper} ${c.vals.join(', ')}`).join(' AND ')).join(' OR ');
  }

  /** JSON for a text area: short values on one line, longer ones one member per line. */
  function pretty(value, indent = '') {
    const flat = JSON.stringify(value);
    if (typeof value !== 'object' || value === null || flat.length + indent.length <= 72) return flat;
    const inner = `${indent}  `;
    const members = Array.isArray(value)
      ? value.map((v) => inner + pretty(v, inner))
      : Object.entries(value).map(([k, v]) => `${inner}${JSON.stringify(k)}: ${pretty(v, inner)}`);
    const [open, close] = Array.isArray(value) ? ['[', ']'] : ['{', '}'];
    return `${open}\n${members.join(',\n')}\n${indent}${close}`;
  }

  /** Parse a JSON text area, naming it when the text is not JSON. */
  function parseJson(text, what) {
    try {
      return JSON.parse(text);
    } catch (e) {
      throw new ApiError('BadInput', `${what}: not valid JSON (${e.message})`, 0);
    }
  }

  // ---------------------------------------------------------------- messages

  class ApiError extends Error {
    constructor(code, message, status, retryAfter) {
      super(message);
      this.code = code;
      this.status = status;
      this.retryAfter = retryAfter;
    }
  }

  /** An error in words: what happened, the service's message (field and rule), the code. */
  function explain(error) {
    if (!(error instanceof ApiError)) return `Something went wrong in the console: ${error && error.message}`;
    const words = CODE_WORDS[error.code] || `The service answered HTTP ${error.status}`;
    const retry = error.retryAfter ? ` Try again in ${error.retryAfter} s.` : '';
    return `${words}: ${error.message}.${retry} (${error.code})`;
  }
  function flash(error) {
    noticeBox.textContent = '';
    flashBox.textContent = explain(error);
  }
  function notice(text) {
    flashBox.textContent = '';
    noticeBox.textContent = text;
  }
  function clearMessages() { flashBox.textContent = ''; noticeBox.textContent = ''; }

  // A page the user opens starts without old messages; a page an action
  // opens (a channel just created) keeps the action's message.
  let keepMessages = false;
  function go(hash) {
    keepMessages = true;
    location.hash = hash;
  }

  // ---------------------------------------------------------------- API

  function appKey() { return sessionStorage.getItem(KEY_SLOT); }

  // The signed-in key's role (GET /api/whoami): the page hides what the role
  // may not do (elements with data-needs="responder" or "admin", by CSS).
  // The API refuses those calls anyway; hiding only spares the click.
  let me = null;
  async function whoami() {
    if (!me) {
      me = await api('GET', '/api/whoami');
      document.body.dataset.role = me.role;
      const badgeEl = document.getElementById('whoami');
      if (badgeEl) badgeEl.textContent = `${me.role} key${me.member_id ? ` · ${me.member_id}` : ''}`;
    }
    return me;
  }
  function forgetMe() {
    me = null;
    delete document.body.dataset.role;
    const badgeEl = document.getElementById('whoami');
    if (badgeEl) badgeEl.textContent = '';
  }

  async function api(method, path, body) {
    const headers = { Authorization: `Bearer ${appKey()}` };
    const init = { method, headers, cache: 'no-store' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(BASE + path, init);
    } catch (e) {
      throw new ApiError('NetworkError', `no answer (${e.message})`, 0);
    }
    let envelope = null;
    try { envelope = await response.json(); } catch (_) { /* not JSON: reported below */ }
    if (response.ok && envelope && 'data' in envelope) return envelope.data;
    const err = envelope && envelope.error;
    const error = new ApiError(err ? err.code : `HTTP${response.status}`,
      err ? err.message : 'the answer was not the service\'s JSON envelope', response.status,
      response.headers.get('retry-after'));
    if (response.status === 401) {
      sessionStorage.removeItem(KEY_SLOT);
      renderSignIn(error);
    }
    throw error;
  }

  /** Run a user's action: the button waits, an error is shown in words, success is announced. */
  async function act(button, work, done) {
    if (button) button.disabled = true;
    try {
      const result = await work();
      if (done) notice(typeof done === 'function' ? done(result) : done);
      return result;
    } catch (e) {
      flash(e);
      return undefined;
    } finally {
      if (button && button.isConnected) button.disabled = false;
    }
  }

  async function loadChannels() {
    const data = await api('GET', '/api/channels');
    channelNames = new Map(data.items.map((c) => [c.channel_id, c.name]));
    return data.items;
  }

  function copyButton(source, label) {
    return h('button', {
      type: 'button',
      onclick: async (ev) => {
        const text = source.value !== undefined ? source.value : source.textContent;
        try {
          await navigator.clipboard.writeText(text);
          notice(`The ${label} is copied to the clipboard.`);
        } catch (_) {
          // No clipboard (plain http on another host): select it for Ctrl+C.
          const range = document.createRange();
          range.selectNodeContents(source);
          if (source.select) source.select(); else { const s = getSelection(); s.removeAllRanges(); s.addRange(range); }
          notice(`The ${label} is selected: press Ctrl+C to copy it.`);
        }
        ev.target.focus();
      },
    }, `Copy ${label}`);
  }

  // ---------------------------------------------------------------- frame

  function show(...children) {
    main.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
    const heading = main.querySelector('h2');
    if (heading) { heading.tabIndex = -1; heading.focus(); }
  }

  function markNav(section) {
    for (const link of document.querySelectorAll('#nav a')) {
      if (link.dataset.section === section) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    }
  }

  function renderSignIn(error) {
    timers.forEach(clearInterval);
    timers = [];
    forgetMe();
    document.getElementById('nav').hidden = true;
    document.getElementById('sign-out').hidden = true;
    const input = h('input', { type: 'password', id: 'app-key', autocomplete: 'off', required: true, class: 'wide', spellcheck: 'false' });
    const form = h('form', { id: 'signin', class: 'card signin' },
      h('h2', {}, 'Sign in'),
      field('App key', input, 'The key `make run` prints (or one from alertctl create-app-key). It is kept in this browser tab only.'),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Sign in')));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const key = input.value.trim();
      if (!key) return;
      sessionStorage.setItem(KEY_SLOT, key);
      const button = form.querySelector('button');
      const ok = await act(button, () => loadChannels());
      if (ok) {
        clearMessages();
        if (!location.hash || location.hash === '#/' || location.hash === '#/signin') location.hash = '#/incidents';
        else route();
      }
    });
    main.replaceChildren(form);
    if (error) flash(error);
    input.focus();
  }

  function route() {
    timers.forEach(clearInterval);
    timers = [];
    if (!appKey()) { renderSignIn(); return; }
    document.getElementById('nav').hidden = false;
    document.getElementById('sign-out').hidden = false;
    const [path, query] = location.hash.replace(/^#\/?/, '').split('?');
    const [section, id] = path.split('/').filter(Boolean).map(decodeURIComponent);
    const views = {
      incidents: () => (id ? incidentPage(id) : incidentList(new URLSearchParams(query || ''))),
      channels: () => (id ? channelPage(id) : channelList()),
      integrations: () => (id ? integrationPage(id) : integrationList()),
      webhooks: () => (id ? webhookPage(id) : webhookList()),
      keys: () => keyList(),
      members: () => memberList(),
      schedules: () => (id ? schedulePage(id) : scheduleList()),
    };
    if (!views[section]) { location.replace('#/incidents'); return; }
    markNav(section);
    main.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
    whoami().then(() => views[section]()).catch((e) => {
      flash(e);
      main.replaceChildren(h('p', { class: 'muted' }, 'This page could not be loaded; the message above says why.'));
    });
  }

  // ---------------------------------------------------------------- incidents

  const STATUS_FILTERS = [['Triggered,Processing', 'Open (triggered or acknowledged)'], ['Triggered', 'Triggered'],
    ['Processing', 'Acknowledged (processing)'], ['Closed', 'Closed'], ['', 'Any status']];

  async function incidentList(params) {
    const status = params.has('status') ? params.get('status') : 'Triggered,Processing';
    const channelId = params.get('channel_id') || '';
    const channels = await loadChannels();
    const statusSelect = select(STATUS_FILTERS, status, { id: 'filter-status' });
    const channelSelect = select([['', 'Every channel'], ...channels.map((c) => [c.channel_id, c.name])], channelId, { id: 'filter-channel' });
    const auto = h('input', { type: 'checkbox', id: 'auto-refresh', checked: true });
    const refreshed = h('span', { class: 'muted', id: 'refreshed' });
    const refilter = () => {
      const q = new URLSearchParams({ status: statusSelect.value });
      if (channelSelect.value) q.set('channel_id', channelSelect.value);
      location.hash = `#/incidents?${q}`;
    };
    statusSelect.addEventListener('change', refilter);
    channelSelect.addEventListener('change', refilter);
    const body = h('tbody');
    const more = h('button', { type: 'button', hidden: true }, 'Load more');
    const table = h('table', { id: 'incidents' },
      h('caption', {}, 'Incidents, newest first'),
      h('thead', {}, h('tr', {}, ['Severity', 'Status', 'Title', 'Channel'].map((t) => h('th', { scope: 'col' }, t)),
        h('th', { scope: 'col', class: 'num' }, 'Open / all alerts'), h('th', { scope: 'col' }, 'Opened'))),
      body);
    let cursor = null;
    let shown = 0;

    function row(inc) {
      const flags = [inc.storm_level ? h('span', { class: 'badge' }, `storm ≥ ${inc.storm_level}`) : null,
        inc.flapping ? h('span', { class: 'badge' }, 'flapping') : null];
      return h('tr', {},
        h('td', {}, badge('sev', inc.severity)),
        h('td', {}, badge('st', inc.status)),
        h('td', {}, h('a', { href: `#/incidents/${inc.incident_id}`, class: 'incident-link' }, inc.title), ' ', flags),
        h('td', {}, channelName(inc.channel_id)),
        h('td', { class: 'num' }, `${inc.active_alert_count} / ${inc.alert_count}`),
        h('td', {}, timeEl(inc.created_at)));
    }

    async function load(reset) {
      const q = new URLSearchParams({ status, limit: String(reset ? Math.min(Math.max(shown, 20), 100) : 20) });
      if (channelId) q.set('channel_id', channelId);
      if (!reset && cursor) q.set('cursor', cursor);
      const page = await api('GET', `/api/incidents?${q}`);
      // Keep keyboard focus on the same incident across a refresh.
      const focused = reset && body.contains(document.activeElement) ? document.activeElement.getAttribute('href') : null;
      const rows = page.items.map(row);
      if (reset) { body.replaceChildren(...rows); shown = rows.length; } else { body.append(...rows); shown += rows.length; }
      if (!shown) body.replaceChildren(h('tr', {}, h('td', { colspan: 6, class: 'muted' }, 'No incidents match these filters.')));
      cursor = page.next_cursor;
      more.hidden = !cursor;
      refreshed.textContent = `Updated ${when(Date.now() / 1000)}`;
      if (focused) { const again = body.querySelector(`a[href="${focused}"]`); if (again) again.focus(); }
    }
    more.addEventListener('click', () => act(more, () => load(false)));
    const refreshNow = h('button', { type: 'button', onclick: (ev) => act(ev.target, () => load(true)) }, 'Refresh now');

    show(h('h2', {}, 'Incidents'),
      h('form', { class: 'card', onsubmit: (ev) => ev.preventDefault(), 'aria-label': 'Filters' },
        h('div', { class: 'row' }, field('Status', statusSelect), field('Channel', channelSelect),
          h('div', {}, h('label', { class: 'inline', for: 'auto-refresh' }, auto, `Refresh every ${REFRESH_SECONDS} s`), refreshNow, ' ', refreshed))),
      table, h('p', {}, more));
    await load(true);
    timers.push(setInterval(() => {
      if (auto.checked && !document.hidden) load(true).catch(flash);
    }, REFRESH_SECONDS * 1000));
  }

  const TIMELINE_WORDS = {
    i_new: () => 'Incident opened',
    a_merge: (d) => `Alert ${d.alert_id || ''} joined`,
    i_ack: () => 'Acknowledged',
    i_unack: () => 'Acknowledgement withdrawn',
    i_rslv: (d) => (d.by === 'auto' ? 'Resolved by itself (its last alert recovered)' : 'Resolved by hand'),
    i_reopen: (d) => (d.reason ? `Reopened: ${d.reason}` : 'Reopened'),
    i_comm: (d) => `Comment: ${d.text}`,
    i_storm: (d) => `Alert storm: ${d.threshold} alerts`,
    i_m_flapping: () => 'Marked as flapping',
    i_assign: (d) => `Level ${d.level} paged: ${memberNames(d)}`,
    i_escalate: (d) => `Escalated to level ${d.level}: ${memberNames(d)}`,
  };

  // The members a page named, by name when the entry says who they are.
  function memberNames(d) {
    const names = (d.members || []).map((m) => m.name || m.member_id);
    const list = names.length ? names : (d.member_ids || []);
    return list.length ? list.join(', ') : 'nobody on call';
  }

  async function incidentPage(id) {
    const [inc] = await Promise.all([api('GET', `/api/incidents/${encodeURIComponent(id)}`), loadChannels()]);
    const path = `/api/incidents/${encodeURIComponent(id)}`;
    const reload = () => incidentPage(id).catch(flash);
    const action = (label, verb, done, attrs) => h('button', Object.assign({
      type: 'button',
      onclick: async (ev) => { if (await act(ev.target, () => api('POST', `${path}/${verb}`), done)) reload(); },
    }, attrs), label);

    const buttons = [];
    if (inc.status === 'Triggered') buttons.push(action('Acknowledge', 'ack', 'Incident acknowledged.', { id: 'ack', class: 'primary' }));
    if (inc.status === 'Processing') buttons.push(action('Unacknowledge', 'unack', 'Acknowledgement withdrawn.', { id: 'unack' }));
    if (inc.status !== 'Closed') buttons.push(action('Resolve', 'resolve', 'Incident resolved: it and its open alerts are closed.', { id: 'resolve' }));

    const reason = h('input', { type: 'text', id: 'reopen-reason', maxlength: 1024 });
    const reopen = inc.status === 'Closed' ? h('form', { class: 'row', onsubmit: async (ev) => {
      ev.preventDefault();
      const body = reason.value.trim() ? { reason: reason.value.trim() } : {};
      if (await act(ev.submitter, () => api('POST', `${path}/reopen`, body), 'Incident reopened.')) reload();
    } }, field('Reason (optional)', reason), h('div', {}, h('button', { type: 'submit', id: 'reopen' }, 'Reopen'))) : null;

    const minutes = h('input', { type: 'number', id: 'silence-minutes', min: 1, max: 10080, value: '60', required: true });
    const silence = h('form', { class: 'row', onsubmit: async (ev) => {
      ev.preventDefault();
      const rule = await act(ev.submitter, () => api('POST', `${path}/silence`, { minutes: Number(minutes.value) }),
        (r) => `Silenced for ${minutes.value} minutes: new alerts with this incident's severity and labels are stored but open no incident (rule ${r.rule_id} in channel ${channelName(r.channel_id)}).`);
      if (rule) minutes.value = minutes.value;
    } }, field('Quick silence, minutes', minutes, 'Mutes alerts like this one (same severity and labels) from now on.'),
    h('div', {}, h('button', { type: 'submit', id: 'silence' }, 'Silence')));

    const text = h('textarea', { id: 'comment-text', rows: 2, maxlength: 1024, required: true });
    const comment = h('form', { onsubmit: async (ev) => {
      ev.preventDefault();
      if (await act(ev.submitter, () => api('POST', `${path}/comments`, { text: text.value }), 'Comment added.')) reload();
    } }, field('Comment', text), h('div', { class: 'actions' }, h('button', { type: 'submit', id: 'comment-add' }, 'Add comment')));

    const facts = h('dl', { class: 'facts' },
      h('dt', {}, 'Status'), h('dd', {}, h('span', { id: 'incident-status', class: `badge st-${inc.status}` }, inc.status)),
      h('dt', {}, 'Severity'), h('dd', {}, badge('sev', inc.severity)),
      h('dt', {}, 'Channel'), h('dd', {}, channelLink(inc.channel_id)),
      h('dt', {}, 'Opened'), h('dd', {}, when(inc.created_at)),
      h('dt', {}, 'Acknowledged'), h('dd', {}, when(inc.acknowledged_at)),
      h('dt', {}, 'Closed'), h('dd', {}, when(inc.closed_at)),
      h('dt', {}, 'Alerts'), h('dd', {}, `${inc.active_alert_count} open of ${inc.alert_count}`),
      h('dt', {}, 'Storm level'), h('dd', {}, inc.storm_level ? `${inc.storm_level} alerts` : 'none'),
      h('dt', {}, 'Flapping'), h('dd', {}, inc.flapping ? 'yes: webhooks stay quiet for it' : 'no'),
      h('dt', {}, 'Labels'), h('dd', {}, chips(inc.labels)),
      h('dt', {}, 'Responders'), h('dd', { id: 'responders' }, (inc.responders || []).length
        ? (inc.responders || []).map((r) => h('div', {}, h('code', {}, r.member_id), ` level ${r.level}, paged ${when(r.assigned_at)}`,
          r.acknowledged_at ? `, acknowledged ${when(r.acknowledged_at)}` : ''))
        : 'nobody paged'),
      h('dt', {}, 'Incident id'), h('dd', {}, h('code', {}, inc.incident_id)));

    const notificationRows = h('tbody');
    const notes = await api('GET', `${path}/notifications`);
    for (const n of notes.items) {
      notificationRows.append(h('tr', {}, h('td', {}, when(n.at)), h('td', {}, h('code', {}, n.member_id)), h('td', { class: 'num' }, n.level),
        h('td', {}, n.via), h('td', {}, h('span', { class: `badge nt-${n.status}` }, n.status)), h('td', { class: 'num' }, n.attempts), h('td', {}, n.error || '')));
    }

    const alertRows = h('tbody');
    for (const alert of inc.alerts || []) {
      const toggle = h('button', { type: 'button', 'aria-expanded': 'false', class: 'events-toggle' }, 'Show events');
      const tr = h('tr', {},
        h('td', {}, badge('sev', alert.severity)),
        h('td', {}, alert.active ? 'open' : `closed ${when(alert.closed_at)}`,
          alert.silenced ? h('span', { class: 'badge' }, 'silenced') : null, alert.inhibited ? h('span', { class: 'badge' }, 'inhibited') : null),
        h('td', {}, alert.title, h('div', { class: 'hint' }, alert.description)),
        h('td', {}, h('code', {}, alert.alert_key)),
        h('td', { class: 'num' }, alert.event_count),
        h('td', {}, chips(alert.labels)),
        h('td', {}, toggle));
      let detail = null;
      toggle.addEventListener('click', async () => {
        if (detail) {
          detail.remove(); detail = null;
          toggle.setAttribute('aria-expanded', 'false'); toggle.textContent = 'Show events';
          return;
        }
        const full = await act(toggle, () => api('GET', `/api/alerts/${alert.alert_id}`));
        if (!full) return;
        const list = h('table', {}, h('caption', {}, `Events of alert ${alert.alert_key}`),
          h('thead', {}, h('tr', {}, ['Received', 'Status', 'Title', 'Description', 'Labels'].map((t) => h('th', { scope: 'col' }, t)))),
          h('tbody', {}, (full.events || []).map((e) => h('tr', {}, h('td', {}, when(e.event_time)), h('td', {}, badge('sev', e.event_status)),
            h('td', {}, e.title), h('td', {}, e.description), h('td', {}, chips(e.labels))))));
        detail = h('tr', { class: 'events' }, h('td', { colspan: 7 }, list));
        tr.after(detail);
        toggle.setAttribute('aria-expanded', 'true'); toggle.textContent = 'Hide events';
      });
      alertRows.append(tr);
    }

    const timeline = h('ol', { class: 'timeline', id: 'timeline' });
    const more = h('button', { type: 'button', hidden: true }, 'Load more of the timeline');
    let cursor = null;
    async function loadTimeline() {
      const q = new URLSearchParams({ limit: '50' });
      if (cursor) q.set('cursor', cursor);
      const page = await api('GET', `${path}/timeline?${q}`);
      timeline.append(...page.items.map((item) => h('li', { 'data-type': item.type },
        timeEl(item.at), (TIMELINE_WORDS[item.type] || (() => item.type))(item.detail || {}))));
      cursor = page.next_cursor;
      more.hidden = !cursor;
    }
    more.addEventListener('click', () => act(more, loadTimeline));

    show(h('p', {}, h('a', { href: '#/incidents' }, '← All incidents')),
      h('h2', { id: 'incident-title' }, inc.title),
      h('div', { class: 'split' },
        h('section', { class: 'card', 'aria-label': 'Facts' }, facts),
        h('section', { class: 'card', 'aria-labelledby': 'actions-h', 'data-needs': 'responder' }, h('h3', { id: 'actions-h' }, 'Actions'),
          h('div', { class: 'actions' }, buttons), reopen, silence, comment)),
      h('h3', {}, 'Alerts'),
      h('table', { id: 'alerts' }, h('caption', { class: 'visually-hidden' }, 'Alerts of this incident'),
        h('thead', {}, h('tr', {}, ['Severity', 'State', 'Title', 'Alert key'].map((t) => h('th', { scope: 'col' }, t)),
          h('th', { scope: 'col', class: 'num' }, 'Events'), h('th', { scope: 'col' }, 'Labels'), h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Events')))),
        alertRows),
      h('h3', {}, 'Notifications'),
      notes.items.length ? h('table', { id: 'notifications' }, h('caption', { class: 'visually-hidden' }, 'Who the escalation notified'),
        h('thead', {}, h('tr', {}, ['Paged', 'Member'].map((t) => h('th', { scope: 'col' }, t)), h('th', { scope: 'col', class: 'num' }, 'Level'),
          ['Via', 'Status'].map((t) => h('th', { scope: 'col' }, t)), h('th', { scope: 'col', class: 'num' }, 'Attempts'), h('th', { scope: 'col' }, 'Error'))),
        notificationRows) : h('p', { class: 'muted', id: 'notifications' }, 'Nobody was notified (no escalation rule matched, or no level is due yet).'),
      h('h3', {}, 'Timeline'), timeline, h('p', {}, more));
    await loadTimeline();
  }

  // ---------------------------------------------------------------- channels

  async function channelList() {
    const channels = await loadChannels();
    const name = h('input', { type: 'text', id: 'channel-name', required: true, maxlength: 100 });
    const form = h('form', { class: 'card', id: 'channel-create', 'data-needs': 'admin', onsubmit: async (ev) => {
      ev.preventDefault();
      const ch = await act(ev.submitter, () => api('POST', '/api/channels', { name: name.value }), 'Channel created.');
      if (ch) go(`#/channels/${ch.channel_id}`);
    } }, h('h3', {}, 'New channel'), h('div', { class: 'row' }, field('Name', name), h('div', {}, h('button', { type: 'submit', class: 'primary' }, 'Create channel'))));
    show(h('h2', {}, 'Channels'),
      h('table', { id: 'channels' }, h('caption', { class: 'visually-hidden' }, 'Channels'),
        h('thead', {}, h('tr', {}, ['Name', 'Grouping', 'Closes by itself', 'Storm thresholds', 'Flapping', 'Created'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, channels.length ? channels.map((c) => h('tr', {},
          h('td', {}, h('a', { href: `#/channels/${c.channel_id}` }, c.name)),
          h('td', {}, c.grouping.method === 'rules' ? `by ${c.grouping.equals.map((g) => g.join(' + ')).join(' or ')}` : 'one incident per alert'),
          h('td', {}, c.auto_close ? 'yes' : 'no'),
          h('td', {}, c.storm_thresholds.join(', ') || 'none'),
          h('td', {}, c.flapping.enabled ? `${c.flapping.max_changes} in ${c.flapping.window_minutes} min` : 'off'),
          h('td', {}, when(c.created_at))))
          : h('tr', {}, h('td', { colspan: 6, class: 'muted' }, 'No channels yet.')))),
      form);
  }

  const RULE_TEMPLATES = {
    drop: { name: 'Drop test hosts', if: [[{ key: 'labels.env', oper: 'IN', vals: ['test'] }]], enabled: true },
    silence: { name: 'Weeknight maintenance', action: 'mark', if: [[{ key: 'labels.service', oper: 'IN', vals: ['batch'] }]],
      time: { weekly: [{ days: [1, 2, 3, 4, 5], start: '22:00', end: '06:00' }], timezone: 'UTC' }, enabled: true },
    inhibit: { name: 'Host down mutes its other alerts', source_if: [[{ key: 'title', oper: 'IN', vals: ['/host down/'] }]],
      target_if: [[{ key: 'severity', oper: 'IN', vals: ['Warning', 'Info'] }]], equals: ['labels.host'], action: 'mark', enabled: true },
  };
  const DAYS = ['', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];

  function ruleSummary(kind, rule) {
    if (kind === 'inhibit') {
      return `${rule.action}: when ${conditionsText(rule.source_if)} is open, mute ${conditionsText(rule.target_if)} with equal ${rule.equals.join(', ')}`;
    }
    let text = `${kind === 'silence' ? `${rule.action}: ` : ''}${conditionsText(rule.if)}`;
    if (kind === 'silence') {
      const t = rule.time || {};
      if (t.weekly) text += `; weekly ${t.weekly.map((w) => `${w.days.map((d) => DAYS[d]).join(',')} ${w.start}–${w.end}`).join('; ')} (${t.timezone || 'UTC'})`;
      else text += `; from ${when(t.start)} to ${when(t.end)}`;
      text += rule.active ? ' — active now' : ' — not active now';
    }
    return text;
  }

  /** One rule list of a channel (drop, silence or inhibit): view, reorder, toggle, edit, add, delete. */
  async function ruleSection(channelId, kind) {
    const path = `/api/channels/${channelId}/${kind}-rules`;
    const section = h('section', { class: 'card', 'aria-labelledby': `${kind}-h` });
    const title = { drop: 'Drop rules', silence: 'Silence rules', inhibit: 'Inhibit rules' }[kind];
    async function render(focusSelector) {
      const { items } = await api('GET', path);
      const template = pretty(RULE_TEMPLATES[kind]);
      const editor = h('textarea', { id: `${kind}-rule-json`, rows: template.split('\n').length + 1, spellcheck: 'false' }, template);
      let editing = null;
      const submit = h('button', { type: 'submit', class: 'primary' }, `Add ${kind} rule`);
      const cancel = h('button', { type: 'button', hidden: true, onclick: () => { editing = null; editor.value = pretty(RULE_TEMPLATES[kind]); submit.textContent = `Add ${kind} rule`; cancel.hidden = true; } }, 'Cancel edit');
      const form = h('form', { 'data-needs': 'admin', onsubmit: async (ev) => {
        ev.preventDefault();
        const body = await act(null, async () => parseJson(editor.value, 'Rule (JSON)'));
        if (!body) return;
        const done = editing ? `Rule ${body.name || editing} saved.` : `${title.slice(0, -1)} added.`;
        const saved = await act(submit, () => (editing ? api('PATCH', `${path}/${editing}`, body) : api('POST', path, body)), done);
        if (saved) render();
      } }, field(editing ? 'Rule (JSON)' : `New ${kind} rule (JSON)`, editor,
        'Fields of SPEC section 7: name, if (a list of AND-lists of {key, oper: IN|NOTIN, vals}), enabled, and for silence action and time, for inhibit source_if, target_if and equals.'),
      h('div', { class: 'actions' }, submit, cancel));
      const rows = items.map((rule, i) => {
        const patch = (body, done) => async (ev) => { if (await act(ev.target, () => api('PATCH', `${path}/${rule.rule_id}`, body), done)) render(); };
        return h('tr', {},
          h('td', { class: 'num' }, rule.position),
          h('td', {}, rule.name),
          h('td', {}, rule.enabled ? 'enabled' : 'disabled'),
          h('td', {}, ruleSummary(kind, rule)),
          h('td', {}, h('div', { class: 'actions', 'data-needs': 'admin' },
            h('button', { type: 'button', onclick: () => {
              const body = Object.assign({}, rule);
              for (const k of ['rule_id', 'position', 'active', 'incident_id']) delete body[k];
              editing = rule.rule_id; editor.value = pretty(body); submit.textContent = 'Save rule'; cancel.hidden = false; editor.focus();
            } }, 'Edit'),
            h('button', { type: 'button', onclick: patch({ enabled: !rule.enabled }, `Rule ${rule.name} ${rule.enabled ? 'disabled' : 'enabled'}.`) }, rule.enabled ? 'Disable' : 'Enable'),
            i > 0 ? h('button', { type: 'button', onclick: patch({ position: i - 1 }, `Rule ${rule.name} moved up.`) }, 'Move up') : null,
            i < items.length - 1 ? h('button', { type: 'button', onclick: patch({ position: i + 1 }, `Rule ${rule.name} moved down.`) }, 'Move down') : null,
            h('button', { type: 'button', class: 'danger', onclick: async (ev) => {
              if (await act(ev.target, () => api('DELETE', `${path}/${rule.rule_id}`), `Rule ${rule.name} deleted.`)) render();
            } }, 'Delete'))));
      });
      section.replaceChildren(h('h3', { id: `${kind}-h` }, title),
        h('table', { id: `${kind}-rules` }, h('caption', { class: 'visually-hidden' }, title),
          h('thead', {}, h('tr', {}, ['#', 'Name', 'State', 'What it does', 'Actions'].map((t) => h('th', { scope: 'col' }, t)))),
          h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', { colspan: 5, class: 'muted' }, 'None.')))),
        form);
      if (focusSelector) { const el = section.querySelector(focusSelector); if (el) el.focus(); }
    }
    await render();
    return section;
  }

  async function channelPage(id) {
    const ch = await api('GET', `/api/channels/${encodeURIComponent(id)}`);
    const path = `/api/channels/${ch.channel_id}`;
    const g = ch.grouping;
    const f = ch.flapping;
    const inputs = {
      name: h('input', { type: 'text', value: ch.name, required: true, maxlength: 100 }),
      autoClose: h('input', { type: 'checkbox', checked: ch.auto_close }),
      method: select([['none', 'None: one incident per alert'], ['rules', 'Rules: merge alerts with equal keys']], g.method),
      equals: h('textarea', { rows: 3, spellcheck: 'false' }, g.equals.map((group) => group.join(', ')).join('\n')),
      strict: h('input', { type: 'checkbox', checked: g.strict }),
      window: h('input', { type: 'number', min: 0, max: 43200, value: String(g.window_minutes) }),
      windowType: select([['tumbling', 'Tumbling (from the incident\'s start)'], ['sliding', 'Sliding (restarts with each merge)']], g.window_type),
      storm: h('input', { type: 'text', value: ch.storm_thresholds.join(', ') }),
      flapping: h('input', { type: 'checkbox', checked: f.enabled }),
      maxChanges: h('input', { type: 'number', min: 2, max: 100, value: String(f.max_changes) }),
      flapWindow: h('input', { type: 'number', min: 1, max: 1440, value: String(f.window_minutes) }),
      mute: h('input', { type: 'number', min: 0, max: 1440, value: String(f.mute_minutes) }),
    };
    const numbers = (text) => text.split(/[\s,]+/).filter(Boolean).map(Number);
    const settings = h('form', { class: 'card', id: 'channel-settings', 'data-needs': 'admin', onsubmit: async (ev) => {
      ev.preventDefault();
      const body = {
        name: inputs.name.value,
        auto_close: inputs.autoClose.checked,
        grouping: {
          method: inputs.method.value,
          equals: inputs.equals.value.split('\n').map((line) => line.split(',').map((k) => k.trim()).filter(Boolean)).filter((group) => group.length),
          strict: inputs.strict.checked,
          window_minutes: Number(inputs.window.value),
          window_type: inputs.windowType.value,
        },
        storm_thresholds: numbers(inputs.storm.value),
        flapping: { enabled: inputs.flapping.checked, max_changes: Number(inputs.maxChanges.value),
          window_minutes: Number(inputs.flapWindow.value), mute_minutes: Number(inputs.mute.value) },
      };
      if (await act(ev.submitter, () => api('PATCH', path, body), 'Channel saved.')) loadChannels().catch(flash);
    } },
    h('h3', {}, 'Settings'),
    h('div', { class: 'row' }, field('Name', inputs.name), h('div', {}, checkbox('Close an incident by itself when its last alert recovers', { checked: ch.auto_close, id: 'auto-close' }))),
    h('div', { class: 'split' }, h('fieldset', {}, h('legend', {}, 'Grouping'),
      h('div', { class: 'row' }, field('Method', inputs.method), field('Window, minutes (0 = until closed)', inputs.window), field('Window type', inputs.windowType)),
      field('Key groups', inputs.equals, 'One group per line, keys separated by commas (title, severity, labels.NAME); groups are tried in order.'),
      checkbox('Strict: a missing value never matches', { checked: g.strict, id: 'strict' })),
    h('fieldset', {}, h('legend', {}, 'Storm and flapping'),
      h('div', { class: 'row' }, field('Storm thresholds', inputs.storm, 'Alert counts that mark a storm, e.g. 10, 100 (at most 5, each 2–10000).')),
      checkbox('Flapping detection', { checked: f.enabled, id: 'flapping-enabled' }),
      h('div', { class: 'row' }, field('Changes', inputs.maxChanges), field('Within, minutes', inputs.flapWindow), field('Mute afterwards, minutes', inputs.mute)))),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Save settings')));
    // The checkboxes live inside their labels; point the inputs at them.
    inputs.autoClose = settings.querySelector('#auto-close');
    inputs.strict = settings.querySelector('#strict');
    inputs.flapping = settings.querySelector('#flapping-enabled');

    const del = h('button', { type: 'button', class: 'danger', onclick: async (ev) => {
      if (ev.target.dataset.armed !== 'yes') {
        ev.target.dataset.armed = 'yes';
        ev.target.textContent = 'Really delete this channel and its rules';
        return;
      }
      if (await act(ev.target, () => api('DELETE', path), `Channel ${ch.name} deleted.`)) go('#/channels');
    } }, 'Delete channel');

    const sections = await Promise.all(['drop', 'silence', 'inhibit'].map((kind) => ruleSection(ch.channel_id, kind)));
    const escalation = await escalationSection(ch.channel_id);
    show(h('p', {}, h('a', { href: '#/channels' }, '← All channels')),
      h('h2', {}, `Channel ${ch.name}`),
      h('p', { class: 'muted' }, 'Channel id ', h('code', {}, ch.channel_id), ' · ', h('a', { href: `#/incidents?status=Triggered%2CProcessing&channel_id=${ch.channel_id}` }, 'its open incidents')),
      settings, sections, escalation, h('p', { 'data-needs': 'admin' }, del));
  }

  // A channel's escalation rules (SPEC 14): each rule in words, and the
  // whole list as JSON to edit.
  function escalationSummary(rule) {
    const levels = rule.levels.map((l, i) => {
      const who = [...(l.targets.member_ids || []).map((m) => `member ${m}`), ...(l.targets.schedule_ids || []).map((s) => `schedule ${s}`)].join(', ');
      return `level ${i + 1}: ${who} by ${(l.notify || ['email', 'im']).join(' and ')}, next after ${l.escalate_after_minutes} min`;
    });
    const when = rule.if ? `if ${conditionsText(rule.if)}` : 'every incident';
    return `${rule.enabled === false ? '(disabled) ' : ''}${when}; wait ${rule.delay_minutes || 0} min; ${levels.join('; ')}; repeat ${rule.repeat || 0}×; while ${(rule.escalate_when || 'not_acked').replace('_', ' ')}`;
  }

  async function escalationSection(channelId) {
    const path = `/api/channels/${channelId}/escalation`;
    const current = await api('GET', path);
    const list = h('ol', { id: 'escalation-rules' }, current.rules.map((r) => h('li', {}, h('strong', {}, r.name), ': ', escalationSummary(r))));
    const text = h('textarea', { id: 'escalation-json', rows: 10, spellcheck: 'false' }, pretty(current));
    const form = h('form', { 'data-needs': 'admin', onsubmit: async (ev) => {
      ev.preventDefault();
      const saved = await act(ev.submitter, () => api('PUT', path, parseJson(text.value, 'Escalation rules (JSON)')),
        'Escalation rules saved: incidents opened from now on use them.');
      if (saved) {
        list.replaceChildren(...saved.rules.map((r) => h('li', {}, h('strong', {}, r.name), ': ', escalationSummary(r))));
        empty.hidden = saved.rules.length > 0;
      }
    } }, field('Escalation rules (JSON)', text, 'The first enabled rule whose if matches a new incident is its chain; levels name member_ids and schedule_ids (SPEC 14).'),
    h('div', { class: 'actions' }, h('button', { type: 'submit', id: 'escalation-save' }, 'Save escalation rules')));
    const empty = h('p', { class: 'muted', hidden: current.rules.length > 0 }, 'No escalation rules: incidents page nobody.');
    return h('section', { class: 'card', 'aria-labelledby': 'escalation-h' }, h('h3', { id: 'escalation-h' }, 'Escalation'), empty, list, form);
  }

  // ---------------------------------------------------------------- integrations

  function pushUrl(pushPath) { return `${location.origin}${BASE}${pushPath}`; }

  /** The key is shown once: the push URL and a curl that works as printed. */
  function keyPanel(answer, kind) {
    const url = h('input', { type: 'text', id: 'push-url', readonly: true, class: 'wide', value: pushUrl(answer.push_path) });
    const sample = kind === 'standard'
      ? `-H 'Content-Type: application/json' -d '{"title_rule":"Test alert from the console","event_status":"Warning","alert_key":"console-test"}'`
      : `-H 'Content-Type: application/json' --data-binary @payload.json   # the sender's own payload`;
    const curl = h('pre', { id: 'push-curl' }, `curl -sS -X POST '${url.value}' ${sample}`);
    return h('div', { class: 'secret', id: 'integration-secret' },
      h('p', {}, h('strong', {}, 'Copy these now: the key is shown only this once.')),
      h('p', {}, 'Integration key: ', h('code', { id: 'integration-key' }, answer.integration_key)),
      field('Push URL', url), h('div', { class: 'actions' }, copyButton(url, 'push URL')),
      h('p', {}, 'A ready curl:'), curl, h('div', { class: 'actions' }, copyButton(curl, 'curl')));
  }

  async function integrationList() {
    const [{ items }, channels] = await Promise.all([api('GET', '/api/integrations'), loadChannels()]);
    const name = h('input', { type: 'text', id: 'integration-name', maxlength: 100 });
    const kind = select(KINDS.map((k) => [k, k]), 'standard', { id: 'integration-kind' });
    const channel = select([['', 'Shared: route by the rules below'], ...channels.map((c) => [c.channel_id, c.name])], channels.length ? channels[0].channel_id : '', { id: 'integration-channel' });
    const routes = h('textarea', { id: 'integration-routes', rows: 6, spellcheck: 'false' },
      pretty({ cases: [{ if: [[{ key: 'labels.env', oper: 'IN', vals: ['prod'] }]], channel_ids: channels.slice(0, 1).map((c) => c.channel_id), fallthrough: false }], default: { channel_ids: channels.slice(0, 1).map((c) => c.channel_id) } }));
    const routesField = field('Routes (JSON)', routes, 'cases are tried in order; default is used when none matched (SPEC section 6).');
    const perSecond = h('input', { type: 'number', id: 'rate-second', min: 1, placeholder: '100' });
    const perMinute = h('input', { type: 'number', id: 'rate-minute', min: 1, placeholder: '1000' });
    const token = h('input', { type: 'password', id: 'callback-token', autocomplete: 'off' });
    const secret = h('input', { type: 'password', id: 'client-secret', autocomplete: 'off' });
    const verifyBox = h('input', { type: 'checkbox', id: 'verify-signature', checked: true });
    const tokenField = field('Jiankongbao callback token (optional)', token);
    const secretField = field('Sentry client secret (optional)', secret);
    const verifyField = h('div', {}, h('label', { class: 'inline', for: 'verify-signature' }, verifyBox, 'Verify SNS signatures'));
    const result = h('div');
    const sync = () => {
      routesField.hidden = channel.value !== '';
      tokenField.hidden = kind.value !== 'jiankongbao';
      secretField.hidden = kind.value !== 'sentry';
      verifyField.hidden = kind.value !== 'aws-cloudwatch';
    };
    kind.addEventListener('change', sync);
    channel.addEventListener('change', sync);
    sync();
    const form = h('form', { class: 'card', id: 'integration-create', 'data-needs': 'admin', onsubmit: async (ev) => {
      ev.preventDefault();
      const body = { name: name.value, kind: kind.value };
      const made = await act(ev.submitter, async () => {
        if (channel.value) body.channel_id = channel.value;
        else body.routes = parseJson(routes.value, 'Routes (JSON)');
        if (perSecond.value || perMinute.value) {
          body.rate_limit = {};
          if (perSecond.value) body.rate_limit.per_second = Number(perSecond.value);
          if (perMinute.value) body.rate_limit.per_minute = Number(perMinute.value);
        }
        if (kind.value === 'jiankongbao' && token.value) body.callback_token = token.value;
        if (kind.value === 'sentry' && secret.value) body.client_secret = secret.value;
        if (kind.value === 'aws-cloudwatch' && !verifyBox.checked) body.verify_signature = false;
        return api('POST', '/api/integrations', body);
      }, (r) => `Integration ${r.name} created. Copy its push URL now.`);
      if (!made) return;
      token.value = ''; secret.value = '';
      result.replaceChildren(keyPanel(made, made.kind), h('p', {}, h('a', { href: `#/integrations/${made.integration_id}` }, `Open ${made.name}: rotate its key, enrichment and pipeline`)));
      const link = h('a', { href: `#/integrations/${made.integration_id}` }, made.name);
      tbody.prepend(h('tr', {}, h('td', {}, link), h('td', {}, made.kind), h('td', {}, made.channel_id ? channelName(made.channel_id) : 'shared (routes)'), h('td', {}, 'now')));
      document.getElementById('push-url').focus();
    } },
    h('h3', {}, 'New integration'),
    h('div', { class: 'row' }, field('Name', name), field('Kind', kind), field('Channel', channel)),
    routesField,
    h('div', { class: 'row' }, field('Rate limit per second', perSecond), field('Rate limit per minute', perMinute), tokenField, secretField, verifyField),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Create integration')));
    const tbody = h('tbody', {}, items.length ? [...items].reverse().map((i) => h('tr', {},
      h('td', {}, h('a', { href: `#/integrations/${i.integration_id}` }, i.name)),
      h('td', {}, i.kind),
      h('td', {}, i.channel_id ? channelName(i.channel_id) : 'shared (routes)'),
      h('td', {}, when(i.created_at))))
      : h('tr', {}, h('td', { colspan: 4, class: 'muted' }, 'No integrations yet.')));
    show(h('h2', {}, 'Integrations'), result, form,
      h('table', { id: 'integrations' }, h('caption', {}, 'Integrations, newest first'),
        h('thead', {}, h('tr', {}, ['Name', 'Kind', 'Channel', 'Created'].map((t) => h('th', { scope: 'col' }, t)))), tbody));
  }

  const ENRICHMENT_HELP = 'A list of rules, run in order: {"kind":"extract","source":"title","pattern":"/host (?P<value>\\\\S+)/","label":"host"}, {"kind":"compose","label":"NAME","template":"[TPL]${a}-${b}"}, {"kind":"map","table_id":"..."}, {"kind":"drop_labels","labels":["NAME"]}; each may carry "if", "override", "name", "enabled".';
  const PIPELINE_HELP = 'A list of rules, run top-down on non-Ok events: {"kind":"title_reset","title":"..."}, {"kind":"description_reset","description":"..."}, {"kind":"severity_reset","severity":"Critical"}, {"kind":"drop"}; each may carry "if", "name", "enabled".';

  function ruleListEditor(integrationId, list, help) {
    const path = `/api/integrations/${integrationId}/${list}`;
    const text = h('textarea', { id: `${list}-json`, rows: 8, spellcheck: 'false' });
    const section = h('form', { class: 'card', onsubmit: async (ev) => {
      ev.preventDefault();
      const answer = await act(ev.submitter, async () => api('PUT', path, { rules: parseJson(text.value, `${list} (JSON)`) }), `${list[0].toUpperCase()}${list.slice(1)} saved.`);
      if (answer) text.value = pretty(answer.rules);
    } }, h('h3', {}, list === 'enrichment' ? 'Label enrichment' : 'Pipeline'),
    field(`${list[0].toUpperCase()}${list.slice(1)} rules (JSON)`, text, help),
    h('div', { class: 'actions', 'data-needs': 'admin' }, h('button', { type: 'submit', class: 'primary' }, `Save ${list}`)));
    return { section, load: async () => { text.value = pretty((await api('GET', path)).rules); } };
  }

  async function integrationPage(id) {
    const [integ] = await Promise.all([api('GET', `/api/integrations/${encodeURIComponent(id)}`), loadChannels()]);
    const result = h('div');
    const rotate = h('button', { type: 'button', id: 'rotate-key', onclick: async (ev) => {
      if (ev.target.dataset.armed !== 'yes') {
        ev.target.dataset.armed = 'yes';
        ev.target.textContent = 'Really rotate: the old key stops working at once';
        return;
      }
      const answer = await act(ev.target, () => api('POST', `/api/integrations/${integ.integration_id}/rotate-key`), 'Key rotated: the old key no longer works. Copy the new push URL now.');
      ev.target.dataset.armed = '';
      ev.target.textContent = 'Rotate key';
      if (answer) { result.replaceChildren(keyPanel(answer, integ.kind)); document.getElementById('push-url').focus(); }
    } }, 'Rotate key');
    const enrichment = ruleListEditor(integ.integration_id, 'enrichment', ENRICHMENT_HELP);
    const pipeline = ruleListEditor(integ.integration_id, 'pipeline', PIPELINE_HELP);
    await Promise.all([enrichment.load(), pipeline.load()]);
    show(h('p', {}, h('a', { href: '#/integrations' }, '← All integrations')),
      h('h2', {}, `Integration ${integ.name}`),
      result,
      h('section', { class: 'card' }, h('dl', { class: 'facts' },
        h('dt', {}, 'Kind'), h('dd', {}, integ.kind),
        h('dt', {}, 'Channel'), h('dd', {}, integ.channel_id ? channelLink(integ.channel_id) : 'shared: routes below'),
        h('dt', {}, 'Rate limit'), h('dd', {}, `${integ.rate_limit.per_second} per second, ${integ.rate_limit.per_minute} per minute`),
        h('dt', {}, 'Push path'), h('dd', {}, h('code', {}, `${BASE}/event/push/alert/${integ.kind}?integration_key=…`), ' (the key was shown once; rotate to get a new one)'),
        integ.kind === 'jiankongbao' ? [h('dt', {}, 'Callback token'), h('dd', {}, integ.has_callback_token ? 'set' : 'not set')] : null,
        integ.kind === 'sentry' ? [h('dt', {}, 'Client secret'), h('dd', {}, integ.has_client_secret ? 'set' : 'not set')] : null,
        h('dt', {}, 'Created'), h('dd', {}, when(integ.created_at)),
        h('dt', {}, 'Integration id'), h('dd', {}, h('code', {}, integ.integration_id))),
      integ.routes ? h('pre', {}, pretty(integ.routes)) : null,
      h('div', { class: 'actions', 'data-needs': 'admin' }, rotate)),
      enrichment.section, pipeline.section);
  }

  // ---------------------------------------------------------------- webhooks

  async function webhookList() {
    const [{ items }, channels] = await Promise.all([api('GET', '/api/webhooks'), loadChannels()]);
    const name = h('input', { type: 'text', id: 'webhook-name', maxlength: 100 });
    const url = h('input', { type: 'url', id: 'webhook-url', class: 'wide', placeholder: 'https://hooks.example/alerts' });
    const kind = select(WEBHOOK_KINDS.map((k) => [k, k]), 'generic', { id: 'webhook-kind' });
    const secret = h('input', { type: 'password', id: 'webhook-secret', autocomplete: 'off' });
    const headers = h('textarea', { id: 'webhook-headers', rows: 2, spellcheck: 'false' }, '{}');
    const channelBoxes = channels.map((c) => checkbox(c.name, { value: c.channel_id, name: 'webhook-channel' }));
    const typeBoxes = [...INCIDENT_EVENTS, ...ALERT_EVENTS].map((t) => checkbox(t, { value: t, name: 'webhook-type', checked: INCIDENT_EVENTS.includes(t) }));
    const form = h('form', { class: 'card', id: 'webhook-create', 'data-needs': 'admin', onsubmit: async (ev) => {
      ev.preventDefault();
      const made = await act(ev.submitter, async () => {
        const picked = (n) => [...form.querySelectorAll(`input[name="${n}"]:checked`)].map((b) => b.value);
        const body = { name: name.value, url: url.value, kind: kind.value, channel_ids: picked('webhook-channel'),
          event_types: picked('webhook-type'), headers: parseJson(headers.value || '{}', 'Headers (JSON)') };
        if (secret.value) body.secret = secret.value;
        return api('POST', '/api/webhooks', body);
      }, (w) => `Webhook ${w.name} created.`);
      if (made) go(`#/webhooks/${made.webhook_id}`);
    } },
    h('h3', {}, 'New webhook'),
    h('div', { class: 'row' }, field('Name', name), field('Kind', kind), field('Secret (optional, shown never again)', secret)),
    field('URL', url),
    h('fieldset', {}, h('legend', {}, 'Channels (none ticked: every channel)'), channelBoxes.length ? channelBoxes : h('span', { class: 'muted' }, 'No channels yet.')),
    h('fieldset', {}, h('legend', {}, 'Event types'), typeBoxes),
    field('Headers (JSON object)', headers),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Create webhook')));
    show(h('h2', {}, 'Webhooks'),
      h('table', { id: 'webhooks' }, h('caption', { class: 'visually-hidden' }, 'Webhooks'),
        h('thead', {}, h('tr', {}, ['Name', 'Kind', 'URL', 'State', 'Channels', 'Event types'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, items.length ? items.map((w) => h('tr', {},
          h('td', {}, h('a', { href: `#/webhooks/${w.webhook_id}` }, w.name)), h('td', {}, w.kind), h('td', {}, h('code', {}, w.url)),
          h('td', {}, w.enabled ? 'enabled' : 'disabled'),
          h('td', {}, w.channel_ids.length ? w.channel_ids.map(channelName).join(', ') : 'every channel'),
          h('td', {}, w.event_types.join(' '))))
          : h('tr', {}, h('td', { colspan: 6, class: 'muted' }, 'No webhooks yet.')))),
      form);
  }

  async function webhookPage(id) {
    const [w] = await Promise.all([api('GET', `/api/webhooks/${encodeURIComponent(id)}`), loadChannels()]);
    const path = `/api/webhooks/${w.webhook_id}`;
    const statusFilter = select([['', 'Every delivery'], ['failed', 'Failed only'], ['succeeded', 'Succeeded only']], '', { id: 'delivery-status' });
    const body = h('tbody');
    const more = h('button', { type: 'button', hidden: true }, 'Load more deliveries');
    let cursor = null;
    async function load(reset) {
      const q = new URLSearchParams({ limit: '50' });
      if (statusFilter.value) q.set('status', statusFilter.value);
      if (!reset && cursor) q.set('cursor', cursor);
      const page = await api('GET', `${path}/deliveries?${q}`);
      const rows = page.items.map((d) => {
        const object = d.event_type.startsWith('i_') ? h('a', { href: `#/incidents/${d.object_id}` }, d.object_id) : h('code', {}, d.object_id);
        return h('tr', {},
          h('td', {}, when(d.at)), h('td', {}, d.event_type), h('td', {}, object),
          h('td', {}, d.status), h('td', { class: 'num' }, d.attempts), h('td', { class: 'num' }, d.http_status ?? '—'),
          h('td', { class: 'num' }, `${d.duration_ms} ms`), h('td', {}, d.error || ''),
          h('td', {}, h('button', { type: 'button', 'data-needs': 'admin', onclick: (ev) => act(ev.target, () => api('POST', `${path}/deliveries/${d.delivery_id}/resend`),
            (r) => `Resend queued as delivery ${r.delivery_id}; it appears here once sent.`) }, 'Resend')));
      });
      if (reset) body.replaceChildren(...rows); else body.append(...rows);
      if (!body.children.length) body.replaceChildren(h('tr', {}, h('td', { colspan: 9, class: 'muted' }, 'No deliveries (kept 7 days).')));
      cursor = page.next_cursor;
      more.hidden = !cursor;
    }
    statusFilter.addEventListener('change', () => load(true).catch(flash));
    more.addEventListener('click', () => act(more, () => load(false)));
    const toggle = h('button', { type: 'button', onclick: async (ev) => {
      if (await act(ev.target, () => api('PATCH', path, { enabled: !w.enabled }), `Webhook ${w.enabled ? 'disabled' : 'enabled'}.`)) route();
    } }, w.enabled ? 'Disable' : 'Enable');
    const del = h('button', { type: 'button', class: 'danger', onclick: async (ev) => {
      if (ev.target.dataset.armed !== 'yes') { ev.target.dataset.armed = 'yes'; ev.target.textContent = 'Really delete this webhook'; return; }
      if (await act(ev.target, () => api('DELETE', path), `Webhook ${w.name} deleted.`)) go('#/webhooks');
    } }, 'Delete webhook');
    show(h('p', {}, h('a', { href: '#/webhooks' }, '← All webhooks')),
      h('h2', {}, `Webhook ${w.name}`),
      h('section', { class: 'card' }, h('dl', { class: 'facts' },
        h('dt', {}, 'URL'), h('dd', {}, h('code', {}, w.url)),
        h('dt', {}, 'Kind'), h('dd', {}, w.kind),
        h('dt', {}, 'State'), h('dd', {}, w.enabled ? 'enabled' : 'disabled'),
        h('dt', {}, 'Channels'), h('dd', {}, w.channel_ids.length ? w.channel_ids.map(channelName).join(', ') : 'every channel'),
        h('dt', {}, 'Event types'), h('dd', {}, w.event_types.join(' ')),
        h('dt', {}, 'Secret'), h('dd', {}, w.has_secret ? 'set (never shown)' : 'none'),
        h('dt', {}, 'Headers'), h('dd', {}, chips(w.headers))),
      h('div', { class: 'actions', 'data-needs': 'admin' }, toggle, del)),
      h('h3', {}, 'Delivery history'),
      h('div', { class: 'row' }, field('Show', statusFilter)),
      h('table', { id: 'deliveries' }, h('caption', { class: 'visually-hidden' }, 'Deliveries, newest first'),
        h('thead', {}, h('tr', {}, ['At', 'Event', 'Object', 'Status', 'Attempts', 'HTTP', 'Took', 'Error', 'Resend'].map((t) => h('th', { scope: 'col' }, t)))), body),
      h('p', {}, more));
    await load(true);
  }

  // ---------------------------------------------------------------- on-call: members and schedules

  const PICTURE_DAYS = 14;
  // One colour per member, the same in every row of every schedule (by the
  // member's place in the list); the member's name is written in each bar.
  const MEMBER_COLOURS = ['#b6e3ff', '#ffd8b5', '#c8f0c8', '#f5c2e7', '#fff1a8', '#d8c8ff', '#ffc9c9', '#b8f2e6', '#e6d3b3', '#cfd8dc'];
  const IM_FIELDS = [['slack_user_id', 'Slack user id', 'U followed by capitals and digits'],
    ['feishu_open_id', 'Feishu open_id', 'ou_ followed by letters and digits'],
    ['dingtalk_mobile', 'DingTalk mobile', 'digits, + and - allowed'],
    ['wecom_user_id', 'WeCom user id', '']];
  let knownMembers = new Map();
  let memberColours = new Map();

  async function loadMembers() {
    const data = await api('GET', '/api/members');
    knownMembers = new Map(data.items.map((m) => [m.member_id, m.name]));
    memberColours = new Map(data.items.map((m, i) => [m.member_id, MEMBER_COLOURS[i % MEMBER_COLOURS.length]]));
    return data.items;
  }
  function memberName(id) { return knownMembers.get(id) || id; }

  /** A delete button that asks once more before it acts. */
  function armedButton(label, really, attrs, work) {
    return h('button', Object.assign({ type: 'button', class: 'danger' }, attrs, { onclick: async (ev) => {
      if (ev.target.dataset.armed !== 'yes') { ev.target.dataset.armed = 'yes'; ev.target.textContent = really; return; }
      await work(ev.target);
    } }), label);
  }

  async function memberList() {
    const items = await loadMembers();
    const text = (id, attrs) => h('input', Object.assign({ type: 'text', id, spellcheck: 'false' }, attrs || {}));
    const name = text('member-name', { required: true, maxlength: 100 });
    const email = text('member-email', { required: true, maxlength: 254, inputmode: 'email', autocomplete: 'off' });
    const phone = text('member-phone', { maxlength: 32, inputmode: 'tel' });
    const zone = text('member-time_zone', { value: 'UTC', maxlength: 64 });
    const im = IM_FIELDS.map(([key, label, hint]) => [key, label, hint, text(`member-${key}`, { maxlength: 70 })]);
    const form = h('form', { class: 'card', id: 'member-create', 'data-needs': 'admin', onsubmit: async (ev) => {
      ev.preventDefault();
      const body = { name: name.value, email: email.value };
      if (phone.value.trim()) body.phone = phone.value.trim();
      if (zone.value.trim()) body.time_zone = zone.value.trim();
      const ids = {};
      for (const [key, , , input] of im) if (input.value.trim()) ids[key] = input.value.trim();
      if (Object.keys(ids).length) body.im = ids;
      const made = await act(ev.submitter, () => api('POST', '/api/members', body), (m) => `Member ${m.name} added.`);
      if (made) memberList().catch(flash);
    } }, h('h3', {}, 'New member'),
    h('div', { class: 'row' }, field('Name', name), field('Email', email), field('Phone (optional)', phone),
      field('Time zone', zone, 'An IANA name such as Europe/Berlin.')),
    h('fieldset', {}, h('legend', {}, 'IM ids (optional): how each platform mentions this member'),
      h('div', { class: 'row' }, im.map(([, label, hint, input]) => field(label, input, hint || null)))),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Add member')));
    const rows = items.map((m) => h('tr', { 'data-member-id': m.member_id },
      h('td', {}, h('span', { class: 'swatch', 'aria-hidden': 'true' }, '\u00a0'), ' ', m.name),
      h('td', {}, m.email), h('td', {}, m.phone || '—'), h('td', {}, m.time_zone), h('td', {}, chips(m.im)),
      h('td', {}, h('code', {}, m.member_id)),
      h('td', { 'data-needs': 'admin' }, armedButton('Delete', `Really delete ${m.name}`, {}, async (button) => {
        if (await act(button, () => api('DELETE', `/api/members/${m.member_id}`), `Member ${m.name} deleted.`)) memberList().catch(flash);
      }))));
    show(h('h2', {}, 'Members'),
      h('p', { class: 'muted' }, 'The people schedules and escalation rules page, by email and by IM mention. A member still named by a schedule cannot be deleted.'),
      h('table', { id: 'members' }, h('caption', { class: 'visually-hidden' }, 'Members'),
        h('thead', {}, h('tr', {}, ['Name', 'Email', 'Phone', 'Time zone', 'IM ids', 'Id', 'Delete'].map((t) => h('th', { scope: 'col', 'data-needs': t === 'Delete' ? 'admin' : null }, t)))),
        h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', { colspan: 7, class: 'muted' }, 'No members yet.')))),
      form);
    // Colours are set through the DOM: the page's policy allows no style attributes.
    for (const m of items) {
      const swatch = main.querySelector(`tr[data-member-id="${m.member_id}"] .swatch`);
      if (swatch) swatch.style.background = memberColours.get(m.member_id);
    }
  }

  /** Local midnight of today, in unix seconds, and of each of the next days. */
  function localMidnights(days) {
    const d = new Date();
    d.setHours(0, 0, 0, 0);
    const out = [];
    for (let i = 0; i <= days; i++) {
      out.push(Math.floor(d.getTime() / 1000));
      d.setDate(d.getDate() + 1);
    }
    return out;
  }

  function exampleSchedule(members) {
    const start = localMidnights(0)[0] + 9 * 3600;
    return {
      name: 'Primary',
      time_zone: Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC',
      layers: [{ name: 'Weekly', member_ids: members.slice(0, 3).map((m) => m.member_id), start, shift: { unit: 'weeks', length: 1 } }],
    };
  }

  /** The feed URL, shown once, with a copy button. */
  function feedUrlCard(id, heading, url, extra) {
    const shown = h('input', { type: 'text', readonly: true, class: 'wide', id, value: url });
    return h('section', { class: 'secret' }, h('h3', {}, heading),
      field('iCalendar feed URL (shown once)', shown, 'Subscribe to it in a calendar app. Only its hash is kept: if it is lost, rotate it.'),
      h('div', { class: 'actions' }, copyButton(shown, 'feed URL'), extra || null));
  }

  async function scheduleList() {
    const [{ items }, members] = await Promise.all([api('GET', '/api/schedules'), loadMembers()]);
    const json = h('textarea', { id: 'schedule-json', rows: 12, spellcheck: 'false' }, pretty(exampleSchedule(members)));
    const result = h('div', { id: 'schedule-made' });
    const form = h('form', { class: 'card', id: 'schedule-create', 'data-needs': 'admin', onsubmit: async (ev) => {
      ev.preventDefault();
      const made = await act(ev.submitter, async () => api('POST', '/api/schedules', parseJson(json.value, 'Schedule (JSON)')),
        (s) => `Schedule ${s.name} created: copy its feed URL now, it is not shown again.`);
      if (!made) return;
      result.replaceChildren(feedUrlCard('new-ical-url', `Schedule ${made.name}`, made.ical_url,
        h('a', { href: `#/schedules/${made.schedule_id}` }, `Open ${made.name}`)));
      result.querySelector('input').focus();
    } }, h('h3', {}, 'New schedule'),
    field('Schedule (JSON)', json, 'layers rotate through member_ids from start (unix seconds), each shift length units (hours, days or weeks) long, counted in time_zone; restrictions limit a layer to weekdays and hours; a later layer wins over an earlier one, overrides over all.'),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Create schedule')));
    const rows = items.map((s) => h('tr', {},
      h('td', {}, h('a', { href: `#/schedules/${s.schedule_id}` }, s.name)), h('td', {}, s.time_zone),
      h('td', {}, s.layers.map((l) => l.name).join(', ')),
      h('td', {}, [...new Set(s.layers.flatMap((l) => l.member_ids))].map(memberName).join(', ')),
      h('td', {}, when(s.created_at))));
    show(h('h2', {}, 'Schedules'), result,
      h('table', { id: 'schedules' }, h('caption', { class: 'visually-hidden' }, 'Schedules'),
        h('thead', {}, h('tr', {}, ['Name', 'Time zone', 'Layers', 'Members', 'Created'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', { colspan: 5, class: 'muted' }, 'No schedules yet.')))),
      members.length ? form : h('p', { class: 'muted' }, 'Add members first: a schedule rotates through them.'));
  }

  /** One row of the picture: a label, then a bar per shift with the member's name in it. */
  function pictureRow(label, shifts, from, to, midnights, kind) {
    const span = to - from;
    const place = (el, start, end) => {
      el.style.left = `${(100 * (Math.max(start, from) - from)) / span}%`;
      el.style.width = `${(100 * (Math.min(end, to) - Math.max(start, from))) / span}%`;
    };
    const track = h('div', { class: 'pic-track' });
    for (const t of midnights.slice(1, -1)) {
      const tick = h('div', { class: 'pic-tick', 'aria-hidden': 'true' });
      place(tick, t, t);
      track.append(tick);
    }
    for (const s of shifts) {
      const name = memberName(s.member_id);
      const bar = h('div', { class: `pic-bar ${s.source}`, title: `${name}: ${when(s.from)} to ${when(s.to)}${s.source === 'override' ? ' (override)' : ''}`,
        'data-member-id': s.member_id }, name);
      place(bar, s.from, s.to);
      bar.style.background = memberColours.get(s.member_id) || '#eaeef2';
      track.append(bar);
    }
    if (!shifts.length) track.append(h('span', { class: 'pic-empty' }, 'nobody'));
    return h('div', { class: `pic-row pic-${kind}` }, h('div', { class: 'pic-label' }, label), track);
  }

  function dayHeader(midnights) {
    const from = midnights[0];
    const span = midnights[midnights.length - 1] - from;
    const track = h('div', { class: 'pic-track' });
    for (let i = 0; i < midnights.length - 1; i++) {
      const d = new Date(midnights[i] * 1000);
      const day = h('div', { class: 'pic-day' }, `${d.toLocaleDateString(undefined, { weekday: 'short' })} ${d.getDate()}`);
      day.style.left = `${(100 * (midnights[i] - from)) / span}%`;
      day.style.width = `${(100 * (midnights[i + 1] - midnights[i])) / span}%`;
      track.append(day);
    }
    return h('div', { class: 'pic-row pic-days', 'aria-hidden': 'true' }, h('div', { class: 'pic-label' }), track);
  }

  async function schedulePage(id) {
    const path = `/api/schedules/${encodeURIComponent(id)}`;
    const [s] = await Promise.all([api('GET', path), loadMembers()]);
    const midnights = localMidnights(PICTURE_DAYS);
    const from = midnights[0];
    const to = midnights[PICTURE_DAYS];
    const range = `from=${from}&to=${to}`;
    const [final, now, ...layers] = await Promise.all([
      api('GET', `${path}/shifts?${range}`), api('GET', `${path}/oncall`),
      ...s.layers.map((_, i) => api('GET', `${path}/shifts?${range}&layer=${i}`))]);
    const picture = h('div', { class: 'pic', id: 'schedule-picture' }, dayHeader(midnights),
      layers.map((l, i) => pictureRow(`Layer ${i + 1}: ${s.layers[i].name}`, l.items, from, to, midnights, 'layer')),
      pictureRow('Final schedule', final.items, from, to, midnights, 'final'));
    const source = (shift) => (shift.source === 'override' ? 'override' : `layer ${shift.layer + 1} (${s.layers[shift.layer].name})`);
    const shiftRows = final.items.map((x) => h('tr', {}, h('td', {}, when(x.from)), h('td', {}, when(x.to)), h('td', {}, memberName(x.member_id)), h('td', {}, source(x))));
    const feed = h('div', { id: 'ical-rotated' });
    const rotate = armedButton('Rotate feed URL', 'Really rotate: the old URL stops working', { id: 'rotate-ical', class: '' }, async (button) => {
      const made = await act(button, () => api('POST', `${path}/rotate-ical`), 'New feed URL made: copy it now, it is not shown again.');
      if (!made) return;
      feed.replaceChildren(feedUrlCard('ical-url', 'New feed URL', made.ical_url));
      feed.querySelector('input').focus();
    });
    const editable = { name: s.name, time_zone: s.time_zone, layers: s.layers, overrides: s.overrides };
    const json = h('textarea', { id: 'schedule-edit', rows: 12, spellcheck: 'false' }, pretty(editable));
    const edit = h('form', { class: 'card', id: 'schedule-save', 'data-needs': 'admin', onsubmit: async (ev) => {
      ev.preventDefault();
      if (await act(ev.submitter, async () => api('PATCH', path, parseJson(json.value, 'Schedule (JSON)')), 'Schedule saved.')) schedulePage(id).catch(flash);
    } }, h('h3', {}, 'Change the schedule'), field('Schedule (JSON)', json, 'Fields given replace the schedule\'s; the feed URL stays.'),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Save schedule')));
    const del = armedButton('Delete schedule', 'Really delete this schedule', { id: 'delete-schedule' }, async (button) => {
      if (await act(button, () => api('DELETE', path), `Schedule ${s.name} deleted.`)) go('#/schedules');
    });
    const onCall = now.member_ids.length
      ? `${now.member_ids.map(memberName).join(', ')}${now.until ? ` until ${when(now.until)}` : ''}`
      : `nobody${now.until ? ` until ${when(now.until)}` : ''}`;
    show(h('p', {}, h('a', { href: '#/schedules' }, '← All schedules')),
      h('h2', {}, `Schedule ${s.name}`),
      h('section', { class: 'card' }, h('dl', { class: 'facts' },
        h('dt', {}, 'On call now'), h('dd', { id: 'on-call-now' }, onCall),
        h('dt', {}, 'Time zone'), h('dd', {}, s.time_zone),
        h('dt', {}, 'Layers'), h('dd', {}, s.layers.map((l) => `${l.name} (${l.member_ids.map(memberName).join(' → ')}, every ${l.shift.length} ${l.shift.unit})`).join('; ')),
        h('dt', {}, 'Overrides'), h('dd', {}, s.overrides.length ? s.overrides.map((o) => `${memberName(o.member_id)} ${when(o.from)} to ${when(o.to)}`).join('; ') : 'none'),
        h('dt', {}, 'Feed URL issued'), h('dd', {}, when(s.ical_issued_at))),
      h('div', { class: 'actions', 'data-needs': 'admin' }, rotate, del)),
      feed,
      h('h3', {}, `The next ${PICTURE_DAYS} days`),
      h('p', { class: 'muted' }, 'One row per layer (its restrictions applied), then the final schedule: later layers over earlier ones, overrides over all. Each member has one colour; the name is in the bar, and in the list below.'),
      picture,
      h('table', { id: 'final-shifts' }, h('caption', {}, `Final schedule, next ${PICTURE_DAYS} days`),
        h('thead', {}, h('tr', {}, ['From', 'To', 'Member', 'Source'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, shiftRows.length ? shiftRows : h('tr', {}, h('td', { colspan: 4, class: 'muted' }, 'Nobody is on call in these days.')))),
      edit);
  }

  // ---------------------------------------------------------------- app keys

  const ROLES = [['viewer', 'Viewer: reads only (a wallboard, a chat bot)'],
    ['responder', 'Responder: reads; acks, resolves, reopens, comments, silences'],
    ['admin', 'Admin: everything, keys included']];

  async function keyList() {
    const { items } = await api('GET', '/api/app-keys');
    const name = h('input', { type: 'text', id: 'key-name', required: true, maxlength: 100 });
    const role = select(ROLES, 'viewer', { id: 'key-role' });
    const member = h('input', { type: 'text', id: 'key-member', maxlength: 64, spellcheck: 'false' });
    const result = h('div', { id: 'key-made' });
    const form = h('form', { class: 'card', id: 'key-create', 'data-needs': 'admin', onsubmit: async (ev) => {
      ev.preventDefault();
      const body = { name: name.value, role: role.value };
      if (member.value.trim()) body.member_id = member.value.trim();
      const made = await act(ev.submitter, () => api('POST', '/api/app-keys', body), (k) => `App key ${k.name} (${k.role}) made: copy it now, it is not shown again.`);
      if (!made) return;
      const shown = h('input', { type: 'text', readonly: true, class: 'wide', id: 'new-app-key', value: made.app_key });
      result.replaceChildren(h('section', { class: 'card' }, h('h3', {}, `New ${made.role} key: ${made.name}`),
        field('App key (shown once)', shown), h('div', { class: 'actions' }, copyButton(shown, 'app key'),
          h('button', { type: 'button', onclick: () => keyList().catch(flash) }, 'Done: back to the list'))));
      shown.focus();
    } }, h('h3', {}, 'New app key'),
    h('div', { class: 'row' }, field('Name', name), field('Role', role), field('Member id (optional)', member, 'Its actions name this member in the timeline.')),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Make key')));
    const rows = items.map((k) => h('tr', {},
      h('td', {}, k.name), h('td', {}, h('span', { class: 'badge role' }, k.role)), h('td', {}, k.member_id || '—'),
      h('td', {}, when(k.created_at)), h('td', {}, h('code', {}, k.app_key_id)),
      h('td', {}, me && k.app_key_id === me.app_key_id ? h('span', { class: 'muted' }, 'this key') : h('button', { type: 'button', class: 'danger', onclick: async (ev) => {
        if (ev.target.dataset.armed !== 'yes') { ev.target.dataset.armed = 'yes'; ev.target.textContent = 'Really revoke: it stops working at once'; return; }
        if (await act(ev.target, () => api('DELETE', `/api/app-keys/${k.app_key_id}`), `App key ${k.name} revoked.`)) keyList().catch(flash);
      } }, 'Revoke'))));
    show(h('h2', {}, 'App keys'),
      h('p', { class: 'muted' }, 'Roles: a viewer reads only; a responder also acknowledges, resolves, reopens, comments and silences; an admin does everything.'),
      result,
      h('table', { id: 'app-keys' }, h('caption', { class: 'visually-hidden' }, 'App keys'),
        h('thead', {}, h('tr', {}, ['Name', 'Role', 'Member', 'Created', 'Id', 'Revoke'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, rows)),
      form);
  }

  // ---------------------------------------------------------------- start

  document.getElementById('sign-out').addEventListener('click', () => {
    sessionStorage.removeItem(KEY_SLOT);
    notice('Signed out: the app key is forgotten by this tab.');
    renderSignIn();
  });
  window.addEventListener('hashchange', () => {
    if (!keepMessages) clearMessages();
    keepMessages = false;
    route();
  });
  route();
})();
