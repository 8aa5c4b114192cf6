// releasegate console: WebAuthn ceremonies (navigator.credentials.create/get) for enrolment, sign-in
// and passkey-signed approvals. Vendored with the package: nothing is loaded from elsewhere.
"use strict";

const csrf = () => document.querySelector('meta[name="csrf-token"]').content;

function fromB64url(text) {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)).buffer;
}

function toB64url(buffer) {
  let s = "";
  new Uint8Array(buffer).forEach((b) => { s += String.fromCharCode(b); });
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

async function postJSON(url, body) {
  const response = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
    body: JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({ error: "The console answered " + response.status + "." }));
  if (!response.ok) throw new Error(data.error || "Refused.");
  return data;
}

function say(el, text, ok) {
  el.textContent = text;
  el.className = "message " + (ok ? "ok" : "error");
}

function assertionJSON(cred) {
  const r = cred.response;
  return {
    id: cred.id, rawId: toB64url(cred.rawId), type: cred.type,
    response: {
      authenticatorData: toB64url(r.authenticatorData),
      clientDataJSON: toB64url(r.clientDataJSON),
      signature: toB64url(r.signature),
      userHandle: r.userHandle ? toB64url(r.userHandle) : null,
    },
  };
}

function requestOptions(o) {
  return {
    challenge: fromB64url(o.challenge), rpId: o.rpId, timeout: o.timeout, userVerification: o.userVerification,
    allowCredentials: o.allowCredentials.map((c) => ({ type: c.type, id: fromB64url(c.id) })),
  };
}

async function signIn(event) {
  event.preventDefault();
  const message = document.getElementById("message");
  try {
    const options = await postJSON("/signin/options", { name: document.getElementById("name").value });
    const cred = await navigator.credentials.get({ publicKey: requestOptions(options) });
    const done = await postJSON("/signin/verify", { credential: assertionJSON(cred) });
    // a notice's link (/inbox?run=<id>#<id>) comes back here without its query: the fragment names the run
    const run = window.location.hash.slice(1);
    window.location.assign(run ? `${done.next}?run=${encodeURIComponent(run)}#${run}` : done.next);
  } catch (err) { say(message, err.message, false); }
}

async function enrol(event) {
  event.preventDefault();
  const message = document.getElementById("message");
  try {
    const codeField = document.getElementById("code");
    const code = codeField ? codeField.value : "";
    const o = await postJSON("/enrol/options", { name: document.getElementById("name").value, code });
    const publicKey = {
      ...o, challenge: fromB64url(o.challenge), user: { ...o.user, id: fromB64url(o.user.id) },
    };
    const cred = await navigator.credentials.create({ publicKey });
    const done = await postJSON("/enrol/verify", {
      code,
      credential: {
        id: cred.id, rawId: toB64url(cred.rawId), type: cred.type,
        response: {
          clientDataJSON: toB64url(cred.response.clientDataJSON),
          attestationObject: toB64url(cred.response.attestationObject),
          transports: cred.response.getTransports ? cred.response.getTransports() : [],
        },
      },
    });
    say(message, done.message, true);
    message.dataset.proposal = done.proposal_id;
  } catch (err) { say(message, err.message, false); }
}

async function approve(event) {
  event.preventDefault();
  const form = event.target;
  const message = form.parentElement.querySelector(".message");
  const fields = {
    decision: event.submitter ? event.submitter.value : "approve",
    reference: form.reference.value, statement_text: form.statement_text.value, comment: form.comment.value,
  };
  try {
    const run = form.dataset.run;
    const s = await postJSON(`/approvals/${run}/statement`, fields);
    const cred = await navigator.credentials.get({ publicKey: requestOptions(s.publicKey) });
    const done = await postJSON(`/approvals/${run}`, {
      statement: s.statement, credential: assertionJSON(cred),
      statement_text: fields.statement_text, comment: fields.comment,
    });
    say(message, done.message, true);
  } catch (err) { say(message, err.message, false); }
}

document.addEventListener("DOMContentLoaded", () => {
  const signin = document.getElementById("signin-form");
  if (signin) signin.addEventListener("submit", signIn);
  const enrolForm = document.getElementById("enrol-form");
  if (enrolForm) enrolForm.addEventListener("submit", enrol);
  document.querySelectorAll("form.approve-form").forEach((f) => f.addEventListener("submit", approve));
});
