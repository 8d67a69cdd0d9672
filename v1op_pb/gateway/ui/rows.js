// Lists of operations (the list and the inbox): a row per operation, updated in place when
// a refreshed page brings it again (so focus and the progress bars stay put), and a
// progress bar with its message for each running operation while its row is on screen.

import { ProgressBar, codeName, fill, h, operationId, operationPath, stateBadges, timeElement } from "./dom.js";
import { Poller, perOperation } from "./poll.js";

class OperationRow {
  constructor(operation, context) {
    this.context = context;
    this.name = operation.name;
    this.badges = h("span", { class: "badges" });
    this.link = h(
      "a",
      {
        href: operationPath(operation.name),
        class: "op-name",
        on: { click: (event) => this.open(event) },
      },
      operationId(operation.name),
    );
    this.facts = h("p", { class: "op-facts muted" });
    this.outcome = h("p", { class: "op-error" });
    this.progressSlot = h("div");
    this.element = h(
      "li",
      { class: "op" },
      h("div", { class: "op-head" }, this.link, this.badges),
      this.facts,
      this.outcome,
      this.progressSlot,
    );
    this.bar = null;
    this.poller = null;
    this.onScreen = false;
    this.update(operation);
  }

  open(event) {
    if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) {
      return;
    }
    event.preventDefault();
    // The operation goes with the history entry: a deleted one cannot be read by name.
    this.context.navigate(operationPath(this.name), { operation: this.operation });
  }

  update(operation) {
    this.operation = operation;
    fill(this.badges, stateBadges(operation));
    const when = operation.done
      ? ["Finished ", timeElement(operation.updateTime ?? operation.createTime)]
      : ["Started ", timeElement(operation.createTime)];
    fill(this.facts, when, operation.creator ? ` · by ${operation.creator}` : "");
    const error = operation.error;
    this.outcome.textContent = error ? `${codeName(error.code)}: ${error.message ?? ""}` : "";
    const running = !operation.done && !operation.deleteTime;
    if (running && this.bar === null) {
      this.bar = new ProgressBar(`Progress of ${operationId(operation.name)}`);
      fill(this.progressSlot, this.bar.element);
      this.poller = new Poller((signal) => this.readProgress(signal), { min: 1000, max: 10000 });
      if (this.onScreen) {
        this.poller.start();
      }
    } else if (!running && this.bar !== null) {
      this.poller.stop();
      this.poller = null;
      this.bar = null;
      fill(this.progressSlot);
    }
  }

  async readProgress(signal) {
    await perOperation.turn(this.name, signal);
    const progress = await this.context.api.progress(this.name);
    return !signal.aborted && this.bar !== null && this.bar.set(progress.progress, progress.message);
  }

  /** Progress is read only for rows on screen. */
  visible(onScreen) {
    this.onScreen = onScreen;
    if (onScreen) {
      this.poller?.start();
    } else {
      this.poller?.stop();
    }
  }

  remove() {
    this.poller?.stop();
    this.element.remove();
  }
}

/** An `<ol>` of operation rows, kept in the order of the last page shown. */
export class OperationRows {
  constructor(context, label) {
    this.context = context;
    this.element = h("ol", { class: "ops", "aria-label": label });
    this.rows = new Map();
    this.observer = new IntersectionObserver((entries) => {
      for (const entry of entries) {
        this.rows.get(entry.target.dataset.name)?.visible(entry.isIntersecting);
      }
    });
  }

  /** Show `operations`, in order; false when they are what was shown. */
  show(operations) {
    const seen = new Set();
    let changed = operations.length !== this.rows.size;
    operations.forEach((operation, index) => {
      seen.add(operation.name);
      let row = this.rows.get(operation.name);
      if (row === undefined) {
        row = new OperationRow(operation, this.context);
        row.element.dataset.name = operation.name;
        this.rows.set(operation.name, row);
        this.observer.observe(row.element);
        changed = true;
      } else if (JSON.stringify(row.operation) !== JSON.stringify(operation)) {
        row.update(operation);
        changed = true;
      }
      // Moved only when out of place, so a focused link keeps its focus.
      if (this.element.children[index] !== row.element) {
        this.element.insertBefore(row.element, this.element.children[index] ?? null);
        changed = true;
      }
    });
    for (const [name, row] of this.rows) {
      if (!seen.has(name)) {
        this.observer.unobserve(row.element);
        row.remove();
        this.rows.delete(name);
      }
    }
    return changed;
  }

  stop() {
    this.observer.disconnect();
    for (const row of this.rows.values()) {
      row.poller?.stop();
    }
  }
}

/**
 * A paged listing: Newer/Older buttons over page tokens, refreshed by a poller. `load(token)`
 * returns `{operations, totalSize, nextPageToken}`.
 */
export class PagedRows {
  constructor(context, { label, load, describe, empty }) {
    this.context = context;
    this.load = load;
    this.describe = describe;
    this.emptyText = empty;
    this.rows = new OperationRows(context, label);
    this.tokens = [""];
    this.next = "";
    this.summary = h("p", { class: "summary", "aria-live": "polite" }, "Loading…");
    this.error = h("p", { class: "error", role: "alert" });
    this.empty = h("p", { class: "empty", hidden: true }, empty);
    this.newer = h("button", { type: "button", on: { click: () => this.turn(-1) } }, "Newer");
    this.older = h("button", { type: "button", on: { click: () => this.turn(1) } }, "Older");
    this.pager = h("nav", { class: "pager", "aria-label": "Pages" }, this.newer, this.older);
    this.element = h("div", {}, this.summary, this.error, this.rows.element, this.empty, this.pager);
    this.poller = new Poller((signal) => this.refresh(signal), { min: 2000, max: 15000 });
    this.updatePager();
  }

  start() {
    this.poller.start();
  }

  stop() {
    this.poller.stop();
    this.rows.stop();
  }

  async refresh(signal) {
    let page;
    const token = this.tokens[this.tokens.length - 1];
    try {
      page = await this.load(token);
    } catch (error) {
      if (!signal.aborted) {
        this.error.textContent = `Could not load the list: ${error.describe?.() ?? error}`;
      }
      throw error;
    }
    if (signal.aborted || token !== this.tokens[this.tokens.length - 1]) {
      return false; // stopped, or another page was asked for meanwhile (it is read next)
    }
    this.error.textContent = "";
    const operations = page.operations ?? [];
    const changed = this.rows.show(operations);
    this.next = page.nextPageToken ?? "";
    const summary = this.describe(Number(page.totalSize ?? 0), this.tokens.length);
    if (this.summary.textContent !== summary) {
      this.summary.textContent = summary;
    }
    this.empty.hidden = operations.length > 0;
    this.updatePager();
    return changed;
  }

  turn(direction) {
    if (direction > 0 && this.next) {
      this.tokens.push(this.next);
    } else if (direction < 0 && this.tokens.length > 1) {
      this.tokens.pop();
    }
    this.next = "";
    this.updatePager();
    this.poller.now();
  }

  updatePager() {
    this.newer.disabled = this.tokens.length <= 1;
    this.older.disabled = !this.next;
  }
}
