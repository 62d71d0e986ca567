// The chat: threads (remembered in this browser), the composer, and runs streamed from the API.

import { get, listAll, post, stream } from './api.js';
import { $, clear, emit, h, notify, on } from './dom.js';
import { uploadFiles } from './files.js';
import { state } from './state.js';
import { RunView, messageView } from './timeline.js';
import { ResponseView, fromAssistant } from './respond.js';

const THREADS = 'agent.playground.threads';
const OPEN = '#open';
const INCLUDE = 'include[]=step_details.tool_calls[*].file_search.results[*].content';
const MODE = 'agent.playground.mode'; // 'assistants' (runs) or 'responses'

const mode = () => (localStorage.getItem(MODE) === 'responses' ? 'responses' : 'assistants');

let thread = null; // the open thread's id
let current = null; // the run being streamed: {view, controller}
let attachments = []; // files attached to the next message

const remembered = () => { try { return JSON.parse(localStorage.getItem(THREADS)) || []; } catch { return []; } };

function remember(id, title) {
  const known = remembered().find((t) => t.id === id);
  const list = remembered().filter((t) => t.id !== id);
  list.unshift({ id, title: known?.title || title.slice(0, 60) });
  localStorage.setItem(THREADS, JSON.stringify(list.slice(0, 30)));
  renderThreads();
}

function forget(id) {
  localStorage.setItem(THREADS, JSON.stringify(remembered().filter((t) => t.id !== id)));
  renderThreads();
}

function renderThreads() {
  clear($('#thread-select'), h('option', { value: '', text: 'New conversation' }),
    remembered().map((t) => h('option', { value: t.id, text: t.title || t.id })),
    h('option', { value: OPEN, text: 'Open a thread by id…' }));
  $('#thread-select').value = thread || '';
}

function log() { return $('#log'); }

function scrollDown() {
  const el = log();
  if (el.scrollHeight - el.scrollTop - el.clientHeight < 160) el.scrollTop = el.scrollHeight;
}

function empty() {
  clear(log(), h('div', { class: 'empty-chat' },
    h('h2', { text: 'Start a conversation' }),
    h('p', { class: 'muted', text: 'Pick or create an assistant, then send a message. Code, logs, charts, tool calls and citations show up here as the run happens.' })));
}

function newThread() {
  if (current) return;
  thread = null;
  renderThreads();
  empty();
  $('#message').focus();
}

async function openThread(id) {
  if (current) return false;
  if (!/^[A-Za-z0-9_-]{1,128}$/.test(id)) {
    notify(`'${id.slice(0, 80)}' is not a thread id.`);
    return false;
  }
  try {
    await get(`/v1/threads/${id}`);
  } catch (e) {
    notify(e.message);
    if (e.status === 404) forget(id);
    renderThreads();
    return false;
  }
  thread = id;
  renderThreads();
  clear(log());
  const [messages, runs] = await Promise.all([
    listAll(`/v1/threads/${id}/messages?order=asc`),
    listAll(`/v1/threads/${id}/runs?order=asc`),
  ]);
  const placed = new Set();
  const place = async (run, before = null) => {
    placed.add(run.id);
    const steps = await listAll(`/v1/threads/${id}/runs/${run.id}/steps?order=asc&${INCLUDE}`);
    const view = new RunView(run, log(), submitOutputs, false, before);
    for (const step of steps) view.upsertStep(step);
    for (const m of messages.filter((x) => x.run_id === run.id)) view.upsertMessage(m);
    view.setRun(run);
  };
  for (const msg of messages) {
    const run = msg.run_id ? runs.find((r) => r.id === msg.run_id) : null;
    if (!run) log().append(messageView(msg)); // the person's, or written by a response (Responses API)
    else if (!placed.has(run.id)) await place(run);
  }
  // runs that wrote no message (failed early, waiting for function outputs) go where their time puts them
  for (const run of runs.filter((r) => !placed.has(r.id))) {
    const later = [...log().children].find((el) => Number(el.dataset.created) > run.created_at);
    await place(run, later || null);
  }
  if (!messages.length && !runs.length) empty();
  log().scrollTop = log().scrollHeight;
  // a run still going (started elsewhere, or before a reload): look again until it stops
  if (runs.some((r) => ['queued', 'in_progress', 'cancelling'].includes(r.status))) {
    setTimeout(() => { if (thread === id && !current) openThread(id); }, 1000);
  }
  return true;
}

function setBusy(busy, cancellable = true) {
  $('#send').hidden = busy;
  $('#cancel').hidden = !busy || !cancellable;
  $('#thread-new').disabled = busy;
  $('#thread-select').disabled = busy;
  if (!busy) $('#run-status').textContent = '';
}

/** Stream one leg of a run (create, or submit tool outputs) into its view. */
async function follow(path, body, view) {
  const controller = new AbortController();
  const t0 = performance.now();
  current = { view, controller };
  setBusy(true);
  $('#run-status').textContent = 'Starting run…';
  try {
    for await (const { event, data } of stream(path, body, controller.signal)) {
      if (event === 'done') break;
      if (!view && event === 'thread.run.created') {
        view = new RunView(data, log(), submitOutputs);
        view.started = t0;
        view.startClock();
        current.view = view;
      }
      if (!view) continue;
      view.handle(event, data);
      if (event.startsWith('thread.run.') && !event.startsWith('thread.run.step')) {
        $('#run-status').textContent = `Run ${data.status.replace('_', ' ')}`;
      }
      scrollDown();
    }
  } catch (e) {
    if (view) view.showError(e.message); else notify(e.message);
  } finally {
    current = null;
    view?.stopClock();
    setBusy(false);
    const pending = view?.action.querySelector('textarea');
    if (pending) pending.focus(); else $('#message').focus();
    scrollDown();
  }
}

