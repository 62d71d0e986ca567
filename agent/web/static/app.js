// The playground's entry point: asks for a key when the service wants one, then starts the panels.

import { ApiError, auth, get } from './api.js';
import { $, hideNotice, notify, on } from './dom.js';
import { initAssistants } from './assistants.js';
import { initFiles } from './files.js';
import { initStores } from './stores.js';
import { initChat } from './chat.js';

const TABS = ['assistant', 'files', 'stores', 'chat'];

function selectTab(name, focus = false) {
  for (const tab of TABS) {
    const button = $(`#tab-${tab}`);
    const active = tab === name;
    button.setAttribute('aria-selected', String(active));
    button.tabIndex = active ? 0 : -1;
    if (active && focus) button.focus();
  }
  // narrow screens show the selected panel; wide ones show the chat beside the last side panel
  document.body.dataset.tab = name;
  if (name !== 'chat') document.body.dataset.side = name;
}

function initTabs() {
  const list = $('.tabs');
  for (const tab of TABS) $(`#tab-${tab}`).addEventListener('click', () => selectTab(tab));
  list.addEventListener('keydown', (e) => {
    const visible = TABS.filter((t) => $(`#tab-${t}`).offsetParent !== null);
    const current = visible.indexOf(document.body.dataset.tab);
    let next = null;
    if (e.key === 'ArrowRight') next = visible[(current + 1) % visible.length];
    if (e.key === 'ArrowLeft') next = visible[(current - 1 + visible.length) % visible.length];
    if (e.key === 'Home') next = visible[0];
    if (e.key === 'End') next = visible[visible.length - 1];
    if (next) { e.preventDefault(); selectTab(next, true); }
  });
  on('show-tab', (name) => selectTab(name));
  selectTab('assistant');
}

/** Resolves once a key is accepted (or none is needed). */
async function ensureKey(required) {
  const status = $('#key-status');
  if (!required) return;
  for (;;) {
    if (auth.key) {
      try {
        await get('/v1/assistants?limit=1');
        status.hidden = false;
        return;
      } catch (err) {
        if (!(err instanceof ApiError) || err.status !== 401) throw err;
        auth.clear();
        showKeyError(err.message);
      }
    }
    await askKey();
  }
}

function showKeyError(message) {
  const el = $('#key-error');
  el.textContent = message;
  el.hidden = !message;
}

function askKey() {
  const dialog = $('#key-dialog');
  const input = $('#key-input');
  return new Promise((resolve) => {
    const submit = (e) => {
      e.preventDefault();
      const key = input.value.trim();
      if (!key) { showKeyError('Type the key first.'); return; }
      auth.set(key);
      input.value = '';
      dialog.close();
      $('#key-form').removeEventListener('submit', submit);
      resolve();
    };
    $('#key-form').addEventListener('submit', submit);
    dialog.addEventListener('cancel', (e) => e.preventDefault(), { once: true });
    if (!dialog.open) dialog.showModal();
    input.focus();
  });
}

async function main() {
  initTabs();
  $('#forget-key').addEventListener('click', () => { auth.clear(); location.reload(); });
  on('auth-required', (message) => {
    if (!$('#key-dialog').open && message) notify(message);
  });
  let config = { auth_required: false };
  try {
    config = await (await fetch('/playground/config.json')).json();
  } catch {
    notify('The service did not answer; is it running?');
  }
  await ensureKey(config.auth_required);
  hideNotice();
  await Promise.all([initFiles(), initStores()]);
  await initAssistants();
  await initChat();
  document.body.dataset.ready = 'true';
}

main().catch((err) => notify(err.message || String(err)));
