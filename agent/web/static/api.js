// The Assistants API on the same origin: JSON calls, uploads, file blobs and run event streams (SSE).

import { emit } from './dom.js';

const KEY = 'agent.playground.key';

export const auth = {
  get key() { return sessionStorage.getItem(KEY) || ''; },
  set(key) { sessionStorage.setItem(KEY, key); },
  clear() { sessionStorage.removeItem(KEY); },
};

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message || `The server answered ${status}.`);
    this.status = status;
    this.body = body;
  }
}

function headers(extra = {}) {
  const out = { ...extra };
  if (auth.key) out.Authorization = `Bearer ${auth.key}`;
  return out;
}

async function check(resp) {
  if (resp.ok) return resp;
  let body = null;
  try { body = await resp.json(); } catch { body = null; }
  if (resp.status === 401) emit('auth-required', body?.error?.message);
  throw new ApiError(resp.status, body);
}

export async function api(method, path, body) {
  const init = { method, headers: headers() };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers['Content-Type'] = 'application/json';
  }
  const resp = await check(await fetch(path, init));
  return resp.json();
}

export const get = (path) => api('GET', path);
export const post = (path, body = {}) => api('POST', path, body);
export const del = (path) => api('DELETE', path);

/** Every page of a list endpoint (assistants, vector stores…). */
export async function listAll(path, limit = 100) {
  const out = [];
  let after = '';
  for (let i = 0; i < 50; i++) {
    const sep = path.includes('?') ? '&' : '?';
    const page = await get(`${path}${sep}limit=${limit}${after ? `&after=${after}` : ''}`);
    out.push(...page.data);
    if (!page.has_more || !page.last_id) break;
    after = page.last_id;
  }
  return out;
}

export async function upload(file, purpose = 'assistants') {
  const form = new FormData();
  form.append('purpose', purpose);
  form.append('file', file, file.name);
  const resp = await check(await fetch('/v1/files', { method: 'POST', headers: headers(), body: form }));
  return resp.json();
}

const blobs = new Map();

/** A file's bytes as a blob: URL (an <img> cannot send the Authorization header). */
export function fileURL(fileId, type = '') {
  if (!blobs.has(fileId)) {
    const job = fetch(`/v1/files/${encodeURIComponent(fileId)}/content`, { headers: headers() })
      .then(check)
      .then((resp) => resp.blob())
      .then((blob) => URL.createObjectURL(type ? new Blob([blob], { type }) : blob));
    job.catch(() => blobs.delete(fileId));
    blobs.set(fileId, job);
  }
  return blobs.get(fileId);
}

export async function download(fileId, filename) {
  const url = await fileURL(fileId);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename || fileId;
  document.body.append(a);
  a.click();
  a.remove();
}

/**
 * POST and read the answer as server-sent events: yields {event, data} with data parsed from JSON.
 * A JSON answer (an error before the stream started) throws ApiError with the server's message.
 */
export async function* stream(path, body, signal) {
  const resp = await check(await fetch(path, {
    method: 'POST',
    headers: headers({ 'Content-Type': 'application/json', Accept: 'text/event-stream' }),
    body: JSON.stringify({ ...body, stream: true }),
    signal,
  }));
  const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let cut;
    while ((cut = buffer.search(/\r?\n\r?\n/)) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + buffer.slice(cut).match(/^\r?\n\r?\n/)[0].length);
      const event = parseEvent(block);
      if (event) yield event;
    }
  }
}

function parseEvent(block) {
  let event = 'message';
  const data = [];
  for (const line of block.split(/\r?\n/)) {
    if (!line || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
  if (!data.length) return null;
  const text = data.join('\n');
  if (text === '[DONE]') return { event: 'done', data: null };
  try {
    return { event, data: JSON.parse(text) };
  } catch {
    return { event, data: text };
  }
}
