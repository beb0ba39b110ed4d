"""Reading a regulator's report as HTML, CSV and JSON, to check the three carry the same rows."""

from __future__ import annotations

import csv
import html
import io
import re

import aiohttp

from tests.web.reporting import operator_names


def table_rows(body: str) -> list[list[str]]:
    """The cells of the report table's body, unescaped ("Sin registros" gives no row)."""
    tbody = re.search(r"<tbody>(.*?)</tbody>", body, re.S)
    assert tbody, "no table in the page"
    rows = []
    for row in re.findall(r"<tr>(.*?)</tr>", tbody.group(1), re.S):
        cells = re.findall(r'<td class="k-[a-z]+">(.*?)</td>', row, re.S)
        if cells:
            rows.append([html.unescape(c) for c in cells])
    return rows


async def three_formats(
    http: aiohttp.ClientSession, slug: str, params: dict[str, str], headers: dict[str, str]
) -> list[dict[str, object]]:
    """Fetch report `slug` in its three formats, assert they hold the same rows (none of these
    reports has instants or empty cells, so every cell reads the same in the three) and return the
    JSON rows."""
    async with http.get(f"/reportes/{slug}", params=params, headers=headers) as response:
        assert response.status == 200, await response.text()
        body = await response.text()
        shown = table_rows(body)
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
        header, *lines = list(csv.reader(io.StringIO((await response.text()).lstrip("\ufeff"))))
    keys = [c["key"] for c in document["columns"]]
    operators = [c["type"] == "operator" for c in document["columns"]]
    assert header == keys
    # The page names operators; CSV and JSON give their ids.
    names = operator_names(body)
    assert [
        [names.get(v, v) if named else v for v, named in zip(line, operators, strict=True)]
        for line in lines
    ] == shown
    assert [[str(row[k]) for k in keys] for row in document["rows"]] == lines
    return list(document["rows"])
