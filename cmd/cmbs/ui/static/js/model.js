// What the page knows of members and messages, read from their
// attributes: layers, topics, delivery outcomes, reachability and the
// graph of members and routes.

export const LAYERS = ['l1', 'l2', 'l31', 'l32', 'l4'];

export const LAYER_NAMES = {
  l1: 'L1 request/reply',
  l2: 'L2 broadcast',
  l31: 'L3.1 by provider',
  l32: 'L3.2 by topic',
  l4: 'L4 by provider and topic',
};

/**
 * attr reads an attribute by its dotted name from an entity in either JSON
 * shape: OCCI 1.2's flat names, or pyOCNI's objects nested by the dots (as
 * event payloads carry them).
 */
export function attr(e, name) {
  const attrs = e && e.attributes;
  if (!attrs) return undefined;
  if (Object.hasOwn(attrs, name)) return attrs[name];
  let v = attrs;
  for (const part of name.split('.')) {
    if (!v || typeof v !== 'object' || !Object.hasOwn(v, part)) return undefined;
    v = v[part];
  }
  return v;
}

/** strings reads a list attribute; a lone string is one item and "" none. */
export function strings(v) {
  if (typeof v === 'string') return v.trim() ? [v.trim()] : [];
  if (Array.isArray(v)) return v.filter((x) => typeof x === 'string' && x.trim()).map((x) => x.trim());
  return [];
}

/** truthy reads the broker's flags: booleans or "true"/"True". */
export function truthy(v) {
  return v === true || (typeof v === 'string' && v.toLowerCase() === 'true');
}

export function isLocal(m) {
  return truthy(attr(m, 'cmbs.member.local'));
}

/** layerStates is the local member's record of its receivers, layer → state. */
export function layerStates(m) {
  const v = attr(m, 'cmbs.member.layers');
  const out = {};
  for (const l of LAYERS) out[l] = v && typeof v === 'object' && v[l] ? String(v[l]) : 'stopped';
  return out;
}

export function socket(m, layer) {
  const v = attr(m, `cmbs.member.${layer}_socket`);
  return typeof v === 'string' ? v.trim() : '';
}

/** topicMatches applies the broker's topic syntax: * or + one token, a final > or # one or more. */
export function topicMatches(pattern, topic) {
  if (pattern === topic) return true;
  const p = pattern.split('.');
  const t = topic.split('.');
  for (let i = 0; i < p.length; i++) {
    if ((p[i] === '>' || p[i] === '#') && i === p.length - 1) return t.length > i;
    if (i >= t.length) return false;
    if (p[i] === '*' || p[i] === '+') {
      if (t[i] === '') return false;
      continue;
    }
    if (p[i] !== t[i]) return false;
  }
  return p.length === t.length;
}

/** delivery is a message's recorded send outcome, or null. */
export function delivery(msg) {
  const d = attr(msg, 'cmbs.message.delivery');
  return d && typeof d === 'object' && d.state ? d : null;
}

export function messageLayer(msg) {
  const l = attr(msg, 'cmbs.message.cmbs_layer');
  if (LAYERS.includes(l)) return l;
  const d = delivery(msg);
  if (d && LAYERS.includes(d.layer)) return d.layer;
  const mixin = (msg.mixins || []).find((m) => LAYERS.includes(m.split('#')[1]));
  return mixin ? mixin.split('#')[1] : '';
}

/**
 * messageState says where a message stands on this member: "pending" or
 * "done" for one sent from here ("failed" when done with failed
 * destinations), "received" for one that came from another member,
 * "created" for one never sent.
 */
export function messageState(msg, localId) {
  const d = delivery(msg);
  if (d) {
    if (d.state !== 'done') return 'pending';
    return d.failed > 0 ? 'failed' : 'done';
  }
  const origin = attr(msg, 'cmbs.message.origin');
  if (origin && origin !== localId) return 'received';
  return 'created';
}

