"""The web UI over HTTP (Flask's test client): every page, downloads, escaping and safety.

Speed targets are not asserted here (see ``benchmarks/ui_pages.py``); what is checked is the
work a page does: the project page reads one version record per artifact, never all of them.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from urllib.parse import quote

import pytest
from ui_fixtures import (
    ARTIFACT_TYPES,
    HTML,
    IMAGE_COUNT,
    JOB_TYPES,
    PROJECT,
    TRAIN_STEPS,
    Hostile,
    Tutorial,
    add_hostile,
    module_store,
    fill_tutorial_store,
)

import registry
from registry import keys
from registry.lineage import LineageGraph, Node
from registry.publish import draft_record
from registry.records import FileEntry, FileList
from registry.ui import charts, create_app
from registry.ui import graph as graphs
from registry.versions import commit_version

P = f"/projects/{PROJECT}"
UI_DIR = Path(registry.__file__).parent / "ui"


class Env:
    def __init__(self, url: str, tutorial: Tutorial, hostile: Hostile) -> None:
        self.url, self.tutorial, self.hostile = url, tutorial, hostile
        self.app = create_app(url)
        self.client = self.app.test_client()
        self.api = self.app.config["REGISTRY_API"]

    def get(self, path: str, **kwargs):
        return self.client.get(path, **kwargs)

    def page(self, path: str) -> str:
        response = self.get(path)
        assert response.status_code == 200, f"{path}: {response.status_code} {response.get_data(as_text=True)[:500]}"
        return response.get_data(as_text=True)

    def run_url(self, job_type: str) -> str:
        return f"{P}/runs/{self.tutorial.run_id(job_type)}"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with module_store(tmp_path_factory.mktemp("ui")) as (url, work):
        tutorial = fill_tutorial_store(url, workdir=work)
        hostile = add_hostile(url, workdir=work)
        yield Env(url, tutorial, hostile)
        registry.finish()


def labels(html: str) -> list[str]:
    return [unescape(m) for m in re.findall(r'class="node [^"]*" data-label="([^"]*)"', html)]


# -- pages ---------------------------------------------------------------------------------------
def test_projects_page_lists_projects_with_counts(env: Env) -> None:
    html = env.page("/")
    assert f'href="{P}"' in html and 'href="/projects/hostile"' in html
    row = re.search(rf'href="{P}">{PROJECT}</a></td><td class="num">(\d+)</td><td class="num">(\d+)</td>', html)
    assert row and row.groups() == ("4", "5")


def test_project_page_groups_artifacts_by_type_and_lists_runs(env: Env) -> None:
    html = env.page(P)
    dataset, model = html.index('<span class="type">dataset</span>'), html.index('<span class="type">model</span>')
    assert dataset < html.index(">mnist-raw</a>") < model < html.index(">trained-model</a>")
    assert html.index(">mnist-preprocess</a>") < model and html.index(">convnet</a>") > model
    row = html[html.index(">trained-model</a>"):]
    row = row[: row.index("</tr>")]
    assert "v0" in row and ">latest<" in row and ">best<" in row and "15 B" in row
    for job in JOB_TYPES:
        assert f'<span class="job">{job}</span>' in html
        assert f'href="{env.run_url(job)}">{env.tutorial.run_name(job)}</a>' in html
    assert html.count('class="state state-finished"') == 5


def test_project_page_filters(env: Env) -> None:
    html = env.page(f"{P}?type=model")
    assert ">trained-model</a>" in html and ">mnist-raw</a>" not in html
    html = env.page(f"{P}?job_type=train")
    assert env.tutorial.run_name("train") in html and env.tutorial.run_name("report") not in html


def test_project_page_paginates(env: Env) -> None:
    client = create_app(env.url, page_size=3).test_client()
    first = client.get(P).get_data(as_text=True)
    second = client.get(f"{P}?apage=2&rpage=2").get_data(as_text=True)
    assert "page 1 of 2 · 4 in all" in first and "page 1 of 2 · 5 in all" in first
    names = ("mnist-raw", "mnist-preprocess", "convnet", "trained-model")
    shown_first = {n for n in names if f">{n}</a>" in first}
    shown_second = {n for n in names if f">{n}</a>" in second}
    assert len(shown_first) == 3 and len(shown_second) == 1 and shown_first | shown_second == set(names)
    runs_first = {j for j in JOB_TYPES if env.tutorial.run_name(j) in first}
    runs_second = {j for j in JOB_TYPES if env.tutorial.run_name(j) in second}
    assert len(runs_first) == 3 and runs_first | runs_second == set(JOB_TYPES)
    assert client.get(f"{P}?apage=99&rpage=-4").status_code == 200  # clamped, not an error
    assert client.get(f"{P}?apage=x").status_code == 200


def test_unknown_and_invalid_names_are_404(env: Env) -> None:
    for path in ("/projects/nope", "/projects/bad%20name", f"{P}/artifacts/nope", f"{P}/artifacts/mnist-raw/v7",
                 f"{P}/artifacts/mnist-raw/no-such-alias", f"{P}/artifacts/mnist-raw/v01", f"{P}/runs/nope",
                 f"{P}/runs/bad%20id", f"{P}/artifacts/bad%3Aname/v0", "/nope"):
        response = env.get(path)
        assert response.status_code == 404, path
        assert "<!doctype html>" in response.get_data(as_text=True)


def test_aliases_redirect_to_versions(env: Env) -> None:
    response = env.get(f"{P}/artifacts/mnist-raw")
    assert response.status_code == 302 and response.headers["Location"].endswith(f"{P}/artifacts/mnist-raw/v0")
    response = env.get(f"{P}/artifacts/trained-model/best?tab=lineage")
    assert response.status_code == 302 and response.headers["Location"].endswith(f"{P}/artifacts/trained-model/v0?tab=lineage")


def test_artifact_overview(env: Env) -> None:
    html = env.page(f"{P}/artifacts/mnist-raw/v0")
    record = env.api.artifact(f"{PROJECT}/mnist-raw:v0").record
    assert "Raw handwritten digits, split into training/validation/test" in html
    assert f"sha256:{record.digest}" in html
    assert f"({record.size} bytes)" in html and "<th>files</th><td>6</td>" in html
    assert record.created_at.strftime("%Y-%m-%d %H:%M:%S UTC") in html
    logged_by = html[html.index("<th>logged by</th>"): html.index("<th>used by</th>")]
    used_by = html[html.index("<th>used by</th>"): html.index("<th>commit id</th>")]
    assert f'href="{env.run_url("load-data")}">{env.tutorial.run_name("load-data")}</a>' in logged_by
    assert f'href="{env.run_url("preprocess-data")}">{env.tutorial.run_name("preprocess-data")}</a>' in used_by
    versions = html[html.index('aria-label="versions"'): html.index("</aside>")]
    assert "v0" in versions and ">latest<" in versions


def test_artifact_overview_lists_every_consumer(env: Env) -> None:
    html = env.page(f"{P}/artifacts/mnist-preprocess/v0")
    used_by = html[html.index("<th>used by</th>"): html.index("<th>commit id</th>")]
    assert env.tutorial.run_name("train") in used_by and env.tutorial.run_name("report") in used_by


def test_metadata_tab_shows_pretty_json(env: Env) -> None:
    html = env.page(f"{P}/artifacts/mnist-raw/v0?tab=metadata")
    block = unescape(re.search(r'<pre class="json">(.*?)</pre>', html, re.DOTALL).group(1))
    assert json.loads(block) == {"source": "synthetic-digits", "sizes": [60, 20, 20]}
    assert '\n  "sizes": [\n    60,' in block


def test_files_tab_is_a_browsable_tree(env: Env) -> None:
    html = env.page(f"{P}/artifacts/mnist-raw/v0?tab=files")
    assert "samples/</a>" in html and "2 files" in html
    for name in ("README.md", "training.pt", "validation.pt", "test.pt"):
        assert f"{P}/artifacts/mnist-raw/v0/files/{name}" in html
    assert "47.0 KB" in html  # training.pt, 60 * 784 bytes
    html = env.page(f"{P}/artifacts/mnist-raw/v0?tab=files&dir=samples")
    assert "zero/</a>" in html and "one/</a>" in html and "README.md" not in html
    html = env.page(f"{P}/artifacts/mnist-raw/v0?tab=files&dir=samples/zero")
    assert f"{P}/artifacts/mnist-raw/v0/files/samples/zero/example-0.txt" in html
    for bad in ("nope", "../..", "/etc", "samples/../..", "README.md"):
        assert env.get(f"{P}/artifacts/mnist-raw/v0?tab=files&dir={quote(bad)}").status_code == 404, bad


def test_lineage_tab_type_level_and_exploded(env: Env) -> None:
    html = env.page(f"{P}/artifacts/trained-model/v0?tab=lineage")
    assert set(labels(html)) == set(ARTIFACT_TYPES) | set(JOB_TYPES)
    assert 'href="/projects/mnist-pipeline?type=dataset#artifacts"' in html
    assert 'href="/projects/mnist-pipeline?job_type=train#runs"' in html
    assert html.count('<path class="edge') == 8  # incl. preprocess-data -> dataset and train -> model, closing cycles
    exploded = env.page(f"{P}/artifacts/trained-model/v0?tab=lineage&explode=1")
    found = labels(exploded)
    assert {"dataset:mnist-raw:v0", "dataset:mnist-preprocess:v0", "model:convnet:v0", "model:trained-model:v0"} <= set(found)
    for job in JOB_TYPES:
        assert f"{job}:{env.tutorial.run_name(job)}" in found
    assert f'href="{env.run_url("load-data")}"' in exploded
    assert f'href="{P}/artifacts/mnist-raw/v0?tab=lineage&amp;explode=1&amp;direction=both"' in exploded
    assert 'class="node node-artifact root"' in exploded


def test_lineage_directions(env: Env) -> None:
    up = labels(env.page(f"{P}/artifacts/trained-model/v0?tab=lineage&explode=1&direction=upstream"))
    assert f"load-data:{env.tutorial.run_name('load-data')}" in up and not any(label.startswith("report:") for label in up)
    down = labels(env.page(f"{P}/artifacts/mnist-raw/v0?tab=lineage&explode=1&direction=downstream"))
    assert f"preprocess-data:{env.tutorial.run_name('preprocess-data')}" in down
    assert not any(label.startswith(("load-data:", "initialize:")) for label in down)
    assert labels(env.page(f"{P}/artifacts/mnist-raw/v0?tab=lineage&explode=1&direction=sideways")) == labels(
        env.page(f"{P}/artifacts/mnist-raw/v0?tab=lineage&explode=1"))


def test_run_page_config_summary_artifacts_charts_files(env: Env) -> None:
    html = env.page(env.run_url("train"))
    assert env.tutorial.run_name("train") in html and '<span class="job">train</span>' in html
    config = html[html.index('id="config"'): html.index('id="summary"')]
    assert "<th>batch_size</th>" in config and ">128</td>" in config and ">Adam</td>" in config
    summary = html[html.index('id="summary"'): html.index('id="charts"')]
    assert "<th>validation/accuracy</th>" in summary and ">88.5</td>" in summary
    artifacts = html[html.index('id="artifacts"'): html.index('id="config"')]
    assert f'href="{P}/artifacts/mnist-preprocess/v0"' in artifacts and f'href="{P}/artifacts/convnet/v0"' in artifacts
    assert artifacts.index("Outputs") < artifacts.index(f'href="{P}/artifacts/trained-model/v0"')
    chart = re.search(r'<figure class="chart" data-key="train/loss">(.*?)</figure>', html, re.DOTALL).group(1)
    points = re.search(r'<polyline class="line" points="([^"]*)"', chart).group(1).split()
    assert len(points) == TRAIN_STEPS
    xs = [float(p.split(",")[0]) for p in points]
    assert xs == sorted(xs) and xs[-1] - xs[0] > 300  # spans the plot
    for key in ("epoch", "validation/loss", "validation/accuracy"):
        assert f'data-key="{key}"' in html
    link = f"{env.run_url('train')}/files/trained_model.pth"
    assert f'href="{link}"' in html
    response = env.get(link)
    assert response.status_code == 200 and response.data == b"trained-weights"


def test_run_page_shows_the_logged_images(env: Env) -> None:
    html = env.page(env.run_url("report"))
    images = re.findall(r'<img class="media-img" src="([^"]+)" alt="([^"]*)"', html)
    assert len(images) == IMAGE_COUNT
    assert images[0][1] == "0,3" and "<figcaption>0,3</figcaption>" in html
    response = env.get(images[0][0])
    assert response.status_code == 200 and response.mimetype == "image/png"
    assert response.data.startswith(b"\x89PNG\r\n\x1a\n")
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_images_are_served_only_for_the_run_that_logged_them(env: Env) -> None:
    html = env.page(env.run_url("report"))
    src = re.search(r'<img class="media-img" src="([^"]+)"', html).group(1)
    sha = src.rsplit("/", 1)[1]
    assert env.get(f"{env.run_url('train')}/images/{sha}").status_code == 404  # another run's image
    readme = env.api.artifact(f"{PROJECT}/mnist-raw:v0").get_entry("README.md").digest  # a blob, but no image of the run
    assert env.api.store.blobs.exists(readme)
    assert env.get(f"{env.run_url('report')}/images/{readme}").status_code == 404
    for bad in (sha.upper(), sha[:-1], sha + "0", "..%2F..%2Fetc%2Fpasswd", "../" + sha, "%2e%2e"):
        assert env.get(f"{env.run_url('report')}/images/{bad}").status_code == 404, bad


# -- downloads -------------------------------------------------------------------------------------
def test_download_returns_the_file_as_an_attachment(env: Env) -> None:
    response = env.get(f"{P}/artifacts/mnist-raw/v0/files/README.md")
    assert response.status_code == 200 and response.data == b"# tiny digits\n"
    assert response.mimetype == "application/octet-stream"
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    nested = env.get(f"{P}/artifacts/mnist-raw/v0/files/samples/zero/example-0.txt")
    assert nested.status_code == 200 and nested.data == b"0\n"
    assert env.get(f"{P}/artifacts/mnist-raw/v0/files/README.md", method="HEAD").status_code == 200


HOSTILE_PATHS = [
    "../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "%2e%2e/%2e%2e/etc/passwd", "%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
    "/etc/passwd", "%2Fetc%2Fpasswd", "//etc/passwd", "samples/../README.md", "./README.md", "samples/./zero/example-0.txt",
    "..", "samples", "samples/", "readme.md", "README.md%00", "README.md%00.txt", "C:%5CWindows%5Cwin.ini", "..%5C..%5Cetc",
    "nope.txt", "blobs/sha256/00/00", "%252e%252e/etc/passwd", "README.md/", "README.md%3Fx=1/../../etc/passwd",
]


@pytest.mark.parametrize("path", HOSTILE_PATHS)
def test_download_refuses_paths_outside_the_file_list(env: Env, path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []
    real = env.api.store.cache.ensure
    monkeypatch.setattr(env.api.store.cache, "ensure", lambda sha, *a, **k: asked.append(sha) or real(sha, *a, **k))
    for url in (f"{P}/artifacts/mnist-raw/v0/files/{path}", f"{env.run_url('train')}/files/{path}"):
        response = env.get(url)
        assert response.status_code in (404, 308), f"{url}: {response.status_code}"
        body = response.get_data(as_text=True)
        assert "root:" not in body and "tiny digits" not in body
        if response.status_code == 308:  # werkzeug merging '//': the target is refused as well
            assert env.get(response.headers["Location"]).status_code == 404
    version = env.api.artifact(f"{PROJECT}/mnist-raw:v0")
    file_shas = {f.sha256 for f in version.file_list().files} | {version.digest}  # the files and the file list itself
    assert set(asked) <= file_shas | {e.sha256 for e in env.api.run(f"{PROJECT}/{env.tutorial.run_id('train')}").record.files}


def test_download_needs_an_exact_version(env: Env) -> None:
    assert env.get(f"{P}/artifacts/mnist-raw/latest/files/README.md").status_code == 404
    assert env.get(f"{P}/artifacts/mnist-raw/v1/files/README.md").status_code == 404
    assert env.get(f"{P}/artifacts/convnet/v0/files/README.md").status_code == 404  # a file of another artifact


# -- escaping --------------------------------------------------------------------------------------
def test_user_text_is_escaped_everywhere(env: Env) -> None:
    h = env.hostile
    run_page = f"/projects/{h.project}/runs/{h.run_id}"
    art = f"/projects/{h.project}/artifacts/{h.artifact}/v0"
    pages = ["/", f"/projects/{h.project}", run_page, art, f"{art}?tab=metadata", f"{art}?tab=files", f"{art}?tab=files&dir=dir",
             f"{art}?tab=lineage", f"{art}?tab=lineage&explode=1"]
    for path in pages:
        html = env.page(path)
        assert "<script" not in html.lower() and "<img src=x" not in html, path
        tags = _tags(html)
        assert not [t for t in tags if t[0] == "script"], path
        assert not [t for t in tags if any(name.startswith("on") for name, _ in t[1])], path
        assert not [t for t in tags if t[0] == "img" and ("src", "x") in t[1]], path
    escaped = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"
    assert escaped in env.page(f"/projects/{h.project}")  # the run name
    run_html = env.page(run_page)
    assert run_html.count(escaped) >= 5  # name, notes, tag, config key and value, caption
    assert f'data-key="loss{escaped}"' in run_html and f'alt="{escaped}"' in run_html
    assert escaped in env.page(art)  # description
    metadata = env.page(f"{art}?tab=metadata")
    assert json.loads(unescape(re.search(r'<pre class="json">(.*?)</pre>', metadata, re.DOTALL).group(1)))["nested"] == {"k": HTML}
    files = env.page(f"{art}?tab=files&dir=dir")
    assert "<td>&lt;script&gt;alert(&#39;x&#39;)&lt;_script&gt;&lt;img src=x onerror=alert(1)&gt;.txt</td>" in files
    response = env.get(f"{art}/files/{quote(h.file_path)}")
    assert response.status_code == 200 and response.data == b"payload"
    assert f"run-{escaped}" in env.page(f"{art}?tab=lineage&explode=1")


def _tags(html: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    from html.parser import HTMLParser

    found = []

    class Collect(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.append((tag, attrs))

    Collect().feed(html)
    return found


def test_error_pages_escape_the_request(env: Env) -> None:
    response = env.get(f"{P}/artifacts/{quote('<b>x</b>')}/v0")
    assert response.status_code == 404 and "<b>x" not in response.get_data(as_text=True)


# -- safety ----------------------------------------------------------------------------------------
def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


def test_every_page_is_read_only(env: Env) -> None:
    before = _snapshot(Path(env.url))
    pages = ["/", P, f"{P}/artifacts/mnist-raw/v0", f"{P}/artifacts/mnist-raw/v0?tab=metadata", f"{P}/artifacts/mnist-raw/v0?tab=files",
             f"{P}/artifacts/trained-model/v0?tab=lineage&explode=1", env.run_url("train"), env.run_url("report"),
             f"{P}/artifacts/mnist-raw/v0/files/README.md", f"{P}/artifacts/trained-model/best"]
    for path in pages:
        assert env.get(path).status_code in (200, 302)
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            response = env.client.open(path, method=method)
            assert response.status_code == 405, (method, path)
            assert response.headers["Allow"] == "GET, HEAD"
    assert _snapshot(Path(env.url)) == before


def test_security_headers(env: Env) -> None:
    for path in ("/", P, env.run_url("report")):
        headers = env.get(path).headers
        assert "default-src 'none'" in headers["Content-Security-Policy"] and "script-src 'self'" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff" and headers["X-Frame-Options"] == "DENY"


def test_only_loopback_host_names_by_default(env: Env) -> None:
    for host in ("localhost", "localhost:8080", "127.0.0.1:8080", "[::1]:8080", "127.0.0.2"):
        assert env.get("/", headers={"Host": host}).status_code == 200, host
    for host in ("evil.example", "evil.example:8080", "127.0.0.1.evil.example", "localhost.evil.example"):
        assert env.get("/", headers={"Host": host}).status_code == 400, host
    open_app = create_app(env.url, allowed_hosts=None).test_client()
    assert open_app.get("/", headers={"Host": "registry.internal:8080"}).status_code == 200


def test_serve_binds_loopback_by_default() -> None:
    import inspect

    from registry.ui import serve

    assert inspect.signature(serve).parameters["host"].default == "127.0.0.1"


def test_assets_ship_in_the_package_and_nothing_is_fetched_from_elsewhere(env: Env) -> None:
    assert env.get("/static/style.css").status_code == 200 and env.get("/static/favicon.svg").status_code == 200
    texts = [p.read_text() for p in (UI_DIR / "templates").glob("*.html")] + [p.read_text() for p in (UI_DIR / "static").glob("*")]
    for text in texts:
        assert not re.search(r"""(src|href|action)=["']?(https?:)?//""", text)
        assert "@import" not in text and "url(http" not in text and "@font-face" not in text
    for path in ("/", P, f"{P}/artifacts/trained-model/v0?tab=lineage", env.run_url("report")):
        html = env.page(path)
        assert not re.search(r"""(src|href)="(https?:)?//""", html), path
        assert "<script" not in html


