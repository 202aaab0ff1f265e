"""The inbound jitter buffer: order, loss, duplicates, wrap, SSRC changes, silence in real time."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from voxline.telephony.rtp.jitter import JitterBuffer, Playout
from voxline.telephony.rtp.packet import RtpPacket
from voxline.telephony.rtp.stats import RtpStats

FRAME = 160


def packet(
    seq: int, ssrc: int = 1, ts: int | None = None, base_seq: int = 0, base_ts: int = 1000
) -> RtpPacket:
    """A 20 ms packet whose payload names its sequence number, so the output order is visible."""
    seq &= 0xFFFF
    if ts is None:
        ts = (base_ts + ((seq - base_seq) & 0xFFFF) * FRAME) & 0xFFFFFFFF
    return RtpPacket(0, seq, ts, ssrc, seq.to_bytes(2, "big") * (FRAME // 2))


def label(item: Playout) -> int | str:
    if item.payload is None:
        return f"{'lost' if item.lost else 'silence'}:{item.samples}"
    return int.from_bytes(item.payload[:2], "big")


def buffer(**kwargs: float) -> tuple[JitterBuffer, RtpStats]:
    stats = RtpStats()
    return JitterBuffer(stats, max_wait_s=0.06, **kwargs), stats  # type: ignore[arg-type]


def feed(jb: JitterBuffer, seqs: list[int], start: float = 0.0, **kw: int) -> list[int | str]:
    out: list[int | str] = []
    now = start
    for seq in seqs:
        jb.push(packet(seq, **kw), FRAME, now)
        out += [label(p) for p in jb.pop(now)]
        now += 0.02
    return out


def test_in_order_packets_leave_at_once() -> None:
    jb, stats = buffer()
    assert feed(jb, [0, 1, 2, 3]) == [0, 1, 2, 3]
    assert stats.lost == stats.late == stats.duplicates == 0


def test_reordered_packets_come_out_in_order_without_loss() -> None:
    jb, stats = buffer()
    assert feed(jb, [0, 2, 1, 4, 3, 5]) == [0, 1, 2, 3, 4, 5]
    assert stats.lost == 0


def test_duplicates_are_dropped_and_counted() -> None:
    jb, stats = buffer()
    assert feed(jb, [0, 1, 1, 2, 0, 3, 3]) == [0, 1, 2, 3]
    assert stats.duplicates == 3


def test_held_duplicate_counts_too() -> None:
    jb, stats = buffer()
    assert feed(jb, [0, 2, 2, 1]) == [0, 1, 2]
    assert stats.duplicates == 1


def test_lost_packet_is_concealed_after_the_wait() -> None:
    jb, stats = buffer()
    assert feed(jb, [0, 1, 3]) == [0, 1]  # 2 missing: 3 waits
    assert jb.next_deadline() == 0.04 + 0.06
    assert [label(p) for p in jb.pop(0.099)] == []
    assert [label(p) for p in jb.pop(0.1)] == [f"lost:{FRAME}", 3]
    assert stats.lost == 1
    # 2 turning up now is too late
    jb.push(packet(2), FRAME, 0.11)
    assert jb.pop(0.11) == []
    assert stats.late == 1


def test_burst_loss_conceals_the_whole_gap_by_timestamp() -> None:
    jb, stats = buffer()
    feed(jb, [10, 11], base_seq=10)
    jb.push(packet(15, base_seq=10), FRAME, 0.05)
    assert [label(p) for p in jb.pop(0.2)] == [f"lost:{3 * FRAME}", 15]
    assert stats.lost == 3


def test_sequence_wrap_keeps_order() -> None:
    jb, stats = buffer()
    seqs = [65533, 65534, 0, 65535, 1, 2]
    assert feed(jb, seqs, base_seq=65533) == [65533, 65534, 65535, 0, 1, 2]
    assert stats.lost == stats.late == 0


def test_timestamp_wrap_conceals_the_right_length() -> None:
    jb, _stats = buffer()
    base_ts = 2**32 - 200
    feed(jb, [0, 1], base_ts=base_ts)
    jb.push(packet(3, base_ts=base_ts), FRAME, 0.06)
    assert [label(p) for p in jb.pop(0.2)] == [f"lost:{FRAME}", 3]


def test_ssrc_change_starts_a_new_stream_after_two_packets() -> None:
    jb, stats = buffer()
    assert feed(jb, [100, 101, 102], ssrc=1, base_seq=100) == [100, 101, 102]
    # New SSRC with unrelated numbering, arriving in the middle of the live stream.
    out = feed(jb, [5000, 5001, 5002], start=0.06, ssrc=2, base_seq=5000, base_ts=777)
    assert out == [5000, 5001, 5002]
    assert stats.ssrc_changes == 1
    assert stats.late == stats.lost == 0
    assert jb.ssrc == 2


def test_one_stray_packet_with_another_ssrc_does_not_reset_the_stream() -> None:
    jb, stats = buffer()
    feed(jb, [0, 1], ssrc=1)
    jb.push(packet(9000, ssrc=99), FRAME, 0.03)
    assert feed(jb, [2, 3], start=0.04, ssrc=1) == [2, 3]
    assert stats.ssrc_changes == 0 and jb.ssrc == 1


def test_new_ssrc_after_the_old_stream_went_quiet_is_taken_at_once() -> None:
    jb, stats = buffer()
    feed(jb, [0, 1], ssrc=1)
    jb.pop(1.0)
    assert feed(jb, [40], start=1.0, ssrc=2, base_seq=40) == [40]
    assert stats.ssrc_changes == 1


def test_sequence_restart_is_believed_on_the_second_packet() -> None:
    jb, stats = buffer()
    feed(jb, [0, 1, 2])
    # A jump of 20000 is first taken for a stray packet, then believed when the next one follows it.
    out = feed(jb, [20000, 20001, 20002], start=0.06, base_seq=20000)
    assert out == [20001, 20002]
    assert stats.late == 1 and stats.lost == 0 and stats.ssrc_changes == 0


def test_silence_is_released_in_real_time_when_the_peer_sends_nothing() -> None:
    jb, _ = buffer()
    feed(jb, [0])  # 20 ms of audio delivered at t=0: it runs out at 0.02
    assert jb.pop(0.079) == []
    assert [label(p) for p in jb.pop(0.08)] == [f"silence:{FRAME}"]
    assert [label(p) for p in jb.pop(0.141)] == [f"silence:{FRAME}"] * 3
    # The stream resumes (after silence suppression): packets flow again, no double counting.
    jb.push(packet(1, ts=1000 + 10 * FRAME), FRAME, 0.15)
    assert [label(p) for p in jb.pop(0.15)] == [1]


def test_loss_after_silence_fill_is_not_counted_twice() -> None:
    jb, stats = buffer()
    feed(jb, [0])
    filled = jb.pop(0.2)  # 0.02 .. 0.14 filled: 7 frames
    assert sum(p.samples for p in filled) == 7 * FRAME
    jb.push(packet(10), FRAME, 0.2)  # 9 packets (180 ms) lost, 140 ms already filled
    out = jb.pop(0.3)
    assert [label(p) for p in out] == [f"lost:{2 * FRAME}", 10]
    assert stats.lost == 9


def test_reset_forgets_everything() -> None:
    jb, _ = buffer()
    feed(jb, [0, 2])
    jb.reset()
    assert jb.ssrc is None and jb.held == 0 and jb.next_deadline() is None
    assert feed(jb, [500], base_seq=500) == [500]


def test_capacity_bounds_what_is_held() -> None:
    stats = RtpStats()
    jb = JitterBuffer(stats, max_wait_s=10.0, capacity=4)
    jb.push(packet(0), FRAME, 0.0)
    jb.pop(0.0)
    for seq in range(2, 8):
        jb.push(packet(seq), FRAME, 0.0)
    assert jb.held <= 4
    assert stats.lost == 1


@settings(max_examples=200, deadline=None)
@given(
    order=st.permutations(list(range(1, 30))),
    drop=st.sets(st.integers(1, 28), max_size=8),
    dup=st.sets(st.integers(0, 29), max_size=5),
    start=st.integers(0, 0xFFFF),
)
def test_any_arrival_order_yields_increasing_output_and_exact_accounting(
    order: list[int], drop: set[int], dup: set[int], start: int
) -> None:
    # The first packet starts the stream (anything older is late by definition); 29 always arrives.
    jb, stats = buffer()
    arrivals = [0] + [i for i in order if i not in drop] + sorted(dup - drop)
    out: list[Playout] = []
    for n, i in enumerate(arrivals):
        jb.push(packet(start + i, base_seq=start), FRAME, n * 0.001)
        out += jb.pop(n * 0.001)
    out += jb.pop(10.0)
    audio = [(label(p) - start) & 0xFFFF for p in out if p.payload is not None]  # type: ignore[operator]
    assert audio == sorted(audio)
    assert len(set(audio)) == len(audio)
    assert audio[0] == 0
    received = 30 - len(drop)
    assert len(audio) + stats.late + stats.duplicates == received + len(dup - drop)
    total_samples = sum(p.samples for p in out if p.lost or p.payload is not None)
    assert total_samples == (audio[-1] + 1) * FRAME