export const MESSAGE_STATES = ['pending', 'done', 'failed', 'received', 'created'];

function ms(t) {
  const v = Date.parse(t);
  return Number.isNaN(v) ? 0 : v;
}

/** messageTime is the latest moment known for a message, for newest-first order. */
export function messageTime(msg, seen) {
  const d = delivery(msg);
  const result = attr(msg, 'cmbs.message.result');
  return Math.max(
    seen || 0,
    d ? ms(d.started) : 0,
    d ? ms(d.finished) : 0,
    ms(attr(msg, 'cmbs.message.executed')),
    result && typeof result === 'object' ? ms(result.executed_at) : 0,
  );
}

/**
 * observe folds one observation of a member into obs (member id →
 * {ok, time, detail}), keeping the latest.
 */
export function observe(obs, id, ok, time, detail) {
  if (!id) return;
  const t = typeof time === 'number' ? time : ms(time);
  const prev = obs.get(id);
  if (!prev || t >= prev.time) obs.set(id, { ok, time: t, detail: detail || '' });
}

/** observeDelivery records what a message's delivery outcome says of its destinations. */
export function observeDelivery(obs, msg) {
  const d = delivery(msg);
  if (!d || !d.destinations) return;
  const t = ms(d.finished) || ms(d.started);
  for (const [dest, r] of Object.entries(d.destinations)) {
    if (!r || !r.status) continue;
    // Pending with a reason: the sender is retrying a member it cannot reach.
    if (r.status === 'pending') {
      if (r.reason) observe(obs, r.via || r.member || dest, false, ms(r.updated) || t, r.reason);
      continue;
    }
    const ok = r.status === 'delivered';
    observe(obs, r.member || dest, ok, t, ok ? 'a message sent from here reached it' : r.reason || r.status);
    if (ok && r.via) observe(obs, r.via, true, t, 'forwarded a message sent from here');
  }
}

/**
 * reachability says for each member whether it was reachable at the
 * latest contact: the local member's last discovery (neighbors_state),
 * descriptions received (last_seen), delivery outcomes and events, the
 * latest one winning. Members never contacted are "unknown".
 */
export function reachability(members, localId, observations) {
  const out = new Map();
  const local = members.get(localId);
  const bySocket = socketIndex(members);
  let discovery = 0;
  for (const m of members.values()) discovery = Math.max(discovery, ms(attr(m, 'cmbs.member.last_seen')));
  const obs = new Map();
  for (const m of members.values()) {
    if (m.id === localId) continue;
    const seen = attr(m, 'cmbs.member.last_seen');
    if (seen) observe(obs, m.id, true, seen, 'described at discovery');
  }
  // The last discovery ran no earlier than any description it produced.
  for (const [sock, state] of neighborStates(local)) {
    const id = state.member || bySocket.get(sock);
    if (id) observe(obs, id, state.ok, discovery, state.ok ? 'answered discovery' : state.detail);
  }
  for (const [id, o] of observations) observe(obs, id, o.ok, o.time, o.detail);
  for (const m of members.values()) {
    if (m.id === localId) {
      out.set(m.id, { status: 'local', detail: 'this server' });
      continue;
    }
    const o = obs.get(m.id);
    out.set(m.id, o ? { status: o.ok ? 'reachable' : 'unreachable', detail: o.detail, time: o.time } : { status: 'unknown', detail: 'no contact yet' });
  }
  return out;
}

/** neighborStates reads the local member's neighbors_state: socket → {ok, member, detail}. */
export function neighborStates(local) {
  const out = new Map();
  const v = local ? attr(local, 'cmbs.member.neighbors_state') : null;
  if (!v || typeof v !== 'object') return out;
  for (const [sock, raw] of Object.entries(v)) {
    const text = String(raw);
    const [head, ...rest] = text.split(':');
    const tail = rest.join(':').trim();
    if (head === 'reachable') out.set(sock, { ok: true, member: tail, detail: text });
    else out.set(sock, { ok: false, member: '', detail: tail || text });
  }
  return out;
}

