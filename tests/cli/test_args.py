"""The shared argument validators of the command line (``fxfault.cli.args``)."""

from __future__ import annotations

import os
from argparse import ArgumentTypeError

import pytest
import torch

from fxfault.cli import args


def test_rates():
    assert args.rate("1e-3") == 1e-3 and args.rate(" 0 ") == 0.0 and args.rate("1") == 1.0
    assert args.rate_list("1e-7, 1e-6,,1e-5") == [1e-7, 1e-6, 1e-5]
    for bad, says in (("x", "'x' is not a number"), ("2", "[0, 1]"), ("-1e-3", "[0, 1]"),
                      ("nan", "[0, 1]"), ("inf", "[0, 1]")):
        with pytest.raises(ArgumentTypeError, match=says.replace("[", r"\[").replace("]", r"\]")):
            args.rate(bad)
        with pytest.raises(ArgumentTypeError):
            args.rate_list(f"1e-3,{bad}")
    with pytest.raises(ArgumentTypeError, match="no bit-error rate"):
        args.rate_list(" , ")


def test_integers_and_shapes():
    assert args.positive_int("3") == 3 and args.non_negative_int("0") == 0
    for bad in ("0", "-1", "x", "1.5", ""):
        with pytest.raises(ArgumentTypeError, match="positive integer"):
            args.positive_int(bad)
    with pytest.raises(ArgumentTypeError, match=">= 0"):
        args.non_negative_int("-1")
    assert args.shape("1x3x32x32") == (1, 3, 32, 32) == args.shape("1, 3, 32, 32")
    for bad in ("", "a,b", "1,0", "-1,3"):
        with pytest.raises(ArgumentTypeError, match="sizes such as"):
            args.shape(bad)


def test_output_folder(tmp_path):
    (tmp_path / "afile").write_text("x")
    assert args.output_folder(str(tmp_path / "new" / "deeper")) == str(tmp_path / "new" / "deeper")
    assert args.output_folder(str(tmp_path)) == str(tmp_path)
    for bad, says in (("", "empty"), ("  ", "empty"), (str(tmp_path / "afile"), "is a file"),
                      (str(tmp_path / "afile" / "sub" / "deeper"), "is a file, not a folder")):
        with pytest.raises(ArgumentTypeError, match=says):
            args.output_folder(bad)
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(ArgumentTypeError, match="broken symbolic link"):
        args.output_folder(str(tmp_path / "dangling" / "sub"))


def test_output_folder_without_permission(tmp_path, monkeypatch):
    """(Simulated: root, who runs CI here, may write anywhere.)"""
    locked = tmp_path / "locked"
    locked.mkdir()
    real = os.access
    monkeypatch.setattr(args.os, "access", lambda p, mode: False if str(p) == str(locked) else real(p, mode))
    with pytest.raises(ArgumentTypeError, match="permission denied"):
        args.output_folder(str(locked / "out"))


def test_output_file(tmp_path):
    check = args.output_file((".svg", ".json"))
    assert check(str(tmp_path / "sub" / "g.JSON")) == str(tmp_path / "sub" / "g.JSON")
    (tmp_path / "afile").write_text("x")
    for bad, says in (("", "empty"), (str(tmp_path), "is a folder"), (str(tmp_path / "g.txt"), "unknown suffix"),
                      (str(tmp_path / "afile" / "g.svg"), "is a file, not a folder")):
        with pytest.raises(ArgumentTypeError, match=says):
            check(bad)


def test_input_file(tmp_path):
    (tmp_path / "cfg.json").write_text("{}")
    assert args.input_file(str(tmp_path / "cfg.json")) == str(tmp_path / "cfg.json")
    for bad, says in (("", "empty"), (str(tmp_path), "is a folder"), (str(tmp_path / "no.json"), "no file")):
        with pytest.raises(ArgumentTypeError, match=says):
            args.input_file(bad)


def test_devices():
    assert args.device("cpu") == "cpu"
    for bad, says in (("foo", "not a device"), ("meta", "cannot run on"), ("cuda:99", "device")):
        with pytest.raises(ArgumentTypeError, match=says):
            args.device(bad)
    if torch.cuda.is_available():
        assert args.device("cuda") == "cuda" and args.device("cuda:0") == "cuda:0"
    else:
        with pytest.raises(ArgumentTypeError, match="no cuda device is available"):
            args.device("cuda")


def test_metrics():
    assert args.metric("top1") == "top1" and args.metric("loss") == "loss"
    assert args.metric("mypkg.metrics:top5") == "mypkg.metrics:top5"  # imported when the sweep runs
    for bad in ("accuracy", ":fn", "pkg:"):
        with pytest.raises(ArgumentTypeError, match="unknown metric"):
            args.metric(bad)
