// app.js: the console's entry point: the layout (header, navigation, page-wide alert),
// sign-in and sign-out, and the hash router that hands each page to its view module.
//
// Routes:
//   #/                                   sign in
//   #/connections                        connections (views/connections.js)
//   #/connections/ID/mapping/ENTITY      a connection's mapping (views/mapping.js)
//   #/connections/ID/plugins             plugins and bindings (views/plugins.js)
//   #/connections/ID/health              status, error log, reauthorization (views/health.js)
//   #/connections/ID/writes/ENTITY       write previews (views/writes.js)
//   #/webhooks                           webhook subscriptions (views/webhooks.js)
//   #/tenants                            tenants, admin key only (views/tenants.js)

import { request, currentKey, currentRole, signIn, signOut, onUnauthorized } from './api.js';
import { h, alertArea, field, replace } from './dom.js';
import { forget } from './views/common.js';
import * as connectionsView from './views/connections.js';
import * as mappingView from './views/mapping.js';
import * as pluginsView from './views/plugins.js';
import * as healthView from './views/health.js';
import * as writesView from './views/writes.js';
import * as webhooksView from './views/webhooks.js';
import * as tenantsView from './views/tenants.js';

const ROUTES = [
  [/^#\/connections$/, connectionsView, 'connections'],
  [/^#\/connections\/([^/]+)(?:\/mapping(?:\/([a-z_]+))?)?$/, mappingView, 'connections'],
  [/^#\/connections\/([^/]+)\/plugins$/, pluginsView, 'connections'],
  [/^#\/connections\/([^/]+)\/health$/, healthView, 'connections'],
  [/^#\/connections\/([^/]+)\/writes(?:\/([a-z_]+))?$/, writesView, 'connections'],
  [/^#\/webhooks$/, webhooksView, 'webhooks'],
  [/^#\/tenants$/, tenantsView, 'tenants'],
];

// The layout, built once.
const pageAlert = alertArea('page-alert');
const view = h('div', { id: 'view' });
const navLinks = {
  connections: h('a', { href: '#/connections' }, 'Connections'),
  webhooks: h('a', { href: '#/webhooks' }, 'Webhooks'),
  tenants: h('a', { href: '#/tenants' }, 'Tenants'),
};
const signedInAs = h('span', { id: 'signed-in-as' });
const session = h('div', { class: 'session', hidden: true },
  signedInAs, h('button', { type: 'button', id: 'sign-out', class: 'secondary', onclick: () => leave() }, 'Sign out'));
const nav = h('nav', { class: 'topnav', 'aria-label': 'Main', hidden: true }, Object.values(navLinks));

/** A message for the sign-in page after the session's key was refused. */
let signInMessage = null;

function layout() {
  const root = document.getElementById('app');
  replace(root,
    h('a', { class: 'skip', href: '#main' }, 'Skip to content'),
    h('header', { class: 'topbar' },
      h('a', { class: 'brand', href: '#/connections' }, 'Crosswalk ', h('span', null, 'console')),
      nav, session),
    h('main', { id: 'main', tabindex: '-1' }, pageAlert, view));
  // Skip link: focus main without changing the route.
  root.querySelector('.skip').addEventListener('click', (event) => {
    event.preventDefault();
    document.getElementById('main').focus();
  });
}

/** Shows the header for the signed-in key (or none). */
function showSession() {
  const key = currentKey();
  const admin = currentRole() === 'admin';
  nav.hidden = !key;
  session.hidden = !key;
  navLinks.tenants.hidden = !admin;
  signedInAs.textContent = key ? `Signed in with ${admin ? 'an admin' : 'a tenant'} key` : '';
}

/** Marks the current section in the main navigation. */
function markNav(section) {
  for (const [name, link] of Object.entries(navLinks)) {
    if (name === section) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

/** The page to start on: every key has a tenant whose connections it manages. */
const HOME = '#/connections';

/**
 * What a key may do, from `GET /v1/key`: `tenant`, or `admin` (which also manages
 * tenants). A 401 means the key was not accepted.
 */
async function roleOf(key) {
  return (await request('GET', '/v1/key', { key })).data.role;
}

function renderSignIn() {
  document.title = 'Sign in · Crosswalk console';
  markNav(null);
  const error = h('div', { id: 'sign-in-error', role: 'alert', class: 'alert', hidden: true });
  const key = h('input', { id: 'key', type: 'password', autocomplete: 'off', spellcheck: 'false', required: true });
  const button = h('button', { id: 'sign-in', type: 'submit' }, 'Sign in');
  const showError = (text) => {
    error.textContent = text;
    error.hidden = false;
  };
  if (signInMessage) {
    showError(signInMessage);
    signInMessage = null;
  }
  const form = h('form', {
    id: 'sign-in-form',
    onsubmit: async (event) => {
      event.preventDefault();
      error.hidden = true;
      const value = key.value.trim();
      if (!value) {
        showError('Enter an API key.');
        return;
      }
      button.disabled = true;
      try {
        const role = await roleOf(value);
        signIn(value, role);
        key.value = '';
        forget();
        showSession();
        location.hash = HOME;
      } catch (failure) {
        if (failure.status === 401) showError(`That key was not accepted: ${failure.message}`);
        else showError(failure.message);
      } finally {
        button.disabled = false;
      }
    },
  },
  field('API key', key, 'A tenant key shows its connections; an admin key also manages tenants. The key is kept in this browser tab only, until you sign out or close it.'),
  button);
  replace(view, h('section', { class: 'card sign-in' },
    h('h1', { tabindex: '-1' }, 'Sign in'),
    h('p', null, 'Sign in with an API key of this Crosswalk service to see and change its connections and their mappings.'),
    error, form));
  key.focus();
}

/** Signs out: forgets the key and every cached answer. */
function leave(message) {
  signOut();
  forget();
  signInMessage = message || null;
  showSession();
  if (location.hash === '#/' || location.hash === '') route();
  else location.hash = '#/';
}

let routing = 0;

async function route() {
  const hash = location.hash || '#/';
  pageAlert.clear();
  if (!currentKey()) {
    if (hash !== '#/') {
      location.replace('#/');
      return;
    }
    renderSignIn();
    return;
  }
  if (hash === '#/') {
    location.replace(HOME);
    return;
  }
  const found = ROUTES.map(([pattern, module, section]) => [hash.match(pattern), module, section])
    .find(([match]) => match);
  const page = h('div', { class: 'page' });
  replace(view, page);
  if (!found) {
    markNav(null);
    document.title = 'Not found · Crosswalk console';
    page.append(h('h1', { tabindex: '-1' }, 'Page not found'),
      h('p', null, 'Nothing lives at this address. ', h('a', { href: HOME }, 'Go to the start page.')));
    return;
  }
  const [match, module, section] = found;
  markNav(section);
  const params = match.slice(1).map((p) => (p === undefined ? undefined : decodeURIComponent(p)));
  const turn = ++routing;
  page.append(h('p', { class: 'loading' }, 'Loading…'));
  try {
    await module.render(page, ...params);
  } catch (error) {
    if (turn !== routing) return;
    const alert = alertArea();
    page.replaceChildren(h('h1', { tabindex: '-1' }, 'This page could not be loaded'), alert);
    alert.show(error);
  }
  if (turn === routing && page.isConnected) {
    const heading = page.querySelector('h1');
    if (heading && !page.contains(document.activeElement)) heading.focus({ preventScroll: true });
  }
}

// A session key that stops being accepted ends the session.
onUnauthorized(() => leave('Your key is no longer accepted: sign in again.'));

// A file dropped outside the plugins' drop zone must not replace the console.
window.addEventListener('dragover', (event) => event.preventDefault());
window.addEventListener('drop', (event) => event.preventDefault());

// A promise that a handler forgot to catch is still shown, not lost in the console.
window.addEventListener('unhandledrejection', (event) => {
  event.preventDefault();
  pageAlert.show(event.reason || 'Something went wrong.');
});

window.addEventListener('hashchange', route);
layout();
showSession();
route();
