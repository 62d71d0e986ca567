// The conversation: user messages and run blocks (the run's steps in order: tool calls and the
// assistant's messages), updated from the run's events as they stream in.

import { fileURL } from './api.js';
import { clear, h, seconds } from './dom.js';
import { fileName } from './state.js';
import { renderFootnotes, renderText } from './text.js';

const TERMINAL = ['completed', 'incomplete', 'failed', 'cancelled', 'expired'];

/** Merge a streamed delta into a snapshot, as the SDKs do: strings append, lists merge by `index`. */
export function merge(acc, delta) {
  for (const [key, value] of Object.entries(delta)) {
    const have = acc[key];
    if (have === undefined || have === null) acc[key] = value;
    else if (key === 'index' || key === 'type' || key === 'id') acc[key] = value;
    else if (typeof have === 'string' && typeof value === 'string') acc[key] = have + value;
    else if (Array.isArray(have) && Array.isArray(value)) {
      for (const entry of value) {
        if (entry && typeof entry === 'object' && Number.isInteger(entry.index)) {
          const { index, ...rest } = entry;
          if (have[index] === undefined) have[index] = rest;
          else merge(have[index], rest);
        } else have.push(entry);
      }
    } else if (typeof have === 'object' && typeof value === 'object') merge(have, value);
    else acc[key] = value;
  }
  return acc;
}

const images = new Map(); // one <img> per chart, moved between re-renders so it never reloads

function image(fileId, className) {
  const key = `${className}:${fileId}`;
  if (!images.has(key)) {
    const img = h('img', { class: className, alt: `Chart ${fileId}`, 'data-file': fileId });
    img.addEventListener('load', () => { img.dataset.loaded = 'true'; });
    fileURL(fileId, 'image/png').then((url) => { img.src = url; }, () => { img.alt = `Could not load ${fileId}`; });
    images.set(key, img);
  }
  return images.get(key);
}

export function messageView(msg) {
  const anchor = `m-${msg.id || Math.random().toString(36).slice(2)}`;
  const notes = [];
  const body = (msg.content || []).map((part) => {
    if (part.type === 'text') return renderText(part.text || {}, notes, anchor);
    if (part.type === 'image_file') return h('figure', { class: 'chart' }, image(part.image_file.file_id, 'chart-img'));
    if (part.type === 'image_url') return h('p', { class: 'muted', text: part.image_url.url });
    return null;
  });
  const chips = (msg.attachments || []).map((a) => h('span', { class: 'chip', text: `📎 ${fileName(a.file_id)}` }));
  const who = msg.role === 'user' ? 'You' : 'Assistant';
  const typing = msg.status === 'in_progress' && !(msg.content || []).length;
  return h('article', { class: `msg ${msg.role}`, 'data-status': msg.status || '', 'data-created': msg.created_at || '' },
    h('div', { class: 'msg-role', text: who }),
    h('div', { class: 'msg-body' },
      typing ? h('span', { class: 'typing', 'aria-label': 'Writing', text: '•••' }) : body,
      chips.length ? h('div', { class: 'chips', text: '' }, chips) : null,
      renderFootnotes(notes, anchor),
      msg.status === 'incomplete' ? h('p', { class: 'small muted', text: `Incomplete (${msg.incomplete_details?.reason || 'stopped'}).` }) : null));
}

function head(title, status, extra) {
  const label = { in_progress: 'running', completed: 'done', requires_action: 'waiting for output' }[status]
    || status.replace('_', ' ');
  return h('div', { class: 'tool-head' }, h('span', { class: 'tool-name', text: title }), extra,
    h('span', { class: `pill ${status}`, text: label }));
}

function codeCall(call, status) {
  const ci = call.code_interpreter || {};
  return h('div', { class: 'tool code' }, head('code_interpreter', status),
    h('pre', { class: 'code' }, h('code', { text: ci.input || '' })),
    (ci.outputs || []).filter(Boolean).map((o) => o.type === 'logs'
      ? h('div', { class: 'out' }, h('div', { class: 'out-label', text: 'Output' }), h('pre', { class: 'logs', text: o.logs }))
      : o.type === 'image' ? h('div', { class: 'out' }, h('div', { class: 'out-label', text: 'Chart (shown in the answer)' }),
        image(o.image.file_id, 'thumb')) : null));
}

