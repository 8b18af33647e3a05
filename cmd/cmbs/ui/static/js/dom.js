// DOM helpers. Every piece of text from the server goes in as a text node
// or an attribute value, never as markup.

const SVG_NS = 'http://www.w3.org/2000/svg';

function build(el, attrs, children) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      el.addEventListener(name.slice(2), value);
    } else if (name === 'dataset') {
      for (const [k, v] of Object.entries(value)) {
        if (v !== undefined && v !== null) el.dataset[k] = String(v);
      }
    } else if (value === true) {
      el.setAttribute(name, '');
    } else {
      el.setAttribute(name, String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** h('tag.class', {attr: value, onclick: fn}, ...children) builds an HTML element. */
export function h(tag, attrs, ...children) {
  const [name, ...classes] = tag.split('.');
  const el = document.createElement(name);
  if (classes.length) el.className = classes.join(' ');
  return build(el, attrs, children);
}

/** s('tag', attrs, ...children) builds an SVG element. */
export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

/**
 * fill replaces el's children, keeping keyboard focus: when the focused
 * element was inside el and the new content has an element with the same
 * data-key, that one takes the focus.
 */
export function fill(el, ...children) {
  const active = document.activeElement;
  const key = active && el.contains(active) ? active.dataset.key : undefined;
  el.replaceChildren();
  append(el, children);
  if (key !== undefined) {
    const again = [...el.querySelectorAll('[data-key]')].find((c) => c.dataset.key === key);
    if (again) again.focus({ preventScroll: true });
  }
}

/** table builds a table inside a scrollable wrapper, so a narrow window scrolls it rather than the page. */
export function table(caption, headers, rows, attrs = {}) {
  return h('div.table-wrap', { tabindex: rows.length ? 0 : undefined, role: rows.length ? 'region' : undefined, 'aria-label': caption },
    h('table', attrs,
      h('caption.visually-hidden', {}, caption),
      h('thead', {}, h('tr', {}, headers.map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, rows)));
}

/**
 * time formats an RFC 3339 time or epoch milliseconds in local time as
 * 2026-11-25 21:03:22.739, whatever the browser's language: operators
 * compare it with logs.
 */
export function time(t) {
  const d = typeof t === 'number' ? new Date(t) : new Date(String(t || ''));
  if (Number.isNaN(d.getTime()) || d.getTime() === 0) return '–';
  const p = (n, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

/** list joins a list for a table cell, with a dash for none. */
export function list(values) {
  return values && values.length ? values.join(', ') : '–';
}

/** json pretty-prints a value for a <pre>. */
export function json(v) {
  return typeof v === 'string' ? v : JSON.stringify(v, null, 2);
}

/** coalesce runs fn at most once per delay; calls during a run schedule one more. */
export function coalesce(fn, delay) {
  let timer = null;
  let running = false;
  let again = false;
  const schedule = () => {
    if (timer) return;
    timer = setTimeout(async () => {
      timer = null;
      if (running) {
        again = true;
        return;
      }
      running = true;
      try {
        await fn();
      } finally {
        running = false;
        if (again) {
          again = false;
          schedule();
        }
      }
    }, delay);
  };
  return schedule;
}
