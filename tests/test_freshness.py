"""How long a downloaded photo is used before its server is asked again: HTTP's rules, capped at a day."""

from __future__ import annotations

from email.utils import formatdate

from indexing.sources.freshness import MAX_FRESH, fresh_for

NOW = 1_800_000_000.0
DAY = 86400.0


def lifetimes(headers: dict[str, str], urls: int = 200) -> list[float]:
    return [fresh_for(f"https://cdn.example/{i}.jpg", headers, NOW) for i in range(urls)]


def test_max_age_is_kept_and_no_cache_or_nothing_known_means_asking_at_every_sync():
    assert all(0.75 * 600 <= t <= 600 for t in lifetimes({"cache-control": "public, max-age=600"}))
    assert lifetimes({"cache-control": "no-cache, max-age=600"}) == [0.0] * 200
    assert lifetimes({"cache-control": "max-age=soon"}) == [0.0] * 200
    assert lifetimes({"etag": '"abc"'}) == [0.0] * 200  # no date to go by


def test_expires_counts_from_the_servers_own_date_and_a_bad_one_is_stale():
    headers = {"date": formatdate(NOW - 5000, usegmt=True), "expires": formatdate(NOW - 5000 + 3600, usegmt=True)}
    assert all(0.75 * 3600 <= t <= 3600 for t in lifetimes(headers))
    assert lifetimes({"expires": "0"}) == [0.0] * 200


def test_a_photo_last_changed_long_ago_is_fresh_for_a_tenth_of_its_age_and_at_most_a_day_spread_by_url():
    ten_hours = {"last-modified": formatdate(NOW - 10 * 3600, usegmt=True)}
    assert all(0.75 * 3600 <= t <= 3600 for t in lifetimes(ten_hours))
    year = lifetimes({"last-modified": formatdate(NOW - 365 * DAY, usegmt=True)})
    assert all(0.75 * MAX_FRESH <= t <= MAX_FRESH for t in year)
    assert max(year) - min(year) > 0.2 * MAX_FRESH  # not all due in the same sync
    assert year == lifetimes({"last-modified": formatdate(NOW - 365 * DAY, usegmt=True)})  # fixed per URL
