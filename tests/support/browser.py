"""Headless Chromium for the UI tests: Debian's `chromium` and `chromium-driver`, via Selenium.

Selenium is told where both binaries are, so it never tries to download a browser or a
driver. `make test` installs the Debian packages when missing (as root); without them
`missing_reason()` says why and the tests skip. Every wait is bounded; `stop()` quits
the browser and then makes sure the driver process is gone, by its PID.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
from typing import TYPE_CHECKING, Any

from tests.support.wait import wait_until_sync

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

__all__ = ("Browser", "find_binaries", "headless_browser", "missing_reason")

_CHROMIUM = ("chromium", "chromium-browser")
_DRIVER = ("chromedriver",)


def find_binaries() -> tuple[str, str] | None:
    """(chromium, chromedriver) paths, or None when either is missing."""
    browser = next((found for name in _CHROMIUM if (found := shutil.which(name))), None)
    driver = next((found for name in _DRIVER if (found := shutil.which(name))), None)
    if browser is None or driver is None:
        return None
    return browser, driver


def missing_reason() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    if find_binaries() is None:
        return (
            "headless Chromium is not installed: `make test` installs Debian's chromium and "
            "chromium-driver when run as root (apt-get install chromium chromium-driver)"
        )
    return None


class Browser:
    """One headless Chromium page, driven through chromedriver."""

    def __init__(self, driver: Any, driver_pid: int | None) -> None:
        self.driver = driver
        self.driver_pid = driver_pid

    def open(self, url: str) -> None:
        """Load `url` (a hash change when only the fragment differs)."""
        self.driver.get(url)

    def js(self, script: str, *args: object) -> Any:
        """Run `script` in the page (a function body: `return ...`)."""
        return self.driver.execute_script(script, *args)

    def text(self, selector: str) -> str | None:
        """The text of the first element matching the CSS `selector`, or None."""
        result = self.js(
            "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;",
            selector,
        )
        return None if result is None else str(result)

    def visible(self, selector: str) -> bool:
        """Whether an element matches `selector` and is displayed."""
        return bool(
            self.js(
                "const e = document.querySelector(arguments[0]);"
                "return !!e && !e.closest('[hidden]') && e.getClientRects().length > 0;",
                selector,
            )
        )

    def count(self, selector: str) -> int:
        """How many elements match `selector`."""
        return int(self.js("return document.querySelectorAll(arguments[0]).length;", selector))

    def wait_for(self, predicate: Any, *, timeout: float, message: str) -> None:
        """Poll a page condition until it holds, naming what the page showed when not."""
        wait_until_sync(
            predicate,
            timeout=timeout,
            interval=0.05,
            message=lambda: f"{message}; page text: {self.page_text()[:1500]!r}",
        )

    def page_text(self) -> str:
        """The visible text of the page, for failure messages."""
        return str(self.js("return document.body ? document.body.innerText : '';"))

    def screenshot(self, path: Path) -> Path:
        """Save a PNG of the viewport to `path`."""
        self.driver.save_screenshot(str(path))
        return path

    def stop(self) -> None:
        """Quit Chromium and chromedriver; kill the driver by PID if it lingers."""
        with contextlib.suppress(Exception):
            self.driver.quit()
        if self.driver_pid is not None:
            with contextlib.suppress(ProcessLookupError, ChildProcessError):
                os.kill(self.driver_pid, signal.SIGKILL)
                os.waitpid(self.driver_pid, 0)


@contextlib.contextmanager
def headless_browser(
    profile_dir: Path, *, width: int = 1280, height: int = 1000
) -> Iterator[Browser]:
    """A headless Chromium with its own profile under `profile_dir`, stopped at the end."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binaries = find_binaries()
    assert binaries is not None, missing_reason()
    browser_path, driver_path = binaries
    options = webdriver.ChromeOptions()
    options.binary_location = browser_path
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        f"--window-size={width},{height}",
        f"--user-data-dir={profile_dir}",
    ):
        options.add_argument(argument)
    service = Service(executable_path=driver_path, log_output=os.devnull)
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(15)
    driver.set_script_timeout(10)
    process = getattr(service, "process", None)
    browser = Browser(driver, process.pid if process is not None else None)
    try:
        yield browser
    finally:
        browser.stop()
