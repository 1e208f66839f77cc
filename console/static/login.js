// The login form: trades the token once for an expiring session cookie (the token never goes
// into a URL), then opens the page it was shown for (the review page or the models page).
"use strict";

document.getElementById("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const note = document.getElementById("login-message");
  note.textContent = "";
  const response = await fetch("/api/login", {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ token: document.getElementById("token").value }),
  });
  if (response.ok) {
    window.location.replace(window.location.pathname);
    return;
  }
  const data = await response.json().catch(() => ({ error: response.statusText }));
  note.textContent = data.error || `HTTP ${response.status}`;
  note.className = "error";
});
