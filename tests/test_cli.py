"""The fashion-index command: outputs, one-line errors and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from PIL import Image

from indexing.cli import main
from tests.conftest import ROOT


# The commands run on an exported index, as `fashion-index build` leaves one (ONNX Runtime; test_build.py and
# test_exported.py cover TensorFlow's path).
def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_query_prints_a_ranked_table(capsys, exported_index, catalogue):
    code, out, _ = run(capsys, "query", "--index", str(exported_index), str(catalogue[0] / "1005.jpg"))
    lines = out.strip().splitlines()
    assert code == 0 and lines[0].split()[:3] == ["rank", "id", "score"]
    assert lines[1].split()[:2] == ["1", "1005"] and len(lines) == 6
    assert "Women Yellow Tshirts 1005" in lines[1]


def test_query_json_filters_and_sheet(capsys, exported_index, catalogue, tmp_path):
    sheet = tmp_path / "sheet.png"
    code, out, err = run(capsys, "query", "--index", str(exported_index), str(catalogue[0] / "1005.jpg"),
                         "-k", "3", "--json", "--filter", "gender=Men", "--sheet", str(sheet))
    results = json.loads(out)
    assert code == 0 and len(results) == 3
    assert {"id", "score", "distance", "gender", "articleType", "baseColour"} <= set(results[0])
    assert all(r["gender"] == "Men" for r in results)
    with Image.open(sheet) as image:
        assert image.width > 4 * 224
    assert "contact sheet" in err


def test_info_and_eval(capsys, exported_index, catalogue, tmp_path):
    code, out, _ = run(capsys, "info", "--index", str(exported_index))
    assert code == 0 and "products    24" in out and "random:0" in out
    report = tmp_path / "eval.json"
    code, out, _ = run(capsys, "eval", "--index", str(exported_index), "--queries", str(catalogue[0]),
                       "--sample", "10", "--json", str(report), "--quiet")
    assert code == 0 and "| recall@1" in out and "say nothing about real recommendation quality" in out
    figures = json.loads(report.read_text())
    assert figures["recall"]["queries"] == 24 and figures["recall"]["recall@1"] == 1.0
    assert figures["category"]["sampled"] == 10


@pytest.mark.parametrize(
    "argv, message",
    [
        (["info", "--index", "/no/such/index"], "no index at /no/such/index"),
        (["query", "--index", "{index}", "/no/such/photo.jpg"], "cannot read file"),
        (["query", "--index", "{index}", "{text}"], "not a readable image"),
        (["query", "--index", "{index}", "{photo}", "--filter", "gender"], "bad --filter"),
        (["build", "--images", "{images}", "--out", "{index}", "--weights", "random"], "already holds an index"),
        (["build", "--images", "{images}", "--out", "{tmp}/new", "--weights", "/no/weights.h5"],
         "weights file not found"),
        (["remove", "--index", "{index}", "no-such-id"], "not in the index: no-such-id"),
    ],
)
def test_errors_are_one_line_and_exit_non_zero(capsys, exported_index, catalogue, tmp_path, argv, message):
    text = tmp_path / "notes.jpg"
    text.write_text("hello")
    values = {"index": exported_index, "images": catalogue[0], "photo": catalogue[0] / "1000.jpg",
              "text": text, "tmp": tmp_path}
    code, _, err = run(capsys, *[a.format(**values) for a in argv])
    assert code == 1
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["query", "--index"])
    assert exit_info.value.code == 2


def test_console_entry_point_runs_as_a_module(built_index):
    done = subprocess.run([sys.executable, "-m", "indexing", "info", "--index", str(built_index / "missing")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and done.stderr.startswith("fashion-index: error: no index at")
