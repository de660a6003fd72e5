"""Report pages from Jinja2 templates, with autoescaping on.

The templates live in ``workbench/reports/templates/`` and the stylesheet in
``workbench/reports/static/report.css``; :func:`render_page` inlines the stylesheet
into each page so a report folder stays self-contained. Every value a template
prints is HTML-escaped unless it is :class:`markupsafe.Markup`, so untrusted text
(model and data specs, check names, details, errors) needs no escaping by the caller.
"""

from __future__ import annotations

import math
from functools import cache
from importlib import resources
from urllib.parse import quote

import jinja2
from markupsafe import Markup

VERDICT_CLASS = {"pass": "v-pass", "inconclusive": "v-inconclusive", "warn": "v-warn", "fail": "v-fail", "n/a": "v-na"}
MISSING = "\u2014"  # what a table shows for a missing value (an em dash)


def format_number(value) -> str:
    """A measured value as shown in a table: 4 significant digits, an em dash when missing."""
    if value is None or isinstance(value, jinja2.Undefined):
        return MISSING
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return MISSING if math.isnan(value) else f"{value:.4g}"
    return str(value)


def verdict_class(verdict: str) -> str:
    """The CSS class of a verdict badge (``v-na`` for anything unknown)."""
    return VERDICT_CLASS.get(verdict, "v-na")


def url_path(value) -> str:
    """A relative link target, percent-encoded (``javascript:`` becomes ``javascript%3A``)."""
    return quote(str(value))


@cache
def environment() -> jinja2.Environment:
    """The Jinja2 environment of the report templates (autoescape on; ``None`` prints as nothing)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("workbench.reports", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2"), default=True),
        finalize=lambda value: "" if value is None else value,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(number=format_number, verdict_class=verdict_class, url=url_path)
    return env


@cache
def stylesheet() -> Markup:
    """The report stylesheet (``static/report.css``), trusted text to inline in a ``<style>`` element."""
    return Markup(resources.files("workbench.reports").joinpath("static", "report.css").read_text(encoding="utf-8"))


def render_page(template: str, **context) -> str:
    """Render ``templates/<template>`` with ``context`` and the inlined stylesheet."""
    return environment().get_template(template).render(stylesheet=stylesheet(), **context)


def template_source(name: str) -> str:
    """The text of ``templates/<name>`` (for template engines other than :func:`environment`, such as nbconvert's)."""
    return resources.files("workbench.reports").joinpath("templates", name).read_text(encoding="utf-8")