function socketIndex(members) {
  const bySocket = new Map();
  for (const m of members.values()) {
    const s = socket(m, 'l1');
    if (s) bySocket.set(s, m.id);
  }
  return bySocket;
}

/**
 * graph lays out members and routes: nodes are the members (and neighbour
 * sockets no known member answers on), edges join neighbours (a member's
 * neighbors_socket names the other's L1 socket) and follow the routes the
 * local member uses (direct, or through its via member).
 */
export function graph(members, localId, reach) {
  const nodes = new Map();
  const edges = new Map();
  const bySocket = socketIndex(members);
  const local = members.get(localId);
  for (const m of members.values()) {
    const r = reach.get(m.id) || { status: 'unknown', detail: '' };
    nodes.set(m.id, {
      id: m.id, label: m.id, title: m.title || '', socket: socket(m, 'l1'),
      distance: m.id === localId ? 0 : Math.max(1, Number(attr(m, 'cmbs.member.distance')) || 1),
      status: r.status, detail: r.detail, member: true,
    });
  }
  const edge = (a, b, kind) => {
    if (!a || !b || a === b) return;
    const key = [a, b].sort().join('\u0000');
    const e = edges.get(key) || { a: [a, b].sort()[0], b: [a, b].sort()[1], neighbour: false, route: false };
    e[kind] = true;
    edges.set(key, e);
  };
  for (const m of members.values()) {
    for (const sock of strings(attr(m, 'cmbs.member.neighbors_socket'))) {
      let other = bySocket.get(sock);
      if (!other && m.id === localId) {
        // A neighbour no member answers for: drawn as its socket.
        const state = neighborStates(local).get(sock);
        other = `socket:${sock}`;
        nodes.set(other, {
          id: other, label: sock, title: '', socket: sock, distance: 1, member: false,
          status: state && state.ok ? 'reachable' : state ? 'unreachable' : 'unknown',
          detail: state ? state.detail : 'not contacted yet',
        });
      }
      edge(m.id, other, 'neighbour');
    }
  }
  if (local) {
    for (const m of members.values()) {
      if (m.id === localId) continue;
      const via = attr(m, 'cmbs.member.via');
      if (via && members.has(via)) {
        edge(localId, via, 'route');
        edge(via, m.id, 'route');
      } else {
        edge(localId, m.id, 'route');
      }
    }
  }
  return { nodes: [...nodes.values()], edges: [...edges.values()] };
}

/**
 * rings places the nodes on rings around the local member, one ring per
 * distance, in a width × height box: id → {x, y}. Each ring leaves one
 * slot empty, so no two members face each other across the centre with
 * the edge between them running through it.
 */
export function rings(nodes, width, height) {
  const pos = new Map();
  const cx = width / 2;
  const cy = height / 2;
  const byDistance = new Map();
  for (const n of [...nodes].sort((a, b) => a.id.localeCompare(b.id))) {
    if (!byDistance.has(n.distance)) byDistance.set(n.distance, []);
    byDistance.get(n.distance).push(n);
  }
  const outer = Math.max(1, ...byDistance.keys());
  const maxR = Math.min(width, height) / 2 - 50;
  const stretch = (width / Math.min(width, height)) * 0.9;
  for (const [d, ring] of byDistance) {
    if (d === 0 && ring.length === 1) {
      pos.set(ring[0].id, { x: cx, y: cy });
      continue;
    }
    const r = (maxR * Math.max(d, 1)) / outer;
    const step = (2 * Math.PI) / (ring.length + (ring.length > 1 ? 1 : 0));
    const start = -Math.PI / 2 - (step * (ring.length - 1)) / 2;
    ring.forEach((n, i) => {
      const a = start + step * i;
      pos.set(n.id, { x: cx + r * Math.cos(a) * stretch, y: cy + r * Math.sin(a) });
    });
  }
  return pos;
}

