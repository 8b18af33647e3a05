// The server's event stream, GET /events over a WebSocket, kept open:
// after a drop it reconnects with a growing delay (1 s to 30 s), and the
// page reloads what it shows, since events sent meanwhile are lost.

const MIN_DELAY = 1000;
const MAX_DELAY = 30000;

export class EventStream {
  /**
   * onEvent receives each event object; onState receives
   * {state: 'connecting'|'live'|'retrying'|'closed', detail}; onOpen runs
   * on every (re)connection.
   */
  constructor({ onEvent, onState, onOpen }) {
    this.onEvent = onEvent;
    this.onState = onState;
    this.onOpen = onOpen;
    this.delay = MIN_DELAY;
    this.ws = null;
    this.timer = null;
    this.closed = false;
  }

  url() {
    const u = new URL('/events', window.location.href);
    u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
    u.username = '';
    u.password = '';
    return u.href;
  }

  start() {
    this.closed = false;
    this.connect();
  }

  connect() {
    this.timer = null;
    this.onState({ state: 'connecting', detail: 'connecting to the event stream' });
    const ws = new WebSocket(this.url());
    this.ws = ws;
    ws.addEventListener('open', () => {
      this.delay = MIN_DELAY;
      this.onState({ state: 'live', detail: 'receiving events' });
      this.onOpen();
    });
    ws.addEventListener('message', (msg) => {
      let ev;
      try {
        ev = JSON.parse(msg.data);
      } catch {
        return;
      }
      this.onEvent(ev);
    });
    ws.addEventListener('close', (e) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.closed) {
        this.onState({ state: 'closed', detail: 'stopped' });
        return;
      }
      // 1008: this page fell behind and the server let it go; it may come
      // back at once.
      const delay = e.code === 1008 ? 0 : this.delay;
      this.delay = Math.min(this.delay * 2, MAX_DELAY);
      const why = e.reason || (e.code === 1001 ? 'server going away' : 'connection lost');
      this.onState({ state: 'retrying', detail: `${why}; reconnecting in ${Math.round(delay / 1000)} s` });
      this.timer = setTimeout(() => this.connect(), delay);
    });
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1000, 'page closed');
  }
}
