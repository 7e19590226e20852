// The login form: POST /api/login with the token as the body; the session is an HttpOnly
// cookie, the CSRF token goes to sessionStorage for the pages' mutating requests.
"use strict";
document.getElementById("login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const error = document.getElementById("error");
  error.hidden = true;
  const res = await fetch("/api/login", {
    method: "POST",
    headers: { "Content-Type": "text/plain" },
    body: document.getElementById("token").value,
  });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    error.textContent = body.message || `login failed (HTTP ${res.status})`;
    error.hidden = false;
    return;
  }
  sessionStorage.setItem("mvirt-csrf", body.csrf);
  location.assign("/");
});
