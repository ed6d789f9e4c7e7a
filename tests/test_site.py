"""The course website: built from an executed lesson, checked as files and in headless Chromium."""

import functools
import html.parser
import http.server
import json
import re
import shutil
import subprocess
import threading

import keras
import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from xraykit import course, site

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# One worker runs this module (make test uses --dist loadgroup), so the site is built once.
pytestmark = pytest.mark.xdist_group("site")


@pytest.fixture(scope="module")
def built_site(tmp_path_factory, shared_data):
    """Lesson 0 executed in smoke (as `course run` writes it), and the site built from it."""
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the site is built from notebooks executed under the tensorflow backend")
    root = tmp_path_factory.mktemp("site")
    (path,) = course.find_notebooks(only=["00"])
    run = course.run_notebook(path, root / "build", "smoke", shared_data, "tensorflow",
                              timeout=600, html=False)
    assert run.status == "ok", run.error
    index = site.build_site(root / "build", root / "site", profile="smoke")
    return index.parent


class _Images(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.images = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs))


def _images(page):
    parser = _Images()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser.images


@pytest.mark.notebooks
def test_site_has_landing_page_lesson_search_and_alt_text(built_site):
    landing = (built_site / "index.html").read_text(encoding="utf-8")
    assert 'href="00_xray_basics.html"' in landing and "Lesson 0" in landing
    assert "smoke" in landing  # says which profile produced the outputs
    assert (built_site / "search.html").is_file() and (built_site / "searchindex.js").is_file()
    assert "dicom" in (built_site / "searchindex.js").read_text().lower()
    figures = [i for i in _images(built_site / "00_xray_basics.html")
               if i["src"].startswith("_images/")]
    assert len(figures) >= 3
    assert all(i.get("alt", "").startswith("Figure") and "{" not in i["alt"] for i in figures)
    assert all((built_site / i["src"]).is_file() for i in figures)


@pytest.mark.notebooks
def test_site_renders_in_headless_chromium(built_site):
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium; .ci/run does it)")
    harness = built_site / "_browser_check.html"
    harness.write_text(_HARNESS, encoding="utf-8")
    handler = functools.partial(_QuietHandler, directory=str(built_site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/_browser_check.html"
        done = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                               "--virtual-time-budget=20000", "--dump-dom", url],
                              capture_output=True, text=True, timeout=120)
    finally:
        server.shutdown()
        harness.unlink()
    found = re.search(r'<pre id="result">(.*?)</pre>', done.stdout, re.S)
    assert found, f"no result from chromium: {done.stderr[-1500:]}"
    result = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    landing, lesson = result["index.html"], result["00_xray_basics.html"]
    assert landing["lesson_links"] >= 1 and landing["search_box"], landing
    assert lesson["title"].startswith("Lesson 0"), lesson
    assert lesson["figures_loaded"] >= 3, lesson  # decoded by the browser, not just present
    assert lesson["figures_without_alt"] == 0 and lesson["navigation_links"] >= 1, lesson


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


# Loads each page in a same-origin frame, waits for its images, and writes what it found.
_HARNESS = """<!doctype html><html><body><pre id="result">pending</pre><iframe id="frame"
width="1200" height="900"></iframe><script>
const pages = ["index.html", "00_xray_basics.html"], found = {};
function inspect(doc) {
  const figures = [...doc.images].filter(i => i.getAttribute("src").startsWith("_images/"));
  return {title: doc.title,
          lesson_links: doc.querySelectorAll('table a[href$="00_xray_basics.html"]').length,
          search_box: !!doc.querySelector('form[action*="search"] input'),
          navigation_links: doc.querySelectorAll('.sidebar-tree a, nav a').length,
          figures: figures.length,
          figures_loaded: figures.filter(i => i.complete && i.naturalWidth > 0).length,
          figures_without_alt: figures.filter(i => !i.alt).length};
}
function next(i) {
  if (i === pages.length) {
    document.getElementById("result").textContent = JSON.stringify(found); return;
  }
  const frame = document.getElementById("frame");
  frame.onload = () => {
    const doc = frame.contentDocument;
    Promise.all([...doc.images].map(img => img.complete ? 0 : new Promise(
        done => { img.onload = img.onerror = done; })))
      .then(() => { found[pages[i]] = inspect(doc); next(i + 1); });
  };
  frame.src = pages[i];
}
next(0);
</script></body></html>
"""


def test_alt_text_comes_from_the_comment_the_title_or_the_section():
    cell = new_code_cell("# Histogram of grey levels\nplt.hist(x)")
    assert site.figure_alt_text(cell, "1. Pixels", "Lesson 0") == \
        "Figure: Histogram of grey levels (1. Pixels)"
    titled = new_code_cell('ax.set_title(f"an NIH radiograph ({h}x{w})")')
    assert site.figure_alt_text(titled, "1. Pixels", "L") == "Figure: an NIH radiograph (1. Pixels)"
    assert site.figure_alt_text(new_code_cell("plt.plot(x)"), "4. Windowing", "Lesson 0") == \
        "Figure of the section '4. Windowing' of Lesson 0"


def test_site_refuses_notebooks_that_were_not_executed(tmp_path):
    notebook = new_notebook()
    notebook.cells = [new_markdown_cell("# Lesson 9 — Test\n\nA test."), new_code_cell("x = 1")]
    nbformat.write(notebook, tmp_path / "09_test.ipynb")
    with pytest.raises(ValueError, match="no outputs.*course run --out"):
        site.build_site(tmp_path, tmp_path / "site")
    assert not (tmp_path / "site").exists()
