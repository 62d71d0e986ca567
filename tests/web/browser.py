"""Headless Chromium from Debian's package, driven by Playwright (no browser download)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LAPTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}


def launch(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)


def chromium_missing() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    return None


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def open_playground(page: Any, url: str, key: str | None = None) -> None:
    """Load the page, answer the key prompt when there is one, and wait until the panels are loaded."""
    page.goto(url + "/playground")
    if key is not None:
        page.get_by_label("Key", exact=True).fill(key)
        page.get_by_role("button", name="Use key").click()
    page.wait_for_selector("body[data-ready='true']")
