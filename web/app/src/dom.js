// The small DOM helpers of every page and module: an element by id, a new
// element with its class and text, and the error lines of the forms.

export const $ = (id) => document.getElementById(id);

// A new element: tag, class (none when empty) and text (none when undefined).
export function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

// A new element with its attributes (true: present and empty; false or
// undefined: left out) and children (elements or text).
export function h(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === true) e.setAttribute(name, '');
    else if (value !== false && value !== undefined) e.setAttribute(name, String(value));
  }
  e.append(...children);
  return e;
}

// Sets a node's text only when it changes (no needless layout).
export function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

// Shows a line of error text by id, or hides it (text empty or null).
export function showError(id, text) {
  const p = $(id);
  p.hidden = !text;
  p.textContent = text || '';
}