# -- work done per page (not timed; timings are in benchmarks/ui_pages.py) ------------------------------
def test_project_page_reads_only_the_latest_version_of_each_artifact(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    store = env.api.store
    project = "many-versions"
    for name in ("alpha", "beta", "gamma"):
        for n in range(12):
            body = FileList.build([FileEntry(path="x.txt", sha256=store.blobs.put_bytes(f"{name}-{n}".encode()), size=len(f"{name}-{n}"))]).to_bytes()
            digest = store.blobs.put_bytes(body)
            draft = draft_record(project, name, "dataset", None, {"n": n}, None).model_copy(update={"digest": digest, "size": 7, "file_count": 1})
            commit_version(store.backend, draft, [])
    reads: list[str] = []
    real = type(store.backend._inner).read
    monkeypatch.setattr(type(store.backend._inner), "read", lambda self, key: reads.append(key) or real(self, key))
    html = env.page(f"/projects/{project}")
    version_reads = [k for k in reads if re.search(r"/versions/v\d+\.json$", k)]
    assert sorted(version_reads) == [keys.version(project, n, 11) for n in ("alpha", "beta", "gamma")]
    assert html.count('<td class="num">12</td>') == 3
    reads.clear()
    html = env.page(f"/projects/{project}/artifacts/beta/v3")
    assert len([k for k in reads if "/versions/" in k]) <= 2  # this version (and nothing per listed version)
    assert html.count('<li') >= 12


def test_chart_reduces_long_series_but_keeps_extremes() -> None:
    series = [(float(i), float(i % 1000)) for i in range(100_000)] + [(100_000.0, 5000.0)]
    chart = charts.build_chart("loss", series)
    points = chart.points.split()
    assert len(points) <= 4 * chart.plot_w + 4
    assert chart.high == 5000.0 and chart.count == 100_001 and chart.dots == []
    assert min(float(p.split(",")[1]) for p in points) == pytest.approx(chart.top + chart.plot_h * 0.05 / 1.1, abs=1)


def test_run_media_skips_non_numbers_and_finds_images() -> None:
    image = {"_type": "image", "sha256": "a" * 64, "width": 2, "height": 2, "caption": "c"}
    rows = [{"_step": 0, "loss": 1.0, "flag": True, "name": "x", "nan": "NaN", "pics": [image]},
            {"_step": 1, "loss": 0.5, "pics": [image, {**image, "sha256": "b" * 64}]},
            {"_step": 2, "bad": {"_type": "image", "sha256": "../../x"}}]
    media = charts.run_media(rows)
    assert [c.key for c in media.charts] == ["loss"]
    assert media.image_shas == {"a" * 64, "b" * 64}
    assert [(p.key, p.step, len(p.images), p.logged_steps) for p in media.panels] == [("pics", 1, 2, 2)]


def _pipeline_graph(pipelines: int) -> LineageGraph:
    g = LineageGraph()
    for i in range(pipelines):
        load = Node(f"run:p/l{i}", "run", "load-data", f"load-data:l{i}", f"p/l{i}")
        raw = Node(f"artifact:p/raw:v{i}", "artifact", "dataset", f"dataset:raw:v{i}", f"p/raw:v{i}")
        prep = Node(f"run:p/p{i}", "run", "preprocess-data", f"preprocess-data:p{i}", f"p/p{i}")
        clean = Node(f"artifact:p/clean:v{i}", "artifact", "dataset", f"dataset:clean:v{i}", f"p/clean:v{i}")
        train = Node(f"run:p/t{i}", "run", "train", f"train:t{i}", f"p/t{i}")
        model = Node(f"artifact:p/model:v{i}", "artifact", "model", f"model:model:v{i}", f"p/model:v{i}")
        for a, b in ((load, raw), (raw, prep), (prep, clean), (clean, train), (train, model)):
            g.add_edge(a, b)
        if i:
            g.add_edge(Node(f"artifact:p/model:v{i - 1}", "artifact", "model", f"model:model:v{i - 1}", f"p/model:v{i - 1}"), train)
    g.root = "artifact:p/model:v0"
    return g


def test_graph_layout_of_fifty_nodes_has_no_overlaps() -> None:
    g = _pipeline_graph(9)  # 54 nodes
    placed = graphs.layout(g, lambda node: f"/x/{node.id}")
    assert len(placed.nodes) == 54 and len(placed.edges) == len(g.edges)
    boxes = [(n.x, n.y, n.x + n.w, n.y + n.h) for n in placed.nodes]
    for i, a in enumerate(boxes):
        assert 0 <= a[0] and a[2] <= placed.width and 0 <= a[1] and a[3] <= placed.height
        for b in boxes[i + 1:]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)
    columns = {n.id: n.x for n in placed.nodes}
    for src, dst in g.edges:
        assert columns[src] < columns[dst]  # every arrow points right


