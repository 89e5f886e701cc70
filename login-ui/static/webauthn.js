// authd passkeys: the only script of the hosted pages. A form marked
// data-webauthn="create" or "get" fetches its ceremony options (POST to
// data-options, with the form's fields and CSRF token), or reads them from
// its data-public-key attribute when the page already carries them, asks
// the browser's authenticator, puts the JSON answer in the form's "credential" field and
// submits the form as usual. Everything else stays plain HTML.
'use strict';
(function () {
  function toBuf(s) {
    s = s.replace(/-/g, '+').replace(/_/g, '/');
    while (s.length % 4) s += '=';
    const bin = atob(s);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }
  function toB64u(buf) {
    const b = new Uint8Array(buf);
    let s = '';
    for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
    return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }
  function ids(list) {
    return (list || []).map(function (c) { return Object.assign({}, c, { id: toBuf(c.id) }); });
  }
  // Older browsers lack PublicKeyCredential.parse*FromJSON and toJSON.
  function creationOptions(o) {
    if (PublicKeyCredential.parseCreationOptionsFromJSON) return PublicKeyCredential.parseCreationOptionsFromJSON(o);
    return Object.assign({}, o, { challenge: toBuf(o.challenge), user: Object.assign({}, o.user, { id: toBuf(o.user.id) }), excludeCredentials: ids(o.excludeCredentials) });
  }
  function requestOptions(o) {
    if (PublicKeyCredential.parseRequestOptionsFromJSON) return PublicKeyCredential.parseRequestOptionsFromJSON(o);
    return Object.assign({}, o, { challenge: toBuf(o.challenge), allowCredentials: ids(o.allowCredentials) });
  }
  function credentialJSON(c) {
    if (typeof c.toJSON === 'function') return c.toJSON();
    const r = c.response, resp = { clientDataJSON: toB64u(r.clientDataJSON) };
    if (r.attestationObject) {
      resp.attestationObject = toB64u(r.attestationObject);
      resp.transports = r.getTransports ? r.getTransports() : [];
    } else {
      resp.authenticatorData = toB64u(r.authenticatorData);
      resp.signature = toB64u(r.signature);
      if (r.userHandle) resp.userHandle = toB64u(r.userHandle);
    }
    return { id: c.id, rawId: toB64u(c.rawId), type: c.type, response: resp,
      authenticatorAttachment: c.authenticatorAttachment, clientExtensionResults: c.getClientExtensionResults() };
  }

  function setup(form) {
    const status = form.querySelector('[data-webauthn-status]');
    function say(msg) { if (status) status.textContent = msg; }
    if (!window.PublicKeyCredential || !navigator.credentials) {
      say('This browser does not support passkeys.');
      return;
    }
    form.querySelectorAll('[data-webauthn-only]').forEach(function (el) { el.hidden = false; });
    say('');
    let busy = false;
    form.addEventListener('submit', async function (ev) {
      ev.preventDefault();
      if (busy) return;
      busy = true;
      say('Waiting for your passkey…');
      try {
        let body;
        if (form.dataset.publicKey) {
          body = { publicKey: JSON.parse(form.dataset.publicKey) };
        } else {
          const fields = new FormData(form);
          fields.delete('credential');
          const res = await fetch(form.dataset.options, { method: 'POST', body: new URLSearchParams(fields), credentials: 'same-origin', headers: { Accept: 'application/json' } });
          body = await res.json().catch(function () { return {}; });
          if (!res.ok) throw new Error(body.error || 'The server could not start the passkey request.');
        }
        const cred = form.dataset.webauthn === 'create'
          ? await navigator.credentials.create({ publicKey: creationOptions(body.publicKey) })
          : await navigator.credentials.get({ publicKey: requestOptions(body.publicKey) });
        form.elements.credential.value = JSON.stringify(credentialJSON(cred));
        say('');
        form.submit();
      } catch (e) {
        busy = false;
        say(e && e.name === 'NotAllowedError' ? 'The passkey request was cancelled or timed out.' : (e && e.message) || 'Something went wrong.');
      }
    });
  }
  document.querySelectorAll('form[data-webauthn]').forEach(setup);
})();
