// The page's start: the sign-in form, the header's inbox count, and the routes
// /ui/ (the list), /ui/inbox and /ui/operations/<id> (an operation), each a view that is
// mounted into <main> and unmounted (its polling stopped) when the person moves on.

import { Api } from "./api.js";
import { detailView } from "./detail.js";
import { fill, h } from "./dom.js";
import { inboxView } from "./inbox.js";
import { listView } from "./list.js";
import { Poller } from "./poll.js";

// Only for this tab, and only until it closes: never in a URL, a cookie or the console.
const TOKEN_KEY = "v1op.token";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const notice = document.getElementById("notice");
const inboxCount = document.getElementById("inbox-count");

let api = null;
let view = null;
let inboxPoller = null;

function notify(text) {
  notice.textContent = text;
}

function route(path) {
  if (path === "/ui/" || path === "/ui") {
    return [listView, {}];
  }
  if (path === "/ui/inbox") {
    return [inboxView, {}];
  }
  const match = /^\/ui\/operations\/([^/]+)$/.exec(path);
  if (match) {
    let id = match[1];
    try {
      id = decodeURIComponent(id);
    } catch {
      // not percent-encoding: the id as written
    }
    return [detailView, { name: `operations/${id}` }];
  }
  return [null, {}];
}

function show() {
  view?.unmount();
  view = null;
  notify("");
  if (api === null) {
    signInForm();
    return;
  }
  const [mountView, params] = route(location.pathname);
  for (const link of nav.querySelectorAll("a")) {
    const current = link.getAttribute("href") === location.pathname;
    if (current) {
      link.setAttribute("aria-current", "page");
    } else {
      link.removeAttribute("aria-current");
    }
  }
  if (mountView === null) {
    fill(main, h("h1", { tabindex: -1 }, "Not found"), h("p", {}, "This page has no view at this address."));
    return;
  }
  view = mountView(main, {
    api,
    params,
    state: history.state,
    navigate,
    notify,
    inboxChanged: () => inboxPoller?.now(),
  });
}

/** Go to `path` of the page without a reload; `state` travels with the history entry. */
function navigate(path, state = null) {
  history.pushState(state, "", path);
  show();
  main.querySelector("h1")?.focus();
}

function signedIn(token) {
  api = new Api(token, (error) => signOut(`The server refused the token: ${error.message}`));
  nav.hidden = false;
  inboxPoller = new Poller(refreshInboxCount, { min: 3000, max: 20000 });
  inboxPoller.start();
}

function signOut(message = "") {
  sessionStorage.removeItem(TOKEN_KEY);
  api = null;
  inboxPoller?.stop();
  inboxPoller = null;
  nav.hidden = true;
  inboxCount.hidden = true;
  show();
  if (message) {
    document.getElementById("sign-in-error").textContent = message;
  }
}

async function refreshInboxCount(signal) {
  const before = inboxCount.textContent;
  const page = await api.unseen({ pageSize: 1 });
  if (signal.aborted) {
    return false;
  }
  const count = Number(page.totalSize ?? 0);
  inboxCount.textContent = String(count);
  inboxCount.setAttribute("aria-label", `${count} unseen`);
  inboxCount.hidden = false;
  return before !== inboxCount.textContent;
}

function signInForm() {
  const input = h("input", {
    id: "token",
    name: "token",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
    "aria-describedby": "token-hint sign-in-error",
  });
  const error = h("p", { id: "sign-in-error", class: "error", role: "alert" });
  const button = h("button", { type: "submit" }, "Sign in");
  const form = h(
    "form",
    { class: "sign-in", novalidate: true },
    h("label", { for: "token" }, "Token"),
    input,
    h(
      "p",
      { id: "token-hint", class: "hint" },
      "Your bearer token for this server. It stays in this browser tab (session storage) and is sent only to this server.",
    ),
    button,
    error,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const token = input.value.trim();
    if (!token) {
      error.textContent = "Enter a token.";
      input.focus();
      return;
    }
    button.disabled = true;
    error.textContent = "";
    // The token is kept only once the server has taken it.
    const probe = new Api(token, () => {});
    try {
      await probe.unseen({ pageSize: 1 });
    } catch (refused) {
      error.textContent =
        refused.code === 16
          ? `The server refused this token: ${refused.message}`
          : `Could not sign in: ${refused.describe()}`;
      button.disabled = false;
      input.focus();
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    signedIn(token);
    show();
    main.querySelector("h1")?.focus();
  });
  fill(main, h("h1", { tabindex: -1 }, "Sign in"), form);
}

document.addEventListener("click", (event) => {
  const link = event.target.closest?.("a[data-nav]");
  if (!link || event.defaultPrevented || event.button !== 0) {
    return;
  }
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) {
    return;
  }
  event.preventDefault();
  navigate(link.getAttribute("href"));
});
window.addEventListener("popstate", show);
document.getElementById("sign-out").addEventListener("click", () => signOut());

const saved = sessionStorage.getItem(TOKEN_KEY);
if (saved) {
  signedIn(saved);
}
show();
