"""Reading a regulator's report in its three formats, to check they carry the same rows."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import datetime
from zoneinfo import ZoneInfo

import aiohttp

LIMA = ZoneInfo("America/Lima")


def html_rows(body: str) -> list[list[str]]:
    """The cells of the report table's body, unescaped ("Sin registros" gives no row)."""
    tbody = re.search(r"<tbody>(.*?)</tbody>", body, re.S)
    assert tbody, "no table in the page"
    rows = []
    for row in re.findall(r"<tr>(.*?)</tr>", tbody.group(1), re.S):
        cells = re.findall(r'<td class="k-[a-z]+">(.*?)</td>', row, re.S)
        if cells:
            rows.append([html.unescape(c) for c in cells])
    return rows


def operator_names(body: str) -> dict[str, str]:
    """The operators' names by id, as the regulator's filter lists them (or, for an operator,
    its own name above the filter)."""
    found = re.findall(r'<option value="([^"]+)"[^>]*>([^<]*)</option>', body)
    found += re.findall(r'<strong data-operator="([^"]+)">([^<]*)</strong>', body)
    return {value: html.unescape(name) for value, name in found}


def as_shown(value: str, kind: str, names: dict[str, str] | None = None) -> str:
    """A CSV cell as the HTML table shows it: instants in Lima time, operators by name, empty
    as a dash."""
    if value == "":
        return "—"
    if kind == "operator":
        return (names or {}).get(value, value)
    if kind == "instant":
        return f"{datetime.fromisoformat(value).astimezone(LIMA):%d/%m/%Y %H:%M:%S}"
    return value


async def report_in_three_formats(
    http: aiohttp.ClientSession, slug: str, params: dict[str, str], headers: dict[str, str]
) -> tuple[list[str], list[dict[str, object]]]:
    """Fetch `slug` as HTML, CSV and JSON; assert the three hold the same rows; return the
    column keys and the JSON rows."""
    async with http.get(f"/reportes/{slug}", params=params, headers=headers) as response:
        assert response.status == 200, await response.text()
        body = await response.text()
        shown = html_rows(body)
    async with http.get(
        f"/reportes/{slug}", params={**params, "formato": "json"}, headers=headers
    ) as response:
        assert response.status == 200
        document = await response.json()
    async with http.get(
        f"/reportes/{slug}", params={**params, "formato": "csv"}, headers=headers
    ) as response:
        assert response.status == 200
        assert response.content_type == "text/csv"
        table = list(csv.reader(io.StringIO((await response.text()).lstrip("\ufeff"))))
    keys = [c["key"] for c in document["columns"]]
    kinds = [c["type"] for c in document["columns"]]
    header, *lines = table
    assert header == keys
    names = operator_names(body)
    assert [
        [as_shown(v, k, names) for v, k in zip(line, kinds, strict=True)] for line in lines
    ] == shown
    from_json = [
        ["" if row[key] is None else str(row[key]) for key in keys] for row in document["rows"]
    ]
    assert from_json == lines
    return keys, document["rows"]
