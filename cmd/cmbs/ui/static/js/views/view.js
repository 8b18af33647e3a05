// What every view shares: a section with its heading, rendered when the
// topics it shows change and only while it is on screen.

import { h } from '../dom.js';

/**
 * view builds a view: topics are the App topics whose changes re-render it;
 * render(param) fills it in; shown(param) runs whenever it comes on screen.
 */
export function view(app, { id, title, topics = [], render, shown }) {
  const heading = h('h1', { id: `${id}-title`, tabindex: -1 }, title);
  const el = h('section.view', { id: `view-${id}`, 'aria-labelledby': `${id}-title`, hidden: true }, heading);
  let visible = false;
  let frame = 0;
  let param = '';
  const schedule = () => {
    if (!visible || frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      if (visible) render(param);
    });
  };
  for (const t of topics) app.on(t, schedule);
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
      render(param);
    },
    hide() {
      visible = false;
      el.hidden = true;
    },
    get visible() {
      return visible;
    },
    schedule,
  };
}
