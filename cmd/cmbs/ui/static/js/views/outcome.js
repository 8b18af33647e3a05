// A send's outcome, per destination, as the messages and send views show it.

import { h, table, time, json } from '../dom.js';
import { attr, delivery } from '../model.js';

/** outcome renders a message's delivery: a summary line and a row per destination. */
export function outcome(msg) {
  const d = delivery(msg);
  if (!d) return [h('p.muted', {}, 'Not sent from this member.')];
  const dests = Object.entries(d.destinations || {}).sort(([a], [b]) => a.localeCompare(b));
  const rows = dests.map(([key, r]) => h('tr', { dataset: { destination: r.member || key, status: r.status } },
    h('th', { scope: 'row' }, r.member || key),
    h('td', {}, h(`span.badge.outcome-${r.status}`, {}, r.status || '–')),
    h('td.mono', {}, r.endpoint || '–'),
    h('td', {}, r.via || '–'),
    h('td', {}, r.path && r.path.length ? r.path.join(' → ') : '–'),
    h('td', {}, flags(r)),
    h('td', {}, r.reason ? r.reason : r.result !== undefined ? h('pre', {}, json(r.result)) : '–')));
  return [
    h('p.summary', { dataset: { state: d.state } },
      h(`span.badge.outcome-${d.state === 'done' ? (d.failed > 0 ? 'failed' : 'delivered') : 'pending'}`, {}, d.state),
      ` ${d.layer || ''}: ${d.delivered || 0} delivered, ${d.failed || 0} failed`,
      d.started ? `; started ${time(d.started)}` : '', d.finished ? `, finished ${time(d.finished)}` : ''),
    rows.length ? table('Outcome per destination', ['Destination', 'Status', 'Endpoint', 'Via', 'Path', 'Stored / executed', 'Reason or result'], rows, { class: 'outcome' })
      : h('p.muted', {}, d.state === 'done' ? 'No member matched.' : 'Waiting for the first outcome…'),
  ];
}

function flags(r) {
  const out = [];
  if (r.duplicate) out.push('duplicate');
  if (r.stored) out.push('stored');
  if (r.executed) out.push('executed');
  return out.length ? out.join(', ') : '–';
}

/** reply is what an L1 send got back: the message's result, or its destination's. */
export function reply(msg) {
  const d = delivery(msg);
  const own = attr(msg, 'cmbs.message.result');
  if (own && typeof own === 'object' && Object.keys(own).length) return own;
  if (own !== undefined && own !== '' && typeof own !== 'object') return own;
  for (const r of Object.values((d && d.destinations) || {})) {
    if (r && r.result !== undefined) return r.result;
  }
  return undefined;
}
