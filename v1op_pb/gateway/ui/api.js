// The HTTP API of the port that serves this page, called as any client calls it: REST for
// the documented OperationService, Connect for google.longrunning's WaitOperation (which
// has no REST mapping here). The bearer token goes in the Authorization header only.

import { codeName, operationId } from "./dom.js";

const UNAVAILABLE = 14;
const UNAUTHENTICATED = 16;
// How long one WaitOperation may hold its request open (the server answers earlier when
// the operation finishes, and caps waits at its own limit).
export const WAIT_SECONDS = 30;

/** A call the server refused (its google.rpc.Status) or that never reached it. */
export class ApiError extends Error {
  constructor(code, message, details = []) {
    super(message);
    this.code = code;
    this.details = details;
  }

  /** "NOT_FOUND: operation ... not found", for messages shown to the person. */
  describe() {
    return `${codeName(this.code)}: ${this.message}`;
  }
}

function operationPath(name) {
  return `/v1/operations/${encodeURIComponent(operationId(name))}`;
}

export class Api {
  /** `onUnauthenticated(error)` is told when the server refuses the token. */
  constructor(token, onUnauthenticated) {
    this.token = token;
    this.onUnauthenticated = onUnauthenticated;
  }

  async rest(method, path, query = {}) {
    const search = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined && value !== null && value !== "" && value !== false) {
        search.set(key, String(value));
      }
    }
    const url = search.size ? `${path}?${search}` : path;
    return this.#send(url, { method, headers: { Accept: "application/json" } }, restError);
  }

  async connect(method, message, timeoutMs) {
    const init = {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        "Connect-Protocol-Version": "1",
        "Connect-Timeout-Ms": String(timeoutMs),
      },
      body: JSON.stringify(message),
    };
    return this.#send(`/${method}`, init, connectError);
  }

  async #send(url, init, errorOf) {
    init.headers.Authorization = `Bearer ${this.token}`;
    init.cache = "no-store";
    init.credentials = "omit";
    let response;
    try {
      response = await fetch(url, init);
    } catch {
      throw new ApiError(UNAVAILABLE, "the server cannot be reached");
    }
    let body;
    try {
      body = await response.json();
    } catch {
      body = null; // not JSON: the status line is all there is
    }
    if (response.ok && body !== null) {
      return body;
    }
    const error = errorOf(response, body);
    if (error.code === UNAUTHENTICATED) {
      this.onUnauthenticated(error);
    }
    throw error;
  }

  /** A page of ListOperations: `{operations, totalSize, nextPageToken}`. */
  list({ pageSize, pageToken, filter, orderBy, showDeleted }) {
    return this.rest("GET", "/v1/operations", { pageSize, pageToken, filter, orderBy, showDeleted });
  }

  /** A page of the caller's unseen finished operations (without their responses). */
  unseen({ pageSize, pageToken }) {
    return this.rest("GET", "/v1/operations:unseen", {
      pageSize,
      pageToken,
      view: "OPERATION_VIEW_BASIC",
    });
  }

  async get(name) {
    return (await this.rest("GET", operationPath(name))).operation;
  }

  async progress(name) {
    const path = `${operationPath(name)}/progresses:getByParent`;
    return (await this.rest("GET", path)).operationProgress ?? {};
  }

  async abort(name) {
    return (await this.rest("POST", `${operationPath(name)}:abort`)).operation;
  }

  async markSeen(name) {
    return (await this.rest("POST", `${operationPath(name)}:markSeenByCreator`)).operation;
  }

  /** google.longrunning WaitOperation over Connect: the operation once done, or as it
   * is after `seconds` (google.longrunning's shape: name, done, metadata, error, ...). */
  wait(name, seconds = WAIT_SECONDS) {
    return this.connect(
      "google.longrunning.Operations/WaitOperation",
      { name, timeout: `${seconds}s` },
      (seconds + 10) * 1000,
    );
  }
}

function restError(response, body) {
  if (body && typeof body === "object" && "message" in body) {
    return new ApiError(Number(body.code ?? 2), String(body.message), body.details ?? []);
  }
  return new ApiError(2, `HTTP ${response.status} without a Status body`);
}

// Connect's error codes, by name (the table of the Connect protocol's specification).
const CONNECT_CODES = {
  canceled: 1,
  unknown: 2,
  invalid_argument: 3,
  deadline_exceeded: 4,
  not_found: 5,
  already_exists: 6,
  permission_denied: 7,
  resource_exhausted: 8,
  failed_precondition: 9,
  aborted: 10,
  out_of_range: 11,
  unimplemented: 12,
  internal: 13,
  unavailable: 14,
  data_loss: 15,
  unauthenticated: 16,
};

function connectError(response, body) {
  if (body && typeof body === "object" && "code" in body) {
    return new ApiError(CONNECT_CODES[body.code] ?? 2, String(body.message ?? body.code));
  }
  return new ApiError(2, `HTTP ${response.status} without a Connect error`);
}
