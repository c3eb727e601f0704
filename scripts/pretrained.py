"""The authors' 15 released models: list them, download them (resumable), print how to evaluate them.

    python -m scripts.pretrained list
    python -m scripts.pretrained download ide_swin_exp3 [more names | all] [--dir DIR]
    python -m scripts.pretrained command ide_swin_exp3 [--dir DIR]

Files land in ``DIR/<name>/config.pkl``, ``checkpoint.pth`` (and SimpleNet's
``backbone.pth``). The links are Google Drive links; Drive sometimes answers with an
HTML page (virus-scan notice, quota exceeded, sign-in) instead of the file, so every
answer is sniffed before it is written, and every finished file is checked to be what
it claims (a ``torch.save`` file whose zip members all pass their CRC check, a pickle).
Interrupted downloads continue from ``<file>.part`` with an HTTP Range request.
``--mirror URL`` (or the environment variable ``IDEE_PRETRAINED_MIRROR``) fetches
``URL/<name>/<file>`` instead, e.g. from a lab copy; URL may be a local folder. The
printed command evaluates each model into its own run folder (``--name <model>``).
Only the standard library (urllib) is used.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import html.parser
import http.client
import json
import os
import pickletools
import re
import shlex
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

TABLE = Path(__file__).with_name("pretrained_models.json")
FILE_NAMES = {"config": "config.pkl", "checkpoint": "checkpoint.pth", "backbone": "backbone.pth"}
FILE_KINDS = {"config": "pickle", "checkpoint": "torch", "backbone": "torch"}
BASELINE_ENTRIES = {
    "deepmil": "Baselines_MIL.test_mil",
    "arnet": "Baselines_MIL.test_mil",
    "rtfm": "Baselines_MIL.test_mil",
    "simplenet": "Baselines_OneClass.test_oneclass",
    "stealnet": "Baselines_Reconstruction.test_reconstruction",
    "uniad": "Baselines_Reconstruction.test_reconstruction",
}
DEFAULT_DIR = "./pretrained"
MIRROR_ENV = "IDEE_PRETRAINED_MIRROR"
CHUNK = 1 << 20
USER_AGENT = "Mozilla/5.0 (IDEE scripts.pretrained; urllib)"
# torch.save's legacy (non-zip) format starts with this number pickled at protocol 2.
_LEGACY_MAGIC = b"\x80\x02\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little")


@dataclass(frozen=True)
class Model:
    """One released model as listed in the paper's README."""

    name: str
    method: str  # ide or the baseline's name
    dataset: str  # synthetic | ERA5_Land | CERRA (this project's option value)
    data: str
    backbone: str
    encoder: str
    region: str | None
    region_code: str | None
    resolution: str
    files: dict[str, str]  # role (config/checkpoint/backbone) -> published URL


class DownloadError(RuntimeError):
    """A file could not be fetched or is not what it should be; the message says what to do."""


class HTMLPageError(DownloadError):
    """The server answered with a web page instead of the file (Google Drive notice pages)."""


# ----------------------------------------------------------------------------------------
# the table
# ----------------------------------------------------------------------------------------


def load_models(path: Path = TABLE) -> dict[str, Model]:
    """Read the table of released models (name -> Model), in the README's order."""
    with open(path) as fh:
        rows = json.load(fh)["models"]
    return {row["name"]: Model(**row) for row in rows}


def find_model(name: str, models: dict[str, Model] | None = None) -> Model:
    models = load_models() if models is None else models
    if name not in models:
        close = difflib.get_close_matches(name, models, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise KeyError(f"unknown released model '{name}'{hint}; see: python -m scripts.pretrained list")
    return models[name]


def mirror_base(mirror: str) -> str:
    """``--mirror`` as a URL: a local folder (a lab copy on a shared disk) becomes a file:// URL."""
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", mirror):
        return mirror.rstrip("/")
    return Path(mirror).expanduser().resolve().as_uri()


def model_urls(model: Model, mirror: str | None = None) -> dict[str, str]:
    """Role -> URL: the published link, or ``<mirror>/<name>/<file>``."""
    if not mirror:
        return dict(model.files)
    base = mirror_base(mirror)
    return {role: f"{base}/{model.name}/{FILE_NAMES[role]}" for role in model.files}


# ----------------------------------------------------------------------------------------
# what arrived: HTML page, torch checkpoint, pickle
# ----------------------------------------------------------------------------------------


def looks_like_html(head: bytes) -> bool:
    """Drive's notice pages start with ``<!DOCTYPE html`` or ``<html`` (maybe after blanks/BOM)."""
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:15].lower()
    return start.startswith((b"<!doctype html", b"<html"))


