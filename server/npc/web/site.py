"""What a flow contributes to the public site and to the regulator's reports.

A flow plugs pages in by declaring them on its manifest (``npc.core.flow.Flow.web``, plain data)
and building them in its ``web_routes`` method (:class:`ServesWeb`), called by
``npc.web.http.build_app``, which refuses to start when the two differ (:func:`check_web_routes`)::

    web = (WebRoute.page("/x/consulta"), WebRoute.report("x-resumen"))

    def web_routes(self) -> WebRoutes:
        return WebRoutes(pages=[LookupPage(...)], reports=[Report(...)])

- A :class:`LookupPage` is a public form (a case code plus a proof of identity, typically) whose
  answer is a :class:`StatusView` in plain Spanish, or ``None``. The site renders the form, validates
  each :class:`Field`, rate-limits lookups per client address, and answers ``None`` with one generic
  message, so a wrong code and a wrong document are indistinguishable.
- A :class:`Report` is a table (columns and rows) for the regulator, per operator and period; the
  site renders it as HTML, CSV and JSON from the same rows and asks for the regulator's token.
- ``routes`` (raw aiohttp route definitions) and ``templates`` (a folder whose templates may extend
  ``base.html``) are for a page that is neither; such a handler renders with
  ``npc.web.render.render(request, "its_template.html", ...)``.

Nothing here touches aiohttp's application: flows only describe what they offer.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from aiohttp import web

from npc.core.flow import REPORTS_PATH, Audience, WebRoute

# The pages and the notices a flow sends say dates the same way: one definition, re-exported.
from npc.core.spanish import mask_number as mask_number
from npc.core.spanish import spanish_date as spanish_date
from npc.core.spanish import spanish_instant as spanish_instant
from npc.web.charts import BarChart

NOT_FOUND = (
    "No encontramos una solicitud con esos datos. Revise el código y el número de documento e "
    "inténtelo de nuevo. Si el problema continúa, comuníquese con su operador."
)


@dataclass(frozen=True)
class Field:
    """One text field of a public form.

    Attributes:
        name: the form field's name.
        label: the visible label, in Spanish.
        pattern: a regular expression the whole normalised value must match.
        error: what the subscriber reads when it does not match.
        hint: an example or explanation shown under the label.
        max_length: the longest value accepted.
        uppercase: normalise to upper case (codes such as ``sp0000000001``).
        inputmode: the keyboard a phone shows (``text`` or ``numeric``).
        choices: when given, the field is a drop-down of the (value, label) pairs this returns,
            read afresh for every form; a value not among them is refused with `error`.
    """

    name: str
    label: str
    pattern: str
    error: str
    hint: str = ""
    max_length: int = 40
    uppercase: bool = False
    inputmode: str = "text"
    choices: Callable[[], Awaitable[Sequence[tuple[str, str]]]] | None = None

    def normalise(self, raw: str) -> str:
        """The value without spaces (people paste codes with them), upper-cased if asked."""
        value = "".join(raw.split())[: self.max_length * 2]
        return value.upper() if self.uppercase else value

    def check(self, value: str) -> str | None:
        """The error message for `value`, or None when it is acceptable."""
        if len(value) > self.max_length or not re.fullmatch(self.pattern, value):
            return self.error
        return None


@dataclass(frozen=True)
class StatusView:
    """The answer of a lookup, ready to show.

    Attributes:
        heading: what was found (``Solicitud de portabilidad SP0000000001``).
        state: the state in a few words (``Programada``).
        explanation: what the state means for the subscriber and what comes next.
        details: label and value pairs (dates already formatted).
        tone: ``info``, ``ok``, ``warning`` or ``error``; only changes the colour of the state.
    """

    heading: str
    state: str
    explanation: str
    details: Sequence[tuple[str, str]] = ()
    tone: str = "info"


@dataclass(frozen=True)
class LookupPage:
    """A public lookup form at `path` (GET shows it, POST answers it).

    Attributes:
        path: where it is served, e.g. ``/portabilidad/consulta``.
        title: the page's heading and its entry on the home page.
        intro: one paragraph saying what the page is for.
        fields: the form's fields, in order.
        lookup: receives the normalised, validated values by field name; returns what to show, or
            None when nothing matches. It should cost the same whether or not the case exists (one
            query that matches code and document together), so timing tells nothing.
        submit_label: the button's text.
        not_found: the single message for every miss.
        nav_label: its short name in the site's navigation (the title when empty).
        jurisdiction: the country whose subscribers it serves (its home page and navigation);
            None: the site's own.
    """

    path: str
    title: str
    intro: str
    fields: tuple[Field, ...]
    lookup: Callable[[dict[str, str]], Awaitable[StatusView | None]]
    submit_label: str = "Consultar"
    not_found: str = NOT_FOUND
    nav_label: str = ""
    jurisdiction: str | None = None


@dataclass(frozen=True)
class Column:
    """A report column: its key in CSV and JSON (English), its Spanish header, and the kind of
    its values: ``text`` (short, kept on one line), ``prose`` (long text that wraps), ``number``,
    ``instant`` (an aware datetime, shown in local time), ``date``, ``json``, ``operator`` (an
    operator's id: the page shows its name, CSV and JSON the id) or ``flow`` (a flow's name: the
    page shows its process's Spanish label, ``npc.core.flow.Flow.label``)."""

    key: str
    label: str
    kind: str = "text"


@dataclass(frozen=True)
class ReportQuery:
    """The filter of a report: an operator (None for all) and a period of local dates.

    ``start`` and ``end`` are the UTC instants of the period's local midnights (end exclusive).
    """

    operator: str | None
    first_day: date
    last_day: date
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Report:
    """A regulator's report: one table computed for an operator and a period.

    Attributes:
        slug: its URL name, ``/reportes/<slug>``.
        title: its heading.
        description: what it lists and where the rules come from.
        columns: the table's columns.
        rows: computes the rows (mappings by column key) for a query.
        operators_see_own: an operator's token may read it too, limited to its own rows.
        jurisdiction: whose calendar turns the period's dates into instants (the site's default
            when None).
        period: ``day`` (the filter picks dates) or ``month`` (it picks whole months, AAAA-MM,
            for figures defined per calendar month; the query then runs from the first day of
            the first month to the last day of the last).
        chart: draws the rows as a chart above the table (``npc.web.charts``), given the
            query and the operators' names by id.
        by_operator: the regulator may filter by operator (False: figures of the
            clearinghouse itself, such as its deadlines' lateness).
    """

    slug: str
    title: str
    description: str
    columns: tuple[Column, ...]
    rows: Callable[[ReportQuery], Awaitable[Sequence[Mapping[str, Any]]]]
    operators_see_own: bool = False
    jurisdiction: str | None = None
    period: str = "day"
    chart: (
        Callable[[ReportQuery, Sequence[Mapping[str, Any]], Mapping[str, str]], BarChart] | None
    ) = None
    by_operator: bool = True


@dataclass(frozen=True)
class WebRoutes:
    """Everything a flow adds to the HTTP side."""

    pages: Sequence[LookupPage] = ()
    reports: Sequence[Report] = ()
    routes: Sequence[web.AbstractRouteDef] = ()
    templates: Path | None = None

    def served(self) -> tuple[WebRoute, ...]:
        """What these routes serve, in the manifest's terms: a page is public (GET and POST), a
        report is behind the regulator's token (and an operator's, for its own rows), and a raw
        route is public (the site puts no token before it)."""
        found = [WebRoute.page(page.path) for page in self.pages]
        found += [
            WebRoute.report(r.slug, operators_see_own=r.operators_see_own) for r in self.reports
        ]
        methods: dict[str, set[str]] = {}
        for route in self.routes:
            if isinstance(route, web.RouteDef):
                methods.setdefault(route.path, set()).add(route.method.upper())
            elif isinstance(route, web.StaticDef):
                methods.setdefault(route.prefix, set()).add("GET")
            else:
                raise TypeError(f"a flow's raw route must be a RouteDef or StaticDef: {route!r}")
        found += [WebRoute(path, frozenset(m), Audience.PUBLIC) for path, m in methods.items()]
        return tuple(found)


@runtime_checkable
class ServesWeb(Protocol):
    """A flow's manifest with pages or reports (``npc.core.flow.Flow`` has none by default)."""

    def web_routes(self) -> WebRoutes:
        """The flow's public pages and regulator reports, built after ``setup``."""
        ...


class WebRoutesMismatch(ValueError):
    """What the flows serve differs from what their manifests declare: the site does not start."""


# The site's own addresses: no flow may claim them.
SITE_PATHS = frozenset({"/", "/metrics", "/healthz", "/static", REPORTS_PATH})


def route_mismatches(
    flow: str, declared: Iterable[WebRoute], served: Iterable[WebRoute]
) -> list[str]:
    """Each difference between what `flow` declares and what it serves, in words; [] when none."""
    found: list[str] = []
    by_path: dict[str, WebRoute] = {}
    for route in declared:
        if route.path in by_path:
            found.append(f"flow {flow!r} declares {route.path} twice")
        by_path[route.path] = route
    serving: dict[str, WebRoute] = {}
    for route in served:
        if route.path in serving:
            found.append(f"flow {flow!r} serves {route.path} twice")
        serving[route.path] = route
    for path in sorted(serving.keys() - by_path.keys()):
        found.append(f"flow {flow!r} serves {serving[path]} without declaring it")
    for path in sorted(by_path.keys() - serving.keys()):
        found.append(f"flow {flow!r} declares {by_path[path]} but does not serve it")
    for path in sorted(by_path.keys() & serving.keys()):
        if by_path[path] != serving[path]:
            found.append(f"flow {flow!r} declares {by_path[path]} but serves {serving[path]}")
    return found


def check_web_routes(flows: Mapping[str, tuple[Iterable[WebRoute], Iterable[WebRoute]]]) -> None:
    """Refuse (:class:`WebRoutesMismatch`, every problem listed) when a flow serves a route it
    does not declare or declares one it does not serve, when two flows claim one path, or when a
    flow claims one of the site's own. `flows` maps each flow's name to (declared, served)."""
    problems: list[str] = []
    owners: dict[str, str] = {}
    for flow, (declared, served) in flows.items():
        declared = tuple(declared)
        problems += route_mismatches(flow, declared, served)
        for path in sorted({route.path for route in declared}):
            if path in SITE_PATHS:
                problems.append(f"flow {flow!r} claims {path}, one of the site's own paths")
            elif path in owners:
                problems.append(f"flows {owners[path]!r} and {flow!r} both claim {path}")
            else:
                owners[path] = flow
    if problems:
        raise WebRoutesMismatch(
            "the web routes differ from the flows' manifests:\n  " + "\n  ".join(problems)
        )


def days_between(first: date, last: date) -> list[date]:
    """Every date from `first` to `last`, both included."""
    return [date.fromordinal(n) for n in range(first.toordinal(), last.toordinal() + 1)]
