"""The server's Prometheus metrics (the ``metrics`` extra: prometheus-client).

Calls on the gRPC port carry the names and labels of go-grpc-prometheus and
py-grpc-prometheus, so that dashboards made for those work unchanged:
``grpc_server_started_total``, ``grpc_server_handled_total``,
``grpc_server_msg_received_total``, ``grpc_server_msg_sent_total`` and the histogram
``grpc_server_handling_seconds``, labelled ``grpc_type``, ``grpc_service``, ``grpc_method``
(and ``grpc_code``). Requests on the HTTP port are counted alike, labelled by ``protocol``
(rest, connect, grpc-web, or http for the port's own paths) and ``route``:
``v1op_http_server_started_total``, ``v1op_http_server_handled_total`` (with
``grpc_code``) and ``v1op_http_server_handling_seconds``. The store adds
``v1op_store_operations{state}``, ``v1op_store_commit_seconds``,
``v1op_store_commit_writes``, ``v1op_waits_in_progress`` and
``v1op_retention_purged_total``.

With ``PROMETHEUS_MULTIPROC_DIR`` set (``serve --workers``), prometheus-client keeps every
value in files there, and the parent process serves the sum of its workers'.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["COMMIT_BUCKETS", "OPERATION_STATES", "Metrics"]

# go-grpc-prometheus's (Prometheus' default buckets), for grpc_server_handling_seconds.
HANDLING_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# A group commit takes from a fraction of a millisecond (SQLite, PostgreSQL nearby) up.
COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000)
# The values of v1op_store_operations' state label. A deleted operation counts as deleted
# only, whether or not it was done.
OPERATION_STATES = ("running", "done", "deleted")


class Metrics:
    """Every metric of one server, in ``registry`` (a new one by default, so that servers in
    one process, as tests start them, count apart)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        grpc_labels = ("grpc_type", "grpc_service", "grpc_method")
        r = self.registry
        self.grpc_started = Counter(
            "grpc_server_started", "RPCs started on the gRPC port.", grpc_labels, registry=r
        )
        self.grpc_handled = Counter(
            "grpc_server_handled",
            "RPCs answered on the gRPC port, by their code.",
            (*grpc_labels, "grpc_code"),
            registry=r,
        )
        self.grpc_received = Counter(
            "grpc_server_msg_received",
            "Request messages received on the gRPC port.",
            grpc_labels,
            registry=r,
        )
        self.grpc_sent = Counter(
            "grpc_server_msg_sent",
            "Response messages sent on the gRPC port.",
            grpc_labels,
            registry=r,
        )
        self.grpc_handling = Histogram(
            "grpc_server_handling_seconds",
            "Time (seconds) from the start of an RPC on the gRPC port to its answer.",
            grpc_labels,
            buckets=HANDLING_BUCKETS,
            registry=r,
        )
        http_labels = ("protocol", "route")
        self.http_started = Counter(
            "v1op_http_server_started",
            "Requests started on the HTTP port, by protocol (rest, connect, grpc-web, http) "
            "and route.",
            http_labels,
            registry=r,
        )
        self.http_handled = Counter(
            "v1op_http_server_handled",
            "Requests answered on the HTTP port, by protocol, route and the gRPC code of the "
            "answer.",
            (*http_labels, "grpc_code"),
            registry=r,
        )
        self.http_handling = Histogram(
            "v1op_http_server_handling_seconds",
            "Histogram of the time (seconds) the HTTP port took to answer.",
            http_labels,
            buckets=HANDLING_BUCKETS,
            registry=r,
        )
        # Every worker reads the same database: the newest reading is the value.
        self.operations = Gauge(
            "v1op_store_operations",
            "Operations in the store: running, done (and not deleted), deleted.",
            ("state",),
            multiprocess_mode="mostrecent",
            registry=r,
        )
        self.commit_seconds = Histogram(
            "v1op_store_commit_seconds",
            "Histogram of the time (seconds) a group commit of the store's writer took.",
            buckets=COMMIT_BUCKETS,
            registry=r,
        )
        self.commit_writes = Histogram(
            "v1op_store_commit_writes",
            "Histogram of the writes one group commit made.",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.commit_failures = Counter(
            "v1op_store_commit_failures",
            "Group commits that failed with a database error (every write of the batch "
            "answered UNAVAILABLE).",
            registry=r,
        )
        self.waits = Gauge(
            "v1op_waits_in_progress",
            "WaitOperation calls waiting for their operation to finish.",
            multiprocess_mode="livesum",
            registry=r,
        )
        self.purged = Counter(
            "v1op_retention_purged",
            "Operations retention purged (done or deleted for longer than --retention).",
            registry=r,
        )
        self.retention_failures = Counter(
            "v1op_retention_failures",
            "Retention passes that failed with a database error (the next pass tries again).",
            registry=r,
        )

    def set_operations(self, counts: Mapping[str, int]) -> None:
        for state in OPERATION_STATES:
            self.operations.labels(state).set(counts.get(state, 0))