def test_graph_layout_handles_the_cycles_of_the_type_view() -> None:
    grouped = _pipeline_graph(3).view(explode=False)  # dataset -> preprocess-data -> dataset, model -> train -> model
    placed = graphs.layout(grouped, lambda node: None, grouped=True)
    assert {n.label for n in placed.nodes} == {"load-data", "dataset", "preprocess-data", "train", "model"}
    assert placed.columns == 4  # load-data | dataset | preprocess-data, train | model
    assert {(e.source, e.target) for e in placed.edges if e.back} == {
        ("run-type:preprocess-data", "artifact-type:dataset"), ("artifact-type:model", "run-type:train")}
    assert all(e.d.startswith("M") for e in placed.edges)


def test_lineage_layers_break_cycles_at_the_edge_pointing_back_upstream() -> None:
    grouped = _pipeline_graph(3).view(explode=False)
    layer = grouped.layers()
    assert layer == {"run-type:load-data": 0, "artifact-type:dataset": 1, "run-type:preprocess-data": 2, "run-type:train": 2,
                     "artifact-type:model": 3}
    back = grouped.back_edges()
    assert back == {("run-type:preprocess-data", "artifact-type:dataset"), ("artifact-type:model", "run-type:train")}
    assert all(layer[s] < layer[d] for s, d in grouped.edges - back) and all(layer[s] >= layer[d] for s, d in back)
    cycle = LineageGraph()  # nothing leads into it: the search starts at the root
    a, r = Node("a", "artifact", "t", "t:a:v0", "p/a:v0"), Node("r", "run", "j", "j:r", "p/r")
    cycle.add_edge(a, r)
    cycle.add_edge(r, a)
    cycle.root = "r"
    assert (cycle.layers(), cycle.back_edges()) == ({"r": 0, "a": 1}, {("a", "r")})
    exploded = _pipeline_graph(9)
    assert exploded.back_edges() == set() and max(exploded.layers().values()) == 9 * 2 + 3


def test_the_ui_reads_only_through_the_public_api() -> None:
    """No UI module imports the storage layers or touches a private member or the store itself."""
    import ast

    allowed = {"api", "artifact", "errors", "lineage", "names", "records", "settings", "sizes", None}
    for path in UI_DIR.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 2:
                assert node.module in allowed, f"{path.name} imports registry.{node.module}"
                assert node.module is not None or {a.name for a in node.names} == {"__version__"}, path.name
            if isinstance(node, (ast.Import, ast.ImportFrom)) and not getattr(node, "level", 0):
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                assert not [n for n in names if n.split(".")[0] in ("registry", "backends")], f"{path.name}: {names}"
            if isinstance(node, ast.Attribute):
                assert node.attr not in ("store", "backend", "cache", "blobs"), f"{path.name}:{node.lineno} .{node.attr}"
                assert not (node.attr.startswith("_") and not node.attr.startswith("__")), f"{path.name}:{node.lineno} .{node.attr}"
