// Metadata, responses and errors, rendered from their proto3 JSON: an Any's type URL
// apart from its fields, a google.rpc.Status's code by name and each typed detail in the
// words of its type (google/rpc/error_details.proto), any other detail as its JSON.

import { codeName, h } from "./dom.js";

/** An Any: its type URL, then its fields as indented JSON. */
export function anyElement(value) {
  if (value === undefined || value === null) {
    return h("p", { class: "muted" }, "None");
  }
  const { "@type": typeUrl, ...fields } = value;
  return h(
    "div",
    { class: "any" },
    h("p", { class: "type-url" }, "Type ", h("code", {}, typeUrl ?? "(no type URL)")),
    jsonElement(fields),
  );
}

/** Any JSON value, as indented text. */
export function jsonElement(value) {
  return h("pre", { class: "json" }, JSON.stringify(value, null, 2));
}

/** A google.rpc.Status: code name and number, message, and its typed details. */
export function statusElement(status) {
  const code = Number(status.code ?? 0);
  const details = status.details ?? [];
  return h(
    "div",
    { class: "status" },
    h(
      "p",
      { class: "status-code" },
      h("strong", {}, codeName(code)),
      h("span", { class: "muted" }, ` (code ${code})`),
    ),
    h("p", { class: "status-message" }, status.message || "(no message)"),
    details.length
      ? h(
          "section",
          { class: "details", "aria-label": "Error details" },
          details.map((detail) => detailElement(detail)),
        )
      : null,
  );
}

const RPC = "type.googleapis.com/google.rpc.";

// How each google.rpc detail type reads: a title and its rows.
const DETAILS = {
  ErrorInfo: (d) => [
    "Error info",
    rows([
      ["Reason", d.reason],
      ["Domain", d.domain],
      ...Object.entries(d.metadata ?? {}).map(([key, value]) => [`Metadata ${key}`, value]),
    ]),
  ],
  RetryInfo: (d) => ["Retry info", rows([["Retry after", durationText(d.retryDelay)]])],
  DebugInfo: (d) => [
    "Debug info",
    rows([["Detail", d.detail]]),
    d.stackEntries?.length ? h("pre", { class: "json" }, d.stackEntries.join("\n")) : null,
  ],
  QuotaFailure: (d) => [
    "Quota failure",
    list(d.violations, (v) => rows([["Subject", v.subject], ["Description", v.description]])),
  ],
  PreconditionFailure: (d) => [
    "Precondition failure",
    list(d.violations, (v) =>
      rows([
        ["Type", v.type],
        ["Subject", v.subject],
        ["Description", v.description],
      ]),
    ),
  ],
  BadRequest: (d) => [
    "Bad request",
    list(d.fieldViolations, (v) =>
      rows([
        ["Field", v.field],
        ["Description", v.description],
        ["Reason", v.reason],
        ["Message", v.localizedMessage?.message],
      ]),
    ),
  ],
  RequestInfo: (d) => [
    "Request info",
    rows([
      ["Request ID", d.requestId],
      ["Serving data", d.servingData],
    ]),
  ],
  ResourceInfo: (d) => [
    "Resource info",
    rows([
      ["Resource type", d.resourceType],
      ["Resource name", d.resourceName],
      ["Owner", d.owner],
      ["Description", d.description],
    ]),
  ],
  Help: (d) => ["Help", list(d.links, (link) => linkElement(link))],
  LocalizedMessage: (d) => [
    "Localized message",
    rows([
      ["Locale", d.locale],
      ["Message", d.message],
    ]),
  ],
};

function detailElement(detail) {
  const typeUrl = detail?.["@type"] ?? "";
  const render = typeUrl.startsWith(RPC) ? DETAILS[typeUrl.slice(RPC.length)] : undefined;
  if (render === undefined) {
    return h("article", { class: "detail" }, anyElement(detail));
  }
  const [title, ...body] = render(detail);
  return h(
    "article",
    { class: "detail", "data-type": typeUrl },
    h("h4", {}, title, " ", h("code", { class: "muted" }, typeUrl)),
    body,
  );
}

function rows(pairs) {
  const present = pairs.filter(([, value]) => value !== undefined && value !== null && value !== "");
  return h(
    "dl",
    { class: "fields" },
    present.map(([label, value]) => [h("dt", {}, label), h("dd", {}, String(value))]),
  );
}

function list(items, render) {
  return h("ul", { class: "plain" }, (items ?? []).map((item) => h("li", {}, render(item))));
}

function linkElement(link) {
  let url;
  try {
    url = new URL(link.url);
  } catch {
    url = null;
  }
  // Only web links become links: a javascript: or data: URL stays text.
  const safe = url !== null && (url.protocol === "https:" || url.protocol === "http:");
  return h(
    "span",
    {},
    link.description ? `${link.description}: ` : "",
    safe ? h("a", { href: url.href, rel: "noopener noreferrer" }, url.href) : h("code", {}, link.url ?? ""),
  );
}

/** A proto3 JSON Duration ("1.500s") in words. */
export function durationText(text) {
  const match = /^(-?\d+)(?:\.(\d{1,9}))?s$/.exec(text ?? "");
  if (!match) {
    return text ?? "";
  }
  const seconds = Number(`${match[1]}.${match[2] ?? "0"}`);
  return `${seconds} s (${text})`;
}
