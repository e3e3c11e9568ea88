"""The FIX codec (tag=value, BodyLength, CheckSum, framing) and the one mapping table."""

from __future__ import annotations

import pytest
import simplefix
from hypothesis import given, settings
from hypothesis import strategies as st
from simplefix.data import RAW_DATA

from oms.errors import DuplicateClientOrderId, InvalidTransition, OrderNotFound, ValidationError
from oms.fix import is_fix_url
from oms.fix.codec import FrameReader, checksum, decode, encode, parse_pairs
from oms.fix.gateway import FixGateway
from oms.fix.mapping import (
    CXL_REJ_RESPONSE_TO,
    EXEC_TYPE,
    ORD_STATUS,
    SIDE,
    TABLE,
    cxl_rej_reason,
    error_code,
    ord_rej_reason,
    to_markdown,
)
from oms.lifecycle import Action, Status

HEADER = [(49, "CLIENT"), (56, "OMS"), (34, "1"), (52, "20260105-09:15:00.000")]


def test_an_encoded_message_decodes_to_the_same_fields() -> None:
    data = encode("D", HEADER, [(11, "A-1"), (55, "INFY"), (44, "1500.25")])
    msg = decode(data)
    assert msg.msg_type == "D" and msg[11] == "A-1" and msg[44] == "1500.25" and msg[49] == "CLIENT"
    assert [t for t, _ in msg.fields][:3] == [8, 9, 35] and msg.fields[-1][0] == 10
    assert parse_pairs(data) == msg.fields


def test_body_length_and_checksum_are_those_fix_defines() -> None:
    data = encode("0", HEADER, [])
    body_start = data.index(b"\x01", data.index(b"9=")) + 1
    trailer = data.rindex(b"10=")
    assert int(decode(data)[9]) == trailer - body_start
    assert int(decode(data)[10]) == checksum(data[:trailer]) == sum(data[:trailer]) % 256
    assert data.endswith(b"\x01") and len(decode(data)[10]) == 3


def test_our_encoding_is_read_by_simplefix_and_theirs_by_ours() -> None:
    parser = simplefix.FixParser()
    parser.append_buffer(encode("D", HEADER, [(11, "X")]))
    theirs = parser.get_message()
    assert theirs is not None and theirs.get(11) == b"X"
    m = simplefix.FixMessage()
    m.append_pair(8, "FIX.4.4", header=True)
    m.append_pair(35, "8", header=True)
    m.append_pair(37, "7")
    assert FrameReader().feed(m.encode()) == [m.encode()]


def test_the_frame_reader_joins_split_frames_and_splits_joined_ones() -> None:
    a, b = encode("0", HEADER, []), encode("1", HEADER, [(112, "T")])
    reader = FrameReader()
    stream = a + b
    got = []
    for i in range(len(stream)):
        got += reader.feed(stream[i : i + 1])
    assert got == [a, b]
    assert FrameReader().feed(b"junk" + a + b) == [a, b]


def test_a_frame_with_a_bad_checksum_is_dropped_and_the_next_one_read() -> None:
    good = encode("0", HEADER, [])
    bad = good[:-4] + (b"%03d" % ((int(good[-4:-1]) + 1) % 256)) + b"\x01"
    reader = FrameReader()
    assert reader.feed(bad + good) == [good]
    assert reader.garbled == 1


@pytest.mark.parametrize("delta", [-3, 5])
def test_a_frame_with_a_wrong_body_length_is_dropped_and_the_next_one_read(delta: int) -> None:
    good = encode("1", HEADER, [(112, "HELLO")])
    length = int(decode(good)[9])
    bad = good.replace(b"9=%d\x01" % length, b"9=%d\x01" % (length + delta), 1)
    reader = FrameReader()
    assert reader.feed(bad + good + good) == [good, good]
    assert reader.garbled == 1


def test_the_mapping_table_follows_the_design() -> None:
    assert SIDE == {"BUY": "1", "SELL": "2"}
    assert EXEC_TYPE[Action.CREATE.value] == "0" and EXEC_TYPE[Action.MODIFY.value] == "5"
    assert EXEC_TYPE[Action.CANCEL.value] == "4" and EXEC_TYPE[Action.EXECUTE.value] == "F"
    assert EXEC_TYPE["status"] == "I" and EXEC_TYPE["rejected"] == "8"
    assert ORD_STATUS[Status.MODIFIED.value] == "0", "FIX 4.4 no longer uses 39=5"
    assert {ORD_STATUS[s.value] for s in (Status.NEW, Status.CANCELLED, Status.EXECUTED)} == {"0", "4", "2"}
    assert CXL_REJ_RESPONSE_TO == {"cancel": "1", "modify": "2"}
    assert ord_rej_reason(DuplicateClientOrderId("A")) == "6"
    assert ord_rej_reason(ValidationError("must be positive", "quantity")) == "13"
    assert ord_rej_reason(ValidationError("bad", "symbol")) == "99"
    assert cxl_rej_reason(InvalidTransition("cancel", "EXECUTED", 1)) == "0"
    assert cxl_rej_reason(OrderNotFound(9)) == "1"
    assert cxl_rej_reason(ValidationError("bad", "price")) == "99"
    assert error_code("cxl_rej_reason", "1") == "ORDER_NOT_FOUND" and error_code("ord_rej_reason", "99") is None


def test_the_markdown_rendering_has_every_row_of_the_table() -> None:
    text = to_markdown()
    for row in TABLE:
        assert (f"{row.tag}={row.value}" if row.value else f"| {row.tag} |") in text
    assert "FIX 4.4 no longer uses 39=5" in text


def test_fix_urls_are_recognized_and_parsed() -> None:
    assert is_fix_url("fix://127.0.0.1:9878?sender=A&target=B") and not is_fix_url("http://127.0.0.1:8000")
    with pytest.raises(ValueError, match="sender"):
        FixGateway.from_url("fix://127.0.0.1:9878")
    with pytest.raises(ValueError, match="fix://"):
        FixGateway.from_url("http://127.0.0.1:9878?sender=A&target=B")


RAW_TAGS = {tag for pair in RAW_DATA for tag in pair}
"""Raw-data length and value tags: the direct codec hands them to simplefix."""


@settings(max_examples=300, deadline=None)
@given(
    msg_type=st.sampled_from(["D", "G", "F", "8", "9", "0", "A"]),
    fields=st.lists(
        st.tuples(
            st.integers(min_value=11, max_value=9999).filter(
                lambda t: t != 35 and t not in {x for p in RAW_DATA for x in p}
            ),
            st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=12),
        ),
        max_size=12,
    ),
)
def test_the_direct_codec_is_byte_for_byte_simplefix(msg_type: str, fields: list[tuple[int, str]]) -> None:
    """The fast path of encode/decode against simplefix itself, the reference it stands in for."""
    from oms.fix.codec import _decode_direct, _decode_simplefix, _encode_simplefix

    header = [(49, "OMS"), (56, "CLIENT"), (34, "7"), (52, "20260105-09:15:00.000")]
    data = encode(msg_type, header, fields)
    assert data == _encode_simplefix(msg_type, [*header, *fields], "FIX.4.4")
    direct = _decode_direct(data)
    assert direct is not None and direct == _decode_simplefix(data)
