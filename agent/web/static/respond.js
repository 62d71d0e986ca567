// The same chat on the Responses API: a response's output items shown in the run step UI, from its
// `response.*` events. A thread id is the conversation id, so both modes share one history.

import { clear, h } from './dom.js';
import { RunView, stepView } from './timeline.js';

const CALCULATOR = { tools: [{ type: 'calculator' }] }; // lets stepView draw mcp calculator calls as such
export const INCLUDE = ['code_interpreter_call.outputs', 'file_search_call.results'];

/** The selected assistant's model, instructions and tools, in the shapes the Responses API takes. */
export function fromAssistant(a) {
  const res = a.tool_resources || {};
  const tools = (a.tools || []).map((t) => {
    if (t.type === 'function') {
      const f = t.function || {};
      return { type: 'function', name: f.name, description: f.description, parameters: f.parameters || { type: 'object', properties: {} }, strict: f.strict ?? false };
    }
    if (t.type === 'code_interpreter') {
      const ids = res.code_interpreter?.file_ids || [];
      return { type: 'code_interpreter', container: ids.length ? { type: 'auto', file_ids: ids } : { type: 'auto' } };
    }
    if (t.type === 'file_search') {
      const ids = res.file_search?.vector_store_ids || [];
      return ids.length ? { type: 'file_search', vector_store_ids: ids } : null;
    }
    if (t.type === 'calculator') return { type: 'calculator' };
    return null;
  }).filter(Boolean);
  const body = { model: a.model, tools, include: INCLUDE };
  if (a.instructions) body.instructions = a.instructions;
  return body;
}

const stepStatus = (s) => ({ interpreting: 'in_progress', searching: 'in_progress' }[s] || s || 'in_progress');

/** One response: its output items (messages and tool calls), status, usage, duration and pending calls. */
export class ResponseView extends RunView {
  constructor(response, log, onSubmit) {
    super(response, log, onSubmit, true);
    this.el.dataset.response = response.id;
    this.el.setAttribute('aria-label', `Response ${response.id}`);
    this.items = new Map(); // item id → item, as streamed
    this.outputs = new Map(); // call_id → the output the person typed
  }

  /** An output item as the run step stepView draws (null for messages). */
  asStep(item) {
    const step = (call, status = stepStatus(item.status)) => ({ id: item.id, status, step_details: { tool_calls: [call] } });
    if (item.type === 'code_interpreter_call') {
      const outputs = (item.outputs || []).filter((o) => o.type === 'logs');
      return step({ type: 'code_interpreter', code_interpreter: { input: item.code || '', outputs } });
    }
    if (item.type === 'file_search_call') {
      const results = (item.results || []).map((r) => ({ file_id: r.file_id, file_name: r.filename, score: r.score, content: [{ text: r.text || '' }] }));
      return step({ type: 'file_search', file_search: { results } });
    }
    if (item.type === 'mcp_call') {
      return step({ type: 'function', function: { name: item.name || 'calculator', arguments: item.arguments || '', output: item.output ?? item.error ?? null } });
    }
    if (item.type === 'function_call') {
      const output = this.outputs.get(item.call_id) ?? null;
      return step({ type: 'function', function: { name: item.name, arguments: item.arguments || '', output } },
        output != null ? 'completed' : 'in_progress');
    }
    return null;
  }

  upsertItem(item) {
    this.items.set(item.id, item);
    if (item.type === 'message') {
      const content = (item.content || []).map((p) => ({ type: 'text', text: { value: p.text || p.refusal || '', annotations: [] } }));
      this.upsertMessage({ id: item.id, role: 'assistant', status: item.status, content });
      return;
    }
    const step = this.asStep(item);
    if (!step) return;
    const el = stepView(step, CALCULATOR);
    el.dataset.item = item.type;
    const have = this.steps.get(item.id);
    if (have) { have.el.replaceWith(el); have.step = step; have.el = el; } else {
      this.steps.set(item.id, { step, el });
      this.body.append(el);
    }
  }

  textDelta(data) {
    const msg = this.messages.get(data.item_id)?.msg;
    if (!msg) return;
    if (!msg.content.length) msg.content.push({ type: 'text', text: { value: '', annotations: [] } });
    msg.content[0].text.value += data.delta;
    this.upsertMessage(msg);
  }

  itemDelta(data, key) {
    const item = this.items.get(data.item_id);
    if (!item) return;
    item[key] = (item[key] || '') + data.delta;
    this.upsertItem(item);
  }

  itemStatus(data, status) {
    const item = this.items.get(data.item_id);
    if (item) { item.status = status; this.upsertItem(item); }
  }

  handle(name, data) {
    if (name === 'response.output_item.added' || name === 'response.output_item.done') this.upsertItem(data.item);
    else if (name === 'response.output_text.delta') this.textDelta(data);
    else if (name === 'response.code_interpreter_call_code.delta') this.itemDelta(data, 'code');
    else if (name === 'response.function_call_arguments.delta' || name === 'response.mcp_call_arguments.delta') this.itemDelta(data, 'arguments');
    else if (/^response\.(code_interpreter_call|file_search_call|mcp_call)\.(completed|failed)$/.test(name)) {
      this.itemStatus(data, name.split('.').pop());
    } else if (name === 'error') this.showError(data?.message || data?.error?.message || String(data));
    else if (data?.response) this.setRun(data.response);
  }

  setRun(response) {
    this.run = response;
    if (this.done && this.ended === null) this.ended = performance.now();
    if (response.error) this.showError(`${response.error.code}: ${response.error.message}`);
    if (response.status === 'incomplete') this.showError(`Incomplete: ${response.incomplete_details?.reason || 'stopped'}.`);
    this.renderAction();
    this.renderFooter();
  }

  renderFooter() {
    const r = this.run;
    const u = r.usage;
    clear(this.footer,
      h('span', { class: `pill ${r.status}`, 'data-testid': 'run-status', text: r.status.replace('_', ' ') }),
      u ? h('span', { class: 'usage', text: `${u.input_tokens} in · ${u.output_tokens} out · ${u.total_tokens} tokens` }) : null,
      h('span', { class: 'duration', text: this.duration() }),
      h('span', { class: 'mono small muted', text: `Responses · ${r.id}` }));
  }

  /** A completed response with function calls: one field per call, sent back as function_call_output items. */
  renderAction() {
    const calls = this.done ? (this.run.output || []).filter((i) => i.type === 'function_call' && !this.outputs.has(i.call_id)) : [];
    if (!calls.length) { clear(this.action); return; }
    const fields = calls.map((c) => {
      const id = `out-${c.call_id}`;
      return h('div', { class: 'stack' },
        h('label', { for: id, text: `Output of ${c.name}(${c.arguments})` }),
        h('textarea', { id, rows: 2, 'data-call': c.call_id, class: 'mono', placeholder: '{"temperature": 21}' }));
    });
    const form = h('form', { class: 'stack card action-form', 'aria-label': 'Function outputs' },
      h('p', { class: 'small', text: 'The assistant called your function. Type what it returned:' }), fields,
      h('div', { class: 'row' }, h('button', { type: 'submit', class: 'button primary', text: 'Submit output' })));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const outputs = [...form.querySelectorAll('textarea')].map((t) => ({ type: 'function_call_output', call_id: t.dataset.call, output: t.value }));
      for (const o of outputs) this.outputs.set(o.call_id, o.output);
      for (const c of calls) this.upsertItem(this.items.get(c.id) || c);
      clear(this.action);
      this.onSubmit(this, outputs);
    });
    clear(this.action, form);
  }
}
