// Send: a form that creates a message for any layer and sends it from the
// local member, then follows its outcome; for L1 the reply is shown when
// it comes.

import * as api from '../api.js';
import { h, fill, json } from '../dom.js';
import { LAYERS, LAYER_NAMES, delivery, socket } from '../model.js';
import { outcome, reply } from './outcome.js';
import { view } from './view.js';

const POLL_EVERY = 300;
const POLL_FOR = 60000;

/** which form fields each layer uses besides the content and flags. */
const FIELDS = {
  l1: ['to'],
  l2: [],
  l31: ['providers'],
  l32: ['topics'],
  l4: ['providers', 'topics'],
};

export function send(app) {
  const field = (id, label, control, hint) => h('div.field', { id: `field-${id}` },
    h('label', { for: `send-${id}` }, label), control, hint ? h('p.hint', { id: `send-${id}-hint` }, hint) : null);
  const layer = h('select', { id: 'send-layer', name: 'layer', onchange: () => showFields() },
    LAYERS.map((l) => h('option', { value: l }, `${l} — ${LAYER_NAMES[l]}`)));
  const sockets = h('datalist', { id: 'send-sockets' });
  const to = h('input', { id: 'send-to', name: 'to', list: 'send-sockets', autocomplete: 'off', placeholder: 'tcp://host:port', 'aria-describedby': 'send-to-hint' });
  const topics = h('input', { id: 'send-topics', name: 'topics', autocomplete: 'off', placeholder: 'weather.paris, news', 'aria-describedby': 'send-topics-hint' });
  const providers = h('input', { id: 'send-providers', name: 'providers', autocomplete: 'off', placeholder: 'storage, compute', 'aria-describedby': 'send-providers-hint' });
  const content = h('textarea', { id: 'send-content', name: 'content', rows: 4, 'aria-describedby': 'send-content-hint' });
  const asJSON = h('input', { id: 'send-json', type: 'checkbox', checked: true });
  const executable = h('input', { id: 'send-executable', type: 'checkbox', checked: true });
  const storable = h('input', { id: 'send-storable', type: 'checkbox', checked: true });
  const msgId = h('input', { id: 'send-id', name: 'id', autocomplete: 'off', pattern: '[A-Za-z0-9_.:~@\\-]+', 'aria-describedby': 'send-id-hint' });
  const title = h('input', { id: 'send-title', name: 'title', autocomplete: 'off' });
  const hop = h('input', { id: 'send-hop', name: 'hop', type: 'number', min: 1, max: 255, inputmode: 'numeric', 'aria-describedby': 'send-hop-hint' });
  const expires = h('input', { id: 'send-expires', name: 'expires', autocomplete: 'off', placeholder: '10m', 'aria-describedby': 'send-expires-hint' });
  const submit = h('button', { type: 'submit', id: 'send-submit' }, 'Send');
  const note = h('p.notice', { id: 'send-note', hidden: true }, 'This server has no local member yet, so the server refuses sends (409) until one is created.');
  const result = h('section', { id: 'send-result', 'aria-live': 'polite', 'aria-label': 'Outcome of the last send' });

  const check = (id, label, input) => h('div.check', {}, input, h('label', { for: id }, label));
  const form = h('form.send', { id: 'send-form', novalidate: true, onsubmit: (e) => { e.preventDefault(); go(); } },
    field('layer', 'Layer', layer),
    field('to', 'Receiver (its L1 socket)', [to, sockets], 'The member whose L1 socket this is answers; its reply is shown below.'),
    field('topics', 'Topics', topics, 'Comma-separated; members subscribed to a matching topic receive it.'),
    field('providers', 'Providers', providers, 'Comma-separated; members offering one of them receive it.'),
    field('content', 'Content', content, 'Sent as JSON when it parses as JSON and the box below is ticked, otherwise as text.'),
    h('fieldset', {}, h('legend', {}, 'Options'),
      check('send-json', 'Content is JSON when it parses', asJSON),
      check('send-executable', 'Executable: run it on arrival', executable),
      check('send-storable', 'Storable: receivers keep it', storable)),
    h('details', {}, h('summary', {}, 'Id, title, hop limit, expiry'),
      field('id', 'Message id', msgId, 'Letters, digits and _.:~@-; the server picks one when empty.'),
      field('title', 'Title', title),
      field('hop', 'Hop limit', hop, 'How many members it may cross; the server’s default (8) when empty.'),
      field('expires', 'Expires', expires, 'A duration (10m, 24h) or an RFC 3339 time; members that cannot be reached are retried until then. The server’s default (24h) when empty.')),
    h('p', {}, submit));

  const showFields = () => {
    const used = FIELDS[layer.value];
    for (const name of ['to', 'topics', 'providers']) {
      const on = used.includes(name);
      form.querySelector(`#field-${name}`).hidden = !on;
    }
  };

  let tracking = null; // {id, layer, msg, error, polling}

  const renderResult = () => {
    if (!tracking) {
      fill(result);
      return;
    }
    const t = tracking;
    const d = t.msg ? delivery(t.msg) : null;
    const parts = [h('h2', {}, `Message ${t.id} on ${t.layer}`)];
    if (t.error) parts.push(h('p.error', { role: 'alert' }, t.error));
    if (t.msg) parts.push(...outcome(t.msg));
    else if (!t.error) parts.push(h('p.muted', {}, 'Sending…'));
    if (t.layer === 'l1' && d && d.state === 'done') {
      const r = reply(t.msg);
      parts.push(h('h3', {}, 'Reply'), r === undefined ? h('p.muted', { id: 'send-reply' }, 'No reply came back.') : h('pre.content', { id: 'send-reply' }, json(r)));
    }
    if (t.msg) parts.push(h('p', {}, h('a', { href: `#/messages/${encodeURIComponent(t.id)}` }, 'Open in Messages')));
    fill(result, parts);
  };

  const poll = async (t, until) => {
    try {
      const msg = await api.entity(api.MESSAGE_LOCATION + encodeURIComponent(t.id));
      t.msg = msg;
      app.putMessage(msg);
      const d = delivery(msg);
      if (d && d.state === 'done') {
        app.emit('announce', `Message ${t.id}: ${d.delivered || 0} delivered, ${d.failed || 0} failed`);
        return;
      }
    } catch (err) {
      t.error = err.message;
      return;
    } finally {
      if (tracking === t) v.schedule();
    }
    if (tracking === t && Date.now() < until) setTimeout(() => poll(t, until), POLL_EVERY);
    else if (tracking === t) {
      t.error = `Still pending after ${POLL_FOR / 1000} s; the outcome appears in Messages when it is recorded.`;
      v.schedule();
    }
  };

  const go = async () => {
    const l = layer.value;
    if (l === 'l1' && !to.value.trim()) {
      app.fail('An L1 message needs the receiver’s L1 socket.');
      to.focus();
      return;
    }
    if (msgId.value && !msgId.checkValidity()) {
      app.fail('The message id may hold letters, digits and _.:~@- only.');
      msgId.focus();
      return;
    }
    const attrs = { cmbs_layer: l, message_content: contentValue(content.value, asJSON.checked),
      executable: String(executable.checked), storable: String(storable.checked) };
    const used = FIELDS[l];
    if (used.includes('topics')) attrs.topics = splitList(topics.value);
    if (used.includes('providers')) attrs.providers = splitList(providers.value);
    if (used.includes('to')) attrs.l1_socket_receiver_member = to.value.trim();
    if (hop.value) attrs.hop_limit = Number(hop.value);
    if (expires.value.trim()) attrs.expires = expires.value.trim();
    const resource = { kind: api.MESSAGE_KIND, mixins: [api.LAYER_MIXIN_SCHEME + l], attributes: { cmbs: { message: attrs } } };
    if (msgId.value.trim()) resource.id = msgId.value.trim();
    if (title.value.trim()) resource.title = title.value.trim();

    submit.disabled = true;
    const t = { id: resource.id || '', layer: l, msg: null, error: '' };
    tracking = t;
    v.schedule();
    try {
      const loc = await api.create(api.MESSAGE_LOCATION, resource);
      t.id = decodeURIComponent(loc.slice(api.MESSAGE_LOCATION.length));
      try {
        await api.action(loc, `send_${l}`);
      } catch (err) {
        t.error = `Message ${t.id} was created but not sent: ${err.message}`;
        v.schedule();
        return;
      }
      app.emit('announce', `Message ${t.id} sent on ${l}`);
      poll(t, Date.now() + POLL_FOR);
    } catch (err) {
      t.error = err.message;
      v.schedule();
    } finally {
      submit.disabled = false;
    }
  };

  const v = view(app, {
    id: 'send', title: 'Send a message', topics: ['members'],
    render() {
      const options = [...app.members.values()].filter((m) => m.id !== app.localId && socket(m, 'l1'))
        .map((m) => h('option', { value: socket(m, 'l1') }, m.id));
      fill(sockets, options);
      note.hidden = !app.membersLoaded || Boolean(app.localId);
      renderResult();
    },
  });
  v.el.append(note, form, result);
  showFields();
  return v;
}

function splitList(s) {
  return s.split(',').map((x) => x.trim()).filter(Boolean);
}

function contentValue(s, tryJSON) {
  if (tryJSON) {
    try {
      return JSON.parse(s);
    } catch {
      // Not JSON: sent as the text it is.
    }
  }
  return s;
}
