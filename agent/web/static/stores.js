// The Vector stores panel: create stores from uploaded files, add files, watch ingestion progress.

import { del, get, listAll, post } from './api.js';
import { $, bytes, clear, emit, h, notify, on } from './dom.js';
import { state } from './state.js';

const watching = new Set();

export async function refreshStores() {
  state.stores = await listAll('/v1/vector_stores');
  render();
  emit('stores');
  for (const vs of state.stores) if (vs.status === 'in_progress') watch(vs.id);
}

/** Poll a store until its files are ingested, updating its progress bar as counts change. */
async function watch(id) {
  if (watching.has(id)) return;
  watching.add(id);
  try {
    for (let i = 0; i < 600; i++) {
      await new Promise((r) => setTimeout(r, 500));
      const vs = await get(`/v1/vector_stores/${id}`);
      const at = state.stores.findIndex((s) => s.id === id);
      if (at < 0) return;
      state.stores[at] = vs;
      render();
      if (vs.status !== 'in_progress') { emit('stores'); return; }
    }
  } catch (e) {
    notify(e.message);
  } finally {
    watching.delete(id);
  }
}

function progress(vs) {
  const c = vs.file_counts;
  const done = c.completed + c.failed + c.cancelled;
  const label = `${c.completed} of ${c.total} files ready${c.failed ? `, ${c.failed} failed` : ''}`;
  return h('div', { class: 'progress' },
    h('progress', { max: String(Math.max(c.total, 1)), value: String(c.total ? done : 1), 'aria-label': `Ingestion of ${vs.name || vs.id}` }),
    h('span', { class: 'small muted', text: label }));
}

function filePicker(name) {
  const usable = state.files.filter((f) => f.purpose === 'assistants');
  if (!usable.length) return [h('p', { class: 'muted small', text: 'Upload files in the Files tab first.' })];
  return usable.map((f) => h('label', { class: 'check' },
    h('input', { type: 'checkbox', name, value: f.id }), ` ${f.filename}`));
}

function renderPicks() {
  clear($('#store-files'), h('legend', { text: 'Files to ingest' }), filePicker('new-store-file'));
}

function render() {
  const list = $('#store-list');
  if (!state.stores.length) {
    clear(list, h('li', { class: 'empty', text: 'No vector stores yet.' }));
    return;
  }
  clear(list, state.stores.map((vs) => {
    const add = h('select', { 'aria-label': `File to add to ${vs.name || vs.id}` },
      h('option', { value: '', text: 'Add a file…' }),
      state.files.filter((f) => f.purpose === 'assistants').map((f) => h('option', { value: f.id, text: f.filename })));
    add.addEventListener('change', () => addFile(vs, add.value));
    return h('li', { class: 'item column', 'data-store': vs.id },
      h('div', { class: 'row' },
        h('div', { class: 'item-main' },
          h('span', { class: 'item-title', text: vs.name || 'Untitled store' }),
          h('span', { class: 'muted small mono', text: `${vs.id} · ${bytes(vs.usage_bytes || 0)}` })),
        h('span', { class: `pill ${vs.status}`, text: vs.status.replace('_', ' ') })),
      progress(vs),
      h('div', { class: 'row' }, add,
        h('button', { type: 'button', class: 'button small danger', text: 'Delete', 'aria-label': `Delete ${vs.name || vs.id}`,
          onclick: () => remove(vs) })));
  }));
}

async function addFile(vs, fileId) {
  if (!fileId) return;
  try {
    await post(`/v1/vector_stores/${vs.id}/files`, { file_id: fileId });
    await refreshStores();
  } catch (e) { notify(e.message); }
}

async function remove(vs) {
  try {
    await del(`/v1/vector_stores/${vs.id}`);
    await refreshStores();
  } catch (e) { notify(e.message); }
}

export async function initStores() {
  $('#store-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const ids = [...document.querySelectorAll('input[name="new-store-file"]:checked')].map((i) => i.value);
    try {
      await post('/v1/vector_stores', { name: $('#store-name').value.trim() || undefined, file_ids: ids });
      $('#store-name').value = '';
      await refreshStores();
    } catch (err) { notify(err.message); }
  });
  on('files', () => { renderPicks(); render(); });
  renderPicks();
  await refreshStores();
}
