// A message's text: a little Markdown (code blocks, inline code, bold), citations as numbered footnotes,
// and sandbox file links as download buttons. Built from text nodes only.

import { download } from './api.js';
import { h, notify } from './dom.js';
import { fileName } from './state.js';

const FENCE = /```[^\n`]*\n?([\s\S]*?)```/g;
const INLINE = /(`[^`\n]+`|\*\*[^*\n]+\*\*)/g;

function inline(text) {
  return text.split(INLINE).filter(Boolean).map((piece) => {
    if (piece.startsWith('`') && piece.endsWith('`') && piece.length > 2) return h('code', { text: piece.slice(1, -1) });
    if (piece.startsWith('**') && piece.endsWith('**') && piece.length > 4) return h('strong', { text: piece.slice(2, -2) });
    return piece;
  });
}

function markdown(text) {
  const out = [];
  let pos = 0;
  for (const m of text.matchAll(FENCE)) {
    out.push(...inline(text.slice(pos, m.index)));
    out.push(h('pre', { class: 'code' }, h('code', { text: m[1].replace(/\n$/, '') })));
    pos = m.index + m[0].length;
  }
  out.push(...inline(text.slice(pos)));
  return out;
}

/** Renders one text part; `notes` collects this message's citations ({fileId, n}) across parts. */
export function renderText(part, notes, anchor) {
  const value = part.value || '';
  const annotations = [...(part.annotations || [])]
    .filter((a) => Number.isInteger(a.start_index) && Number.isInteger(a.end_index))
    .sort((a, b) => a.start_index - b.start_index);
  const nodes = [];
  let pos = 0;
  let plain = '';
  const flush = () => { nodes.push(...markdown(plain)); plain = ''; };
  for (const a of annotations) {
    if (a.start_index < pos) continue;
    plain += value.slice(pos, a.start_index);
    pos = a.end_index;
    if (a.type === 'file_citation') {
      const fileId = a.file_citation?.file_id;
      let note = notes.find((n) => n.fileId === fileId);
      if (!note) { note = { fileId, n: notes.length + 1 }; notes.push(note); }
      flush();
      nodes.push(h('sup', { class: 'cite' },
        h('a', { href: `#${anchor}-fn-${note.n}`, text: `[${note.n}]`, 'aria-label': `Source ${note.n}: ${fileName(fileId)}` })));
    } else if (a.type === 'file_path') {
      const fileId = a.file_path?.file_id;
      let label = a.text.split('/').pop();
      const link = plain.match(/\[([^\]]*)\]\($/);
      if (link && value[pos] === ')') {
        label = link[1] || label;
        plain = plain.slice(0, link.index);
        pos += 1;
      }
      flush();
      nodes.push(h('button', { type: 'button', class: 'file-link', title: `Download ${label}`,
        onclick: () => download(fileId, label).catch((e) => notify(e.message)) }, '⬇ ', label));
    }
  }
  plain += value.slice(pos);
  flush();
  return h('div', { class: 'text' }, nodes);
}

export function renderFootnotes(notes, anchor) {
  if (!notes.length) return null;
  return h('ol', { class: 'footnotes', 'aria-label': 'Sources' },
    notes.map((note) => h('li', { id: `${anchor}-fn-${note.n}` }, fileName(note.fileId))));
}
