// The page's state: what it has read from the server, kept current by the
// event stream, and the topics views listen to.

import * as api from './api.js';
import { coalesce } from './dom.js';
import * as metrics from './metrics.js';
import { isLocal, observe, observeDelivery, reachability } from './model.js';
import { EventStream } from './stream.js';

const METRICS_EVERY = 5000;
const COUNTS_EVERY = 30000;
const MAX_EVENTS = 1000;
// More changed messages than this at once reload the whole collection.
const MAX_SINGLE_READS = 25;

export class App {
  constructor() {
    this.members = new Map();
    this.membersLoaded = false;
    this.localId = '';
    this.counts = { members: null, messages: null, subscriptions: null };
    this.metrics = { summary: null, prev: null, prevAt: 0, error: '' };
    this.messages = new Map();
    this.messagesWanted = false;
    this.messagesLoaded = false;
    // Message id → when this page saw it change, for newest-first order.
    this.seen = new Map();
    this.observations = new Map();
    this.events = [];
    this.eventSeq = 0;
    this.conn = { state: 'connecting', detail: '' };
    this.categories = null;
    this.listeners = new Map();
    this.dirtyMessages = new Set();

    this.refreshMembers = coalesce(() => this.loadMembers(), 200);
    this.refreshCounts = coalesce(() => this.loadCounts(), 1000);
    this.refreshMessages = coalesce(() => this.readDirtyMessages(), 250);
    this.stream = new EventStream({
      onEvent: (ev) => this.handleEvent(ev),
      onState: (st) => {
        this.conn = st;
        this.emit('conn');
      },
      // Events may have been missed while the stream was down.
      onOpen: () => this.reload(),
    });
  }

  on(topic, fn) {
    if (!this.listeners.has(topic)) this.listeners.set(topic, new Set());
    this.listeners.get(topic).add(fn);
  }

  emit(topic, arg) {
    for (const fn of this.listeners.get(topic) || []) fn(arg);
  }

  /** fail reports an error to the page's alert line. */
  fail(err) {
    this.emit('error', err instanceof Error ? err.message : String(err));
  }

  start() {
    // Read at once rather than when the stream opens: a page whose stream
    // cannot open (a proxy that refuses WebSockets) still shows the state,
    // refreshed every half minute. Every (re)opening reads it again, for
    // what changed before the stream was there.
    this.reload();
    this.stream.start();
    this.loadMetrics();
    // A hidden tab asks nothing; the next scrape's rates cover the gap.
    setInterval(() => document.hidden || this.loadMetrics(), METRICS_EVERY);
    setInterval(() => document.hidden || this.conn.state === 'live' || this.refreshMembers(), COUNTS_EVERY);
    setInterval(() => document.hidden || this.refreshCounts(), COUNTS_EVERY);
  }

  reload() {
    this.refreshMembers();
    this.refreshCounts();
    if (this.messagesWanted) this.loadMessages();
  }

  get reach() {
    return reachability(this.members, this.localId, this.observations);
  }

  get local() {
    return this.members.get(this.localId) || null;
  }

  async loadMembers() {
    try {
      const list = await api.entities(api.MEMBER_LOCATION);
      this.members = new Map(list.map((m) => [m.id, m]));
      const local = list.find(isLocal);
      this.localId = local ? local.id : '';
      this.membersLoaded = true;
      this.counts.members = list.length;
      this.emit('members');
      this.emit('counts');
    } catch (err) {
      this.fail(err);
    }
  }

  async loadCounts() {
    try {
      const [members, messages, subscriptions] = await Promise.all([
        api.count(api.MEMBER_LOCATION), api.count(api.MESSAGE_LOCATION), api.count(api.SUBSCRIPTION_LOCATION)]);
      this.counts = { members, messages, subscriptions };
      this.emit('counts');
    } catch (err) {
      this.fail(err);
    }
  }

