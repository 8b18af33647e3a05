// Members and routes: the graph of the members this server knows, the
// neighbour links between them and the routes the local member uses,
// coloured by reachability and redrawn as events arrive; a table of the
// same members; and the selected member's attributes.

import { h, s, fill, table, time, list, json } from '../dom.js';
import { LAYERS, attr, graph, layerStates, layout, neighborStates, socket, strings } from '../model.js';
import { view } from './view.js';

const W = 640;
const H = 420;
const R = 20;

const GLYPH = { local: '★', reachable: '✓', unreachable: '✕', unknown: '?' };

export function members(app) {
  const svgBox = h('div.graph', { id: 'graph' });
  const tableBox = h('div');
  const detailBox = h('div', { id: 'member-detail' });
  let selected = '';
  // The last layout, kept while the graph's shape stays the same so a
  // redraw for a new colour does not move anything.
  let shape = '';
  let pos = new Map();

  const select = (id) => {
    window.location.hash = `#/members/${encodeURIComponent(id)}`;
  };

  const renderGraph = (reach) => {
    const g = graph(app.members, app.localId, reach);
    const sig = JSON.stringify([g.nodes.map((n) => `${n.id}@${n.distance}`), g.edges.map((e) => `${e.a} ${e.b}`)]);
    if (sig !== shape) {
      pos = layout(g.nodes, g.edges, W, H, pos);
      shape = sig;
    }
    const edges = g.edges.map((e) => {
      const a = pos.get(e.a);
      const b = pos.get(e.b);
      const cls = ['edge', e.neighbour ? 'neighbour' : 'route-only', e.route ? 'route' : ''].join(' ');
      return s('line', { class: cls, x1: a.x, y1: a.y, x2: b.x, y2: b.y, dataset: { edge: `${e.a} ${e.b}`, neighbour: e.neighbour, route: e.route } },
        s('title', {}, `${e.a} – ${e.b}: ${[e.neighbour ? 'neighbours' : '', e.route ? 'route in use' : ''].filter(Boolean).join(', ')}`));
    });
    const nodes = g.nodes.map((n) => {
      const p = pos.get(n.id);
      const status = n.id === app.localId ? 'local' : n.status;
      const label = `${n.member ? 'member' : 'neighbour socket'} ${n.label}, ${status === 'local' ? 'local member' : status}${n.detail && status !== 'local' ? `: ${n.detail}` : ''}${n.member ? `, distance ${n.distance}` : ''}`;
      const attrs = {
        class: `node status-${status}${n.id === selected ? ' selected' : ''}${n.member ? '' : ' socket'}`,
        transform: `translate(${p.x.toFixed(1)} ${p.y.toFixed(1)})`,
        dataset: { member: n.member ? n.id : undefined, socket: n.member ? undefined : n.socket, status, key: `node-${n.id}` },
        'aria-label': label,
      };
      if (n.member) {
        Object.assign(attrs, {
          tabindex: 0, role: 'button', 'aria-pressed': n.id === selected ? 'true' : 'false',
          onclick: () => select(n.id),
          onkeydown: (e) => {
            if (e.key === 'Enter' || e.key === ' ') {
              e.preventDefault();
              select(n.id);
            }
          },
        });
      } else {
        attrs.role = 'img';
      }
      return s('g', attrs,
        s('title', {}, label),
        s('circle', { r: R }),
        s('text', { class: 'glyph', 'text-anchor': 'middle', dy: '0.35em', 'aria-hidden': 'true' }, GLYPH[status] || '?'),
        // Labels go on the outer side, away from the edges towards the
        // middle.
        s('text', { class: 'label', 'text-anchor': 'middle', y: p.y < H / 2 - 1 ? -R - 8 : R + 16, 'aria-hidden': 'true' }, shorten(n.label, 24)));
    });
    const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'group', 'aria-label': `Graph of ${g.nodes.length} members and ${g.edges.length} links` },
      s('g', { class: 'edges' }, edges), s('g', { class: 'nodes' }, nodes));
    fill(svgBox, svg);
  };

  const renderTable = (reach) => {
    const ms = [...app.members.values()].sort((a, b) => (a.id === app.localId ? -1 : b.id === app.localId ? 1 : a.id.localeCompare(b.id)));
    const rows = ms.map((m) => {
      const r = reach.get(m.id) || { status: 'unknown', detail: '' };
      const via = attr(m, 'cmbs.member.via');
      return h('tr', { dataset: { member: m.id }, class: m.id === selected ? 'selected' : undefined },
        h('th', { scope: 'row' }, h('a', { href: `#/members/${encodeURIComponent(m.id)}`, dataset: { key: `row-${m.id}` }, 'aria-current': m.id === selected ? 'true' : undefined }, m.id)),
        h('td', {}, h(`span.badge.status-${r.status}`, { title: r.detail }, r.status === 'local' ? 'local' : r.status)),
        h('td.num', {}, m.id === app.localId ? '0' : String(attr(m, 'cmbs.member.distance') ?? '–')),
        h('td', {}, via || '–'),
        h('td', {}, list(strings(attr(m, 'cmbs.member.topics')))),
        h('td', {}, list(strings(attr(m, 'cmbs.member.providers')))),
        h('td.mono', {}, socket(m, 'l1') || '–'));
    });
    fill(tableBox, rows.length
      ? table('Members', ['Member', 'Reachability', 'Distance', 'Via', 'Topics', 'Providers', 'L1 socket'], rows, { id: 'members-table' })
      : h('p.muted', {}, app.membersLoaded ? 'No members yet.' : 'Loading the members…'));
  };

  const renderDetail = (reach) => {
    const m = app.members.get(selected);
    if (!m) {
      fill(detailBox, h('p.muted', {}, selected ? `No member ${selected} is known here.` : 'Select a member in the graph or the table to see its attributes.'));
      return;
    }
    const r = reach.get(m.id) || { status: 'unknown', detail: '' };
    const local = m.id === app.localId;
    const states = local ? layerStates(m) : null;
    const layerRows = LAYERS.map((l) => h('tr', {},
      h('th', { scope: 'row' }, l), h('td.mono', {}, socket(m, l) || '–'),
      local ? h('td', {}, h(`span.badge.state-${states[l] === 'running' ? 'running' : 'stopped'}`, {}, states[l])) : null));
    const nstates = neighborStates(m);
    const neighbourRows = strings(attr(m, 'cmbs.member.neighbors_socket')).map((sock) => {
      const st = nstates.get(sock);
      return h('tr', {}, h('td.mono', {}, sock), h('td', {}, st ? st.detail : '–'));
    });
    const attrs = Object.entries(m.attributes || {}).sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => h('tr', {}, h('th.mono', { scope: 'row' }, k), h('td', {}, h('pre', {}, json(v)))));
    fill(detailBox,
      h('h2', { id: 'member-detail-title' }, m.title ? `${m.id} — ${m.title}` : m.id),
      h('dl.props', {},
        h('dt', {}, 'Reachability'), h('dd', {}, h(`span.badge.status-${r.status}`, {}, r.status), r.detail ? ` ${r.detail}` : '', r.time ? ` (${time(r.time)})` : ''),
        h('dt', {}, 'Local'), h('dd', {}, local ? 'yes, this server' : 'no'),
        h('dt', {}, 'State'), h('dd', {}, String(attr(m, 'cmbs.member.state') || '–')),
        local ? null : [h('dt', {}, 'Route'), h('dd', {}, attr(m, 'cmbs.member.via') ? `through ${attr(m, 'cmbs.member.via')}` : 'direct'),
          h('dt', {}, 'Distance'), h('dd', {}, String(attr(m, 'cmbs.member.distance') ?? '–')),
          h('dt', {}, 'Last seen'), h('dd', {}, time(attr(m, 'cmbs.member.last_seen')))],
        h('dt', {}, 'Topics'), h('dd', { dataset: { field: 'topics' } }, list(strings(attr(m, 'cmbs.member.topics')))),
        h('dt', {}, 'Providers'), h('dd', { dataset: { field: 'providers' } }, list(strings(attr(m, 'cmbs.member.providers'))))),
      h('h3', {}, 'Layers'),
      table(`Layers of ${m.id}`, local ? ['Layer', 'Socket', 'State'] : ['Layer', 'Socket'], layerRows),
      local ? null : h('p.hint', {}, 'Members describe their sockets, not whether their receivers run; a failed delivery shows a layer that does not.'),
      h('h3', {}, 'Neighbours'),
      neighbourRows.length ? table(`Neighbours of ${m.id}`, ['Socket', 'Last discovery'], neighbourRows) : h('p.muted', {}, 'None declared.'),
      h('details', {}, h('summary', {}, `All attributes (${attrs.length})`), table(`Attributes of ${m.id}`, ['Attribute', 'Value'], attrs)));
  };

  const v = view(app, {
    id: 'members', title: 'Members and routes', topics: ['members'],
    shown(param) {
      selected = param ? decodeURIComponent(param) : selected;
    },
    render() {
      const reach = app.reach;
      renderGraph(reach);
      renderTable(reach);
      renderDetail(reach);
    },
  });
  v.el.append(
    h('div.split', {},
      h('div', {},
        svgBox,
        h('ul.legend', { 'aria-label': 'Legend' },
          h('li', {}, h('span.key.status-local', { 'aria-hidden': 'true' }, GLYPH.local), ' local member'),
          h('li', {}, h('span.key.status-reachable', { 'aria-hidden': 'true' }, GLYPH.reachable), ' reachable'),
          h('li', {}, h('span.key.status-unreachable', { 'aria-hidden': 'true' }, GLYPH.unreachable), ' unreachable'),
          h('li', {}, h('span.key.status-unknown', { 'aria-hidden': 'true' }, GLYPH.unknown), ' not contacted'),
          h('li', {}, h('span.line.neighbour', { 'aria-hidden': 'true' }), ' neighbours'),
          h('li', {}, h('span.line.route', { 'aria-hidden': 'true' }), ' route in use'),
          h('li', {}, h('span.line.route-only', { 'aria-hidden': 'true' }), ' route, not a declared neighbour'))),
      h('section.card', { 'aria-label': 'Selected member' }, detailBox)),
    tableBox);
  return v;
}

function shorten(s, n) {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}
