"""DVC's plots as one HTML page that opens without a network.

``dvc plots show`` writes a page that loads Vega from a CDN, so it stays blank offline. This
fetches Vega, Vega-Lite and Vega-Embed once from the npm registry (``npm pack``, the versions
below, kept under ``.cache/vega``), writes an HTML template with the three scripts inline, and
runs ``dvc plots show --html-template`` with it. The page is self-contained: copy it anywhere.

    omicsforge plots            # -> dvc_plots/index.html
"""
from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
CACHE = PROJECT / ".cache" / "vega"
# DVC's own page asks the CDN for vega@5, vega-lite@5, vega-embed@6; these are the newest of each.
PACKAGES = {"vega": "5.33.1", "vega-lite": "5.23.0", "vega-embed": "6.29.0"}


def vega_scripts(cache: Path = CACHE) -> list[Path]:
    """The three minified builds, fetched with ``npm pack`` the first time."""
    scripts = []
    for name, version in PACKAGES.items():
        script = cache / f"{name}-{version}.min.js"
        if not script.is_file():
            cache.mkdir(parents=True, exist_ok=True)
            try:
                subprocess.run(["npm", "pack", f"{name}@{version}", "--silent", "--pack-destination", str(cache)],
                               check=True, capture_output=True, text=True)
            except (OSError, subprocess.CalledProcessError) as err:
                raise RuntimeError(f"npm pack {name}@{version} failed ({err}): the offline page needs npm "
                                   "and the npm registry once") from err
            with tarfile.open(cache / f"{name}-{version}.tgz") as tar:
                member = tar.extractfile(f"package/build/{name}.min.js")
                assert member is not None
                script.write_bytes(member.read())
        scripts.append(script)
    return scripts


def template(scripts: list[Path]) -> str:
    """An HTML page with the scripts inline and DVC's ``{plot_divs}`` placeholder."""
    inline = "\n".join(f"<script>{path.read_text()}</script>" for path in scripts)
    return ("<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>omicsforge: DVC plots</title>\n"
            f"{inline}\n<style>body {{ font-family: sans-serif; }} table {{ border-spacing: 15px; }}</style>\n"
            "</head>\n<body>\n<h1>omicsforge: DVC plots</h1>\n{plot_divs}\n</body>\n</html>\n")


def render(out: Path = PROJECT / "dvc_plots") -> Path:
    """Write the offline page of every plot in dvc.yaml; return its path."""
    page = CACHE / "template.html"
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(template(vega_scripts()))
    subprocess.run([sys.executable, "-m", "dvc", "plots", "show", "--html-template", str(page), "-o", str(out)],
                   check=True, cwd=PROJECT, capture_output=True, text=True)
    return out / "index.html"
