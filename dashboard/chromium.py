"""Headless Debian Chromium through selenium, for the browser tests and the render benchmark.

Running as root needs ``--no-sandbox``; a fresh profile directory per driver keeps runs
independent; background networking, component updates and sync are off so the browser talks
to nothing but the dashboard on loopback.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-extensions",
    "--window-size=1500,1100",
    "--enable-unsafe-swiftshader",  # software WebGL for the timeline's Scattergl (content is our own app)
)


def available() -> bool:
    return Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()


def driver(download_dir: Path | None = None) -> Any:
    """A selenium Chrome driver on Debian's chromium with a fresh ``--user-data-dir``.

    The profile directory is removed when ``driver.quit()`` is called via `quit_driver`."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="tinyjail-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in FLAGS:
        opts.add_argument(flag)
    opts.add_argument(f"--user-data-dir={profile}")
    if download_dir is not None:
        opts.add_experimental_option(
            "prefs", {"download.default_directory": str(download_dir), "download.prompt_for_download": False}
        )
    drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    setattr(drv, "tinyjail_profile", profile)  # noqa: B010 (removed in quit_driver)
    return drv


def quit_driver(drv: Any) -> None:
    try:
        drv.quit()
    finally:
        shutil.rmtree(getattr(drv, "tinyjail_profile", ""), ignore_errors=True)
