"""Render an HTML report to a PNG with headless Chromium (to check it really displays).

    python scripts/render_report.py log/exp1/report_test.html report.png [--width 1280 --height 2000]

Chromium runs without network, GPU or a user profile (a temporary one is used).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_browser() -> str | None:
    return next((p for p in map(shutil.which, BROWSERS) if p), None)


def render(
    html_file: str | Path, png: str | Path, width: int = 1280, height: int = 2000, timeout: float = 120.0
) -> Path:
    """Screenshot ``html_file`` into ``png``; raises RuntimeError naming what failed."""
    html_file, png = Path(html_file).resolve(), Path(png).resolve()
    if not html_file.is_file():
        raise FileNotFoundError(f"{html_file} does not exist")
    browser = find_browser()
    if browser is None:
        raise RuntimeError(
            f"no Chromium found on PATH (tried {', '.join(BROWSERS)}); apt-get install chromium"
        )
    png.parent.mkdir(parents=True, exist_ok=True)
    shot = png.with_name(f".{png.stem}.tmp{os.getpid()}.png")  # an old screenshot never passes for a new one
    with tempfile.TemporaryDirectory() as profile:
        cmd = [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--screenshot={shot}",
            f"--window-size={width},{height}",
            html_file.as_uri(),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0 or not shot.is_file():
        shot.unlink(missing_ok=True)
        last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        raise RuntimeError(f"{browser} failed (exit {proc.returncode}) on {html_file}: {last}")
    if png.exists():  # redrawn in place like the figures, never silently
        print(f"replacing {png}", file=sys.stderr)
    os.replace(shot, png)
    return png


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("html", help="report HTML file")
    p.add_argument("png", help="screenshot to write")
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=2000)
    a = p.parse_args(argv)
    try:
        print(render(a.html, a.png, a.width, a.height))
    except (RuntimeError, FileNotFoundError, subprocess.TimeoutExpired) as err:
        print(f"render_report: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