function calcCall(call, status) {
  const fn = call.function || {};
  let expr = fn.arguments || '';
  try { expr = JSON.parse(expr).expression ?? expr; } catch { /* still streaming */ }
  return h('div', { class: 'tool calc' }, head('calculator', status),
    h('div', { class: 'calc-line' }, h('code', { text: expr }),
      fn.output != null ? [' = ', h('strong', { class: 'calc-result', text: fn.output })] : null));
}

function searchCall(call, status) {
  const results = call.file_search?.results || [];
  return h('div', { class: 'tool search' }, head('file_search', status),
    status !== 'in_progress' && !results.length ? h('p', { class: 'small muted', text: 'No results.' }) : null,
    h('ol', { class: 'results' }, results.map((r) => h('li', {},
      h('div', {}, h('strong', { text: r.file_name || fileName(r.file_id) }),
        h('span', { class: 'small muted', text: ` · score ${Number(r.score).toFixed(2)}` })),
      (r.content || []).map((c) => h('p', { class: 'snippet', text: c.text?.slice(0, 400) }))))));
}

function functionCall(call, status) {
  const fn = call.function || {};
  let args = fn.arguments || '';
  try { args = JSON.stringify(JSON.parse(args), null, 2); } catch { /* still streaming */ }
  const waiting = status === 'in_progress' && fn.output == null;
  return h('div', { class: 'tool function' }, head(`function ${fn.name || ''}`, waiting ? 'requires_action' : status),
    h('pre', { class: 'code' }, h('code', { text: args })),
    fn.output != null ? h('div', { class: 'out' }, h('div', { class: 'out-label', text: 'Output' }), h('pre', { class: 'logs', text: fn.output })) : null);
}

export function stepView(step, run) {
  const calculator = (run?.tools || []).some((t) => t.type === 'calculator');
  const calls = step.step_details?.tool_calls || [];
  return h('div', { class: 'step', 'data-step': step.id }, calls.filter(Boolean).map((call) => {
    if (call.type === 'code_interpreter') return codeCall(call, step.status);
    if (call.type === 'file_search') return searchCall(call, step.status);
    if (call.function?.name === 'calculator' && calculator) return calcCall(call, step.status);
    return functionCall(call, step.status);
  }));
}

/** One run: its steps in order, the pending function calls, its status, usage and duration. */
export class RunView {
  constructor(run, log, onSubmit, live = true, before = null) {
    this.run = run;
    this.live = live;
    this.onSubmit = onSubmit;
    this.steps = new Map(); // step id → {step, el}
    this.messages = new Map(); // message id → {msg, el}
    this.body = h('div', { class: 'run-body' });
    this.action = h('div', { class: 'action' });
    this.errorEl = h('div', { class: 'run-error', role: 'alert', hidden: true });
    this.footer = h('div', { class: 'run-foot' });
    this.el = h('section', { class: 'run', 'data-run': run.id, 'data-created': run.created_at, 'aria-label': `Run ${run.id}` },
      this.body, this.action, this.errorEl, this.footer);
    this.started = performance.now();
    this.ended = null;
    if (before) log.insertBefore(this.el, before); else log.append(this.el);
    this.renderFooter();
  }

  get done() { return TERMINAL.includes(this.run.status); }

  startClock() {
    this.clock = setInterval(() => this.renderFooter(), 100);
  }

  stopClock() {
    clearInterval(this.clock);
    this.clock = null;
    this.renderFooter();
  }

  /** Measured here for a run this page streamed; from the run's own second-resolution stamps otherwise. */
  duration() {
    if (this.live) return seconds((this.ended ?? performance.now()) - this.started);
    const r = this.run;
    const end = r.completed_at || r.failed_at || r.cancelled_at;
    if (!end || !r.started_at) return null;
    return end > r.started_at ? `${end - r.started_at} s` : '< 1 s';
  }

