// The Assistant panel: pick, create, edit and delete assistants (model, instructions, tools, functions).

import { del, get, listAll, post } from './api.js';
import { $, clear, emit, h, notify, on } from './dom.js';
import { state } from './state.js';

const NEW = '';

async function loadModels() {
  try {
    state.models = (await get('/v1/models')).data.map((m) => m.id);
  } catch (e) {
    state.models = [];
    notify(`Models: ${e.message}`);
  }
}

function renderSelect() {
  const select = $('#assistant-select');
  clear(select,
    state.assistants.map((a) => h('option', { value: a.id, text: a.name || a.id })),
    h('option', { value: NEW, text: '+ New assistant' }));
  select.value = state.assistant?.id ?? NEW;
}

function renderModels(current) {
  const select = $('#a-model');
  const text = $('#a-model-text');
  const names = [...state.models];
  if (current && !names.includes(current)) names.push(current);
  // no model list (the model server did not answer): type the name instead
  select.hidden = !names.length;
  text.hidden = !!names.length;
  clear(select, names.map((m) => h('option', { value: m, text: m })));
  if (current) { select.value = current; text.value = current; }
}

function renderResources(a, keep = false) {
  const checked = [...document.querySelectorAll('input[name="code-file"]:checked')].map((i) => i.value);
  const ids = keep ? checked : a?.tool_resources?.code_interpreter?.file_ids || [];
  const usable = state.files.filter((f) => f.purpose === 'assistants' || ids.includes(f.id));
  clear($('#code-files'),
    h('span', { class: 'small muted', text: 'Files in /mnt/data' }),
    usable.length ? usable.map((f) => h('label', { class: 'check small' },
      h('input', { type: 'checkbox', name: 'code-file', value: f.id, checked: ids.includes(f.id) }), ` ${f.filename}`))
      : h('span', { class: 'small muted', text: ' — none uploaded yet (Files tab).' }));
  const store = a?.tool_resources?.file_search?.vector_store_ids?.[0] || '';
  clear($('#a-store'), h('option', { value: '', text: 'None' }),
    state.stores.map((vs) => h('option', { value: vs.id, text: vs.name || vs.id })));
  $('#a-store').value = store;
}

function toggleSubs() {
  $('#code-files').hidden = !$('#t-code').checked;
  $('#search-store').hidden = !$('#t-search').checked;
}

function fill(a) {
  state.assistant = a;
  $('#a-name').value = a?.name || '';
  renderModels(a?.model || state.models[0] || '');
  $('#a-instructions').value = a?.instructions || '';
  const tools = a?.tools || [];
  $('#t-code').checked = tools.some((t) => t.type === 'code_interpreter');
  $('#t-calc').checked = tools.some((t) => t.type === 'calculator');
  $('#t-search').checked = tools.some((t) => t.type === 'file_search');
  const fns = tools.filter((t) => t.type === 'function').map((t) => t.function);
  $('#a-functions').value = fns.length ? JSON.stringify(fns, null, 2) : '';
  renderResources(a);
  toggleSubs();
  $('#assistant-delete').hidden = !a;
  $('#assistant-id').textContent = a ? a.id : 'Not saved yet.';
  $('#assistant-saved').textContent = '';
  fnError('');
  renderSelect();
  emit('assistant', a);
}

function fnError(message) {
  $('#a-functions-error').textContent = message;
  $('#a-functions-error').hidden = !message;
  $('#a-functions').setAttribute('aria-invalid', String(!!message));
}

/** The function tools typed as JSON: an array (or one object) of definitions or {type, function}. */
function functions() {
  const text = $('#a-functions').value.trim();
  if (!text) return [];
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new Error(`Functions are not valid JSON: ${e.message}`);
  }
  const list = Array.isArray(parsed) ? parsed : [parsed];
  return list.map((f) => {
    if (!f || typeof f !== 'object') throw new Error('Each function must be a JSON object.');
    return f.type === 'function' ? f : { type: 'function', function: f };
  });
}

function body() {
  const tools = [];
  if ($('#t-code').checked) tools.push({ type: 'code_interpreter' });
  if ($('#t-calc').checked) tools.push({ type: 'calculator' });
  if ($('#t-search').checked) tools.push({ type: 'file_search' });
  tools.push(...functions());
  const files = [...document.querySelectorAll('input[name="code-file"]:checked')].map((i) => i.value);
  const store = $('#a-store').value;
  return {
    name: $('#a-name').value.trim() || null,
    model: $('#a-model').hidden ? $('#a-model-text').value.trim() : $('#a-model').value,
    instructions: $('#a-instructions').value || null,
    tools,
    tool_resources: {
      code_interpreter: { file_ids: $('#t-code').checked ? files : [] },
      file_search: { vector_store_ids: $('#t-search').checked && store ? [store] : [] },
    },
  };
}

async function save(e) {
  e.preventDefault();
  let payload;
  try {
    payload = body();
    fnError('');
  } catch (err) {
    fnError(err.message);
    $('#a-functions').focus();
    return;
  }
  if (!payload.model) { notify('Choose or type a model first.'); return; }
  try {
    const path = state.assistant ? `/v1/assistants/${state.assistant.id}` : '/v1/assistants';
    const saved = await post(path, payload);
    await refreshAssistants(saved.id);
    $('#assistant-saved').textContent = 'Saved.';
  } catch (err) {
    notify(err.message);
  }
}

async function remove() {
  if (!state.assistant) return;
  try {
    await del(`/v1/assistants/${state.assistant.id}`);
    await refreshAssistants(null);
  } catch (err) { notify(err.message); }
}

export async function refreshAssistants(selectId) {
  state.assistants = await listAll('/v1/assistants');
  const chosen = state.assistants.find((a) => a.id === selectId)
    || (selectId === undefined ? state.assistants[0] : null) || null;
  fill(chosen);
}

export async function initAssistants() {
  $('#assistant-select').addEventListener('change', (e) => {
    fill(state.assistants.find((a) => a.id === e.target.value) || null);
  });
  $('#assistant-new').addEventListener('click', () => { fill(null); $('#a-name').focus(); });
  $('#assistant-form').addEventListener('submit', save);
  $('#assistant-delete').addEventListener('click', remove);
  for (const id of ['#t-code', '#t-search']) $(id).addEventListener('change', toggleSubs);
  on('files', () => { const v = $('#a-store').value; renderResources(state.assistant, true); $('#a-store').value = v; });
  on('stores', () => { const v = $('#a-store').value; renderResources(state.assistant, true); if (v) $('#a-store').value = v; });
  await loadModels();
  await refreshAssistants(undefined);
}
