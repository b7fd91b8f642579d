// The login page: username and password against POST /api/v1/auth/login, then back to
// the page the user wanted (`?next=`).

import { h, replace } from '../lib/dom.js';
import { login } from '../lib/api.js';

export default async function render(root, { query, navigate }) {
  const error = h('p', { class: 'error', id: 'login-error', role: 'alert', hidden: true });
  const username = h('input', { id: 'username', name: 'username', autocomplete: 'username', required: true, autofocus: true });
  const password = h('input', { id: 'password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const submit = h('button', { type: 'submit', id: 'login-submit' }, 'Log in');
  const form = h('form', { class: 'card login', onsubmit: async (event) => {
    event.preventDefault();
    submit.disabled = true;
    error.hidden = true;
    try {
      await login(username.value, password.value);
      const next = query.get('next');
      navigate(next && next.startsWith('/') && !next.startsWith('/login') ? `#${next}` : '#/');
    } catch (problem) {
      replace(error, problem.status === 401 ? 'Wrong username or password.' : problem.message);
      error.hidden = false;
      password.select();
    } finally {
      submit.disabled = false;
    }
  } },
  h('h1', {}, 'Log in to sightline'),
  h('label', { for: 'username' }, 'Username'), username,
  h('label', { for: 'password' }, 'Password'), password,
  error, submit);
  root.classList.add('centered');
  replace(root, form);
}
