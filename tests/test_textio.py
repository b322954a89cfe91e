"""textio readers and writers in process: line numbers, per-line decoding, CSV quoting, atomic output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prism_cli.errors import InputError
from prism_cli.textio import Source, decode, detect_format, open_output, open_sources, read_document


def records(path: Path, fmt: str | None = None, limit: int = 1 << 20, **kw: str) -> list:
    (src,) = open_sources([str(path)], fmt, line_limit=limit)
    return list(src.records(kw.get("field"), kw.get("column")))


def test_decode_names_the_line_of_bad_bytes():
    with pytest.raises(InputError, match=r"x:2: invalid UTF-8"):
        decode(b"ok\n\xff\n", "x")
    with pytest.raises(InputError, match=r"x:3: binary data"):
        decode(b"a\nb\nc\0", "x")
    assert decode(b"\xef\xbb\xbfhi", "x") == "hi"


def test_read_document_rejects_empty_and_missing(tmp_path):
    (tmp_path / "e.txt").write_text("  \n")
    with pytest.raises(InputError, match="empty input"):
        read_document(str(tmp_path / "e.txt"))
    with pytest.raises(InputError, match="no such file"):
        read_document(str(tmp_path / "nope.txt"))
    assert read_document(None, "hello") == ("hello", "--text")


def test_detect_format():
    assert detect_format("a.JSONL", None) == "jsonl"
    assert detect_format("a.ndjson", None) == "jsonl"
    assert detect_format("a.csv", None) == "csv"
    assert detect_format("a.txt", None) == "txt"
    assert detect_format("a.log", None) is None  # sniffed from the first line
    assert detect_format("-", None) is None
    assert detect_format("a.txt", "csv") == "csv"
    with pytest.raises(InputError, match="--format"):
        detect_format("a.txt", "xml")
    with pytest.raises(InputError, match="not JSON Lines"):
        detect_format("a.json", None)


def test_txt_skips_blank_lines_but_keeps_numbers_crlf_and_bom(tmp_path):
    p = tmp_path / "a.txt"
    p.write_bytes(b"\xef\xbb\xbffirst\r\n\n   \nsecond\nlast without newline")
    got = [(r.line, r.text) for r in records(p)]
    assert got == [(1, "first"), (4, "second"), (5, "last without newline")]


def test_txt_bad_lines_are_errors_of_their_line_only(tmp_path):
    p = tmp_path / "a.txt"
    p.write_bytes(b"ok\nbad \xc3\x28 here\n" + b"x" * 9000 + b"\nnul\0here\nfine\n")
    got = [(r.line, r.text, r.error) for r in records(p)]
    assert got[0] == (1, "ok", None)
    assert got[1][0] == 2 and got[1][2].startswith("invalid UTF-8 (byte 0xc3 at column 5)")
    assert got[2] == (3, "x" * 9000, None)
    assert got[3][0] == 4 and "NUL" in got[3][2]
    assert got[4] == (5, "fine", None)


def test_overlong_line_is_an_error_and_the_next_line_survives(tmp_path):
    p = tmp_path / "a.txt"
    p.write_bytes(b"short\n" + b"y" * 5000 + b"\nafter\n" + b"z" * 100 + b"\n")
    got = [(r.line, r.text, r.error) for r in records(p, limit=1000)]
    assert got == [(1, "short", None), (2, None, "line longer than 1000 bytes"), (3, "after", None), (4, "z" * 100, None)]


def test_binary_head_and_utf16_and_empty_are_refused_before_reading(tmp_path):
    (tmp_path / "b.bin").write_bytes(b"PK\x03\x04\0\0data")
    with pytest.raises(InputError, match=r"b.bin:1: binary file"):
        open_sources([str(tmp_path / "b.bin")])
    (tmp_path / "u.txt").write_bytes("hi\n".encode("utf-16"))
    with pytest.raises(InputError, match="UTF-16"):
        open_sources([str(tmp_path / "u.txt")])
    (tmp_path / "e.txt").write_bytes(b"")
    with pytest.raises(InputError, match="no texts"):
        open_sources([str(tmp_path / "e.txt")])
    with pytest.raises(InputError, match="is a directory"):
        open_sources([str(tmp_path)])


def test_jsonl_fields_ids_and_every_kind_of_malformed_line(tmp_path):
    p = tmp_path / "a.jsonl"
    lines = [
        {"prompt": "p1", "id": 7},
        {"text": "t2"},
        {"prompt": "p3", "text": "t3"},
        "[1, 2]",
        "{broken",
        {"other": "x"},
        {"prompt": 5},
        '{"prompt": "\\ud800"}',
        "",
        {"prompt": ""},
    ]
    p.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    got = records(p)
    # one key order everywhere: text, then prompt
    assert [(r.line, r.text, r.rid) for r in got[:3]] == [(1, "p1", 7), (2, "t2", None), (3, "t3", None)]
    assert got[0].has_id and not got[1].has_id
    errors = {r.line: r.error for r in got if r.error}
    assert errors[4] == "expected a JSON object, got an array"
    assert errors[5].startswith("invalid JSON")
    assert errors[6] == "no 'text' or 'prompt' field"
    assert errors[7] == "field 'prompt' is a number, expected a string"
    assert "surrogate" in errors[8]
    assert 9 not in errors and got[-1].line == 10 and got[-1].text == ""
    by_field = records(p, field="prompt")
    assert by_field[1].error == "no 'prompt' field" and by_field[2].text == "p3"


def test_csv_quoting_multiline_ids_and_bad_rows(tmp_path):
    p = tmp_path / "a.csv"
    p.write_bytes(
        b'id,prompt,extra\n'
        b'1,"a, with comma",x\n'
        b'2,"spans\ntwo lines",y\n'
        b'\n'
        b'3,too few\n'
        b'4,"bad \xff byte",z\n'
        b'5,"say ""hi""",w\n'
    )
    got = records(p)
    assert [(r.row, r.line, r.rid, r.text) for r in got if not r.error] == [
        (1, 2, "1", "a, with comma"),
        (2, 3, "2", "spans\ntwo lines"),
        (5, 8, "5", 'say "hi"'),
    ]
    bad = [(r.row, r.line, r.error) for r in got if r.error]
    assert bad[0] == (3, 6, "row has 2 fields, the header has 3")
    assert bad[1][:2] == (4, 7) and bad[1][2].startswith("invalid UTF-8")


