"""Released-model table, evaluate commands, and the resumable downloader against a local HTTP server."""

from __future__ import annotations

import argparse
import io
import pickle
import re
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from scripts import pretrained as pt


class _Handler(BaseHTTPRequestHandler):
    """Serves ``routes`` (path incl. query -> bytes); honours Range unless the path is in ``no_range``."""

    routes: dict[str, bytes] = {}
    no_range: set[str] = set()
    truncate_once: set[str] = set()  # send the full Content-Length but half the body, then hang up
    log: list[tuple[str, str | None]] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        rng = self.headers.get("Range")
        self.log.append((self.path, rng))
        body = self.routes.get(self.path)
        if body is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        ctype = "text/html" if body.lstrip().startswith(b"<") else "application/octet-stream"
        if rng and self.path not in self.no_range:
            start = int(re.match(r"bytes=(\d+)-", rng).group(1))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            body = body[start:]
        else:
            self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.path in self.truncate_once:
            self.truncate_once.discard(self.path)
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def http(server, monkeypatch):
    """A fresh route table on the shared server; proxies bypassed so 127.0.0.1 is reached directly."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "*")
    _Handler.routes, _Handler.no_range, _Handler.truncate_once, _Handler.log = {}, set(), set(), []
    return server


@pytest.fixture(scope="module")
def ckpt_bytes() -> bytes:
    buf = io.BytesIO()
    torch.save({"epoch": 3, "model_state_dict": {"w": torch.arange(4000, dtype=torch.float32)}}, buf)
    return buf.getvalue()


CONFIG = pickle.dumps(argparse.Namespace(encoder="Swin_3D", in_channels=1, variables=["var_01"],
                                         in_channels_dynamic=1))
QUOTA_PAGE = b"<!DOCTYPE html><html><body>Sorry, the download quota for this file is exceeded.</body></html>"


# ---- table and commands ---------------------------------------------------------------


def test_table_lists_15_models(capsys):
    models = pt.load_models()
    assert len(models) == 15
    assert all({"config", "checkpoint"} <= set(m.files) for m in models.values())
    assert set(models["simplenet_exp3"].files) == {"config", "checkpoint", "backbone"}
    assert models["ide_mamba_exp3"].encoder == "Mamba"
    assert models["ide_NAM"].region_code == "NAM-11" and models["ide_CERRA"].dataset == "CERRA"
    assert pt.main(["list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in models) and "AFR-11" in out and "804x776" in out


def test_evaluate_commands():
    m = pt.load_models()
    assert pt.evaluate_command(m["ide_swin_exp3"], "DIR") == (
        "python test_synthetic.py --config DIR/ide_swin_exp3/config.pkl "
        "--checkpoint DIR/ide_swin_exp3/checkpoint.pth --name ide_swin_exp3 "
        "--root_synthetic <path to Synthetic/synthetic_CERRA>"
    )
    era = pt.evaluate_command(m["ide_AFR"], "DIR")
    assert era.startswith("python test_ERA5_Land.py") and "--root_NOAA" in era and "--region AFR-11" in era
    assert pt.evaluate_command(m["ide_CERRA"], "DIR").startswith("python test_CERRA.py")
    arnet = pt.evaluate_command(m["arnet_exp3"], "D")
    assert arnet.startswith("python -m Baselines_MIL.test_mil --method arnet")
    simple = pt.evaluate_command(m["simplenet_exp3"], "D")
    assert simple.startswith("python -m Baselines_OneClass.test_oneclass --method simplenet")
    assert "--simplenet_backbone D/simplenet_exp3/backbone.pth" in simple  # the option SimpleNet reads
    uniad = pt.evaluate_command(m["uniad_exp3"])
    assert "Baselines_Reconstruction.test_reconstruction --method uniad" in uniad
    with pytest.raises(KeyError, match="did you mean 'ide_swin_exp3'"):
        pt.find_model("ide_swin")


# ---- downloads ----------------------------------------------------------------------------


def test_download_verify_skip(http, tmp_path, ckpt_bytes, capsys):
    _Handler.routes = {
        "/simplenet_exp3/config.pkl": CONFIG,
        "/simplenet_exp3/checkpoint.pth": ckpt_bytes,
        "/simplenet_exp3/backbone.pth": ckpt_bytes,
    }
    argv = ["download", "simplenet_exp3", "--dir", str(tmp_path), "--mirror", http, "--quiet"]
    assert pt.main(argv) == 0
    folder = tmp_path / "simplenet_exp3"
    assert (folder / "checkpoint.pth").read_bytes() == ckpt_bytes
    assert (folder / "backbone.pth").read_bytes() == ckpt_bytes
    assert (folder / "config.pkl").read_bytes() == CONFIG
    assert not list(folder.glob("*.part"))
    out = capsys.readouterr().out
    assert f"--config {folder / 'config.pkl'}" in out and "Baselines_OneClass.test_oneclass" in out
    n = len(_Handler.log)
    assert pt.main(argv) == 0  # second run: complete files are checked and kept
    assert len(_Handler.log) == n


def test_html_page_is_detected(http, tmp_path, ckpt_bytes, capsys):
    _Handler.routes = {"/ide_EUR/config.pkl": CONFIG, "/ide_EUR/checkpoint.pth": QUOTA_PAGE}
    argv = ["download", "ide_EUR", "--dir", str(tmp_path), "--mirror", http, "--quiet", "--retries", "0"]
    assert pt.main(argv) == 1
    err = capsys.readouterr().err
    assert "quota exceeded" in err and "browser" in err
    assert str(tmp_path / "ide_EUR" / "checkpoint.pth") in err
    folder = tmp_path / "ide_EUR"
    assert (folder / "config.pkl").exists()
    assert not (folder / "checkpoint.pth").exists() and not (folder / "checkpoint.pth.part").exists()
    assert (folder / "checkpoint.pth.html").read_bytes() == QUOTA_PAGE


def test_resume_with_range(http, tmp_path, ckpt_bytes):
    _Handler.routes = {"/f.pth": ckpt_bytes}
    dest = tmp_path / "checkpoint.pth"
    Path(str(dest) + ".part").write_bytes(ckpt_bytes[:7000])
    assert pt.fetch(f"{http}/f.pth", dest, "torch", quiet=True) == "resumed"
    assert _Handler.log == [("/f.pth", "bytes=7000-")]
    assert dest.read_bytes() == ckpt_bytes and not Path(str(dest) + ".part").exists()


def test_interrupted_transfer_resumes(http, tmp_path, ckpt_bytes):
    _Handler.routes, _Handler.truncate_once = {"/f.pth": ckpt_bytes}, {"/f.pth"}
    dest = tmp_path / "checkpoint.pth"
    assert pt.fetch(f"{http}/f.pth", dest, "torch", quiet=True, retries=1) == "resumed"
    assert _Handler.log == [("/f.pth", None), ("/f.pth", f"bytes={len(ckpt_bytes) // 2}-")]
    assert dest.read_bytes() == ckpt_bytes


def test_server_ignoring_range_restarts(http, tmp_path, ckpt_bytes):
    _Handler.routes, _Handler.no_range = {"/f.pth": ckpt_bytes}, {"/f.pth"}
    dest = tmp_path / "checkpoint.pth"
    Path(str(dest) + ".part").write_bytes(b"junk" * 100)
    assert pt.fetch(f"{http}/f.pth", dest, "torch", quiet=True) == "downloaded"
    assert dest.read_bytes() == ckpt_bytes


def test_complete_part_gets_416(http, tmp_path, ckpt_bytes):
    _Handler.routes = {"/f.pth": ckpt_bytes}
    dest = tmp_path / "checkpoint.pth"
    Path(str(dest) + ".part").write_bytes(ckpt_bytes)
    pt.fetch(f"{http}/f.pth", dest, "torch", quiet=True)
    assert dest.read_bytes() == ckpt_bytes


def test_drive_virus_scan_form_is_followed(http, tmp_path, ckpt_bytes):
    page = (b'<!DOCTYPE html><html><body>Google Drive can\'t scan this file for viruses.'
            b'<form id="download-form" action="/download" method="get">'
            b'<input type="submit" value="Download anyway"/><input type="hidden" name="id" value="X1">'
            b'<input type="hidden" name="confirm" value="t"></form></body></html>')
    _Handler.routes = {"/download?id=X1": page, "/download?id=X1&confirm=t": ckpt_bytes}
    dest = tmp_path / "checkpoint.pth"
    assert pt.fetch(f"{http}/download?id=X1", dest, "torch", quiet=True) == "downloaded"
    assert dest.read_bytes() == ckpt_bytes


def test_wrong_content_is_rejected(http, tmp_path, ckpt_bytes):
    _Handler.routes = {"/f.pth": b"\x00" * 300, "/c.pkl": b"not a pickle"}
    with pytest.raises(pt.DownloadError, match="not a torch checkpoint"):
        pt.fetch(f"{http}/f.pth", tmp_path / "checkpoint.pth", "torch", quiet=True, retries=0)
    assert (tmp_path / "checkpoint.pth.bad").exists() and not (tmp_path / "checkpoint.pth").exists()
    with pytest.raises(pt.DownloadError, match="pickle"):
        pt.fetch(f"{http}/c.pkl", tmp_path / "config.pkl", "pickle", quiet=True, retries=0)


def test_file_checks(tmp_path, ckpt_bytes, reference_dir):
    p = tmp_path / "x.pth"
    p.write_bytes(ckpt_bytes[: len(ckpt_bytes) // 2])
    with pytest.raises(pt.DownloadError, match="truncated"):
        pt.check_torch_file(p)
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("x/other.txt", "hi")
    with pytest.raises(pt.DownloadError, match="data.pkl"):
        pt.check_torch_file(p)
    buf = io.BytesIO()
    torch.save({"a": 1}, buf, _use_new_zipfile_serialization=False)
    p.write_bytes(buf.getvalue())
    assert pt.check_torch_file(p) == "torch legacy"
    assert pt.check_torch_file(reference_dir / "authors_format_checkpoint_CNN_3D.pth") == "torch zip"
    assert pt.check_pickle_file(reference_dir / "published_config_example.pkl") == "pickle"
    assert pt.looks_like_html(b"\n  <HTML><head>") and not pt.looks_like_html(b"PK\x03\x04")


def test_download_dir_that_is_a_file(http, tmp_path, capsys):
    """A --dir that cannot hold the files is one line (exit 2) before anything is fetched."""
    blocker = tmp_path / "models.txt"
    blocker.write_text("x")
    for where in (blocker, blocker / "sub"):
        with pytest.raises(SystemExit) as err:
            pt.main(["download", "ide_EUR", "--dir", str(where), "--mirror", http, "--quiet"])
        assert err.value.code == 2
        line = capsys.readouterr().err.strip().splitlines()[-1]
        assert f"option --dir: {blocker} is a file, not a folder" in line
    assert _Handler.log == [] and blocker.read_text() == "x"


def test_model_folder_blocked_by_a_file(http, tmp_path, capsys):
    (tmp_path / "ide_EUR").write_text("x")
    assert pt.main(["download", "ide_EUR", "--dir", str(tmp_path), "--mirror", http, "--quiet"]) == 1
    err = capsys.readouterr().err
    assert f"error: ide_EUR: cannot write {tmp_path / 'ide_EUR'}" in err and "move that file" in err
    assert "Traceback" not in err


# ---- every evaluate command runs its entry script with the table's model ------------------------


class _Parsed(Exception):
    """Raised by the stubbed run.evaluate: the entry script got this far with this config."""


def _published_config(reference_dir: Path, model: pt.Model) -> bytes:
    """The example published config with the table's encoder and the dataset's variables."""
    from dataset.variables import VARIABLES_BY_DATASET
    from utils.published import load_namespace

    opts = load_namespace(reference_dir / "published_config_example.pkl")
    variables = VARIABLES_BY_DATASET[model.dataset][:6]
    opts.update(encoder=model.encoder, variables=variables, in_channels_dynamic=len(variables),
                in_channels=1 if model.dataset == "synthetic" else 2)
    return pickle.dumps(argparse.Namespace(**opts))


@pytest.mark.parametrize("name", list(pt.load_models()))
def test_evaluate_command_parses_to_the_released_model(name, reference_dir, tmp_path, monkeypatch, capsys):
    """The printed command names options its script knows, and yields the table's model in its own folder."""
    import importlib
    import shlex

    from utils import run

    model = pt.load_models()[name]
    (tmp_path / name).mkdir()
    (tmp_path / name / "config.pkl").write_bytes(_published_config(reference_dir, model))
    argv = shlex.split(re.sub(r"<path to [^>]+>", str(tmp_path), pt.evaluate_command(model, tmp_path)))
    module = argv[2] if argv[1] == "-m" else argv[1].removesuffix(".py")
    seen = []

    def stub(cfg, split):
        seen.append(cfg)
        raise _Parsed

    monkeypatch.setattr(run, "evaluate", stub)
    with pytest.raises(_Parsed):
        importlib.import_module(module).main(argv[3:] if argv[1] == "-m" else argv[2:])
    cfg = seen[0]
    assert (cfg.method, cfg.encoder, cfg.dataset) == (model.method, model.encoder, model.dataset)
    assert cfg.name == name and cfg.checkpoint == str(tmp_path / name / "checkpoint.pth")
    assert cfg.amp == "none"  # the released weights are evaluated in float32
    if model.region_code:
        assert cfg.region == model.region_code
    if "backbone" in model.files:
        assert cfg.simplenet_backbone == str(tmp_path / name / "backbone.pth")


