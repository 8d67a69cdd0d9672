// One operation, at /ui/operations/<id>: every field, its metadata and response from their
// JSON, its error with the typed details, live progress while it runs, and an abort button.
// Opening a finished operation marks it seen by its creator.

import { WAIT_SECONDS } from "./api.js";
import { ProgressBar, codeName, fill, h, operationId, stateBadges, timeElement } from "./dom.js";
import { anyElement, statusElement } from "./payload.js";
import { Poller, delay, perOperation } from "./poll.js";

const NOT_FOUND = 5;
const PERMISSION_DENIED = 7;

export function detailView(main, context) {
  const { api, params } = context;
  const name = params.name;
  const controller = new AbortController();
  const signal = controller.signal;
  const badges = h("span", { class: "badges" });
  const live = h("div", { class: "live" });
  const actions = h("div", { class: "actions" });
  const seenNote = h("p", { class: "muted", role: "status" });
  const fields = h("dl", { class: "fields wide" });
  const payload = h("div");
  const error = h("p", { class: "error", role: "alert" });
  fill(
    main,
    h("p", {}, h("a", { href: "/ui/", "data-nav": true }, "← All operations")),
    h("h1", { tabindex: -1 }, "Operation ", h("span", { class: "op-id" }, operationId(name))),
    h("p", { class: "badges-line" }, badges),
    error,
    live,
    actions,
    seenNote,
    fields,
    payload,
  );

  let operation = null;
  let bar = null;
  let progress = null;
  let marking = false;

  function show(current) {
    operation = current;
    fill(badges, stateBadges(current));
    fill(fields, fieldRows(current));
    fill(
      payload,
      section("Metadata", anyElement(current.metadata)),
      current.error ? section("Error", statusElement(current.error)) : null,
      current.response ? section("Response", anyElement(current.response)) : null,
    );
    const running = !current.done && !current.deleteTime;
    if (running && bar === null) {
      startLive();
    } else if (!running && bar !== null) {
      stopLive();
    }
    if (current.done && !current.seenByCreatorTime && !current.deleteTime) {
      markSeen();
    }
  }

  function startLive() {
    bar = new ProgressBar(`Progress of ${operationId(name)}`);
    fill(live, bar.element);
    fill(actions, abortControls());
    progress = new Poller(readProgress, { min: 1000, max: 10000 });
    progress.start();
    waitForEnd();
  }

  function stopLive() {
    progress?.stop();
    progress = null;
    bar = null;
    fill(live);
    fill(actions);
  }

  async function readProgress(pollSignal) {
    await perOperation.turn(name, pollSignal);
    const read = await api.progress(name);
    if (pollSignal.aborted || bar === null) {
      return false;
    }
    const changed = bar.set(read.progress, read.message);
    if (changed) {
      // The metadata shown below moved with it.
      await perOperation.turn(name, pollSignal);
      show(await api.get(name));
    }
    return changed;
  }

  // google.longrunning WaitOperation: one request held open until the operation finishes
  // (or WAIT_SECONDS pass, then another), so the end shows at once without polling for it.
  async function waitForEnd() {
    let backoff = 1000;
    while (!signal.aborted && operation && !operation.done) {
      try {
        await perOperation.turn(name, signal);
        const waited = await api.wait(name, WAIT_SECONDS);
        backoff = 1000;
        if (waited.done && !signal.aborted) {
          await perOperation.turn(name, signal);
          show(await api.get(name));
        }
      } catch (failure) {
        if (signal.aborted || failure?.code === 16) {
          return;
        }
        if (failure?.code === NOT_FOUND) {
          error.textContent = `The operation is gone: ${failure.describe()}`;
          stopLive();
          return;
        }
        try {
          await delay(backoff, signal);
        } catch {
          return;
        }
        backoff = Math.min(backoff * 2, 30000);
      }
    }
  }

  function abortControls() {
    const message = h("p", { class: "error", role: "alert" });
    const start = h("button", { type: "button", class: "danger" }, "Abort…");
    const confirm = h("button", { type: "button", class: "danger" }, "Abort operation");
    const cancel = h("button", { type: "button" }, "Keep running");
    const ask = h(
      "div",
      { class: "confirm", hidden: true, role: "group", "aria-label": "Confirm abort" },
      h("p", {}, "Abort this operation? It ends with a CANCELLED error."),
      confirm,
      cancel,
    );
    start.addEventListener("click", () => {
      ask.hidden = false;
      start.hidden = true;
      confirm.focus();
    });
    cancel.addEventListener("click", () => {
      ask.hidden = true;
      start.hidden = false;
      start.focus();
    });
    confirm.addEventListener("click", async () => {
      confirm.disabled = true;
      message.textContent = "";
      try {
        const aborted = await api.abort(name);
        context.notify(`Aborted ${name}.`);
        show(aborted);
        main.querySelector("h1")?.focus();
      } catch (refused) {
        // The server's rules decide who may abort: its answer is the message.
        message.textContent = `Abort refused: ${refused.describe()}`;
        confirm.disabled = false;
        ask.hidden = true;
        start.hidden = false;
      }
    });
    return [start, ask, message];
  }

  async function markSeen() {
    if (marking) {
      return;
    }
    marking = true;
    try {
      show(await api.markSeen(name));
      seenNote.textContent = "Marked seen.";
      context.inboxChanged();
    } catch (refused) {
      seenNote.textContent =
        refused.code === PERMISSION_DENIED
          ? "Not marked seen: only its creator marks it seen."
          : `Could not mark it seen: ${refused.describe()}`;
    }
  }

  const kept = context.state?.operation;
  if (kept?.name === name && kept.deleteTime) {
    // Deleted operations are listed (show_deleted) but not served by name (NOT_FOUND): the
    // list that linked here had it whole, and a deleted operation no longer changes.
    error.textContent = "This operation is deleted: shown as the list had it.";
    show(kept);
  } else {
    load();
  }

  async function load() {
    try {
      show(await api.get(name));
    } catch (failure) {
      if (!signal.aborted) {
        error.textContent = `Could not load ${name}: ${failure.describe?.() ?? failure}`;
      }
    }
  }

  return {
    unmount: () => {
      controller.abort();
      stopLive();
    },
  };
}

function section(title, body) {
  return h("section", { class: "payload", "aria-label": title }, h("h2", {}, title), body);
}

function fieldRows(operation) {
  const row = (label, value) => [h("dt", {}, label), h("dd", {}, value)];
  const time = (text) => (text ? timeElement(text) : h("span", { class: "muted" }, "—"));
  const text = (value) => (value ? value : h("span", { class: "muted" }, "—"));
  return [
    row("Name", h("code", {}, operation.name)),
    row("Done", operation.done ? "Yes" : "No"),
    row(
      "Outcome",
      operation.error
        ? `Error ${codeName(operation.error.code)}`
        : operation.response
          ? "Response"
          : operation.done
            ? "Done, without a response"
            : "Running",
    ),
    row("Creator", text(operation.creator)),
    row("Created", time(operation.createTime)),
    row("Updater", text(operation.updater)),
    row("Updated", time(operation.updateTime)),
    row("Seen by creator", time(operation.seenByCreatorTime)),
    row("Deleter", text(operation.deleter)),
    row("Deleted", time(operation.deleteTime)),
  ];
}
