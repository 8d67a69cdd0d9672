// The inbox: the caller's finished operations that it has not opened yet
// (ListUnseenOperations). Opening one marks it seen (the operation's view does that).

import { fill, h } from "./dom.js";
import { PagedRows } from "./rows.js";

const PAGE_SIZE = 20;

export function inboxView(main, context) {
  const rows = new PagedRows(context, {
    label: "Unseen operations",
    load: (pageToken) => context.api.unseen({ pageSize: PAGE_SIZE, pageToken }),
    describe: (total) => `${total} finished ${total === 1 ? "operation" : "operations"} not yet seen`,
    empty: "Nothing new. Your operations show here when they finish.",
  });
  fill(
    main,
    h("h1", { tabindex: -1 }, "Inbox"),
    h("p", { class: "muted" }, "Your finished operations that you have not opened yet. Opening one marks it seen."),
    rows.element,
  );
  rows.start();
  return { unmount: () => rows.stop() };
}
