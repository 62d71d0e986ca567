// The Files panel: upload, list, download and delete files.

import { del, download, get, upload } from './api.js';
import { $, bytes, clear, emit, h, notify } from './dom.js';
import { state } from './state.js';

export async function refreshFiles() {
  state.files = (await get('/v1/files')).data;
  render();
  emit('files');
}

function render() {
  const list = $('#file-list');
  if (!state.files.length) {
    clear(list, h('li', { class: 'empty', text: 'No files yet. Upload data for code_interpreter or documents for file_search.' }));
    return;
  }
  clear(list, state.files.map((f) => h('li', { class: 'item' },
    h('div', { class: 'item-main' },
      h('span', { class: 'item-title', text: f.filename }),
      h('span', { class: 'muted small mono', text: `${f.id} · ${bytes(f.bytes)} · ${f.purpose}` })),
    h('div', { class: 'item-actions' },
      h('button', { type: 'button', class: 'button small', text: 'Download', 'aria-label': `Download ${f.filename}`,
        onclick: () => download(f.id, f.filename).catch((e) => notify(e.message)) }),
      h('button', { type: 'button', class: 'button small danger', text: 'Delete', 'aria-label': `Delete ${f.filename}`,
        onclick: () => remove(f) })))));
}

async function remove(file) {
  try {
    await del(`/v1/files/${file.id}`);
    await refreshFiles();
  } catch (e) { notify(e.message); }
}

/** Upload files (the panel's button, the composer's "Attach file") and refresh the list. */
export async function uploadFiles(files, statusEl = $('#files-status')) {
  const made = [];
  for (const [i, file] of [...files].entries()) {
    statusEl.textContent = `Uploading ${file.name} (${i + 1} of ${files.length})…`;
    try {
      made.push(await upload(file));
    } catch (e) {
      notify(`${file.name}: ${e.message}`);
    }
  }
  statusEl.textContent = made.length ? `Uploaded ${made.map((f) => f.filename).join(', ')}.` : '';
  await refreshFiles();
  return made;
}

export async function initFiles() {
  const input = $('#file-upload');
  input.addEventListener('change', async () => {
    const chosen = [...input.files];
    input.value = '';
    if (chosen.length) await uploadFiles(chosen);
  });
  await refreshFiles();
}
