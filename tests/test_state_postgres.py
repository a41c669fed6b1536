"""The bot's state in a real PostgreSQL server: the same behaviour as SQLite, shared between bot replicas."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from bot.i18n import language
from bot.state import Store
from bot.state_postgres import PostgresStore
from bot.state_sqlite import SqliteStore
from tests.test_bot import SHOW_MORE, USER, callback_data, keyboard_message, user_photo


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path) -> Store:
    if request.param == "sqlite":
        opened: Store = SqliteStore(tmp_path / "state")
    else:
        opened = PostgresStore(request.getfixturevalue("postgres_url"))
        for table in ("queries", "looks", "look_vectors", "uploads", "feedback", "served", "errors", "inbox"):
            opened.execute(f"TRUNCATE {table}")
    yield opened
    opened.close()


def test_queries_looks_and_uploads_round_trip_on_both_engines(store):
    vector = np.arange(2048, dtype=np.float32)
    query = store.new_query(2**40, vector, {"gender": ["Women"]}, ["9"], ["1", "2"], look=None, item=None)
    store.extend_shown(query, ["3"])
    again = store.query(query.id)
    assert again is not None and again.shown == ["1", "2", "3"] and again.exclude == ["9"]
    assert np.array_equal(again.vector, vector) and again.filters == {"gender": ["Women"]}
    item = {"box": [1, 2, 3, 4], "kind": "top", "prominence": 0.5, "cue": "person", "mask": "iVBOR"}
    look = store.new_look("file-1", (1280, 960), [item], 0, False, {})
    assert store.look(look.id).file_id == "file-1" and store.look(look.id).size == (1280, 960)
    assert store.look(look.id).items == [item] and store.look(look.id).boxes == [[1, 2, 3, 4]]
    store.remember_vector(look.id, 0, vector)
    store.remember_vector(look.id, 0, vector + 1)  # replaced, not duplicated
    assert np.array_equal(store.look_vector(look.id, 0), vector + 1)
    store.remember_upload("photo-a", "id-1")
    store.remember_upload("photo-a", "id-2")
    assert store.file_id("photo-a") == "id-2"
    store.forget_uploads(["photo-a"])
    assert store.file_id("photo-a") is None and store.query("nope") is None


def test_queries_expire_after_their_ttl(store):
    query = store.new_query(1, np.zeros(4, np.float32), {}, [], ["1"])
    store.ttl = 0
    time.sleep(0.01)
    assert store.query(query.id) is None


def test_a_second_replica_answers_the_first_ones_buttons_and_reuses_its_uploads(fake, start_bot, postgres_url,
                                                                                tmp_path):
    PostgresStore(postgres_url).execute("TRUNCATE served")
    first = start_bot(state_url=postgres_url, state_dir=tmp_path / "a")
    fake.send_photo(USER, user_photo())
    fake.wait_for("sendMediaGroup", chat_id=USER)
    message = keyboard_message(fake, USER)
    first.stop()  # replica A is gone; B has its own (empty) state folder and the shared PostgreSQL

    second = start_bot(state_url=postgres_url, state_dir=tmp_path / "b")
    fake.press(USER, message, callback_data(message, SHOW_MORE))  # "Show 5 more" on A's album
    page2 = fake.wait_for("sendMediaGroup", count=2, chat_id=USER)[1]
    assert len(page2.album()) == 5
    fake.send_photo(USER + 1, user_photo())
    again = fake.wait_for("sendMediaGroup", chat_id=USER + 1)[0]
    assert not again.files  # B sent A's uploads by their file_ids
    deadline = time.monotonic() + 10  # a photo is counted just after its buttons message is sent
    while second.services.store.stats()["queries"] < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert second.services.store.stats()["queries"] == 2  # A's photo and B's, counted in one place
    report = asyncio.run(second.services.stats.report(language("en")))
    assert "Queries served (all replicas): 2" in report
    assert not (tmp_path / "b" / "state.sqlite3").exists()


def test_a_photo_query_keeps_its_vector_once_and_an_older_bot_s_vectors_still_read(store):
    vector = np.linspace(-1, 1, 2048, dtype=np.float32)
    look = store.new_look("file-2", (640, 480), [], None, False, {})
    query = store.new_query(5, vector, {}, [], ["1"], look=look.id, item=-1)
    assert store.execute("SELECT length(vector) FROM queries WHERE id = ?", (query.id,)).fetchone()[0] == 0
    assert np.abs(store.query(query.id).vector - vector).max() < 1e-3  # half precision, from the look's row
    assert np.array_equal(store.look_vector(look.id, -1), store.query(query.id).vector)
    # A row as a bot from before half precision wrote it: plain float32 bytes.
    store.execute("UPDATE look_vectors SET vector = ? WHERE look = ?", (vector.tobytes(), look.id))
    assert np.array_equal(store.query(query.id).vector, vector)


def test_prune_deletes_what_expired_and_what_is_past_the_retention(store):
    now = time.time()
    kept = store.new_query(1, np.ones(8, np.float32), {}, [], ["1"])
    old = store.new_query(1, np.ones(8, np.float32), {}, [], ["2"])
    store.execute("UPDATE queries SET created = ? WHERE id = ?", (now - store.ttl - 5, old.id))
    store.save_product(3, "p", "10.00 INR", True)
    (saved,) = store.saved_after(0, 10)
    from bot.state_users import Transition

    store.execute("DELETE FROM alerts")
    store.apply_transitions([Transition(saved, "9.00 INR", True, "price")])
    (alert,) = store.waiting_alerts(10)
    store.execute("UPDATE alerts SET sent = ? WHERE id = ?", (now - store.retention - 5, alert.id))
    store.record_feedback({"vote": "up"})
    deleted = store.prune(now + 1)
    assert deleted["queries"] == 1 and deleted["alerts"] == 1
    assert store.query(kept.id) is not None and store.query(old.id) is None
    assert store.prune(now + store.retention + 10)["feedback"] == 1  # feedback is kept RETENTION_DAYS


def test_updates_are_kept_once_taken_over_from_a_silent_owner_and_dropped_after_three_tries(store):
    assert store.keep_update(7, '{"update_id": 7}', "a") and not store.keep_update(7, '{"update_id": 7}', "b")
    store.keep_update(8, '{"update_id": 8}', "a")
    store.mark_answered(8)
    alive = store.claim_orphans("b", 30.0, lambda owner: False, 3)
    assert alive.bodies == [] and alive.dropped == []  # "a" spoke a moment ago
    assert store.claim_orphans("b", 30.0, lambda owner: owner == "a", 3).bodies == ['{"update_id": 7}']
    assert store.claim_orphans("c", 30.0, lambda owner: False, 3).bodies == []  # "b" holds it now
    store.execute("UPDATE inbox SET seen = seen - 60")
    store.touch_updates("a")  # a process that lost it saying it is alive changes nothing
    assert store.claim_orphans("c", 30.0, lambda owner: False, 3).bodies == ['{"update_id": 7}']  # third try
    gone = store.claim_orphans("d", 30.0, lambda owner: True, 3)
    assert gone.bodies == [] and gone.dropped == [7]
    assert store.claim_orphans("e", 30.0, lambda owner: True, 3).dropped == []
    assert store.prune(time.time() + 2 * 86400)["updates"] == 2  # answered (or dropped) a day ago: forgotten


def test_a_photo_sent_while_postgresql_is_down_is_told_to_try_again_and_then_answered(fake, start_bot):
    from testbed.postgres import Postgres, binaries

    if binaries() is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    server = Postgres(binaries()).start()
    try:
        start_bot(state_url=server.url)
        fake.send_photo(USER, user_photo())
        fake.wait_for("sendMediaGroup", chat_id=USER)
        server.down()
        fake.send_photo(USER + 1, user_photo())
        told = fake.wait_for("sendMessage", chat_id=USER + 1)[0]
        assert "try again" in told.text and not fake.seen("sendMediaGroup", chat_id=USER + 1)
        server.up()
        fake.send_photo(USER + 1, user_photo())
        assert len(fake.wait_for("sendMediaGroup", chat_id=USER + 1)[0].album()) == 5
    finally:
        server.stop()
