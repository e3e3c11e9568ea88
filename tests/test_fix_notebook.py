"""What the FIX notebook (notebooks/fix_face.ipynb) relies on, on real parts: the FIX
gateway's journal (bounded, per order, raw and decoded), the injectable time source that
makes an acceptor on the simulated clock stamp its messages from it (so stored outputs are
the same on every run), and the notebook being registered where notebooks are listed."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nbformat
import pytest
from fix_support import RawClient, new_order
from test_notebook_hygiene import regen

import oms
from oms.engine import Engine
from oms.fix import journal
from oms.fix.acceptor import AcceptorThread, FixAcceptor
from oms.fix.codec import sending_time
from oms.fix.gateway import FixGateway
from oms.fix.state import SqliteSessionStore
from oms.fix.tags import TAG_NAMES, tag_name, value_name

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "fix_face.ipynb"


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    with oms.open(tmp_path / "book.duckdb", clock=oms.SimulatedClock()) as e:
        yield e


def run_acceptor(engine: Engine, *, simulated: bool = True) -> AcceptorThread:
    acceptor = FixAcceptor(engine, sender="OMS", targets=["CLIENT"], store=SqliteSessionStore(),
                           timestamps=engine.clock if simulated else None)  # fmt: skip
    runner = AcceptorThread(acceptor)
    runner.start()
    return runner


def connect(runner: AcceptorThread, engine: Engine, **kwargs: object) -> FixGateway:
    url = f"fix://127.0.0.1:{runner.acceptor.port}?sender=CLIENT&target=OMS"
    gateway = oms.connect(url, clock=engine.clock, clordid_prefix="NB", **kwargs)
    assert isinstance(gateway, FixGateway)
    return gateway


def one_order(engine: Engine) -> list[str]:
    """The notebook's scenario: enter, modify, fill on the venue; order 1's messages as text."""
    runner = run_acceptor(engine)
    try:
        with connect(runner, engine) as fix:
            fix.create(symbol="INFY", side="BUY", quantity=100, price="1500.25", client_order_id="FIX-1")
            fix.modify(1, price="1499.5")
            engine.execute(1)
            fix.wait_for(1, "EXECUTED")
            return [r.text for r in fix.messages(1)]
    finally:
        runner.stop()


# ---- the time source -----------------------------------------------------------------------


def test_an_acceptor_given_the_engines_clock_stamps_its_messages_from_the_simulated_clock(engine: Engine) -> None:
    texts = one_order(engine)
    stamps = [re.search(r"\|52=([^|]+)\|", t).group(1) for t in texts]  # type: ignore[union-attr]
    assert all(s.startswith("20260105-09:15:") for s in stamps), stamps
    assert stamps == sorted(stamps)  # one clock for both sides: the journal reads in time order
    fill = texts[-1]
    assert "|150=F|" in fill and "|60=20260105-09:15:10.000|" in fill  # TransactTime = the fill's event time
    assert engine.events(1)[-1].at == datetime(2026, 1, 5, 9, 15, 10, tzinfo=UTC)


def test_the_notebooks_fix_messages_are_the_same_on_every_run(tmp_path: Path) -> None:
    runs = []
    for n in (1, 2):
        with oms.open(tmp_path / f"run{n}.duckdb", clock=oms.SimulatedClock()) as engine:
            runs.append(one_order(engine))
    assert runs[0] == runs[1]
    assert len(runs[0]) == 5


def test_without_a_time_source_the_acceptor_stamps_the_wall_clock_as_before(engine: Engine) -> None:
    runner = run_acceptor(engine, simulated=False)
    client = RawClient(runner.acceptor.port)
    try:
        logon = client.logon(reset=True)
        sent = datetime.strptime(logon[52], "%Y%m%d-%H:%M:%S.%f").replace(tzinfo=UTC)
        assert abs(datetime.now(UTC) - sent) < timedelta(minutes=1)
    finally:
        client.close()
        runner.stop()


def test_a_resent_message_keeps_its_original_sending_time_and_is_restamped_from_the_clock(engine: Engine) -> None:
    runner = run_acceptor(engine)
    client = RawClient(runner.acceptor.port)
    try:
        client.logon(reset=True)
        client.send("D", new_order("R-1"))
        report = client.expect("8")
        client.send("2", [(7, report[34]), (16, "0")])
        again = client.expect("8")
        assert again[43] == "Y" and again[122] == report[52]
        assert again[52] > report[52] and again[52].startswith("20260105-09:15:")
    finally:
        client.close()
        runner.stop()


# ---- the journal ---------------------------------------------------------------------------


def test_the_journal_holds_each_orders_messages_and_not_a_refused_create_naming_its_clordid(engine: Engine) -> None:
    runner = run_acceptor(engine)
    try:
        with connect(runner, engine) as fix:
            fix.create(symbol="INFY", side="BUY", quantity=100, price="1500.25", client_order_id="J-1")
            fix.create(symbol="TCS", side="SELL", quantity=5, price="3890.5")
            with pytest.raises(oms.DuplicateClientOrderId):
                fix.create(symbol="INFY", side="BUY", quantity=1, price="1", client_order_id="J-1")
            fix.cancel(2)
            kinds = {oid: [(r.direction, r.msg_type) for r in fix.messages(oid)] for oid in (1, 2)}
            everything = fix.messages()
    finally:
        runner.stop()
    assert kinds[1] == [("sent", "D"), ("received", "8")]
    assert kinds[2] == [("sent", "D"), ("received", "8"), ("sent", "F"), ("received", "8")]
    assert [r.msg_type for r in everything][:2] == ["A", "A"]  # the Logons: the session's, no order's
    assert [r.n for r in everything] == list(range(1, len(everything) + 1))
    rejected = [r for r in everything if r.get(150) == "8"]
    assert len(rejected) == 1 and rejected[0].get(11) == "J-1" and rejected[0].get(103) == "6"


def test_the_journal_is_bounded_and_keeps_the_newest_messages(engine: Engine) -> None:
    runner = run_acceptor(engine)
    try:
        with connect(runner, engine, journal_size=3) as fix:
            for n in range(4):
                fix.create(symbol="INFY", side="BUY", quantity=10 + n, price="1500")
            kept = fix.messages()
    finally:
        runner.stop()
    assert len(kept) == 3
    assert [r.n for r in kept] == [8, 9, 10]  # 2 Logons + 4 x (D, 8)


def test_raw_text_uses_a_bar_for_soh_and_the_decoded_frames_name_every_tag(engine: Engine) -> None:
    runner = run_acceptor(engine)
    try:
        with connect(runner, engine) as fix:
            fix.create(symbol="INFY", side="BUY", quantity=100, price="1500.25", client_order_id="D-1")
            records = fix.messages(1)
    finally:
        runner.stop()
    sent, report = records
    assert "\x01" not in sent.text and sent.text.startswith("8=FIX.4.4|9=") and re.search(r"\|10=\d{3}$", sent.text)
    assert sent.raw.replace(b"\x01", b"|").decode().rstrip("|") == sent.text
    decoded = journal.decoded_frame(report)
    assert "Tag " not in " ".join(decoded["name"])  # every tag the face sends has its FIX 4.4 name
    named = dict(zip(decoded["name"], decoded["meaning"], strict=True))
    assert named["ExecType"] == "New" and named["OrdStatus"] == "New" and named["Side"] == "Buy"
    summary = journal.summary_frame(records)
    assert summary["MsgType (35)"].tolist() == ["D NewOrderSingle", "8 ExecutionReport"]
    assert summary["ClOrdID (11)"].tolist() == ["D-1", "D-1"]
    assert journal.raw_text(records).splitlines()[0] == "#3 → sent D NewOrderSingle"


def test_tag_names_come_from_the_mapping_table_where_it_has_them() -> None:
    from oms.fix.mapping import TABLE

    for row in TABLE:
        if row.kind == "field":
            assert TAG_NAMES[row.tag] == row.name
        elif row.kind == "exec_type":
            assert value_name(150, row.value) == row.name
    assert tag_name(52) == "SendingTime" and tag_name(99999) == "Tag 99999"
    assert value_name(35, "D") == "NewOrderSingle" and value_name(35, "8") == "ExecutionReport"


def test_each_audit_event_stands_beside_the_fix_report_of_it(engine: Engine) -> None:
    runner = run_acceptor(engine)
    try:
        with connect(runner, engine) as fix:
            fix.create(symbol="INFY", side="BUY", quantity=100, price="1500.25")
            fix.cancel(1)
            with pytest.raises(oms.InvalidTransition):
                fix.cancel(1)  # an OrderCancelReject; the venue logs the refusal
            frame = journal.beside_audit(fix.messages(1), engine.events(1))
    finally:
        runner.stop()
    assert frame["action"].tolist() == ["create", "cancel", "cancel"]
    assert frame["accepted"].tolist() == [True, True, False]
    assert frame["ExecID (17)"].tolist() == ["1-1", "1-2", ""]  # a refused command has no report
    assert frame["FIX request"].tolist() == ["#3 D NewOrderSingle", "#5 F OrderCancelRequest", ""]
    assert frame["report"].tolist() == ["#4", "#6", ""]
    stamps = [sending_time(at) for at in frame["at"]]
    assert frame["TransactTime (60)"].tolist() == [*stamps[:2], ""]  # the report's time is the event's


# ---- the notebook is registered --------------------------------------------------------------


def test_the_fix_notebook_is_regenerated_checked_and_listed_in_the_readme() -> None:
    assert NOTEBOOK in regen.default_paths()  # regenerated, hygiene-checked and run by strict nbval
    assert regen.pair_path(NOTEBOOK).exists()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "`notebooks/fix_face.ipynb`" in readme
    nb = nbformat.read(NOTEBOOK, as_version=4)
    outputs = json.dumps([c.get("outputs", []) for c in nb.cells], ensure_ascii=False)
    assert "FIX 4.4 session CLIENT → OMS logged on" in outputs
    assert not re.search(r"127\.0\.0\.1|localhost|fix://", outputs)  # no port in what nbval compares
