"""Check every internal link of a built docs site: the target file exists and so does its #anchor.

    python scripts/ci/check_links.py site/ [--base-path /prefix/]

Reads every ``.html`` file under the site, collects ``href`` and ``src`` attributes, and for
each link that stays on the site (relative, or root-relative) checks that the file exists
(``dir/`` means ``dir/index.html``) and that a ``#fragment`` names an ``id`` (or ``name``) in
the target page. External links (``http(s)://``, ``mailto:``) are counted, not fetched: CI has
no network. Exits 1 listing each broken link and the page it is on.
"""

from __future__ import annotations

import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

EXTERNAL_SCHEMES = {"http", "https", "mailto", "data", "javascript", "tel"}


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for key, value in attrs:
            if value is None:
                continue
            if key in ("id", "name") and (key == "id" or tag == "a"):
                self.ids.add(value)
            if key in ("href", "src") and not (tag == "link" and key == "href" and "canonical" in dict(attrs).get("rel", "")):
                self.links.append(value)


def parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8", errors="replace"))
    return page


def resolve(site: Path, page: Path, link: str, base_path: str = "/") -> tuple[Path, str] | None:
    parts = urlsplit(link)
    if parts.scheme in EXTERNAL_SCHEMES or parts.netloc:
        return None
    path = unquote(parts.path)
    if not path:
        target = page
    elif path.startswith("/"):
        # Root-relative links (mkdocs' 404 page) carry site_url's path: strip it.
        if base_path != "/" and path.startswith(base_path):
            path = "/" + path[len(base_path):]
        target = site / path.lstrip("/")
    else:
        target = (page.parent / path).resolve()
    if target.is_dir() or path.endswith("/"):
        target = target / "index.html"
    return target, unquote(parts.fragment)


def main(site_dir: str, base_path: str = "/") -> int:
    site = Path(site_dir).resolve()
    base_path = "/" + base_path.strip("/") + "/" if base_path.strip("/") else "/"
    pages = sorted(site.rglob("*.html"))
    if not pages:
        print(f"no HTML pages under {site}")
        return 1
    parsed = {p: parse(p) for p in pages}
    broken: list[str] = []
    internal = external = 0
    for page, info in parsed.items():
        for link in info.links:
            resolved = resolve(site, page, link, base_path)
            if resolved is None:
                external += 1
                continue
            internal += 1
            target, fragment = resolved
            if site not in target.parents and target != site:
                broken.append(f"{page.relative_to(site)}: {link} (leaves the site)")
                continue
            if not target.exists():
                broken.append(f"{page.relative_to(site)}: {link} (no {target.relative_to(site)})")
                continue
            if fragment and target.suffix == ".html":
                ids = parsed[target].ids if target in parsed else parse(target).ids
                if fragment not in ids:
                    broken.append(f"{page.relative_to(site)}: {link} (no #{fragment} in {target.relative_to(site)})")
    print(f"{len(pages)} pages, {internal} internal links checked, {external} external links not fetched")
    for item in broken:
        print(f"BROKEN {item}")
    print(f"{len(broken)} broken internal links")
    return 1 if broken else 0


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("site", nargs="?", default="site")
    ap.add_argument("--base-path", default="/", help="the path of mkdocs' site_url, e.g. /airflow-provider-flyte/")
    args = ap.parse_args()
    sys.exit(main(args.site, args.base_path))
