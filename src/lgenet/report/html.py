"""A small HTML builder for one self-contained page: inline CSS, images as base64 data URIs.

Nothing is fetched: no external stylesheet, script, font or image, so the page opens offline and
can be mailed as one file. Every piece of text goes through :func:`esc`. One short inline script
marks the page once every image has decoded (``<body data-images-ok="N">``) or lists the ones
that did not (``data-images-bad``) -- a check a headless browser can read from the DOM.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = ["esc", "img", "table", "section", "page", "flag", "details", "kv_table"]

CSS = """
:root { --ink:#1b1f24; --mute:#5b6570; --line:#d9dee3; --bg:#ffffff; --soft:#f5f7f9; --accent:#0b5d9e;
        --bad:#b00020; --badbg:#fdecee; --ok:#1e7a34; --okbg:#e9f6ec; }
* { box-sizing: border-box; }
body { margin:0; font: 15px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color:var(--ink); background:var(--bg); }
header { padding: 22px 32px 14px; border-bottom: 1px solid var(--line); background: var(--soft); }
header h1 { margin: 0 0 4px; font-size: 24px; }
header p { margin: 2px 0; color: var(--mute); }
nav { position: sticky; top: 0; z-index: 2; background: #fff; border-bottom: 1px solid var(--line);
      padding: 6px 32px; font-size: 14px; }
nav a { color: var(--accent); text-decoration: none; margin-right: 16px; }
main { max-width: 1180px; margin: 0 auto; padding: 8px 32px 48px; }
section { margin-top: 30px; }
h2 { font-size: 20px; border-bottom: 2px solid var(--accent); padding-bottom: 4px; }
h3 { font-size: 16px; margin: 20px 0 6px; }
p.note, .caption { color: var(--mute); font-size: 13.5px; }
.tablewrap { max-width: 100%; overflow-x: auto; }
table { border-collapse: collapse; margin: 8px 0 14px; font-size: 14px; }
th, td { border-bottom: 1px solid var(--line); padding: 5px 10px; text-align: left; vertical-align: top; }
th { background: var(--soft); font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.best td { font-weight: 600; background: #f0f6fc; }
figure { margin: 10px 0 18px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); }
.grid2 { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 14px; }
.keybox { border: 1px solid var(--line); background: var(--soft); padding: 10px 16px; margin-top: 16px; }
.flag { border-left: 5px solid var(--bad); background: var(--badbg); padding: 8px 14px; margin: 10px 0; }
.flag strong { color: var(--bad); }
.ok { border-left: 5px solid var(--ok); background: var(--okbg); padding: 8px 14px; margin: 10px 0; }
pre { background: var(--soft); border: 1px solid var(--line); padding: 10px; font-size: 12.5px; overflow-x: auto; }
details summary { cursor: pointer; color: var(--accent); }
code { font-size: 13px; }
@media print { nav { display: none; } section { page-break-inside: avoid; } }
"""

_SCRIPT = """
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images), bad = [];
  imgs.forEach(function (im, i) { if (!(im.complete && im.naturalWidth > 0)) { bad.push(im.alt || ('#' + i)); } });
  if (bad.length) { document.body.setAttribute('data-images-bad', bad.join('|'));
                    console.error('report: ' + bad.length + ' image(s) failed to load'); }
  else { document.body.setAttribute('data-images-ok', String(imgs.length)); }
});
"""


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def img(data: bytes | Path | str, alt: str, *, caption: str = "", width: int | None = None) -> str:
    """A ``<figure>`` with the PNG embedded as a data URI (``data`` = bytes or a PNG file path)."""
    raw = Path(data).read_bytes() if isinstance(data, (str, Path)) else data
    if raw[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"image {alt!r} is not a PNG")
    uri = "data:image/png;base64," + base64.b64encode(raw).decode("ascii")
    style = f' style="width:{int(width)}px"' if width else ""
    cap = f'<figcaption class="caption">{caption}</figcaption>' if caption else ""
    return f'<figure><img src="{uri}" alt="{esc(alt)}"{style}>{cap}</figure>'


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    num_cols: Iterable[int] = (),
    row_classes: Sequence[str] | None = None,
    raw: bool = False,
) -> str:
    """An HTML table; cells are escaped unless ``raw`` (then the caller escaped them)."""
    nums = set(num_cols)
    out = [
        '<div class="tablewrap"><table><thead><tr>',
        *(f"<th>{esc(h)}</th>" for h in headers),
        "</tr></thead><tbody>",
    ]
    for k, row in enumerate(rows):
        cls = f' class="{row_classes[k]}"' if row_classes and row_classes[k] else ""
        out.append(f"<tr{cls}>")
        for j, cell in enumerate(row):
            text = str(cell) if raw else esc(cell)
            out.append(f'<td class="num">{text}</td>' if j in nums else f"<td>{text}</td>")
        out.append("</tr>")
    out.append("</tbody></table></div>")  # a wide table scrolls inside its column, not the page
    return "".join(out)


def kv_table(pairs: Iterable[tuple[str, object]]) -> str:
    return table(("", ""), pairs).replace("<thead><tr><th></th><th></th></tr></thead>", "")


def section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>{body}</section>'


def flag(title: str, text: str) -> str:
    """A red call-out (a failed check); ``text`` is already HTML."""
    return f'<div class="flag"><strong>{esc(title)}</strong> {text}</div>'


def details(summary: str, body: str) -> str:
    return f"<details><summary>{esc(summary)}</summary>{body}</details>"


def page(title: str, subtitle: Sequence[str], nav: Sequence[tuple[str, str]], body: str) -> str:
    links = "".join(f'<a href="#{esc(a)}">{esc(t)}</a>' for a, t in nav)
    sub = "".join(f"<p>{s}</p>" for s in subtitle)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head>\n<body>"
        f"<header><h1>{esc(title)}</h1>{sub}</header><nav>{links}</nav><main>{body}</main>"
        f"<script>{_SCRIPT}</script></body></html>\n"
    )
