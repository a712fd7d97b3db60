// A call of the API with its answer read, for the modules that show what
// the server said: { res, body } (both null when the server could not be
// reached; body null when the answer is not JSON), and the text of a
// refusal or failure.
import { api } from './auth.js';
import { t } from './i18n.js';

export async function call(path, init) {
  try {
    const res = await api(path, init);
    const body = await res.json().catch(() => null);
    return { res, body };
  } catch {
    return { res: null, body: null };
  }
}

export const postJson = (path, data) => call(path, {
  method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(data || {}),
});

// The server's message, else the HTTP status, else "unreachable".
export function errorText(body, res) {
  return (body && body.error && body.error.message) || (res ? String(res.status) : t('auth.unreachable'));
}

// A list read again and again (the crew's orders, the console's open
// isolations): load() reads it now, schedule() after wait ms (a burst of
// events reads once), cancel() drops what is scheduled. Only the newest
// answer reaches done({ res, body }): an older one arriving later is
// dropped, as is one asked before epoch() changed (a sign-out).
export function listReader({ path, wait, epoch, done }) {
  let timer = null;
  let seq = 0;
  const cancel = () => {
    clearTimeout(timer);
    timer = null;
  };
  const load = async () => {
    cancel();
    const mine = ++seq;
    const asked = epoch();
    const r = await call(path);
    if (asked !== epoch() || mine !== seq) return;
    done(r);
  };
  return {
    load,
    cancel,
    schedule: () => {
      clearTimeout(timer);
      timer = setTimeout(load, wait);
    },
  };
}
