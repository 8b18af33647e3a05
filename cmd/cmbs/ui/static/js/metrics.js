// Reading the server's Prometheus metrics: the text format's samples, and
// from two scrapes the per-layer rates and the delivery latency.

import { LAYERS } from './model.js';

/**
 * parse reads the Prometheus text exposition format into a Map from metric
 * name to its samples, each {labels, value}. Comments and malformed lines
 * are skipped.
 */
export function parse(text) {
  const out = new Map();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const sample = parseLine(line);
    if (!sample) continue;
    if (!out.has(sample.name)) out.set(sample.name, []);
    out.get(sample.name).push({ labels: sample.labels, value: sample.value });
  }
  return out;
}

function parseLine(line) {
  const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line);
  if (!m) return null;
  const name = m[1];
  let i = name.length;
  const labels = {};
  if (line[i] === '{') {
    i++;
    for (;;) {
      while (line[i] === ' ' || line[i] === ',') i++;
      if (line[i] === '}') {
        i++;
        break;
      }
      const lm = /^([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"/.exec(line.slice(i));
      if (!lm) return null;
      i += lm[0].length;
      let value = '';
      for (; i < line.length && line[i] !== '"'; i++) {
        if (line[i] === '\\' && i + 1 < line.length) {
          i++;
          value += line[i] === 'n' ? '\n' : line[i];
        } else {
          value += line[i];
        }
      }
      if (line[i] !== '"') return null;
      i++;
      labels[lm[1]] = value;
    }
  }
  const rest = line.slice(i).trim().split(/\s+/);
  const value = parseValue(rest[0]);
  if (value === null) return null;
  return { name, labels, value };
}

function parseValue(s) {
  switch (s) {
    case '+Inf': return Infinity;
    case '-Inf': return -Infinity;
    case 'NaN': return NaN;
  }
  if (s === undefined || s === '') return null;
  const v = Number(s);
  return Number.isNaN(v) ? null : v;
}

/** sum adds the samples of name whose labels include those of match. */
export function sum(samples, name, match = {}) {
  let total = 0;
  let found = false;
  for (const smp of samples.get(name) || []) {
    if (Object.entries(match).every(([k, v]) => smp.labels[k] === v)) {
      total += smp.value;
      found = true;
    }
  }
  return found ? total : null;
}

/**
 * quantile estimates the q-quantile from cumulative histogram buckets
 * [{le, count}], interpolating within the bucket as Prometheus's
 * histogram_quantile does. Null when there are no observations.
 */
export function quantile(q, buckets) {
  const bs = [...buckets].sort((a, b) => a.le - b.le);
  if (!bs.length) return null;
  const total = bs[bs.length - 1].count;
  if (!(total > 0)) return null;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const b of bs) {
    if (b.count >= rank) {
      if (b.le === Infinity) return prevLe;
      if (b.count === prevCount) return b.le;
      return prevLe + (b.le - prevLe) * ((rank - prevCount) / (b.count - prevCount));
    }
    prevLe = b.le;
    prevCount = b.count;
  }
  return prevLe;
}

const DELIVERY = 'cmbs_layer_delivery_duration_seconds';

function buckets(samples, layer) {
  const byLe = new Map();
  for (const smp of samples.get(`${DELIVERY}_bucket`) || []) {
    if (layer && smp.labels.layer !== layer) continue;
    const le = parseValue(smp.labels.le);
    if (le === null) continue;
    byLe.set(le, (byLe.get(le) || 0) + smp.value);
  }
  return [...byLe].map(([le, count]) => ({ le, count }));
}

function latency(cur, prev, layer) {
  const match = layer ? { layer } : {};
  let count = sum(cur, `${DELIVERY}_count`, match) || 0;
  let total = sum(cur, `${DELIVERY}_sum`, match) || 0;
  let bs = buckets(cur, layer);
  let window = false;
  if (prev) {
    const dc = count - (sum(prev, `${DELIVERY}_count`, match) || 0);
    // Over the last interval when sends finished in it; since the start
    // otherwise (and after a restart reset the counters).
    if (dc > 0) {
      window = true;
      total -= sum(prev, `${DELIVERY}_sum`, match) || 0;
      const before = new Map(buckets(prev, layer).map((b) => [b.le, b.count]));
      bs = bs.map((b) => ({ le: b.le, count: b.count - (before.get(b.le) || 0) }));
      count = dc;
    }
  }
  if (!(count > 0)) return { count: 0, window };
  return { count, window, mean: total / count, p50: quantile(0.5, bs), p95: quantile(0.95, bs) };
}

const COUNTERS = {
  sent: 'cmbs_layer_messages_sent_total',
  received: 'cmbs_layer_messages_received_total',
  forwarded: 'cmbs_layer_messages_forwarded_total',
  failed: 'cmbs_layer_messages_failed_total',
};

/**
 * summarize turns a scrape (and the one before, with the seconds between
 * them) into what the overview shows: per layer the counters, their rates
 * per second and whether the receiver runs; members known and reachable;
 * the delivery latency overall and per layer.
 */
export function summarize(cur, prev, seconds) {
  const layers = {};
  for (const layer of LAYERS) {
    const row = { layer, running: sum(cur, 'cmbs_layer_receiver_running', { layer }) === 1 };
    for (const [key, name] of Object.entries(COUNTERS)) {
      const now = sum(cur, name, { layer });
      row[key] = now;
      const before = prev ? sum(prev, name, { layer }) : null;
      row[`${key}Rate`] = now !== null && before !== null && seconds > 0 && now >= before ? (now - before) / seconds : null;
    }
    row.latency = latency(cur, prev, layer);
    layers[layer] = row;
  }
  const rate = (key) => {
    const rates = LAYERS.map((l) => layers[l][`${key}Rate`]).filter((r) => r !== null);
    return rates.length ? rates.reduce((a, b) => a + b, 0) : null;
  };
  return {
    layers,
    known: sum(cur, 'cmbs_members_known'),
    reachable: sum(cur, 'cmbs_members_reachable'),
    sentRate: rate('sent'),
    receivedRate: rate('received'),
    failedRate: rate('failed'),
    latency: latency(cur, prev, null),
  };
}