/** Stream one response (Responses API) on the open thread, used as its conversation. */
async function respond(input) {
  const controller = new AbortController();
  let view = null;
  current = { view, controller };
  setBusy(true, false); // a streamed response cannot be cancelled (only background ones can)
  $('#run-status').textContent = 'Starting response…';
  const body = { ...fromAssistant(state.assistant), conversation: thread, input };
  try {
    for await (const { event, data } of stream('/v1/responses', body, controller.signal)) {
      if (event === 'done') break;
      if (!view && data?.response) {
        view = new ResponseView(data.response, log(), (_v, outputs) => respond(outputs));
        view.startClock();
        current.view = view;
      }
      if (!view) {
        if (event === 'error') notify(data?.message || data?.error?.message || 'The response failed.');
        continue;
      }
      view.handle(event, data);
      if (data?.response) $('#run-status').textContent = `Response ${data.response.status.replace('_', ' ')}`;
      scrollDown();
    }
  } catch (e) {
    if (view) view.showError(e.message); else notify(e.message);
  } finally {
    current = null;
    view?.stopClock();
    setBusy(false);
    const pending = view?.action.querySelector('textarea');
    if (pending) pending.focus(); else $('#message').focus();
    scrollDown();
  }
}

function submitOutputs(view, outputs) {
  const r = view.run;
  view.startClock();
  return follow(`/v1/threads/${r.thread_id}/runs/${r.id}/submit_tool_outputs`, { tool_outputs: outputs }, view);
}

async function send(e) {
  e.preventDefault();
  if (current) return;
  const text = $('#message').value.trim();
  if (!text) { $('#message').focus(); return; }
  if (!state.assistant) {
    notify('Save an assistant first (Assistant tab), then send your message.');
    emit('show-tab', 'assistant');
    return;
  }
  const tools = (state.assistant.tools || []).filter((t) => ['code_interpreter', 'file_search'].includes(t.type))
    .map((t) => ({ type: t.type }));
  const message = { role: 'user', content: text };
  if (attachments.length) message.attachments = attachments.map((f) => ({ file_id: f.id, tools }));
  try {
    if (!thread) {
      thread = (await post('/v1/threads', {})).id;
      clear(log());
    }
    remember(thread, text);
  } catch (err) {
    notify(err.message);
    return;
  }
  log().append(messageView({ ...message, content: [{ type: 'text', text: { value: text, annotations: [] } }] }));
  $('#message').value = '';
  attachments = [];
  renderAttachments();
  log().scrollTop = log().scrollHeight;
  if (mode() === 'responses') {
    const files = message.attachments || [];
    await respond(files.length ? [{ type: 'message', role: 'user', content: [{ type: 'input_text', text },
      ...files.map((f) => ({ type: 'input_file', file_id: f.file_id }))] }] : text);
    return;
  }
  await follow(`/v1/threads/${thread}/runs?${INCLUDE}`, { assistant_id: state.assistant.id, additional_messages: [message] }, null);
}

async function cancel() {
  const view = current?.view;
  if (!view) return;
  try {
    await post(`/v1/threads/${view.run.thread_id}/runs/${view.run.id}/cancel`);
  } catch (e) {
    notify(e.message);
  }
}

function renderAttachments() {
  clear($('#attachments'), attachments.map((f) => h('span', { class: 'chip' }, `📎 ${f.filename}`,
    h('button', { type: 'button', class: 'icon-button', 'aria-label': `Remove ${f.filename}`, text: '×',
      onclick: () => { attachments = attachments.filter((x) => x.id !== f.id); renderAttachments(); } }))));
}

export async function initChat() {
  $('#composer').addEventListener('submit', send);
  $('#message').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); $('#composer').requestSubmit(); }
  });
  $('#cancel').addEventListener('click', cancel);
  $('#thread-new').addEventListener('click', newThread);
  $('#thread-select').addEventListener('change', (e) => {
    const value = e.target.value;
    $('#thread-open').hidden = value !== OPEN;
    if (value === OPEN) $('#thread-id').focus();
    else if (value) openThread(value);
    else newThread();
  });
  $('#thread-open').addEventListener('submit', async (e) => {
    e.preventDefault();
    const id = $('#thread-id').value.trim();
    if (!id) return;
    if (await openThread(id)) {
      remember(id, id);
      $('#thread-open').hidden = true;
      $('#thread-id').value = '';
    }
  });
  $('#attach').addEventListener('change', async () => {
    const chosen = [...$('#attach').files];
    $('#attach').value = '';
    attachments.push(...await uploadFiles(chosen, $('#run-status')));
    renderAttachments();
  });
  for (const radio of document.querySelectorAll('input[name=run-mode]')) {
    radio.checked = radio.value === mode();
    radio.addEventListener('change', () => { if (radio.checked) localStorage.setItem(MODE, radio.value); });
  }
  on('assistant', () => { if (!current) $('#run-status').textContent = ''; });
  renderThreads();
  empty();
}