# ---- mirrors, damaged files, the config check after a download ----------------------------------


@pytest.fixture
def no_sleep(monkeypatch):
    """A retry would sleep: fail instead, so a test shows that none happened."""
    def sleep(_s):
        raise AssertionError("retried (slept) where retrying cannot help")
    monkeypatch.setattr(pt.time, "sleep", sleep)


def test_mirror_folder_and_missing_file(tmp_path, ckpt_bytes, capsys, no_sleep, monkeypatch):
    """--mirror may be a plain folder; a file it lacks is named at once, without retries."""
    mirror = tmp_path / "mirror"
    (mirror / "ide_EUR").mkdir(parents=True)
    (mirror / "ide_EUR" / "config.pkl").write_bytes(CONFIG)
    (mirror / "ide_EUR" / "checkpoint.pth").write_bytes(ckpt_bytes)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    assert pt.main(["download", "ide_EUR", "ide_CAS", "--dir", str(out), "--mirror", "mirror", "--quiet"]) == 1
    assert (out / "ide_EUR" / "checkpoint.pth").read_bytes() == ckpt_bytes
    err = capsys.readouterr().err
    assert f"error: ide_CAS: config.pkl: {(mirror / 'ide_CAS' / 'config.pkl').as_uri()} does not exist" in err
    assert "Traceback" not in err and "network error" not in err


