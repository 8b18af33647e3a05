// Categories: the kinds, mixins and actions the query interface reports,
// with their attributes.

import { h, fill, table, json } from '../dom.js';
import { view } from './view.js';

export function categories(app) {
  let text = '';
  const open = new Set();
  const box = h('div', { id: 'categories' });
  const filterIn = h('input', { id: 'cat-filter', type: 'search', autocomplete: 'off', placeholder: 'member, compute, cmbs#…',
    oninput: (e) => { text = e.target.value.trim().toLowerCase(); v.schedule(); } });

  const category = (c) => {
    const id = c.scheme + c.term;
    const defs = Object.entries(c.attributes || {}).sort(([a], [b]) => a.localeCompare(b));
    const rows = defs.map(([name, d]) => h('tr', {},
      h('th.mono', { scope: 'row' }, name),
      h('td', {}, d.type || '–'),
      h('td', {}, d.required ? 'yes' : 'no'),
      h('td', {}, d.mutable ? 'yes' : 'no'),
      h('td', {}, d.default === undefined ? '–' : h('code', {}, json(d.default))),
      h('td', {}, d.pattern ? h('code', {}, d.pattern) : '–'),
      h('td', {}, d.description || '–')));
    const related = [
      c.location && ['Location', c.location],
      c.parent && ['Parent', c.parent],
      c.depends && c.depends.length && ['Depends on', c.depends.join(', ')],
      c.applies && c.applies.length && ['Applies to', c.applies.join(', ')],
      c.actions && c.actions.length && ['Actions', c.actions.join(', ')],
    ].filter(Boolean);
    const details = h('details', { open: open.has(id) },
      h('summary', { dataset: { key: `cat-${id}` } }, h('strong', {}, c.term), c.title ? ` — ${c.title}` : '', h('span.muted.mono.small', {}, ` ${c.scheme}`)),
      h('dl.props', {}, h('dt', {}, 'Identifier'), h('dd.mono', {}, id), related.map(([k, val]) => [h('dt', {}, k), h('dd.mono', {}, val)])),
      rows.length ? table(`Attributes of ${c.term}`, ['Attribute', 'Type', 'Required', 'Mutable', 'Default', 'Pattern', 'Description'], rows) : null);
    details.addEventListener('toggle', () => {
      if (details.open) open.add(id);
      else open.delete(id);
    });
    return h('li', { dataset: { category: id } }, details);
  };

  const v = view(app, {
    id: 'categories', title: 'Categories', topics: ['categories'],
    shown() {
      app.loadCategories();
    },
    render() {
      const cats = app.categories;
      if (!cats) {
        fill(box, h('p.muted', {}, 'Loading the query interface…'));
        return;
      }
      const match = (c) => !text || `${c.scheme}${c.term} ${c.title || ''} ${c.location || ''}`.toLowerCase().includes(text);
      const section = (key, title) => {
        const list = (cats[key] || []).filter(match).sort((a, b) => (a.scheme + a.term).localeCompare(b.scheme + b.term));
        return h('section', { 'aria-labelledby': `cat-${key}` },
          h('h2', { id: `cat-${key}` }, `${title} (${list.length})`),
          list.length ? h('ul.categories', {}, list.map(category)) : h('p.muted', {}, 'None match.'));
      };
      fill(box, section('kinds', 'Kinds'), section('mixins', 'Mixins'), section('actions', 'Actions'));
    },
  });
  v.el.append(h('form.filters', { role: 'search', 'aria-label': 'Filter categories', onsubmit: (e) => e.preventDefault() },
    h('div.field', {}, h('label', { for: 'cat-filter' }, 'Filter'), filterIn)), box);
  return v;
}
