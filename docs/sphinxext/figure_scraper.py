"""Sphinx-gallery scraper for the figures the library returns.

The library's plotting functions build :class:`matplotlib.figure.Figure` objects
without pyplot (so plotting never changes the user's backend), and sphinx-gallery's
own scraper finds figures only through pyplot. This one finds them where the
examples keep them: in the example's variables, alone (``fig = ...``) or in a tuple
or list (``fig, ax, artists = ...``). Each figure is saved once, after the code
block that made it, and the first one becomes the example's thumbnail.
"""

from __future__ import annotations

import weakref

from matplotlib.figure import Figure
from sphinx_gallery.scrapers import figure_rst

_SAVED: weakref.WeakSet = weakref.WeakSet()


def _figures(value):
    if isinstance(value, Figure):
        yield value
    elif isinstance(value, (tuple, list)):
        for item in value:
            if isinstance(item, Figure):
                yield item


def scrape_figures(block, block_vars, gallery_conf, **kwargs) -> str:
    """Save the block's new figures and return their reST, as sphinx-gallery asks."""
    new = []
    for value in list(block_vars["example_globals"].values()):
        for figure in _figures(value):
            # pyplot's figures are left to sphinx-gallery's matplotlib scraper.
            if figure not in _SAVED and figure.canvas.manager is None:
                _SAVED.add(figure)
                new.append(figure)
    paths = []
    for figure, path in zip(new, block_vars["image_path_iterator"], strict=False):
        figure.savefig(path, dpi=100)
        paths.append(path)
    if not paths:
        return ""
    titles = ", ".join(
        figure._suptitle.get_text() if figure._suptitle else "" for figure in new
    )
    return figure_rst(paths, gallery_conf["src_dir"], titles)