/**
 * layout spreads the graph out by forces (Fruchterman and Reingold):
 * nodes push each other away, edges pull their ends together, the local
 * member stays in the centre. It starts from previous positions where it
 * has them and from rings otherwise, and gives the same result for the
 * same input.
 */
export function layout(nodes, edges, width, height, previous = new Map()) {
  const start = rings(nodes, width, height);
  const pad = 40;
  const pts = nodes.map((n) => {
    const p = previous.get(n.id) || start.get(n.id);
    return { id: n.id, x: p.x, y: p.y, dx: 0, dy: 0, fixed: n.distance === 0 };
  });
  const index = new Map(pts.map((p, i) => [p.id, i]));
  const links = edges.map((e) => [index.get(e.a), index.get(e.b)]).filter(([a, b]) => a !== undefined && b !== undefined);
  const k = 0.75 * Math.sqrt((width * height) / Math.max(pts.length, 1));
  const rounds = pts.length > 60 ? 60 : 250;
  let temp = width / 10;
  for (let round = 0; round < rounds; round++) {
    for (const p of pts) {
      p.dx = 0;
      p.dy = 0;
    }
    for (let i = 0; i < pts.length; i++) {
      for (let j = i + 1; j < pts.length; j++) {
        const a = pts[i];
        const b = pts[j];
        let dx = a.x - b.x;
        let dy = a.y - b.y;
        let d = Math.hypot(dx, dy);
        if (d < 0.01) {
          // Two nodes on one spot part along a fixed direction.
          dx = 0.01 * (i - j);
          dy = 0.01;
          d = Math.hypot(dx, dy);
        }
        const f = (k * k) / d;
        a.dx += (dx / d) * f;
        a.dy += (dy / d) * f;
        b.dx -= (dx / d) * f;
        b.dy -= (dy / d) * f;
      }
    }
    for (const [i, j] of links) {
      const a = pts[i];
      const b = pts[j];
      const dx = a.x - b.x;
      const dy = a.y - b.y;
      const d = Math.max(Math.hypot(dx, dy), 0.01);
      const f = (d * d) / k;
      a.dx -= (dx / d) * f;
      a.dy -= (dy / d) * f;
      b.dx += (dx / d) * f;
      b.dy += (dy / d) * f;
    }
    for (const p of pts) {
      if (p.fixed) continue;
      // A little gravity keeps parts of the graph that are not connected
      // on the canvas.
      p.dx += (width / 2 - p.x) * 0.05;
      p.dy += (height / 2 - p.y) * 0.05;
      const d = Math.max(Math.hypot(p.dx, p.dy), 0.01);
      const step = Math.min(d, temp);
      p.x = Math.min(width - pad, Math.max(pad, p.x + (p.dx / d) * step));
      p.y = Math.min(height - pad - 16, Math.max(pad, p.y + (p.dy / d) * step));
    }
    temp = Math.max(temp * 0.97, 0.5);
  }
  return fit(pts, width, height, pad);
}

// fit centres the drawing in the box and enlarges a small one (up to
// twice), so a few members do not huddle in a corner.
function fit(pts, width, height, pad) {
  const out = new Map();
  if (!pts.length) return out;
  const xs = pts.map((p) => p.x);
  const ys = pts.map((p) => p.y);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const w = width - 2 * pad;
  // Room for a label above the top row and below the bottom one.
  const h = height - 2 * pad - 32;
  const scale = Math.min(2, x1 > x0 ? w / (x1 - x0) : 2, y1 > y0 ? h / (y1 - y0) : 2);
  for (const p of pts) {
    out.set(p.id, {
      x: width / 2 + (p.x - (x0 + x1) / 2) * scale,
      y: pad + 16 + h / 2 + (p.y - (y0 + y1) / 2) * scale,
    });
  }
  return out;
}
