"""What the browser tests do the same way: log in, watch the page's policy, wait for its
scripts, drag a card."""

from __future__ import annotations

from tests.factories import PASSWORD

# Collects Content-Security-Policy violations in every document, before its own scripts.
POLICY_WATCH = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(`${event.effectiveDirective} ${event.blockedURI} ${event.sourceFile}`);
}, true);
"""


def watch_policy(page) -> None:
    """From the next document on, every Content-Security-Policy violation is recorded."""
    page.add_init_script(POLICY_WATCH)


def policy_violations(page) -> list[str]:
    """The violations the current document recorded, as 'directive blocked-uri source'."""
    return page.evaluate("() => window.__violations")


def log_in(page, base: str, username: str = "olga", *, path: str = "/login/") -> None:
    """Sign in through the login form at `path` and wait until the browser has left it."""
    page.goto(f"{base}{path}")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.locator("form [type=submit], form button.primary").first.click()
    page.wait_for_url(lambda url: "/login/" not in url)


def scripts_ready(page) -> None:
    """Wait for the page's deferred scripts: until htmx has bound a link, a click on it is a
    plain navigation (right for a user on a slow line, not what a test goes on to use)."""
    page.wait_for_load_state("load")
    page.wait_for_function("() => Boolean(window.htmx) && document.readyState === 'complete'")


def drag(page, source, target) -> None:
    """Press on `source`, move in small steps over the top edge of `target`, release."""
    start, end = source.bounding_box(), target.bounding_box()
    x, y = start["x"] + start["width"] / 2, start["y"] + start["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x, y - 12, steps=4)
    page.mouse.move(end["x"] + end["width"] / 2, end["y"] + 6, steps=20)
    page.mouse.up()


def drag_before(page, source, target) -> None:
    """Press on `source`, move in small steps to the left edge of `target` (the grid runs in
    rows: a card dropped on another's left half goes before it), release."""
    start, end = source.bounding_box(), target.bounding_box()
    x, y = start["x"] + start["width"] / 2, start["y"] + start["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x - 12, y, steps=4)
    page.mouse.move(end["x"] + 8, end["y"] + end["height"] / 2, steps=25)
    page.mouse.up()


def fits(page) -> bool:
    """Nothing on the page runs off the side of the window."""
    return page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
