// signin.js: the sign-in form. The token is typed (or pasted) into a
// password field, checked against the server, and kept only in this tab's
// sessionStorage by app.signIn; it never appears in an address.

import { h, replace } from '../dom.js';
import { t } from '../i18n.js';

export function renderSignIn(view, app, message) {
    const input = h('input', {
        id: 'token', name: 'token', type: 'password', autocomplete: 'off',
        spellcheck: 'false', autocapitalize: 'off', required: true, maxlength: '256',
    });
    const status = h('p.error', { id: 'signin-error', role: 'alert' }, message || '');
    const button = h('button', { type: 'submit', id: 'signin-submit' }, t('signin.submit'));
    const form = h('form.panel.signin', {
        id: 'signin', novalidate: true,
        on: {
            submit: async (ev) => {
                ev.preventDefault();
                const token = input.value.trim();
                if (!token) {
                    replace(status, t('signin.empty'));
                    return;
                }
                button.disabled = true;
                replace(status, t('signin.busy'));
                status.classList.add('muted');
                try {
                    await app.signIn(token);
                } catch (e) {
                    status.classList.remove('muted');
                    let text;
                    if (e.code === 'unauthenticated') text = t('signin.unauthenticated');
                    else if (e.code === 'permission_denied') text = t('signin.admin');
                    else text = t('signin.failed', { message: e.message });
                    replace(status, text);
                    button.disabled = false;
                    input.focus();
                }
            },
        },
    },
        h('h1', t('signin.title')),
        h('p.muted', t('signin.intro')),
        h('label', { for: 'token' }, t('signin.token')),
        input,
        button,
        status);
    replace(view, form);
    input.focus();
}
