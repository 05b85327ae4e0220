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