def classify_html(page: bytes) -> str:
    """Name the kind of Drive page so the message can say what to do."""
    text = page.decode("utf-8", "replace").lower()
    if "quota" in text or "too many users" in text or "rate limit" in text:
        return "quota exceeded"
    if "virus" in text or "can't scan" in text or "cannot scan" in text or "download-form" in text:
        return "virus-scan notice"
    if "accounts.google.com" in text or "sign in" in text or "servicelogin" in text:
        return "sign-in page"
    return "web page"


def _advice(kind: str, url: str, dest: Path) -> str:
    steps = [
        f"open the link in a browser (signed in to Google if it asks): {url}",
        f"save the file manually as {dest}",
        "then run the same command again: complete files are checked and kept",
    ]
    if kind == "quota exceeded":
        steps.insert(0, "Drive's download quota for this file is used up; retry in a few hours, or")
    return "\n  ".join(steps)


class _FormParser(html.parser.HTMLParser):
    """Collect Drive's ``download-form`` (action + hidden inputs) from a virus-scan page."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: list[tuple[str, str]] = []
        self._inside = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("id") == "download-form":
            self.action, self._inside = a.get("action", ""), True
        elif tag == "input" and self._inside and a.get("name"):
            self.fields.append((a["name"], a.get("value", "")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._inside = False


def drive_confirm_url(page: bytes, url: str) -> str | None:
    """The URL behind a virus-scan page's "Download anyway" button, if it is on the same host or Google."""
    parser = _FormParser()
    parser.feed(page.decode("utf-8", "replace"))
    if not parser.action:
        return None
    target = urllib.parse.urljoin(url, parser.action)
    host = urllib.parse.urlsplit(target).hostname or ""
    same = host == urllib.parse.urlsplit(url).hostname
    if not (same or host.endswith((".google.com", ".googleusercontent.com"))):
        return None
    query = urllib.parse.urlencode(parser.fields)
    return f"{target}{'&' if '?' in target else '?'}{query}" if query else target


