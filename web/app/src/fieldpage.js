// The shell of the pages used out in the city, the field unit's phone page
// (field.js) and the repair crew's tablet page (crew.js): the bar (title,
// connection state, language), the sign-in form, the card of the signed-in
// user with "Sign out" (built here, so the pages' HTML holds only their own
// part, the <main> this card goes into); signing in (the console's
// sign-in), resuming the session of a reload, signing out, and the live
// connection to the event feed while signed in.
import { Connection, showConnectionState } from './connection.js';
import { auth, signOut, resume, stillSignedIn, bindLoginForm, showLoginReason } from './auth.js';
import { t, tName, setLang, currentLang, applyTranslations } from './i18n.js';
import { $, h } from './dom.js';

function buildShell(title, main) {
  const i18n = (key) => ({ 'data-i18n': key });
  const bar = h('header', { class: 'fbar' },
    h('div', { class: 'brand' },
      h('img', { src: '/favicon.svg', alt: '', width: 22, height: 22 }), h('span', i18n(title))),
    h('div', { class: 'conn', id: 'conn-state', 'data-state': 'connecting', role: 'status', 'aria-live': 'polite', hidden: true },
      h('span', { class: 'dot' }), h('span', { class: 'label', ...i18n('conn.connecting') })),
    h('button', { id: 'lang', class: 'small', type: 'button', 'aria-label': 'language' }, '中文'));
  const login = h('section', { class: 'login', id: 'login', 'aria-labelledby': 'login-title', hidden: true },
    h('form', { id: 'login-form', class: 'card', autocomplete: 'on' },
      h('h1', { id: 'login-title', ...i18n('field.login') }),
      h('label', { for: 'login-username', ...i18n('auth.username') }),
      h('input', { id: 'login-username', name: 'username', autocomplete: 'username', autocapitalize: 'none', required: true }),
      h('label', { for: 'login-password', ...i18n('auth.password') }),
      h('input', { id: 'login-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true }),
      h('p', { class: 'form-error', id: 'login-error', role: 'alert', hidden: true }),
      h('button', { type: 'submit', class: 'big primary', ...i18n('auth.submit') }),
      h('p', { class: 'note', ...i18n('auth.note') })));
  const who = h('div', { class: 'who card' },
    h('span', { id: 'user-name' }),
    h('span', { class: 'muted' }, h('span', { id: 'user-agency' })),
    h('button', { id: 'logout', class: 'small', type: 'button', ...i18n('auth.logout') }));
  document.body.prepend(bar, login);
  $(main).prepend(who);
}

function showUser(user) {
  $('user-name').textContent = user.display_name || user.username;
  $('user-agency').textContent = tName('agency', user.agency);
}

// Runs a page. page: {
//   title: the i18n key of the bar's title; main: the id of the page's <main>;
//   init(): binds the page's own controls (once, before the session resumes);
//   enter(conn): the page for the user just signed in (conn: the live
//     connection, already started);
//   leave(): clears what that user saw (the connection is stopped after);
//   onEvent(ev): an event of the feed;
//   onConnected(): connected again after a break (read what the feed missed);
//   onLogout(): before "Sign out" signs out (optional);
//   relabel(): the page's own texts in the new language. }
export async function runFieldPage(page) {
  let conn = null;
  buildShell(page.title, page.main);

  const enter = (user) => {
    showUser(user);
    $('login').hidden = true;
    $(page.main).hidden = false;
    $('conn-state').hidden = false;
    conn = new Connection({
      token: auth.token,
      topics: ['events'],
      onState: (s) => {
        showConnectionState(s);
        if (s === 'connected') page.onConnected();
      },
      onEvent: (ev) => page.onEvent(ev),
      onClosed: async () => stillSignedIn(),
    });
    conn.start();
    page.enter(conn);
  };

  const leave = (reason) => {
    page.leave();
    if (conn) conn.stop();
    conn = null;
    $(page.main).hidden = true;
    $('conn-state').hidden = true;
    $('login').hidden = false;
    showLoginReason(reason, t);
  };

  const relabel = () => {
    applyTranslations(document);
    $('lang').textContent = currentLang() === 'zh' ? 'English' : '中文';
    if (auth.user) showUser(auth.user);
    const state = $('conn-state');
    state.querySelector('.label').textContent = t(`conn.${state.dataset.state}`);
    page.relabel();
  };

  relabel();
  $('lang').addEventListener('click', () => {
    setLang(currentLang() === 'zh' ? 'en' : 'zh');
    relabel();
  });
  bindLoginForm({ enter, leave });
  $('logout').addEventListener('click', async () => {
    page.onLogout?.();
    leave(null);
    await signOut();
  });
  auth.onLost = (reason) => leave(reason);
  page.init();
  const user = await resume();
  if (user) enter(user);
  else leave(null);
}
