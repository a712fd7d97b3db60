// The signed-in session of this tab: the bearer token (kept in
// sessionStorage, so it ends with the tab), the user, and fetch with the
// token attached. A 401 from any call means the session ended elsewhere
// (logout, expiry, a disabled account): the shell returns to the login page.

const KEY = 'citycmd.token';

export const auth = {
  token: sessionStorage.getItem(KEY),
  user: null,
  onLost: () => {},
};

function forget() {
  auth.token = null;
  auth.user = null;
  sessionStorage.removeItem(KEY);
}

export async function api(path, init = {}) {
  const headers = { ...(init.headers || {}) };
  if (auth.token) headers.authorization = `Bearer ${auth.token}`;
  const res = await fetch(path, { ...init, headers });
  if (res.status === 401 && auth.token) {
    forget();
    auth.onLost('expired');
  }
  return res;
}

// Whether the user (as the server describes it: roles "a,b") has one of
// the roles of the list.
export function hasRole(user, list) {
  const roles = (user && user.roles ? user.roles : '').split(',');
  return roles.some((r) => list.includes(r));
}

// Resolves with { ok, status, error } and, when ok, auth.user set.
export async function signIn(username, password) {
  let res;
  try {
    res = await fetch('/api/v1/sessions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username, password }),
    });
  } catch {
    return { ok: false, status: 0 };
  }
  const body = await res.json().catch(() => ({}));
  if (res.status !== 201) return { ok: false, status: res.status, error: body.error };
  auth.token = body.token;
  auth.user = body.user;
  sessionStorage.setItem(KEY, body.token);
  return { ok: true, status: res.status };
}

// The user of a token kept from before a reload, or null.
export async function resume() {
  if (!auth.token) return null;
  try {
    const res = await fetch('/api/v1/sessions/current', {
      headers: { authorization: `Bearer ${auth.token}` },
    });
    if (res.status === 401) forget();
    if (!res.ok) return null;
    auth.user = (await res.json()).user;
    return auth.user;
  } catch {
    return null;
  }
}

export async function signOut() {
  if (auth.token) {
    await fetch('/api/v1/sessions/current', {
      method: 'DELETE',
      headers: { authorization: `Bearer ${auth.token}` },
    }).catch(() => {});
  }
  forget();
}

// Is the session still valid? false only when the server says it is not.
export async function stillSignedIn() {
  if (!auth.token) return false;
  try {
    const res = await api('/api/v1/sessions/current');
    return res.status !== 401;
  } catch {
    return true; /* unreachable server: keep trying */
  }
}

// The sign-in form of every page (#login-form, #login-username,
// #login-password, #login-error): signs in, then enter(user), or
// leave('failed' | 'unreachable').
export function bindLoginForm({ enter, leave }) {
  const $ = (id) => document.getElementById(id);
  $('login-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const button = $('login-form').querySelector('button[type=submit]');
    button.disabled = true;
    const r = await signIn($('login-username').value.trim(), $('login-password').value);
    button.disabled = false;
    $('login-password').value = '';
    if (!r.ok) {
      leave(r.status === 0 ? 'unreachable' : 'failed');
      return;
    }
    $('login-error').hidden = true;
    enter(auth.user);
  });
}

// Says on the sign-in form why the user is there (t: the page's translator).
export function showLoginReason(reason, t) {
  const error = document.getElementById('login-error');
  error.hidden = !reason;
  if (reason) {
    error.dataset.i18n = `auth.${reason}`;
    error.textContent = t(`auth.${reason}`);
  }
  document.getElementById('login-password').value = '';
}
