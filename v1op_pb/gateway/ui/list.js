// The list: every operation the caller may read, newest first, a page at a time, narrowed
// to one state by the server's filter (ListOperations filter, order_by, show_deleted).

import { fill, h } from "./dom.js";
import { PagedRows } from "./rows.js";

const PAGE_SIZE = 20;
export const STATES = ["running", "succeeded", "failed", "aborted", "deleted"];

function requestFor(state) {
  if (state === "deleted") {
    return { filter: "state = deleted", showDeleted: true };
  }
  return { filter: state ? `state = ${state}` : "", showDeleted: false };
}

export function listView(main, context) {
  const chosen = new URLSearchParams(location.search).get("state");
  const state = STATES.includes(chosen) ? chosen : "";
  const select = h(
    "select",
    { id: "state-filter", name: "state" },
    h("option", { value: "" }, "All (not deleted)"),
    STATES.map((name) =>
      h("option", { value: name, selected: name === state }, name[0].toUpperCase() + name.slice(1)),
    ),
  );
  const rows = new PagedRows(context, {
    label: "Operations",
    load: (pageToken) =>
      context.api.list({
        pageSize: PAGE_SIZE,
        pageToken,
        orderBy: "create_time desc",
        ...requestFor(state),
      }),
    describe: (total, page) =>
      `${total} ${total === 1 ? "operation" : "operations"}${state ? ` ${state}` : ""}, newest first · page ${page}`,
    empty: state ? `No ${state} operations.` : "No operations yet.",
  });
  select.addEventListener("change", () => {
    // The filter is part of the address, so the view can be linked to and reloaded.
    context.navigate(select.value ? `/ui/?state=${select.value}` : "/ui/");
    document.getElementById("state-filter")?.focus();
  });
  fill(
    main,
    h("h1", { tabindex: -1 }, "Operations"),
    h(
      "div",
      { class: "filters" },
      h("label", { for: "state-filter" }, "State"),
      select,
    ),
    rows.element,
  );
  rows.start();
  return { unmount: () => rows.stop() };
}
