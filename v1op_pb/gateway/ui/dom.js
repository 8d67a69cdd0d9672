// Building the page from data the server sends. Every string goes into the document as
// text (textContent, attribute values): nothing here parses HTML, so a hostile operation
// name, message or JSON value shows as the characters it is.

/**
 * An element: `h("a", {href: "/ui/", class: "x"}, "text", child)`. Attributes are set with
 * setAttribute (never `style` or an `on...` handler: the page's CSP allows neither inline);
 * `on` takes event listeners, children are nodes or strings (as text), falsy ones skipped.
 */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) {
      continue;
    }
    if (name === "on") {
      for (const [event, listener] of Object.entries(value)) {
        element.addEventListener(event, listener);
      }
    } else if (name === "style" || name.startsWith("on")) {
      throw new Error(`h(): ${name} is not set through attributes`);
    } else {
      element.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) {
      continue;
    }
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace every child of `element`. */
export function fill(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

// google.rpc.Code, by number.
const CODE_NAMES = [
  "OK",
  "CANCELLED",
  "UNKNOWN",
  "INVALID_ARGUMENT",
  "DEADLINE_EXCEEDED",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED",
  "FAILED_PRECONDITION",
  "ABORTED",
  "OUT_OF_RANGE",
  "UNIMPLEMENTED",
  "INTERNAL",
  "UNAVAILABLE",
  "DATA_LOSS",
  "UNAUTHENTICATED",
];

/** The name of a google.rpc.Code number (proto3 JSON leaves 0 out: undefined is OK). */
export function codeName(code) {
  const number = code === undefined ? 0 : Number(code);
  return CODE_NAMES[number] ?? `code ${number}`;
}

/** The id of an operation name, `operations/<id>`. */
export function operationId(name) {
  return name.startsWith("operations/") ? name.slice("operations/".length) : name;
}

/** The page's path for an operation. */
export function operationPath(name) {
  return `/ui/operations/${encodeURIComponent(operationId(name))}`;
}

/** running, succeeded, failed or aborted, as the server's list filter names them. */
export function stateOf(operation) {
  if (!operation.done) {
    return "running";
  }
  if (operation.error) {
    return Number(operation.error.code ?? 0) === 1 ? "aborted" : "failed";
  }
  return "succeeded";
}

const STATE_LABELS = {
  running: "Running",
  succeeded: "Succeeded",
  failed: "Failed",
  aborted: "Aborted",
  deleted: "Deleted",
};

/** The state badges of an operation: its outcome, and "Deleted" when it is. */
export function stateBadges(operation) {
  const state = stateOf(operation);
  const badges = [h("span", { class: `state state-${state}` }, STATE_LABELS[state])];
  if (operation.deleteTime) {
    badges.push(h("span", { class: "state state-deleted" }, STATE_LABELS.deleted));
  }
  return badges;
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?Z$/;
const LOCAL = new Intl.DateTimeFormat(undefined, {
  year: "numeric",
  month: "short",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
  timeZoneName: "short",
});

/**
 * A proto3 JSON Timestamp (RFC 3339, UTC, 0 to 9 fraction digits) as a `<time>`: the
 * viewer's local time, with the full nanosecond timestamp on hover and keyboard focus.
 */
export function timeElement(text) {
  const match = RFC3339.exec(text ?? "");
  if (!match) {
    return h("span", {}, text ?? "");
  }
  const [, year, month, day, hour, minute, second, fraction = ""] = match;
  const nanos = fraction.padEnd(9, "0");
  const full = `${year}-${month}-${day}T${hour}:${minute}:${second}.${nanos}Z`;
  const millis = Date.UTC(+year, +month - 1, +day, +hour, +minute, +second, +nanos.slice(0, 3));
  // Focusable, so that keyboard users reach the full timestamp too (shown by the CSS).
  return h(
    "time",
    { datetime: full, title: full, "data-full": full, tabindex: 0 },
    LOCAL.format(new Date(millis)),
  );
}

/** A percentage from 0 to 100 of a progress fraction (clamped: the server passes on
 * whatever the producer reported). */
export function percentOf(fraction) {
  const number = Number(fraction ?? 0);
  if (!Number.isFinite(number)) {
    return 0;
  }
  return Math.round(Math.min(1, Math.max(0, number)) * 1000) / 10;
}

/** A progress bar: `role="progressbar"` with aria-valuenow, a visible bar and text. */
export class ProgressBar {
  constructor(label) {
    this.fill = h("span", { class: "progress-fill" });
    this.track = h(
      "div",
      {
        class: "progress",
        role: "progressbar",
        "aria-label": label,
        "aria-valuemin": 0,
        "aria-valuemax": 100,
        "aria-busy": "true",
      },
      this.fill,
    );
    this.text = h("span", { class: "progress-text" }, "Progress loading…");
    this.element = h("div", { class: "progress-box" }, this.track, this.text);
  }

  /** Show `fraction` (0 to 1) and `message`; false when nothing changed. */
  set(fraction, message) {
    const percent = percentOf(fraction);
    const text = message ? `${percent}% · ${message}` : `${percent}%`;
    if (this.track.getAttribute("aria-valuenow") === String(percent) && this.text.textContent === text) {
      return false;
    }
    this.track.removeAttribute("aria-busy");
    this.track.setAttribute("aria-valuenow", String(percent));
    this.track.setAttribute("aria-valuetext", text);
    // Through the CSSOM, which the page's CSP allows (a style attribute it would refuse).
    this.fill.style.width = `${percent}%`;
    this.text.textContent = text;
    return true;
  }
}