def check_torch_file(path: Path) -> str:
    """Raise DownloadError unless ``path`` is a torch.save file; return its format (no unpickling)."""
    with open(path, "rb") as fh:
        head = fh.read(64)
    if looks_like_html(head):
        raise HTMLPageError(f"{path} is an HTML page, not a checkpoint")
    if head[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
                bad = zf.testzip()  # CRC of every member: a spliced or damaged middle loads as wrong weights
        except (zipfile.BadZipFile, EOFError, OSError) as err:
            raise DownloadError(f"{path} is a truncated or damaged zip ({err}); download it again") from None
        if not any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
            raise DownloadError(f"{path} is a zip file but not a torch.save checkpoint (no data.pkl inside)")
        if bad is not None:
            raise DownloadError(f"{path} is damaged ({bad} fails its CRC check); download it again")
        return "torch zip"
    if head.startswith(_LEGACY_MAGIC):
        return "torch legacy"
    raise DownloadError(f"{path} is not a torch checkpoint (starts with {head[:8]!r})")


def check_pickle_file(path: Path) -> str:
    """Raise DownloadError unless ``path`` is one complete pickle stream (walked, never executed)."""
    data = path.read_bytes()
    if looks_like_html(data[:64]):
        raise HTMLPageError(f"{path} is an HTML page, not a pickled config")
    last = None
    try:
        for op, _arg, pos in pickletools.genops(data):
            last = (op.name, pos)
    except Exception as err:
        raise DownloadError(f"{path} is not a complete pickle ({err}); download it again") from None
    if last is None or last[0] != "STOP" or last[1] != len(data) - 1:
        raise DownloadError(f"{path} is not a single complete pickle")
    return "pickle"


def check_file(path: Path, kind: str) -> str:
    return check_torch_file(path) if kind == "torch" else check_pickle_file(path)


# ----------------------------------------------------------------------------------------
# resumable download
# ----------------------------------------------------------------------------------------


def _total_from_range(value: str | None) -> int | None:
    m = re.match(r"bytes\s+(?:\d+-\d+|\*)/(\d+)", value or "")
    return int(m.group(1)) if m else None


def _start_from_range(value: str | None) -> int | None:
    m = re.match(r"bytes\s+(\d+)-", value or "")
    return int(m.group(1)) if m else None


def _bad_url(url: str, dest: Path, why: object) -> DownloadError:
    return DownloadError(f"{dest.name}: cannot fetch {url} ({why}); pass --mirror as a folder or "
                         "an http(s):// or file:// URL")


def _missing_local_file(err: BaseException) -> bool:
    """A file:// URL naming no file (urllib wraps the OSError in a URLError)."""
    reason = getattr(err, "reason", err)
    return isinstance(reason, (FileNotFoundError, NotADirectoryError, IsADirectoryError))


def _report(msg: str, end: str = "\n") -> None:
    print(msg, file=sys.stderr, end=end, flush=True)


def _html_failure(page: bytes, url: str, dest: Path) -> HTMLPageError:
    kind = classify_html(page)
    saved = dest.with_name(dest.name + ".html")
    saved.write_bytes(page)
    return HTMLPageError(
        f"{dest.name}: the server sent a {kind} (HTML) instead of the file (page kept in {saved}).\n"
        f"  {_advice(kind, url, dest)}"
    )


def fetch(
    url: str, dest: Path, kind: str, retries: int = 3, timeout: float = 60.0, quiet: bool = False
) -> str:
    """Download ``url`` to ``dest`` through ``dest.part`` (resumed with Range); return what happened.

    Returns "present" (a valid file was already there), "downloaded" or "resumed". Raises
    DownloadError (HTMLPageError for Drive pages) with advice; a partial file is kept for the next run.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    if dest.exists():
        try:
            check_file(dest, kind)
            return "present"
        except DownloadError as err:
            _report(f"warning: {err}; downloading it again")
    live = not quiet and sys.stderr.isatty()  # a \r progress line only where it renders
    resumed = False
    followed_form = False
    attempt = 0
    while True:
        offset = part.stat().st_size if part.exists() else 0
        headers = {"User-Agent": USER_AGENT}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        try:
            resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
        except (ValueError, http.client.InvalidURL) as err:  # no scheme, a bad port
            raise _bad_url(url, dest, err) from None
        except urllib.error.HTTPError as err:
            if err.code == 416 and offset:  # nothing left to send: the part may be complete
                total = _total_from_range(err.headers.get("Content-Range"))
                if total is None or total == offset:
                    break
                part.unlink()
                continue
            body = err.read(CHUNK) if err.fp else b""
            if looks_like_html(body):
                raise _html_failure(body, url, dest) from None
            if err.code in (408, 429, 500, 502, 503, 504) and attempt < retries:
                attempt += 1
                time.sleep(min(2**attempt, 30))
                continue
            raise DownloadError(f"{dest.name}: HTTP {err.code} {err.reason} from {url}") from None
        except (OSError, http.client.HTTPException) as err:
            if _missing_local_file(err):  # a mirror folder without the file: retrying cannot help
                raise DownloadError(f"{dest.name}: {url} does not exist; a mirror must hold "
                                    f"<name>/{dest.name} (check --mirror)") from None
            if "unknown url type" in str(getattr(err, "reason", "")):  # a scheme urllib has no handler for
                raise _bad_url(url, dest, err.reason) from None
            if attempt < retries:
                attempt += 1
                time.sleep(min(2**attempt, 30))
                continue
            again = f"to resume from {part}" if part.exists() else "to retry"
            raise DownloadError(f"{dest.name}: network error ({err}); run it again {again}") from None
        with resp:
            first = resp.read(CHUNK)
            if looks_like_html(first):
                page = first + resp.read(4 * CHUNK)
                confirm = None if followed_form else drive_confirm_url(page, url)
                if confirm:
                    _report(f"{dest.name}: following the download page's confirmation link")
                    url, followed_form = confirm, True
                    continue
                raise _html_failure(page, url, dest)
            if resp.status == 206 and _start_from_range(resp.headers.get("Content-Range")) != offset:
                raise DownloadError(f"{dest.name}: the server sent another byte range than asked ({url})")
            if offset and resp.status == 206:
                mode, resumed = "ab", True
                total = _total_from_range(resp.headers.get("Content-Range"))
            else:  # fresh start, or the server ignored the Range header: start over
                mode, offset = "wb", 0
                length = resp.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
            done = offset
            try:
                with open(part, mode) as out:
                    chunk = first
                    while chunk:
                        out.write(chunk)
                        done += len(chunk)
                        if live:
                            size = f"{done / 2**20:.1f}" + (f"/{total / 2**20:.1f}" if total else "")
                            _report(f"\r  {dest.name}: {size} MiB", end="")
                        chunk = resp.read(CHUNK)
            except (OSError, http.client.HTTPException) as err:  # URLError, timeouts, resets, IncompleteRead
                if live:
                    _report("")
                if attempt < retries:
                    attempt += 1
                    continue
                msg = f"{dest.name}: interrupted ({err}); run again to resume from {part}"
                raise DownloadError(msg) from None
            if live:
                _report("")
        if total is not None and done < total:
            if attempt < retries:
                attempt += 1
                continue
            raise DownloadError(f"{dest.name}: got {done} of {total} bytes; run again to resume from {part}")
        break
    try:
        check_file(part, kind)
    except DownloadError as err:
        bad = dest.with_name(dest.name + ".bad")
        part.replace(bad)
        msg = f"{err}\n  (moved to {bad}; download again, or fetch it manually to {dest})"
        raise DownloadError(msg) from None
    part.replace(dest)
    return "resumed" if resumed else "downloaded"


def download(model: Model, root: Path, mirror: str | None = None, retries: int = 3, timeout: float = 60.0,
             quiet: bool = False) -> dict[str, str]:
    """Fetch every file of ``model`` into ``root/<name>/``; role -> status. Raises on the first failure."""
    folder = Path(root) / model.name
    status = {}
    for role, url in model_urls(model, mirror).items():
        dest = folder / FILE_NAMES[role]
        status[role] = fetch(url, dest, FILE_KINDS[role], retries=retries, timeout=timeout, quiet=quiet)
        if not quiet:
            _report(f"{model.name}: {dest} {status[role]} ({dest.stat().st_size / 2**20:.1f} MiB)")
    return status


# ----------------------------------------------------------------------------------------
# how to evaluate
# ----------------------------------------------------------------------------------------


def evaluate_command(model: Model, root: Path | str = DEFAULT_DIR) -> str:
    """The command line that evaluates a downloaded model (data paths left as <placeholders>)."""
    folder = Path(root) / model.name
    q = shlex.quote
    # --name: the published configs carry the authors' run name, the same for every model, so the
    # 15 evaluations would write metrics_test.json into one folder, each over the previous one
    args = (f"--config {q(str(folder / 'config.pkl'))} --checkpoint {q(str(folder / 'checkpoint.pth'))} "
            f"--name {q(model.name)}")
    synthetic = "--root_synthetic <path to Synthetic/synthetic_CERRA>"
    if model.method == "ide":
        if model.dataset == "synthetic":
            return f"python test_synthetic.py {args} {synthetic}"
        if model.dataset == "ERA5_Land":
            return (
                f"python test_ERA5_Land.py {args} --root_ERA5_Land <path to ERA5-Land> "
                f"--root_NOAA <path to NOAA_CORDEX> --region {model.region_code}"
            )
        return (
            f"python test_CERRA.py {args} --root_CERRA <path to CERRA> "
            "--root_NOAA_CERRA <path to NOAA_CERRA>"
        )
    entry = BASELINE_ENTRIES[model.method]
    cmd = f"python -m {entry} --method {model.method} {args} {synthetic}"
    if "backbone" in model.files:
        cmd += f" --simplenet_backbone {q(str(folder / 'backbone.pth'))}"
    return cmd


def format_table(models: dict[str, Model]) -> str:
    head = ("NAME", "METHOD", "DATASET", "BACKBONE", "REGION", "RESOLUTION", "FILES")
    rows = [head] + [
        (
            m.name, m.method, m.dataset, m.backbone,
            f"{m.region} ({m.region_code})" if m.region_code else (m.region or "-"),
            m.resolution, ",".join(m.files),
        )
        for m in models.values()
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def _describe_config(path: Path, model: Model | None = None) -> None:
    """After a download, say whether the config maps onto this project and fits the table's entry."""
    from config import FIELDS
    from utils.published import MACHINE_SPECIFIC, RENAMED, load_namespace, read_published_config

    try:
        values = read_published_config(path, quiet=True, known=FIELDS)
        dropped = sorted(k for k in load_namespace(path)
                         if RENAMED.get(k, k) not in values and RENAMED.get(k, k) not in MACHINE_SPECIFIC)
    except ValueError as err:
        _report(f"note: this project cannot read the config: {err}")
        return
    _report(f"  config: encoder {values.get('encoder')}, dataset {values.get('dataset', '?')}, "
            f"{len(values.get('variables', []))} variables, in_channels {values.get('in_channels')}"
            + (f"; published options unknown here (ignored): {', '.join(dropped)}" if dropped else ""))
    for problem in _table_mismatch(values, model) if model is not None else []:
        _report(f"warning: {path}: {problem}; is it the file of {model.name}? "
                "(check --mirror; delete it to fetch it again)")


def _table_mismatch(values: dict, model: Model) -> list[str]:
    """Where a downloaded config contradicts the table (a mirror with files in the wrong folders)."""
    out = []
    if values.get("encoder") not in (None, model.encoder):
        out.append(f"its encoder is {values['encoder']}, the released {model.name} uses {model.encoder}")
    if values.get("dataset") not in (None, model.dataset):
        out.append(f"its variables are {values['dataset']} ones, the released {model.name} was trained on "
                   f"{model.dataset}")
    return out


def dir_problem(root: Path) -> str | None:
    """Why ``--dir`` cannot hold the downloads (None: it can): checked before anything is fetched."""
    from utils.folders import unwritable

    blocked = unwritable(root)
    if blocked is None:
        return None
    where, why = blocked
    if why == "permission denied":
        return f"option --dir: cannot write in {where} (permission denied); pass a --dir you can write to"
    if where == root:
        return f"option --dir: {root} is a file, not a folder; pass a folder (or a path that does not exist yet)"
    return f"option --dir: {where} is a file, not a folder, so {root} cannot be made; pass another --dir"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.pretrained", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_list = sub.add_parser("list", help="show the released models")
    p_list.add_argument("--json", action="store_true", help="print the table as JSON")
    p_dl = sub.add_parser("download", help="fetch config + checkpoint (resumable)")
    p_cmd = sub.add_parser("command", help="print the command that evaluates a downloaded model")
    for p in (p_dl, p_cmd):
        p.add_argument("names", nargs="+", metavar="NAME", help="released model name(s), or 'all'")
        p.add_argument("--dir", default=DEFAULT_DIR, help=f"download folder (default {DEFAULT_DIR})")
    p_dl.add_argument("--mirror", default=os.environ.get(MIRROR_ENV),
                      help=f"fetch MIRROR/<name>/<file> instead of the Drive links (env {MIRROR_ENV})")
    p_dl.add_argument("--retries", type=int, default=3, help="retries (with resume) per file (default 3)")
    p_dl.add_argument("--timeout", type=float, default=60.0, help="socket timeout in seconds (default 60)")
    p_dl.add_argument("--quiet", action="store_true", help="no progress output")
    args = parser.parse_args(argv)

    models = load_models()
    if args.cmd == "list":
        if args.json:
            print(json.dumps([dataclasses.asdict(m) for m in models.values()], indent=2))
        else:
            print(format_table(models))
        return 0
    try:
        names = list(models) if args.names == ["all"] else args.names
        chosen = [find_model(n, models) for n in names]
    except KeyError as err:
        parser.error(err.args[0])
    if args.cmd == "command":
        for m in chosen:
            print(evaluate_command(m, args.dir))
        return 0
    problem = dir_problem(Path(args.dir))
    if problem:
        parser.error(problem)
    failed = []
    for m in chosen:
        try:
            download(m, Path(args.dir), args.mirror, args.retries, args.timeout, args.quiet)
        except DownloadError as err:
            _report(f"error: {m.name}: {err}")
            failed.append(m.name)
            continue
        except OSError as err:  # a folder or file that cannot be written (a full disk, no permission)
            blocked = isinstance(err, (FileExistsError, NotADirectoryError))  # a file where a folder must go
            todo = "move that file" if blocked else "free space or fix the permissions"
            _report(f"error: {m.name}: cannot write {err.filename or args.dir}: {err.strerror or err}; "
                    f"{todo}, or pass another --dir")
            failed.append(m.name)
            continue
        _describe_config(Path(args.dir) / m.name / "config.pkl", m)
        print(f"# evaluate {m.name}:")
        print(evaluate_command(m, args.dir))
    if failed:
        _report(f"failed: {' '.join(failed)} (partial files are kept; run the same command again to resume)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