  async loadMetrics() {
    try {
      const text = await api.metricsText();
      const cur = metrics.parse(text);
      const now = performance.now();
      const m = this.metrics;
      m.summary = metrics.summarize(cur, m.prev, m.prev ? (now - m.prevAt) / 1000 : 0);
      m.prev = cur;
      m.prevAt = now;
      m.error = '';
    } catch (err) {
      this.metrics.error = err.message;
    }
    this.emit('metrics');
  }

  /** wantMessages loads the message collection the first time a view needs it. */
  wantMessages() {
    if (this.messagesWanted) return;
    this.messagesWanted = true;
    this.loadMessages();
  }

  async loadMessages() {
    try {
      const list = await api.entities(api.MESSAGE_LOCATION);
      this.messages = new Map(list.map((m) => [m.id, m]));
      for (const m of list) observeDelivery(this.observations, m);
      this.messagesLoaded = true;
      this.emit('messages');
      this.emit('members');
    } catch (err) {
      this.fail(err);
    }
  }

  /** putMessage records a message read by a view. */
  putMessage(msg) {
    this.messages.set(msg.id, msg);
    observeDelivery(this.observations, msg);
    this.emit('messages');
  }

  async readDirtyMessages() {
    const ids = [...this.dirtyMessages];
    this.dirtyMessages.clear();
    if (!ids.length) return;
    if (ids.length > MAX_SINGLE_READS) {
      await this.loadMessages();
      return;
    }
    const read = await Promise.allSettled(ids.map((id) => api.entity(api.MESSAGE_LOCATION + encodeURIComponent(id))));
    read.forEach((r, i) => {
      if (r.status === 'fulfilled' && r.value) {
        this.messages.set(ids[i], r.value);
        observeDelivery(this.observations, r.value);
      } else if (r.reason && r.reason.status === 404) {
        this.messages.delete(ids[i]);
      }
    });
    this.emit('messages');
  }

  handleEvent(ev) {
    ev.seq = ++this.eventSeq;
    this.events.push(ev);
    if (this.events.length > MAX_EVENTS) this.events.splice(0, this.events.length - MAX_EVENTS);
    const loc = String(ev.location || '');
    const t = Date.parse(ev.time) || Date.now();
    switch (ev.event) {
      case 'message_received':
        observe(this.observations, ev.from, true, t, `sent a message here on ${ev.layer}`);
        break;
      case 'delivery_failed':
        observe(this.observations, ev.member, false, t, ev.reason || 'delivery failed');
        break;
    }
    if (loc.startsWith(api.MEMBER_LOCATION)) {
      this.refreshMembers();
    } else if (loc.startsWith(api.MESSAGE_LOCATION)) {
      const id = decodeURIComponent(loc.slice(api.MESSAGE_LOCATION.length));
      this.seen.set(id, Math.max(this.seen.get(id) || 0, t));
      if (ev.entity) observeDelivery(this.observations, ev.entity);
      if (ev.event === 'deleted') {
        this.messages.delete(id);
        this.emit('messages');
      } else if (this.messagesWanted) {
        this.dirtyMessages.add(id);
        this.refreshMessages();
      }
      this.emit('members');
    }
    if (ev.event === 'created' || ev.event === 'deleted') this.countEvent(ev);
    this.emit('event', ev);
  }

  /**
   * countEvent keeps the counts current from created and deleted events;
   * the periodic count corrects them, reading the locations again.
   */
  countEvent(ev) {
    const key = { [api.MEMBER_KIND]: 'members', [api.MESSAGE_KIND]: 'messages', [api.SUBSCRIPTION_KIND]: 'subscriptions' }[ev.kind];
    if (!key || this.counts[key] === null) return;
    this.counts[key] = Math.max(0, this.counts[key] + (ev.event === 'created' ? 1 : -1));
    this.emit('counts');
  }

  async loadCategories() {
    try {
      this.categories = await api.categories();
      this.emit('categories');
    } catch (err) {
      this.fail(err);
    }
  }

  /** memberAction runs a member action and reloads the members for its outcome. */
  async memberAction(id, name) {
    const res = await api.action(api.MEMBER_LOCATION + encodeURIComponent(id), name);
    await this.loadMembers();
    return res.data;
  }
}
