"""The command line writes atomically and never through a link planted at a destination."""

from __future__ import annotations

from pathlib import Path

import pytest

from fxfault.cli import main
from fxfault.cli.outputs import publish, staging

SECRET = "a file outside the output folder\n"


def _plant(link: Path, target: Path) -> None:
    target.write_text(SECRET)
    link.symlink_to(target)


def _unharmed(link: Path, target: Path) -> None:
    assert target.read_text() == SECRET
    assert link.is_file() and not link.is_symlink()


def test_publish_replaces_a_link_instead_of_following_it(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    _plant(out / "a.txt", tmp_path / "target.txt")
    with staging() as tmp:
        (tmp / "a.txt").write_text("new")
        (tmp / "b.bin").write_bytes(b"\x00\x01")
        written = publish([tmp / "a.txt", tmp / "b.bin"], out)
        staged = tmp
    assert written == [out / "a.txt", out / "b.bin"] and not staged.exists()
    _unharmed(out / "a.txt", tmp_path / "target.txt")
    assert (out / "a.txt").read_text() == "new" and (out / "b.bin").read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in out.iterdir()) == ["a.txt", "b.bin"]  # no temporary file left


def test_publish_creates_the_folder(tmp_path):
    with staging() as tmp:
        (tmp / "x").write_text("x")
        assert publish([tmp / "x"], tmp_path / "new" / "deeper") == [tmp_path / "new" / "deeper" / "x"]


def test_inspect_export_does_not_follow_a_link(tmp_path, capsys):
    _plant(tmp_path / "g.json", tmp_path / "target.txt")
    assert main(["inspect", "demo-cnn", "--out", str(tmp_path / "g.json")]) == 0
    _unharmed(tmp_path / "g.json", tmp_path / "target.txt")
    assert '"fxfault-graph"' in (tmp_path / "g.json").read_text()
    assert f"wrote {tmp_path / 'g.json'}" in capsys.readouterr().out


def test_inspect_export_creates_missing_folders(tmp_path):
    assert main(["inspect", "demo-cnn", "--out", str(tmp_path / "a" / "b" / "g.dot")]) == 0
    assert (tmp_path / "a" / "b" / "g.dot").read_text().startswith("digraph")


def test_sweep_does_not_follow_links_in_the_output_folder(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "out"
    out.mkdir()
    for name in ("summary.csv", "report.md", "plot.png"):
        _plant(out / name, tmp_path / f"target-{name}")
    rc = main(["sweep", "demo-cnn", "--data", "tests.cli.factories:tiny_data", "--bers", "1e-2",
               "--trials", "1", "--out", str(out), "--quiet"])
    assert rc == 0, capsys.readouterr().err
    for name in ("summary.csv", "report.md", "plot.png"):
        _unharmed(out / name, tmp_path / f"target-{name}")
    assert "ber" in (out / "summary.csv").read_text().splitlines()[0].split(",")
    assert "fxfault sweep demo-cnn" in (out / "report.md").read_text()
