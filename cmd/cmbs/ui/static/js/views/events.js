// Events: the server's event stream as it happens, newest first,
// filterable by type and text, pausable.

import { h, fill, time, json } from '../dom.js';
import { LAYERS, attr, delivery, layerStates, messageLayer } from '../model.js';
import { view } from './view.js';

export const EVENT_TYPES = ['created', 'updated', 'deleted', 'message_received', 'delivery_failed'];
const SHOWN = 200;

export function events(app) {
  const types = new Set(EVENT_TYPES);
  let text = '';
  let paused = false;
  let frozen = 0; // while paused, the last event shown
  let cleared = 0; // events up to this one were cleared
  const open = new Set();

  const listBox = h('ol.events', { id: 'events-list', 'aria-label': 'Events, newest first' });
  const status = h('p.muted', { id: 'events-status' });
  const pauseBtn = h('button', { type: 'button', id: 'events-pause', 'aria-pressed': 'false', onclick: () => togglePause() }, 'Pause');
  const clearBtn = h('button', { type: 'button', id: 'events-clear', onclick: () => { cleared = app.eventSeq; open.clear(); v.schedule(); } }, 'Clear');
  const textIn = h('input', { id: 'events-text', type: 'search', autocomplete: 'off', placeholder: '/cmbs/message/ or member-b',
    oninput: (e) => { text = e.target.value.trim().toLowerCase(); v.schedule(); } });
  const typeBoxes = EVENT_TYPES.map((t) => {
    const id = `events-type-${t}`;
    return h('div.check', {},
      h('input', { type: 'checkbox', id, checked: true, onchange: (e) => { if (e.target.checked) types.add(t); else types.delete(t); v.schedule(); } }),
      h('label', { for: id }, t));
  });

  const togglePause = () => {
    paused = !paused;
    frozen = app.eventSeq;
    pauseBtn.textContent = paused ? 'Resume' : 'Pause';
    pauseBtn.setAttribute('aria-pressed', String(paused));
    app.emit('announce', paused ? 'Event list paused' : 'Event list resumed');
    v.schedule();
  };

  const matches = (ev) => {
    if (!types.has(ev.event)) return false;
    if (!text) return true;
    return [ev.location, ev.kind, ev.member, ev.from, ev.layer, ev.reason, ev.endpoint, ev.via]
      .some((f) => f && String(f).toLowerCase().includes(text));
  };

  const item = (ev) => {
    const extra = [ev.layer && `layer ${ev.layer}`, ev.member && `member ${ev.member}`, ev.from && `from ${ev.from}`,
      ev.via && `via ${ev.via}`, ev.reason, summary(ev)].filter(Boolean).join(' · ');
    const details = h('details', { open: open.has(ev.seq) },
      h('summary', { dataset: { key: `ev-${ev.seq}` } },
        h('time', { datetime: ev.time }, time(ev.time)), ' ',
        h(`span.badge.ev-${ev.event}`, {}, ev.event), ' ',
        h('span.mono', {}, ev.location || ''),
        extra ? h('span.muted', {}, ` ${extra}`) : null),
      h('pre', {}, json(ev)));
    details.addEventListener('toggle', () => {
      if (details.open) open.add(ev.seq);
      else open.delete(ev.seq);
    });
    return h('li', { dataset: { event: ev.event, location: ev.location || '', seq: ev.seq } }, details);
  };

  const v = view(app, {
    id: 'events', title: 'Events', topics: ['event', 'conn'],
    render() {
      const last = paused ? frozen : app.eventSeq;
      const visible = [];
      let total = 0;
      for (let i = app.events.length - 1; i >= 0; i--) {
        const ev = app.events[i];
        if (ev.seq > last) continue;
        if (ev.seq <= cleared) break;
        total++;
        if (visible.length < SHOWN && matches(ev)) visible.push(ev);
      }
      fill(listBox, visible.map(item));
      const waiting = paused ? app.eventSeq - frozen : 0;
      fill(status,
        `Showing ${visible.length} of ${total} events`,
        visible.length === SHOWN ? ` (the latest ${SHOWN} that match)` : '',
        paused ? `; paused, ${waiting} new event${waiting === 1 ? '' : 's'} waiting` : '',
        app.conn.state === 'live' ? '' : `; stream ${app.conn.state}: ${app.conn.detail}`);
      if (!visible.length && !total) listBox.append(h('li.muted', {}, 'No events yet. Changes to members, messages and subscriptions appear here as they happen.'));
    },
  });
  v.el.append(
    h('form.filters', { role: 'search', 'aria-label': 'Filter events', onsubmit: (e) => e.preventDefault() },
      h('fieldset', {}, h('legend', {}, 'Types'), typeBoxes),
      h('div.field', {}, h('label', { for: 'events-text' }, 'Text'), textIn),
      h('div.buttons', {}, pauseBtn, clearBtn)),
    status, listBox);
  return v;
}

/** summary says in a few words what an entity event's entity now is. */
function summary(ev) {
  const e = ev.entity;
  if (!e || ev.event === 'message_received' || ev.event === 'delivery_failed') return '';
  const loc = String(ev.location || '');
  if (loc.startsWith('/cmbs/message/')) {
    const d = delivery(e);
    const layer = messageLayer(e);
    if (d) return `${layer} delivery ${d.state}: ${d.delivered || 0} delivered, ${d.failed || 0} failed`;
    const origin = attr(e, 'cmbs.message.origin');
    return [layer, origin && `origin ${origin}`].filter(Boolean).join(', ');
  }
  if (loc.startsWith('/cmbs/member/')) {
    if (String(attr(e, 'cmbs.member.local')) !== 'true') {
      const via = attr(e, 'cmbs.member.via');
      return via ? `reached via ${via}` : 'reached directly';
    }
    const states = layerStates(e);
    const running = LAYERS.filter((l) => states[l] === 'running');
    return running.length ? `running ${running.join(' ')}` : 'no layer running';
  }
  return '';
}
