// What every view shares: a section with its heading, rendered when the
// topics it shows change and only while it is on screen.

import { h } from '../dom.js';

/**
 * view builds a view: topics are the App topics whose changes re-render it;
 * render(param, changed) fills it in, changed being the topics that changed
 * since the last render (null when the view just came on screen: render
 * everything); shown(param) runs whenever it comes on screen.
 */
export function view(app, { id, title, topics = [], render, shown }) {
  const heading = h('h1', { id: `${id}-title`, tabindex: -1 }, title);
  const el = h('section.view', { id: `view-${id}`, 'aria-labelledby': `${id}-title`, hidden: true }, heading);
  let visible = false;
  let frame = 0;
  let param = '';
  let changed = new Set();
  const schedule = (topic = 'self') => {
    changed.add(topic);
    if (!visible || frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      if (!visible) return;
      const now = changed;
      changed = new Set();
      render(param, now);
    });
  };
  for (const t of topics) app.on(t, () => schedule(t));
  return {
    id,
    title,
    el,
    heading,
    show(p) {
      param = p || '';
      visible = true;
      el.hidden = false;
      if (shown) shown(param);
      changed = new Set();
      render(param, null);
    },
    hide() {
      visible = false;
      el.hidden = true;
    },
    get visible() {
      return visible;
    },
    schedule: () => schedule('self'),
  };
}
