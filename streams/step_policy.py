"""The runtime's policy in one place: how steps batch, how large a row may grow, how fast a
group notices a dead worker. Each value names the assumption behind it."""

from __future__ import annotations

__all__ = [
    "BATCH_MAX",
    "DEADLINE_WINDOW_MOVE_AT",
    "DEADLINE_WINDOW_S",
    "GC_THRESHOLDS",
    "HANDOVER_WAIT_S",
    "HEARTBEAT_INTERVAL_S",
    "MAX_RECORD_BYTES",
    "MAX_STATE_BYTES",
    "REBALANCE_TIMEOUT_S",
    "SESSION_TIMEOUT_S",
]

# A batch is what one step decides before it waits for the broker once. A poll returns as
# soon as anything has arrived, so a quiet topic is answered at once, not when a batch is
# full: the bound matters only to a backlog, where each batch's waits (a few produce round
# trips, a few ms) and per-batch work are shared by more events. 1,000 drained ~7% faster
# than 500 in six alternating runs (docs/performance.md); a batch is then ~0.5 s of work,
# well within what a hand-over waits for (HANDOVER_WAIT_S).
BATCH_MAX = 1000

# The producer's request limit (Kafka's default max.request.size, which matches the broker's
# default message.max.bytes): every record the worker writes, dead letters included, fits it.
MAX_RECORD_BYTES = 1_000_000

# One citizen's state, before sealing. The door bounds every string and date, so only many
# cases, absences or records could grow a row; 256 KiB is hundreds of cases, far past any
# real citizen, and far under MAX_RECORD_BYTES with the header and the seal.
MAX_STATE_BYTES = 256 * 1024

# A worker that stops heart-beating loses its partitions after SESSION_TIMEOUT_S (Kafka's
# default is 45 s; the target for failover is 15 s). A restarted worker keeps its
# partitions without waiting for that (static membership, streams.faust_app).
SESSION_TIMEOUT_S = 10.0
# A survivor hears that a rebalance has begun only with its next heartbeat's answer: at 3 s
# (a third of the session, Kafka's rule of thumb) that added up to 3 s to a failover. A
# heartbeat a second is one small request per group per second.
HEARTBEAT_INTERVAL_S = 1.0

# The worker keeps few long-lived objects per event; generation-0 collections every 700
# allocations (CPython's default) cost it 13-18% of its CPU. A larger first threshold lets
# the short-lived objects of a batch die young without a collection per few events.
GC_THRESHOLDS = (50_000, 20, 50)

# How long a rebalance waits for the members to rejoin (Faust's default, and the door's group's).
# A member that does not rejoin within it is dropped and its partitions go to the others.
REBALANCE_TIMEOUT_S = 60.0

# How long a step's loop may take to finish and commit the batch in hand when its partitions are
# being handed over. Well under REBALANCE_TIMEOUT_S: a batch still running after it would finish
# after the next owner had started, so the worker exits instead and the batch is replayed.
HANDOVER_WAIT_S = 30.0

# How far ahead of the clock the deadline index holds deadlines in memory (streams.deadlines);
# later ones stay in their citizens' row headers, on disk, until the window moves over them.
# Assumption: deadlines fall due at local midnights, so two days hold two nights' worth, and
# moving the window when half of it is left scans the table's headers about once a day.
DEADLINE_WINDOW_S = 2 * 86_400.0
DEADLINE_WINDOW_MOVE_AT = 0.5
