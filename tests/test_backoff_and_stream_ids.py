"""The shared backoff and stream-id helpers, alone."""

from __future__ import annotations

import datetime

import pytest

from lightbus_sync.backoff import Backoff, backoff_delay
from lightbus_sync.stream_ids import id_millis, id_time, looks_like_stream_id, parse_id, since_to_id


def test_backoff_doubles_up_to_its_limit_and_resets():
    delay = Backoff(0.1, 0.5)
    assert [delay.next() for _ in range(5)] == [0.1, 0.2, 0.4, 0.5, 0.5]
    delay.reset()
    assert delay.next() == 0.1
    assert Backoff(0.1, 0.0).next() == 0.1 and Backoff(0.1, 0.0).next() == 0.1  # a limit below first


def test_backoff_jitter_stays_between_half_and_the_full_delay():
    delays = [Backoff(1.0, 8.0, jitter=True) for _ in range(50)]
    for _ in range(4):
        firsts = [d.next() for d in delays]
    assert all(4.0 <= x <= 8.0 for x in firsts) and len(set(firsts)) > 1
    assert backoff_delay(1, 1.0, 60.0) == 1.0 and backoff_delay(4, 1.0, 60.0) == 8.0
    assert backoff_delay(10, 1.0, 60.0) == 60.0
    assert all(30.0 <= backoff_delay(10, 1.0, 60.0, jitter=True) <= 60.0 for _ in range(20))


def test_stream_ids_parse_and_sort():
    assert parse_id("1700000000000-5") == (1700000000000, 5) == parse_id(b"1700000000000-5")
    assert parse_id("12") == (12, 0)
    assert sorted(["10-1", "9-9", "10-0"], key=parse_id) == ["9-9", "10-0", "10-1"]
    assert id_millis(b"1700000000000-5") == 1700000000000
    assert id_time("1700000000000-0") == datetime.datetime(2023, 11, 14, 22, 13, 20, tzinfo=datetime.timezone.utc)
    assert id_time(None) is None
    assert looks_like_stream_id("1-2") and looks_like_stream_id("1") and not looks_like_stream_id("1-x")


def test_since_to_id():
    moment = datetime.datetime(2024, 5, 1, 10, tzinfo=datetime.timezone.utc)
    assert since_to_id(moment) == "1714557600000-0"
    assert since_to_id(None) is None and since_to_id("0") == "0" and since_to_id("$") == "$"
    assert since_to_id("1714557600000-3") == "1714557600000-3"
    assert since_to_id("2024-05-01T10:00:00Z", parse_text_dates=True) == "1714557600000-0"
    with pytest.raises(ValueError, match="yesterday"):
        since_to_id("yesterday", parse_text_dates=True)
    with pytest.raises(ValueError, match="2024-05-01"):
        since_to_id("2024-05-01T10:00:00Z")  # a listener's since= takes no text dates
    with pytest.raises(ValueError):
        since_to_id(12)  # type: ignore[arg-type]
