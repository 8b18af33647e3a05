// Overview: the local member and its layers, with start and stop; counts
// of members, messages and subscriptions; traffic and delivery latency
// from the server's metrics.

import { h, fill, table } from '../dom.js';
import * as fmt from '../format.js';
import { LAYERS, LAYER_NAMES, attr, layerStates, socket, strings } from '../model.js';
import { view } from './view.js';

export function overview(app) {
  const localBox = h('div');
  const countsBox = h('dl.stats');
  const trafficBox = h('div');
  const pending = new Map(); // action → true while it runs

  const run = async (id, name, label) => {
    pending.set(name, true);
    v.schedule();
    try {
      const res = await app.memberAction(id, name);
      app.emit('announce', describe(res, label));
    } catch (err) {
      app.fail(err);
    } finally {
      pending.delete(name);
      v.schedule();
    }
  };

  const renderLocal = () => {
    if (!app.membersLoaded) {
      fill(localBox, h('p.muted', {}, 'Loading the members…'));
      return;
    }
    const local = app.local;
    if (!local) {
      fill(localBox, h('p', {}, 'This server has no local member yet. Create one with ',
        h('code', {}, 'cmbs member create'), ' or the ', h('code', {}, 'member'), ' section of the configuration; it appears here at once.'));
      return;
    }
    const states = layerStates(local);
    const rows = LAYERS.map((l) => {
      const running = states[l] === 'running';
      const name = `${running ? 'stop' : 'start'}_${l}`;
      const busy = pending.has(name);
      return h('tr', { dataset: { layer: l } },
        h('th', { scope: 'row' }, l, h('span.sub', {}, LAYER_NAMES[l]), h('span.sub.mono.narrow-only', {}, socket(local, l) || '–')),
        h('td.mono.wide-only', {}, socket(local, l) || '–'),
        h('td', {}, h(`span.badge.state-${running ? 'running' : 'stopped'}`, { dataset: { state: states[l] } }, states[l])),
        h('td', {}, h('button', {
          type: 'button', dataset: { action: name, key: `layer-${l}` }, disabled: busy || !socket(local, l),
          'aria-label': `${running ? 'Stop' : 'Start'} layer ${l}`,
          onclick: () => run(local.id, name, `layer ${l}`),
        }, busy ? (running ? 'Stopping…' : 'Starting…') : running ? 'Stop' : 'Start')));
    });
    const discovering = pending.has('check_neighbors');
    fill(localBox,
      h('dl.props', {},
        h('dt', {}, 'Member'), h('dd', { id: 'local-id' }, h('a', { href: `#/members/${encodeURIComponent(local.id)}` }, local.id)),
        local.title ? [h('dt', {}, 'Title'), h('dd', {}, local.title)] : null,
        h('dt', {}, 'Neighbour sockets'), h('dd.mono', {}, neighbourList(local))),
      table('Layers of the local member', ['Layer', 'Socket', 'State', 'Action'], rows, { id: 'layers' }),
      h('p', {}, h('button', {
        type: 'button', dataset: { action: 'check_neighbors', key: 'discover' }, disabled: discovering,
        onclick: () => run(local.id, 'check_neighbors', 'discovery'),
      }, discovering ? 'Checking neighbours…' : 'Check neighbours')));
  };

  const renderCounts = () => {
    const c = app.counts;
    const sum = app.metrics.summary;
    const reach = sum && sum.known !== null ? `${fmt.count(sum.reachable)} of ${fmt.count(sum.known)} reachable` : '';
    fill(countsBox,
      stat('Members', c.members, reach, 'count-members'),
      stat('Messages', c.messages, '', 'count-messages'),
      stat('Subscriptions', c.subscriptions, '', 'count-subscriptions'));
  };

  const renderTraffic = () => {
    const m = app.metrics;
    if (!m.summary) {
      fill(trafficBox, h('p.muted', {}, m.error ? `Metrics unavailable: ${m.error}` : 'Reading the metrics…'));
      return;
    }
    const s = m.summary;
    const lat = s.latency;
    const rows = LAYERS.map((l) => {
      const r = s.layers[l];
      const lr = r.latency;
      return h('tr', { dataset: { layer: l } },
        h('th', { scope: 'row' }, l),
        h('td', {}, r.running ? 'running' : 'stopped'),
        h('td.num', {}, fmt.rate(r.sentRate)), h('td.num', {}, fmt.rate(r.receivedRate)), h('td.num', {}, fmt.rate(r.failedRate)),
        h('td.num', {}, fmt.count(r.sent)), h('td.num', {}, fmt.count(r.received)), h('td.num', {}, fmt.count(r.failed)),
        h('td.num', {}, lr.count ? `${fmt.seconds(lr.p50)} / ${fmt.seconds(lr.p95)}` : '–'));
    });
    fill(trafficBox,
      h('dl.stats', {},
        stat('Sent', fmt.rate(s.sentRate), 'messages started here, since the last scrape', 'rate-sent'),
        stat('Received', fmt.rate(s.receivedRate), 'messages taken here', 'rate-received'),
        stat('Failed', fmt.rate(s.failedRate), 'destinations not reached', 'rate-failed'),
        stat('Delivery latency', lat.count ? fmt.seconds(lat.p95) : '–',
          lat.count ? `p95; p50 ${fmt.seconds(lat.p50)}, mean ${fmt.seconds(lat.mean)} over ${lat.count} sends ${lat.window ? 'in the last interval' : 'since start'}` : 'no send finished yet',
          'latency')),
      table('Traffic by layer', ['Layer', 'Receiver', 'Sent/s', 'Received/s', 'Failed/s', 'Sent', 'Received', 'Failed', 'Latency p50 / p95'], rows, { id: 'traffic' }),
      m.error ? h('p.muted', {}, `Last scrape failed: ${m.error}`) : null);
  };

  const v = view(app, {
    id: 'overview', title: 'Overview', topics: ['members', 'counts', 'metrics'],
    // Each part is redrawn only when what it shows changed, so the
    // five-second scrape leaves the layer buttons alone.
    render(_, changed) {
      const all = !changed || changed.has('self');
      if (all || changed.has('members')) renderLocal();
      if (all || changed.has('members') || changed.has('counts') || changed.has('metrics')) renderCounts();
      if (all || changed.has('metrics')) renderTraffic();
    },
  });
  v.el.append(
    h('div.grid.overview', {},
      h('section.card', { 'aria-labelledby': 'local-h' }, h('h2', { id: 'local-h' }, 'Local member'), localBox),
      h('section.card', { 'aria-labelledby': 'counts-h' }, h('h2', { id: 'counts-h' }, 'Counts'), countsBox)),
    h('section.card', { 'aria-labelledby': 'traffic-h' }, h('h2', { id: 'traffic-h' }, 'Traffic'), trafficBox));
  return v;
}

function stat(label, value, note, id) {
  return h('div.stat', { id },
    h('dt', {}, label),
    h('dd', {}, h('span.value', {}, value === null || value === undefined ? '–' : String(value)), note ? h('span.note', {}, note) : null));
}

function neighbourList(local) {
  const v = strings(attr(local, 'cmbs.member.neighbors_socket'));
  return v.length ? v.join(', ') : 'none';
}

function describe(res, label) {
  if (!res || typeof res !== 'object') return `${label}: done`;
  if (res.discovered !== undefined || res.unreachable !== undefined) {
    const found = (res.discovered || []).length;
    const lost = res.unreachable ? Object.keys(res.unreachable).length : 0;
    return `Discovery: ${found} member${found === 1 ? '' : 's'} discovered, ${lost} socket${lost === 1 ? '' : 's'} unreachable`;
  }
  if (res.layer && res.state) return `Layer ${res.layer} ${res.state}${res.endpoint ? ` on ${res.endpoint}` : ''}`;
  return `${label}: done`;
}
