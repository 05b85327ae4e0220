"""Steps the review page's browser tests share."""

from __future__ import annotations


def wait_for_preload(page, after: int):
    """The page has fetched the pair after `after` (a decision then shows it without a page load)."""
    page.wait_for_function(
        f"() => performance.getEntriesByType('resource').some(e => e.name.includes('/review/next?after={after}'))"
    )


def shown(page, pair, version=None):
    selector = f"#review[data-pair='{pair.pk}']" + (f"[data-version='{version}']" if version else "")
    page.wait_for_selector(selector)
    page.wait_for_load_state("load")


def open_queue(page, base: str, project, reviewer, first):
    """Log in, open the project's review queue on `first`, and wait until the pair after it is preloaded."""
    from tests.browser import log_in

    log_in(page, base, reviewer)
    page.goto(f"{base}/p/{project.slug}/review/")
    shown(page, first)
    wait_for_preload(page, first.pk)


def replace_answer(page, text: str):
    page.focus("#id_answer")
    page.keyboard.press("Control+a")
    page.keyboard.type(text)
