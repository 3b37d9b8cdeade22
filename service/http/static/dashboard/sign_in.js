/* Sign in: check the pasted token against the API, keep it in this tab, move on. */
(function () {
  "use strict";
  const T = window.Traction;
  const form = document.getElementById("sign-in-form");
  const tokenInput = document.getElementById("token");
  const clinicInput = document.getElementById("clinic");
  const message = document.getElementById("sign-in-message");
  const submit = document.getElementById("sign-in-submit");
  const CLINIC = /^[a-z0-9][a-z0-9-]{1,62}$/;

  /** Only our own dashboard paths: never an address elsewhere. */
  function nextPath() {
    const next = new URLSearchParams(window.location.search).get("next");
    return next && /^\/dashboard\/[A-Za-z0-9/-]*$/.test(next) && !next.startsWith("//") ? next : null;
  }

  const next = nextPath();
  const clinicInNext = next && /^\/dashboard\/clinics\/([a-z0-9][a-z0-9-]{1,62})/.exec(next);
  if (clinicInNext && !clinicInput.value) clinicInput.value = clinicInNext[1];

  function fail(text, field) {
    message.textContent = text;
    if (field) {
      field.setAttribute("aria-invalid", "true");
      field.focus();
    }
    T.setState("ready");
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    message.textContent = "";
    tokenInput.removeAttribute("aria-invalid");
    clinicInput.removeAttribute("aria-invalid");
    const token = tokenInput.value.trim();
    const clinic = clinicInput.value.trim();
    if (!T.TOKEN_FORMAT.test(token)) {
      fail("That is not a Traction Ledger token: it starts with tl_, then 16 hex digits, an underscore and 43 more characters.", tokenInput);
      return;
    }
    if (clinic && !CLINIC.test(clinic)) {
      fail("A clinic id is lower-case letters, digits and hyphens, like harbour-spine.", clinicInput);
      return;
    }
    submit.disabled = true;
    T.setState("checking");
    try {
      if (clinic) {
        await T.api("/v1/clinics/" + encodeURIComponent(clinic) + "/dashboard", { token });
        T.session.signIn(token, { all: false, clinic });
        window.location.assign(next || "/dashboard/clinics/" + encodeURIComponent(clinic));
      } else {
        await T.api("/v1/dashboard", { token });
        T.session.signIn(token, { all: true, clinic: null });
        window.location.assign(next || "/dashboard/network");
      }
      tokenInput.value = "";
    } catch (error) {
      if (error.status === 401) {
        fail("The service does not accept this token: it is unknown or revoked.", tokenInput);
      } else if (error.status === 403 && clinic) {
        fail("This token's role cannot read a clinic dashboard (writer tokens only post events; an admin token reads the network view: leave the clinic empty).", clinicInput);
      } else if (error.status === 403) {
        fail("This token is for one clinic, or its role reads no dashboards: enter the clinic it is for.", clinicInput);
      } else if (error.status === 404) {
        fail("This token does not see a clinic called " + clinic + ".", clinicInput);
      } else {
        fail("The service could not check the token (" + (error.status || "no answer") + "); try again.", null);
      }
    } finally {
      submit.disabled = false;
    }
  });

  if (T.session.token()) {
    T.frame();
    const scope = T.session.scope() || {};
    const where = scope.all ? "/dashboard/network" : scope.clinic ? "/dashboard/clinics/" + encodeURIComponent(scope.clinic) : null;
    if (where) {
      const note = document.getElementById("signed-in");
      note.replaceChildren("You are already signed in in this tab: ", T.el("a", { href: where, text: "open the dashboard" }), ", or sign in with another token.");
      note.hidden = false;
    }
  }
  T.setState("ready");
})();
