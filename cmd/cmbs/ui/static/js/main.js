// The dashboard's entry point: the header, the views and the hash router
// (#/overview, #/members/ID, #/messages/ID, #/send, #/events, #/categories).

import { App } from './app.js';
import { h, fill } from './dom.js';
import { categories } from './views/categories.js';
import { events } from './views/events.js';
import { members } from './views/members.js';
import { messages } from './views/messages.js';
import { overview } from './views/overview.js';
import { send } from './views/send.js';

const app = new App();
const views = [overview(app), members(app), messages(app), send(app), events(app), categories(app)];
const byId = new Map(views.map((v) => [v.id, v]));

const main = document.getElementById('main');
const alertBox = document.getElementById('alert');
const announcer = document.getElementById('announce');
const conn = document.getElementById('conn');
const localName = document.getElementById('local-name');
main.append(...views.map((v) => v.el));

document.getElementById('skip').addEventListener('click', (e) => {
  e.preventDefault();
  main.focus();
});

let alertTimer = 0;
app.on('error', (text) => {
  fill(alertBox, h('span', {}, text), h('button', { type: 'button', class: 'link', 'aria-label': 'Dismiss the message', onclick: () => { alertBox.hidden = true; } }, 'Dismiss'));
  alertBox.hidden = false;
  clearTimeout(alertTimer);
  alertTimer = setTimeout(() => { alertBox.hidden = true; }, 15000);
});
app.on('announce', (text) => {
  announcer.textContent = text;
});
app.on('conn', () => {
  const st = app.conn.state;
  conn.dataset.state = st;
  conn.textContent = st === 'live' ? 'Live' : st === 'retrying' ? 'Reconnecting' : st === 'connecting' ? 'Connecting' : 'Offline';
  conn.title = app.conn.detail;
});
app.on('members', () => {
  localName.textContent = app.localId ? `member ${app.localId}` : app.membersLoaded ? 'no local member' : '';
});

let current = null;
function route() {
  const hash = window.location.hash;
  // Other fragments (none the page makes) leave the view as it is.
  if (hash && !hash.startsWith('#/')) return;
  const [name, ...rest] = (hash.slice(2) || 'overview').split('/');
  const v = byId.get(name) || byId.get('overview');
  const changed = current !== v;
  if (changed && current) current.hide();
  current = v;
  v.show(rest.join('/'));
  for (const a of document.querySelectorAll('nav a[data-view]')) {
    if (a.dataset.view === v.id) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  document.title = `${v.title} · cmbs`;
  // A new view takes the focus to its heading, for keyboards and screen
  // readers; a change within the view (a selection) leaves it where it is.
  if (changed && route.started) v.heading.focus({ preventScroll: false });
  route.started = true;
}

window.addEventListener('hashchange', route);
route();
app.start();