def test_mirror_with_an_unknown_scheme(tmp_path, capsys, no_sleep):
    assert pt.main(["download", "ide_EUR", "--dir", str(tmp_path), "--mirror", "ftp2://lab/models", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "error: ide_EUR: config.pkl: cannot fetch ftp2://lab/models/ide_EUR/config.pkl" in err
    assert "pass --mirror as a folder or an http(s):// or file:// URL" in err and "Traceback" not in err


def test_damaged_middle_of_a_checkpoint_is_caught(http, tmp_path, ckpt_bytes):
    """A zip whose directory is intact but whose tensor bytes differ (a resume spliced onto another copy of
    the file) would load as wrong weights: every member's CRC is checked before the file is kept."""
    bad = bytearray(ckpt_bytes)
    middle = len(bad) // 2
    bad[middle : middle + 16] = b"\xff" * 16
    p = tmp_path / "x.pth"
    p.write_bytes(bytes(bad))
    with pytest.raises(pt.DownloadError, match=r"data/0 fails its CRC check"):
        pt.check_torch_file(p)
    _Handler.routes = {"/f.pth": ckpt_bytes}
    dest = tmp_path / "checkpoint.pth"
    Path(str(dest) + ".part").write_bytes(bytes(bad[: middle + 100]))  # a part from another copy
    with pytest.raises(pt.DownloadError, match="CRC"):
        pt.fetch(f"{http}/f.pth", dest, "torch", quiet=True, retries=0)
    assert not dest.exists() and (tmp_path / "checkpoint.pth.bad").exists()
    dest.write_bytes(bytes(bad))  # a damaged file already in place is not "present": fetched again
    assert pt.fetch(f"{http}/f.pth", dest, "torch", quiet=True, retries=0) == "downloaded"
    assert dest.read_bytes() == ckpt_bytes


def test_describe_config_names_a_config_of_another_model(tmp_path, capsys):
    """n_workers is not 'unknown' (it is the authors' machine's); a config that contradicts the table is named."""
    path = tmp_path / "config.pkl"
    path.write_bytes(pickle.dumps(argparse.Namespace(encoder="Swin_3D", in_channels=1, variables=["var_01"],
                                                     in_channels_dynamic=1, n_workers=8)))
    pt._describe_config(path, pt.load_models()["ide_mamba_exp3"])
    err = capsys.readouterr().err
    assert "unknown here" not in err
    assert f"warning: {path}: its encoder is Swin_3D, the released ide_mamba_exp3 uses Mamba" in err
    pt._describe_config(path, pt.load_models()["ide_swin_exp3"])
    assert "warning" not in capsys.readouterr().err
    pt._describe_config(path, pt.load_models()["ide_EUR"])
    assert "its variables are synthetic ones, the released ide_EUR was trained on ERA5_Land" in capsys.readouterr().err
