"""Hostile and broken input (issue 12): a folder task of broken and oddly named files, foreign
results files, run.toml with wrong types, a checkpoint that would run code. Each is a counted skip
or one line with exit status 2, never a traceback and never a hang."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.errors import UserError
from bench.run.records import ResultsFile

RED = b"beta \x1b[31mred"  # an ANSI escape in a class folder's name


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def hostile_folder(root: Path) -> Path:
    """alpha/: 6 good PNGs, JPEG, CMYK JPEG, 16-bit PNG, animated GIF (readable); 0-byte, truncated
    PNG, truncated JPEG, 30000x30000 PNG header (skipped). beta<ESC>[31mred/: 6 good PNGs, names with
    spaces, a newline and non-UTF-8 bytes; a symlink loop and a dangling self-link. single/: one image."""
    rng = np.random.default_rng(0)
    base = os.fsencode(root)

    def folder(name: bytes) -> bytes:
        path = os.path.join(base, name)
        os.makedirs(path, exist_ok=True)
        return path

    def image(path: bytes, mode: str = "RGB", fmt: str | None = None) -> None:
        arr = rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)
        Image.fromarray(arr).convert(mode).save(os.fsdecode(path), format=fmt)

    a, b = folder(b"alpha"), folder(RED)
    for i in range(6):
        image(os.path.join(a, b"ok%d.png" % i))
        image(os.path.join(b, b"ok%d.png" % i))
    image(os.path.join(a, b"j.jpg"))
    image(os.path.join(a, b"cmyk.jpg"), "CMYK")
    Image.fromarray(rng.integers(0, 65535, (12, 12), dtype=np.uint16)).save(os.fsdecode(os.path.join(a, b"deep.png")))
    frames = [Image.new("RGB", (12, 12), (40 * i, 0, 0)) for i in range(3)]
    frames[0].save(os.fsdecode(os.path.join(a, b"anim.gif")), save_all=True, append_images=frames[1:])
    good_png = Path(os.fsdecode(os.path.join(a, b"ok0.png"))).read_bytes()
    good_jpg = Path(os.fsdecode(os.path.join(a, b"j.jpg"))).read_bytes()
    for name, data in ((b"empty.png", b""), (b"cut.png", good_png[: len(good_png) // 2]),
                       (b"cut.jpg", good_jpg[: len(good_jpg) // 2]),
                       (b"bomb.png", b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000,
                        8, 0, 0, 0, 0)) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 100)) + _png_chunk(b"IEND", b""))):
        Path(os.fsdecode(os.path.join(a, name))).write_bytes(data)
    for name in (b"name with spaces.png", b"new\nline.png", b"\xff\xfebad.png"):
        Path(os.fsdecode(os.path.join(b, name))).write_bytes(good_png)
    os.symlink(b".", os.path.join(b, b"loop"))
    os.symlink(os.path.join(b, b"self"), os.path.join(b, b"self"))
    Path(os.fsdecode(os.path.join(folder(b"single"), b"one.png"))).write_bytes(good_png)
    return root


def test_a_hostile_folder_loads_with_counted_skips_and_escaped_names(tmp_path):
    """Guards against the UnicodeEncodeError of a non-UTF-8 file name (old code: traceback while
    hashing ids), raw ANSI escapes in class names, and undetected truncated JPEGs."""
    from bench.specs import TaskRequest
    from bench_plugins.tasks.folder import load_folder_task

    root = hostile_folder(tmp_path / "data")
    task = load_folder_task(TaskRequest(name=f"folder:{root}"))
    assert task.classes == ["alpha", "beta \\x1b[31mred", "single"]
    assert task.skipped_items == 4  # 0-byte, truncated PNG, truncated JPEG, the 30000x30000 header
    ids = set(task.train.ids) | set(task.test.ids)
    assert len(ids) == 10 + 9 + 1
    assert {"beta \\x1b[31mred/\\xff\\xfebad.png", "beta \\x1b[31mred/new\\nline.png",
            "beta \\x1b[31mred/name with spaces.png", "single/one.png", "alpha/anim.gif"} <= ids
    assert all(i.isprintable() for i in ids)
    for split in (task.train, task.test):
        images = split.images(range(len(split)))  # CMYK, 16-bit and animated GIF decode to RGB uint8
        assert all(im.dtype == np.uint8 and im.shape == (12, 12, 3) for im in images)
    assert len(task.train.fingerprint()) == 64


def _no_raw_text(result: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in result.stderr
    assert "\x1b" not in result.stdout + result.stderr  # no ANSI escape reaches the terminal


def test_bench_check_and_run_on_a_hostile_folder(tmp_path):
    """The issue's second bug: `bench run` and `bench check` on a folder with a non-UTF-8 file
    name ended with a UnicodeEncodeError traceback."""
    root = hostile_folder(tmp_path / "data")
    env = {**os.environ, "BENCH_CACHE_DIR": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    check = subprocess.run([sys.executable, "-m", "bench", "check", f"folder:{root}"], capture_output=True,
                           text=True, env=env, timeout=300)
    assert check.returncode == 0, check.stderr
    _no_raw_text(check)
    assert "contamination check: folder:" in check.stdout
    run = subprocess.run([sys.executable, "-m", "bench", "run", "--encoders", "pixels", "--strategies", "knn",
                          "--tasks", f"folder:{root}", "--budgets", "1", "--seeds", "1", "--forgetting", "off",
                          "--no-progress", "--device", "cpu", "--out", str(tmp_path / "run")],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    _no_raw_text(run)
    rec = json.loads((tmp_path / "run/results.jsonl").read_text())
    assert (rec["status"], rec["task_info"]["skipped_items"]) == ("ok", 4)


def _results(tmp_path: Path, data: bytes) -> ResultsFile:
    path = tmp_path / "results.jsonl"
    path.write_bytes(data)
    return ResultsFile(path)


@pytest.mark.parametrize("data, message", [
    (b'["a", "list"]\n', r"results.jsonl:1 is not a transfer-bench record"),
    (b'{"some": "other tool"}\n', r"results.jsonl:1 is not a transfer-bench record"),
    (b'{"schema": 99, "encoder": "e", "status": "ok"}\n', r"has record schema 99, newer than this"),
    (b'{"schema": "2", "encoder": "e", "status": "ok"}\n', r"has a record schema '2' that is not a number"),
    (b'{"encoder": "\xff\xfe", "status": "ok"}\n', r"results.jsonl:1 is not valid JSONL \(not UTF-8\)"),
    (b'{"x": "' + b"a" * (17 * 2**20) + b'"}\n', r"results.jsonl:1 is longer than 16 MiB"),
])
def test_foreign_results_files_are_one_line_errors(tmp_path, data, message):
    """Guards against tracebacks (a string schema: TypeError; non-UTF-8: UnicodeDecodeError) and
    against reading a huge line into memory whole (the old reader had no limit)."""
    with pytest.raises(UserError, match=message) as err:
        _results(tmp_path, data).load()
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("toml, message", [
    ('seeds = "three"', r"seeds = 'three' should be an integer"),
    ("encoders = 5", r"encoders = 5 should be a string or a list of strings"),
    ("budgets = [1, true]", r"budgets = \[1, True\] should be a string, an integer or a list of them"),
    ('download = "yes"', r"download = 'yes' should be true or false"),
    ('cell_timeout = "soon"', r"cell_timeout = 'soon' should be a number"),
    ("set = 3", r"set = 3 should be a table"),
    ("resolution = 1.5", r'resolution = 1.5 should be an integer, "auto", "clip=32,dinov2=28" or a table'),
])
def test_run_toml_with_wrong_types_is_one_line(tmp_path, toml, message):
    """Guards against run.toml values of the wrong type reaching the run (old code: e.g. a
    TypeError traceback for seeds = "three" deep in planning)."""
    from bench.cli import build_parser, run_config_from_args

    path = tmp_path / "run.toml"
    path.write_text(toml + "\n")
    with pytest.raises(UserError, match=message):
        run_config_from_args(build_parser().parse_args(["run", "-c", str(path)]))


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path):
    """weights_only=True: unpickling a checkpoint whose object runs a command on load is refused
    with one line, and the command never runs."""
    import pickle

    from bench.weights import load_checkpoint

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"state_dict": Evil()}))
    with pytest.raises(UserError, match=r"cannot read weights file .*evil.pt.*weights_only=True") as err:
        load_checkpoint(path)
    assert "\n" not in str(err.value)
    assert not marker.exists()
