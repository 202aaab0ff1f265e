"""Prometheus metrics for the server, as a tiny hand-written text exposition (format 0.0.4).

Turn latencies are observed by wrapping the call recorder (`MetricsRecorder`), so every transport
that records turns feeds the same histograms without knowing about Prometheus.
"""

from __future__ import annotations

import bisect
import threading
from collections import Counter
from collections.abc import Mapping

from voxline.audio.pacing import EventLoopLagMonitor
from voxline.conversation.metrics import CallRecorder, CallReport, TurnRecord

LATENCY_BUCKETS_S: tuple[float, ...] = (0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
BARGE_IN_BUCKETS_S: tuple[float, ...] = (0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0)
STAGES = ("endpointing_ms", "stt_ms", "llm_first_token_ms", "llm_first_sentence_ms", "tts_first_audio_ms")
LOOP_LAG_WINDOW = 6000
"""Event-loop wake-ups kept for the lag figures: the last minute at one every 10 ms."""


class Histogram:
    """A cumulative-bucket histogram of seconds."""

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = tuple(sorted(buckets))
        self.counts = [0] * (len(self.buckets) + 1)  # the last slot is +Inf
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value
        self.count += 1

    def render(self, name: str, labels: str = "") -> list[str]:
        sep = "," if labels else ""
        lines = []
        running = 0
        for bound, n in zip((*self.buckets, float("inf")), self.counts, strict=True):
            running += n
            le = "+Inf" if bound == float("inf") else f"{bound:g}"
            lines.append(f'{name}_bucket{{{labels}{sep}le="{le}"}} {running}')
        suffix = f"{{{labels}}}" if labels else ""
        lines.append(f"{name}_sum{suffix} {self.total:.6f}")
        lines.append(f"{name}_count{suffix} {self.count}")
        return lines


TELEPHONY_REFUSAL_REASONS = ("allow_list", "rate", "auth", "capacity", "transactions")


class TelephonyRefusals:
    """SIP and AudioSocket traffic refused before it became a call, by (transport, reason).

    One per process (`TELEPHONY_REFUSALS`): the telephony listeners count into it where they refuse,
    and /metrics reads it, so neither needs a handle on the other. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()

    def count(self, transport: str, reason: str) -> None:
        if reason not in TELEPHONY_REFUSAL_REASONS:
            raise ValueError(f"unknown refusal reason {reason!r}")
        with self._lock:
            self._counts[(transport, reason)] += 1

    def counts(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self._counts)


TELEPHONY_REFUSALS = TelephonyRefusals()


def telephony_lines(refusals: TelephonyRefusals, capacity_refused: Mapping[str, int]) -> list[str]:
    """`voxline_telephony_refused_total{transport,reason}`. AudioSocket's capacity refusals are the
    call budget's own count for it (its listener does not count into `refusals`)."""
    counts = refusals.counts()
    if ("audiosocket", "capacity") not in counts and capacity_refused.get("audiosocket"):
        counts[("audiosocket", "capacity")] = capacity_refused["audiosocket"]
    name = "voxline_telephony_refused_total"
    out = [
        f"# HELP {name} SIP requests and AudioSocket connections refused, by transport and reason.",
        f"# TYPE {name} counter",
    ]
    for transport in ("sip", "audiosocket"):
        for reason in TELEPHONY_REFUSAL_REASONS:
            value = counts.get((transport, reason), 0)
            out.append(f'{name}{{transport="{transport}",reason="{reason}"}} {value}')
    return out


class ServerMetrics:
    """Counters and histograms of one server process. Thread-safe (recorders may be called anywhere)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls_active = 0
        self.calls_total = 0
        self.call_errors_total = 0
        self.turns_total = 0
        self.barge_ins_total = 0
        self.voice_to_voice = Histogram(LATENCY_BUCKETS_S)
        self.barge_in_stop = Histogram(BARGE_IN_BUCKETS_S)
        self.stages = {stage: Histogram(LATENCY_BUCKETS_S) for stage in STAGES}
        self.loop_lag = EventLoopLagMonitor(max_samples=LOOP_LAG_WINDOW)
        """Started with the server: how late the event loop (which paces every call's audio) wakes up."""

    def call_started(self) -> None:
        with self._lock:
            self.calls_active += 1
            self.calls_total += 1

    def call_ended(self, *, error: bool = False) -> None:
        with self._lock:
            self.calls_active -= 1
            if error:
                self.call_errors_total += 1

    def observe_turn(self, turn: TurnRecord) -> None:
        m = turn.metrics
        with self._lock:
            self.turns_total += 1
            if m.voice_to_voice_ms is not None:
                self.voice_to_voice.observe(m.voice_to_voice_ms / 1000.0)
            if m.barge_in_stop_ms is not None:
                self.barge_ins_total += 1
                self.barge_in_stop.observe(m.barge_in_stop_ms / 1000.0)
            for stage, hist in self.stages.items():
                value = getattr(m, stage)
                if value is not None:
                    hist.observe(value / 1000.0)

    def render(self) -> str:
        with self._lock:
            out: list[str] = []

            def scalar(name: str, kind: str, doc: str, value: float) -> None:
                out.extend([f"# HELP {name} {doc}", f"# TYPE {name} {kind}", f"{name} {value:g}"])

            scalar("voxline_calls_active", "gauge", "Calls in progress.", self.calls_active)
            scalar("voxline_calls_total", "counter", "Calls started.", self.calls_total)
            scalar("voxline_call_errors_total", "counter", "Calls that ended with an error.",
                   self.call_errors_total)  # fmt: skip
            scalar("voxline_turns_total", "counter", "Conversation turns finished.", self.turns_total)
            scalar(
                "voxline_barge_ins_total", "counter", "Turns the caller interrupted.", self.barge_ins_total
            )
            name = "voxline_turn_voice_to_voice_seconds"
            out += [f"# HELP {name} End of caller speech to first agent audio sent.",
                    f"# TYPE {name} histogram", *self.voice_to_voice.render(name)]  # fmt: skip
            name = "voxline_barge_in_stop_seconds"
            out += [f"# HELP {name} Caller speech onset during agent speech to agent audio stopped.",
                    f"# TYPE {name} histogram", *self.barge_in_stop.render(name)]  # fmt: skip
            name = "voxline_turn_stage_seconds"
            out += [f"# HELP {name} Latency of each pipeline stage per turn.", f"# TYPE {name} histogram"]
            for stage, hist in self.stages.items():
                out += hist.render(name, f'stage="{stage.removesuffix("_ms")}"')
            lag = self.loop_lag_ms()
            late = "Event loop wake-up lateness over the last minute"
            scalar("voxline_event_loop_lag_p99_seconds", "gauge", f"{late}, p99.", lag["p99_ms"] / 1000)
            scalar("voxline_event_loop_lag_max_seconds", "gauge", f"{late}, worst.", lag["max_ms"] / 1000)
            return "\n".join(out) + "\n"

    def loop_lag_ms(self) -> dict[str, float]:
        """p50/p99/max event-loop lag over the last minute (zeros before the monitor has run)."""
        return {k: round(v, 2) for k, v in self.loop_lag.summary().items() if k != "samples"}


def security_lines(
    *,
    records: dict[str, object],
    capacity: dict[str, object],
    refused: dict[int, int],
    purged: int,
    telephony: TelephonyRefusals = TELEPHONY_REFUSALS,
) -> str:
    """The exposition lines for record health, the call budget and refused requests."""
    out: list[str] = []

    def metric(name: str, kind: str, doc: str, samples: list[tuple[str, float]]) -> None:
        out.extend([f"# HELP {name} {doc}", f"# TYPE {name} {kind}"])
        out.extend(f"{name}{labels} {value:g}" for labels, value in samples)

    write_errors = records.get("write_errors", 0)
    metric("voxline_records_ok", "gauge", "1 while call records are being written, 0 after a failed write.",
           [("", 1.0 if records.get("ok", True) else 0.0)])  # fmt: skip
    metric("voxline_record_write_errors_total", "counter", "Call record writes that failed (disk full...).",
           [("", float(write_errors) if isinstance(write_errors, int) else 0.0)])  # fmt: skip
    metric("voxline_records_purged_total", "counter", "Call records deleted by the retention setting.",
           [("", float(purged))])  # fmt: skip
    max_calls = capacity.get("max_calls", 0)
    metric("voxline_call_capacity", "gauge", "Calls the process takes at once, every way in together.",
           [("", float(max_calls) if isinstance(max_calls, int) else 0.0)])  # fmt: skip
    over = capacity.get("refused", {})
    by_transport = sorted(over.items()) if isinstance(over, dict) else []
    metric("voxline_calls_refused_capacity_total", "counter", "Calls refused because the budget was full.",
           [(f'{{transport="{t}"}}', float(n)) for t, n in by_transport])  # fmt: skip
    metric("voxline_http_refused_total", "counter", "Requests the security gate refused, by status.",
           [(f'{{status="{code}"}}', float(n)) for code, n in sorted(refused.items())])  # fmt: skip
    budget_refused = {t: n for t, n in by_transport if isinstance(t, str) and isinstance(n, int)}
    out.extend(telephony_lines(telephony, budget_refused))
    return "\n".join(out) + "\n"


class MetricsRecorder:
    """A CallRecorder that feeds ServerMetrics and passes every event on to the real recorder."""

    def __init__(self, inner: CallRecorder, metrics: ServerMetrics) -> None:
        self.inner = inner
        self.metrics = metrics

    def call_started(self, report: CallReport) -> None:
        self.inner.call_started(report)

    def turn_finished(self, call_id: str, turn: TurnRecord) -> None:
        self.metrics.observe_turn(turn)
        self.inner.turn_finished(call_id, turn)

    def call_ended(self, report: CallReport) -> None:
        self.inner.call_ended(report)


def node_lines(load: Mapping[str, object], *, draining: bool, pool: Mapping[str, object] | None) -> str:
    """The exposition lines for the node: its load against the threshold, reserved slots,
    refusals by reason, draining, and the job pool (idle processes, jobs, crashes, RSS per job)."""
    out: list[str] = []

    def metric(name: str, kind: str, doc: str, samples: list[tuple[str, float]]) -> None:
        out.extend([f"# HELP {name} {doc}", f"# TYPE {name} {kind}"])
        out.extend(f"{name}{labels} {value:g}" for labels, value in samples)

    def number(value: object) -> float | None:
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

    def gauge(name: str, doc: str, value: object) -> None:
        got = number(value)
        if got is not None:
            metric(name, "gauge", doc, [("", got)])

    gauge(
        "voxline_node_load", "The load function's value now (0..1 of the node's capacity).", load.get("load")
    )
    gauge(
        "voxline_node_load_threshold", "New calls are refused at or above this load.", load.get("threshold")
    )
    gauge("voxline_node_capacity_calls", "Calls the node holds within its latency target.",
          load.get("capacity_calls"))  # fmt: skip
    gauge("voxline_node_calls", "Calls running (started).", load.get("calls"))
    gauge("voxline_node_calls_reserved", "Calls admitted and not started yet (reserved slots).",
          load.get("reserved"))  # fmt: skip
    gauge("voxline_node_cpu", "CPU the node's processes used over the window, 0..1 of its cores.",
          load.get("cpu"))  # fmt: skip
    gauge(
        "voxline_node_accepting",
        "1 while a new call would be admitted.",
        1.0 if load.get("accepting") else 0.0,
    )
    gauge(
        "voxline_node_draining", "1 once the node drains (SIGTERM, voxline drain).", 1.0 if draining else 0.0
    )
    refused = load.get("refused")
    if isinstance(refused, Mapping):
        samples = [(f'{{reason="{reason}"}}', got) for reason, n in sorted(refused.items())
                   if (got := number(n)) is not None]  # fmt: skip
        metric("voxline_node_refused_total", "counter", "New calls refused, by reason.", samples)
    expired = number(load.get("reservations_expired"))
    if expired is not None:
        metric("voxline_node_reservations_expired_total", "counter",
               "Reserved slots freed because their call never started.", [("", expired)])  # fmt: skip
    if pool is not None:
        gauge("voxline_pool_idle_processes", "Job processes warm and waiting for a call.", pool.get("idle"))
        gauge("voxline_pool_jobs", "Job processes running a call.", pool.get("jobs"))
        gauge("voxline_pool_spawning", "Job processes starting.", pool.get("spawning"))
        crashed = number(pool.get("crashed"))
        if crashed is not None:
            metric("voxline_pool_crashed_total", "counter", "Job processes that died during a call.",
                   [("", crashed)])  # fmt: skip
        rss = pool.get("jobs_rss_mb")
        if isinstance(rss, Mapping):
            samples = [(f'{{job="{_label(str(job))}"}}', got * 1024 * 1024) for job, mb in sorted(rss.items())
                       if (got := number(mb)) is not None]  # fmt: skip
            metric("voxline_job_rss_bytes", "gauge", "Resident memory of each job process.", samples)
    return "\n".join(out) + "\n"


def _label(value: str) -> str:
    """A Prometheus label value: backslash, quote and newline escaped, and kept short."""
    return value[:64].replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