def test_csv_column_choice_and_header_errors(tmp_path):
    p = tmp_path / "a.csv"
    p.write_text("question,text\nq1,t1\n")
    assert [r.text for r in records(p)] == ["t1"]
    assert [r.text for r in records(p, column="question")] == ["q1"]
    with pytest.raises(InputError, match=r"a.csv:1: no column 'nope'"):
        records(p, column="nope")
    p.write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="no 'text' or 'prompt' column"):
        records(p)


def test_csv_unterminated_quote_is_reported_at_its_first_line(tmp_path):
    p = tmp_path / "a.csv"
    p.write_text('prompt\nfine\n"never closed\nmore\n')
    got = records(p)
    assert got[0].text == "fine"
    assert got[1].line == 3 and got[1].error.startswith("malformed CSV")


def test_source_counts_bytes_for_progress(tmp_path):
    p = tmp_path / "a.txt"
    p.write_bytes(b"one\ntwo\n\nthree\n")
    (src,) = open_sources([str(p)])
    assert isinstance(src, Source) and src.size == 15
    list(src.records())
    assert src.pos == 15


def test_open_output_is_atomic(tmp_path):
    out = tmp_path / "v.jsonl"
    out.write_text("old\n")
    with pytest.raises(RuntimeError):
        with open_output(str(out)) as w:
            w.write({"a": 1})
            raise RuntimeError("boom")
    assert out.read_text() == "old\n"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["v.jsonl"]
    with open_output(str(out)) as w:
        w.write({"a": "é"})
    assert out.read_text(encoding="utf-8") == '{"a": "é"}\n'
    assert sorted(x.name for x in tmp_path.iterdir()) == ["v.jsonl"]
    with pytest.raises(InputError, match="cannot write"):
        with open_output(str(tmp_path / "missing" / "v.jsonl")):
            pass