  renderFooter() {
    const r = this.run;
    const u = r.usage;
    clear(this.footer,
      h('span', { class: `pill ${r.status}`, 'data-testid': 'run-status', text: r.status.replace('_', ' ') }),
      u ? h('span', { class: 'usage', text: `${u.prompt_tokens} in · ${u.completion_tokens} out · ${u.total_tokens} tokens` }) : null,
      this.duration() !== null ? h('span', { class: 'duration', text: this.duration() }) : null,
      h('span', { class: 'mono small muted', text: r.id }));
  }

  upsertStep(step) {
    if (step.type === 'message_creation') {
      const id = step.step_details.message_creation.message_id;
      if (!this.messages.has(id)) this.placeMessage({ id, role: 'assistant', status: 'in_progress', content: [] });
      return;
    }
    const have = this.steps.get(step.id);
    const el = stepView(step, this.run);
    if (have) { have.el.replaceWith(el); have.step = step; have.el = el; } else {
      this.steps.set(step.id, { step, el });
      this.body.append(el);
    }
  }

  stepDelta(delta) {
    const have = this.steps.get(delta.id);
    if (!have) return;
    merge(have.step, delta.delta);
    this.upsertStep(have.step);
  }

  placeMessage(msg) {
    const el = messageView(msg);
    this.messages.set(msg.id, { msg, el });
    this.body.append(el);
  }

  upsertMessage(msg) {
    const have = this.messages.get(msg.id);
    if (!have) return this.placeMessage(msg);
    const el = messageView(msg);
    have.el.replaceWith(el);
    have.msg = msg;
    have.el = el;
  }

  messageDelta(delta) {
    const have = this.messages.get(delta.id);
    if (!have) return;
    merge(have.msg, delta.delta);
    this.upsertMessage(have.msg);
  }

  showError(message) {
    this.errorEl.textContent = message;
    this.errorEl.hidden = false;
  }

  setRun(run) {
    this.run = run;
    if (this.done && this.ended === null) this.ended = performance.now();
    if (run.last_error) this.showError(`${run.last_error.code}: ${run.last_error.message}`);
    this.renderAction();
    this.renderFooter();
  }

  /** A run waiting for function outputs: one field per pending call, then submit them all. */
  renderAction() {
    const calls = this.run.status === 'requires_action' ? this.run.required_action?.submit_tool_outputs?.tool_calls || [] : [];
    if (!calls.length) { clear(this.action); return; }
    const fields = calls.map((c) => {
      const id = `out-${c.id}`;
      return h('div', { class: 'stack' },
        h('label', { for: id, text: `Output of ${c.function.name}(${c.function.arguments})` }),
        h('textarea', { id, rows: 2, 'data-call': c.id, class: 'mono', placeholder: '{"temperature": 21}' }));
    });
    const form = h('form', { class: 'stack card action-form', 'aria-label': 'Function outputs' },
      h('p', { class: 'small', text: 'The assistant called your function. Type what it returned:' }), fields,
      h('div', { class: 'row' }, h('button', { type: 'submit', class: 'button primary', text: 'Submit output' })));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const outputs = [...form.querySelectorAll('textarea')].map((t) => ({ tool_call_id: t.dataset.call, output: t.value }));
      clear(this.action);
      this.onSubmit(this, outputs);
    });
    clear(this.action, form);
  }

  handle(name, data) {
    if (name.startsWith('thread.run.step.')) {
      if (name === 'thread.run.step.delta') this.stepDelta(data);
      else this.upsertStep(data);
    } else if (name.startsWith('thread.message.')) {
      if (name === 'thread.message.delta') this.messageDelta(data);
      else this.upsertMessage(data);
    } else if (name.startsWith('thread.run.')) {
      this.setRun(data);
    } else if (name === 'error') {
      this.showError(data?.error?.message || String(data));
    }
  }
}
