// Tiny DOM helpers. Everything the server or the model says is put in the page as text, never as HTML.

/** h('div', {class: 'x', onclick: fn, 'aria-label': 'y'}, child, 'text', [more]) */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key in el && typeof value !== 'string') el[key] = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export const $ = (selector, root = document) => root.querySelector(selector);

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function bytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

export function seconds(ms) {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`;
}

/** A small, shared bus for "something changed" notices between panels. */
export const events = new EventTarget();
export const emit = (name, detail) => events.dispatchEvent(new CustomEvent(name, { detail }));
export const on = (name, fn) => events.addEventListener(name, (e) => fn(e.detail));

/** Show a message in the page's alert banner (errors carry the server's own message). */
export function notify(message, kind = 'error') {
  const banner = document.getElementById('banner');
  clear(banner, h('span', { class: 'banner-text', text: message }),
    h('button', { class: 'icon-button', type: 'button', 'aria-label': 'Dismiss', text: '×',
      onclick: () => { banner.hidden = true; } }));
  banner.className = `banner ${kind}`;
  banner.hidden = false;
}

export function hideNotice() {
  document.getElementById('banner').hidden = true;
}
