// Messages: this server's messages newest first, filtered by layer, topic
// and state and paged here in the page (the server sends the whole
// collection); a message's outcome per destination, its path and resend.

import * as api from '../api.js';
import { h, fill, table, time, list, json } from '../dom.js';
import { LAYERS, MESSAGE_STATES, attr, delivery, messageLayer, messageState, messageTime, strings, topicMatches, truthy } from '../model.js';
import { outcome } from './outcome.js';
import { view } from './view.js';

export const PAGE_SIZE = 20;

export function messages(app) {
  let page = 0;
  let selected = '';
  const filter = { layer: '', topic: '', state: '' };
  const listBox = h('div');
  const detailBox = h('div', { id: 'message-detail' });
  const pager = h('nav.pager', { 'aria-label': 'Pages of messages' });

  const onFilter = (key) => (e) => {
    filter[key] = e.target.value.trim();
    page = 0;
    v.schedule();
  };
  const layerSel = h('select', { id: 'f-layer', onchange: onFilter('layer') },
    h('option', { value: '' }, 'any'), LAYERS.map((l) => h('option', { value: l }, l)));
  const stateSel = h('select', { id: 'f-state', onchange: onFilter('state') },
    h('option', { value: '' }, 'any'), MESSAGE_STATES.map((st) => h('option', { value: st }, st)));
  const topicIn = h('input', { id: 'f-topic', type: 'search', placeholder: 'weather.* or news.>', oninput: onFilter('topic'), autocomplete: 'off' });
  const filters = h('form.filters', { role: 'search', 'aria-label': 'Filter messages', onsubmit: (e) => e.preventDefault() },
    h('div.field', {}, h('label', { for: 'f-layer' }, 'Layer'), layerSel),
    h('div.field', {}, h('label', { for: 'f-topic' }, 'Topic'), topicIn),
    h('div.field', {}, h('label', { for: 'f-state' }, 'State'), stateSel));

  const matching = () => {
    const out = [];
    for (const m of app.messages.values()) {
      if (filter.layer && messageLayer(m) !== filter.layer) continue;
      if (filter.state && messageState(m, app.localId) !== filter.state) continue;
      if (filter.topic) {
        const topics = strings(attr(m, 'cmbs.message.topics'));
        if (!topics.some((t) => topicMatches(filter.topic, t))) continue;
      }
      out.push({ m, t: messageTime(m, app.seen.get(m.id)) });
    }
    // Newest first; messages with no time known last, by id.
    out.sort((a, b) => b.t - a.t || a.m.id.localeCompare(b.m.id));
    return out;
  };

  const renderList = () => {
    if (!app.messagesLoaded) {
      fill(listBox, h('p.muted', {}, 'Loading the messages…'));
      fill(pager);
      return;
    }
    const all = matching();
    const pages = Math.max(1, Math.ceil(all.length / PAGE_SIZE));
    page = Math.min(page, pages - 1);
    const shown = all.slice(page * PAGE_SIZE, (page + 1) * PAGE_SIZE);
    const rows = shown.map(({ m, t }) => {
      const d = delivery(m);
      const st = messageState(m, app.localId);
      return h('tr', { dataset: { message: m.id }, class: m.id === selected ? 'selected' : undefined },
        h('th', { scope: 'row' }, h('a', { href: `#/messages/${encodeURIComponent(m.id)}`, dataset: { key: `msg-${m.id}` }, 'aria-current': m.id === selected ? 'true' : undefined }, m.id)),
        h('td', {}, messageLayer(m) || '–'),
        h('td', {}, h(`span.badge.mstate-${st}`, {}, st)),
        h('td.num', {}, d ? `${d.delivered || 0} / ${d.failed || 0}` : '–'),
        h('td', {}, String(attr(m, 'cmbs.message.origin') || '–')),
        h('td', {}, list(strings(attr(m, 'cmbs.message.topics')))),
        h('td', {}, t ? time(t) : '–'));
    });
    const total = app.messages.size;
    fill(listBox, rows.length
      ? table('Messages, newest first', ['Message', 'Layer', 'State', 'Delivered / failed', 'Origin', 'Topics', 'Last activity'], rows, { id: 'messages-table' })
      : h('p.muted', {}, total ? 'No message matches the filter.' : 'No messages yet.'));
    const from = all.length ? page * PAGE_SIZE + 1 : 0;
    fill(pager,
      h('button', { type: 'button', disabled: page === 0, dataset: { key: 'prev' }, onclick: () => { page--; v.schedule(); } }, '← Newer'),
      h('span', { id: 'page-info', 'aria-live': 'polite' }, `${from}–${page * PAGE_SIZE + shown.length} of ${all.length}${all.length !== total ? ` (${total} in all)` : ''}, page ${page + 1} of ${pages}`),
      h('button', { type: 'button', disabled: page >= pages - 1, dataset: { key: 'next' }, onclick: () => { page++; v.schedule(); } }, 'Older →'));
  };

  let resending = false;
  const resend = async (m) => {
    const layer = messageLayer(m);
    resending = true;
    v.schedule();
    try {
      await api.action(api.MESSAGE_LOCATION + encodeURIComponent(m.id), `send_${layer}`);
      app.emit('announce', `Message ${m.id} sent again on ${layer}`);
      app.putMessage(await api.entity(api.MESSAGE_LOCATION + encodeURIComponent(m.id)));
    } catch (err) {
      app.fail(err);
    } finally {
      resending = false;
      v.schedule();
    }
  };

  const renderDetail = () => {
    detailCard.hidden = !selected;
    if (!selected) {
      fill(detailBox);
      return;
    }
    const m = app.messages.get(selected);
    if (!m) {
      fill(detailBox, h('p.muted', {}, app.messagesLoaded ? `No message ${selected} here.` : 'Loading…'));
      return;
    }
    const layer = messageLayer(m);
    const path = strings(attr(m, 'cmbs.message.path_history'));
    const canSend = layer && truthy(attr(m, 'cmbs.message.sendable') ?? 'true') && (m.actions || []).some((a) => a.endsWith(`#send_${layer}`));
    const content = attr(m, 'cmbs.message.message_content');
    const result = attr(m, 'cmbs.message.result');
    fill(detailBox,
      h('h2', { id: 'message-detail-title' }, `Message ${m.id}`),
      h('dl.props', {},
        h('dt', {}, 'Layer'), h('dd', {}, layer || '–'),
        h('dt', {}, 'State'), h('dd', {}, messageState(m, app.localId)),
        h('dt', {}, 'Origin'), h('dd', {}, String(attr(m, 'cmbs.message.origin') || '–')),
        h('dt', {}, 'Path history'), h('dd', { dataset: { field: 'path' } }, path.length ? path.join(' → ') : '–'),
        h('dt', {}, 'Topics'), h('dd', {}, list(strings(attr(m, 'cmbs.message.topics')))),
        h('dt', {}, 'Providers'), h('dd', {}, list(strings(attr(m, 'cmbs.message.providers')))),
        layer === 'l1' ? [h('dt', {}, 'L1 receiver'), h('dd.mono', {}, String(attr(m, 'cmbs.message.l1_socket_receiver_member') || '–'))] : null,
        h('dt', {}, 'Flags'), h('dd', {}, ['executable', 'storable', 'sendable'].filter((f) => truthy(attr(m, `cmbs.message.${f}`) ?? 'true')).join(', ') || 'none'),
        h('dt', {}, 'Executed here'), h('dd', {}, time(attr(m, 'cmbs.message.executed')))),
      h('h3', {}, 'Content'), h('pre.content', {}, json(content ?? '')),
      result && (typeof result !== 'object' || Object.keys(result).length) ? [h('h3', {}, 'Result'), h('pre.content', {}, json(result))] : null,
      h('h3', {}, 'Outcome per destination'),
      h('div', { id: 'message-outcome' }, outcome(m)),
      canSend ? h('p', {}, h('button', { type: 'button', id: 'resend', dataset: { key: 'resend' }, disabled: resending, onclick: () => resend(m) },
        resending ? 'Sending…' : `Resend on ${layer}`)) : null);
  };

  const v = view(app, {
    id: 'messages', title: 'Messages', topics: ['messages'],
    shown(param) {
      app.wantMessages();
      selected = param ? decodeURIComponent(param) : '';
      if (selected && !app.messages.has(selected)) {
        api.entity(api.MESSAGE_LOCATION + encodeURIComponent(selected)).then((m) => app.putMessage(m), (err) => app.fail(err));
      }
    },
    render() {
      renderDetail();
      renderList();
    },
  });
  const detailCard = h('section.card', { 'aria-label': 'Selected message', hidden: true }, detailBox);
  v.el.append(detailCard, filters, listBox, pager);
  return v;
}
