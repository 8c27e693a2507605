"""The dashboard in real headless Chromium: every view with real sample traces, clicks, zooms,
a box selection, a table row, policy toggles and the download. Screenshots go to test-artifacts/."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import sample_trace
from tinyjail.dashboard import chromium, data, ids
from tinyjail.dashboard.app import create_app, serve_in_thread
from tinyjail.dashboard.synthetic import make_trace

from tinyjail import policy as policy_mod
from tinyjail.timeline import Trace

pytestmark = [pytest.mark.chromium, pytest.mark.slow]

TIMEOUT = 30
STATIC = frozenset({"bind", "listen", "openat"})
"""What a static analysis "found": two calls no sample makes, one they all make."""


class Site:
    """The running dashboard, its traces and a browser pointed at it."""

    def __init__(self, url: str, traces: list[Trace], drv: Any, downloads: Path, shots: Path) -> None:
        self.url, self.traces, self.drv, self.downloads, self.shots = url, traces, drv, downloads, shots

    def open(self, query: str = "") -> None:
        self.drv.get(self.url + query)

    def wait(self, predicate: Callable[[Any], Any], what: str, timeout: float = TIMEOUT) -> Any:
        from selenium.common.exceptions import StaleElementReferenceException
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(
            self.drv, timeout, poll_frequency=0.1, ignored_exceptions=[StaleElementReferenceException]
        ).until(predicate, message=what)

    def text_of(self, element_id: str) -> str:
        """The element's text, read again if Dash replaced the element meanwhile."""
        from selenium.common.exceptions import StaleElementReferenceException
        from selenium.webdriver.common.by import By

        for _ in range(20):
            try:
                els = self.drv.find_elements(By.ID, element_id)
                return str(els[0].text) if els else ""
            except StaleElementReferenceException:
                time.sleep(0.05)
        return ""

    def wait_text(self, element_id: str, needle: str, timeout: float = TIMEOUT) -> str:
        self.wait(lambda d: needle in self.text_of(element_id), f"{needle!r} in #{element_id}", timeout)
        return self.text_of(element_id)

    def click(self, find: Callable[[Any], list[Any]], what: str) -> None:
        """Click the first element ``find`` returns, retrying while Dash re-renders it (stale)."""
        from selenium.common.exceptions import StaleElementReferenceException

        def attempt(d: Any) -> bool:
            try:
                found = find(d)
                if not found:
                    return False
                found[0].click()
                return True
            except StaleElementReferenceException:
                return False

        self.wait(attempt, what)

    def shot(self, name: str) -> Path:
        path = self.shots / f"dashboard-{name}.png"
        self.drv.save_screenshot(str(path))
        return path


@pytest.fixture(scope="module")
def site(artifacts_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    traces = [
        sample_trace("curl"),
        sample_trace("ls"),
        sample_trace("tar"),
        make_trace(200_000, seed=5, dropped=3, command="worker --serve"),
    ]
    app = create_app(traces, static=STATIC)
    server, _thread = serve_in_thread(app, "127.0.0.1", 0)
    downloads = tmp_path_factory.mktemp("downloads")
    drv = chromium.driver(download_dir=downloads)
    try:
        yield Site(f"http://127.0.0.1:{server.port}/", traces, drv, downloads, artifacts_dir)
    finally:
        chromium.quit_driver(drv)
        server.shutdown()


def names_of(trace: Trace) -> set[str]:
    return set(trace.events["name"].astype("string"))


def test_overview_shows_the_trace(site: Site) -> None:
    site.open()
    curl = site.traces[0]
    counts = data.syscall_counts(curl.events)
    text = site.wait_text(ids.OVERVIEW_CARDS, f"{len(curl.events):,}")
    assert curl.meta["command"] in text.replace("\n", " ")
    top = str(counts["name"].iloc[0])
    graph = site.wait_text(ids.OVERVIEW_TOP, top)
    assert str(int(counts["count"].iloc[0])) in graph
    assert "@file-system" in site.wait_text(ids.OVERVIEW_GROUPS, "@file-system")
    assert "danger" not in site.drv.find_element("id", ids.CARD_DROPS).get_attribute("class")
    site.shot("overview")


def test_drops_are_red_and_warned(site: Site) -> None:
    site.open("?trace=3")
    site.wait_text(ids.OVERVIEW_CARDS, "200,000")
    card = site.drv.find_element("id", ids.CARD_DROPS)
    assert "danger" in card.get_attribute("class") and "3" in card.text
    colour = site.drv.execute_script(
        "return getComputedStyle(arguments[0].querySelector('.card-value')).color", card
    )
    r, g, b = (int(v) for v in colour[colour.index("(") + 1 : colour.index(")")].split(",")[:3])
    assert r > 150 and g < 80 and b < 80, colour
    assert "dropped" in site.wait_text(ids.BANNER, "dropped")
    site.shot("overview-dropped")


def test_tabs_switch_views_by_click(site: Site) -> None:
    from selenium.webdriver.common.by import By

    site.open()
    site.wait_text(ids.OVERVIEW_CARDS, "curl")
    site.click(
        lambda d: [
            e for e in d.find_elements(By.CSS_SELECTOR, f"#{ids.TABS} *") if e.text == "Seen vs missed"
        ],
        "the Seen vs missed tab",
    )
    site.wait_text(ids.SEEN_TABLE, "openat")


def test_seen_vs_missed_and_row_click_opens_call_sites(site: Site) -> None:
    from selenium.webdriver.common.by import By

    site.open("?view=seen&trace=0")
    curl = site.traces[0]
    n_openat = int((curl.events["name"] == "openat").sum())
    table = site.wait_text(ids.SEEN_TABLE, "openat")
    assert "seen · allowed" in table and f"{n_openat}" in table
    summary = site.text_of(ids.SEEN_SUMMARY)
    assert f"{len(names_of(curl))} seen · allowed" in summary.replace("\n", " ")
    assert f"{len(STATIC - names_of(curl))} static analysis only" in summary.replace("\n", " ")
    site.wait_text(ids.SEEN_TABLE, "static analysis only")
    site.shot("seen")
    site.click(
        lambda d: [
            c for c in d.find_elements(By.CSS_SELECTOR, f"#{ids.SEEN_TABLE} td") if c.text == "openat"
        ],
        "the openat cell",
    )
    body = site.wait_text(ids.CALLSITES_BODY, "Ranked stacks")
    assert body.splitlines()[0] == "openat"
    assert f"{n_openat}" in body
    assert "openat" in site.text_of(ids.CALLSITES_SYSCALL)
    site.shot("seen-click-callsites")


def test_call_sites_view(site: Site) -> None:
    from selenium.webdriver.common.by import By

    site.open("?view=callsites&trace=2&syscall=openat")
    tar = site.traces[2]
    sites = data.call_sites(tar, "openat")
    body = site.wait_text(ids.CALLSITES_BODY, "Ranked stacks")
    assert f"{sites.calls:,}" in body
    assert sites.stacks.iloc[0]["caller"] in site.text_of(ids.CALLSITES_TABLE)
    site.wait(lambda d: d.find_elements(By.CSS_SELECTOR, f"#{ids.CALLSITES_TREE} g.slice"), "icicle slices")
    site.shot("callsites")


def _plot(site: Site) -> Any:
    from selenium.webdriver.common.by import By

    return site.drv.find_element(By.CSS_SELECTOR, f"#{ids.TIMELINE_GRAPH} .js-plotly-plot")


def _title(site: Site) -> str:
    return str(site.drv.execute_script("return arguments[0].layout.title.text", _plot(site)))


def test_timeline_zoom_refines_and_click_shows_a_call(site: Site) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    site.open("?view=timeline&trace=3")
    site.wait(
        lambda d: d.find_elements(By.CSS_SELECTOR, f"#{ids.TIMELINE_GRAPH} .js-plotly-plot"), "the plot"
    )
    site.wait(lambda d: "binned every" in _title(site), "a binned first view")
    first = _title(site)
    assert first.startswith("200,000 calls in view")
    site.shot("timeline-binned")

    # A real mouse drag over 1/10 of the x axis zooms in: the server answers with finer bins.
    box = site.drv.execute_script(
        "const gd=arguments[0], xa=gd._fullLayout.xaxis, ya=gd._fullLayout.yaxis,"
        " r=gd.getBoundingClientRect();"
        "return [r.width, r.height, xa._offset, xa._length, ya._offset, ya._length];",
        _plot(site),
    )
    w, h, x_off, x_len, y_off, y_len = box
    start = (x_off + 0.45 * x_len - w / 2, y_off + 0.5 * y_len - h / 2)
    ActionChains(site.drv).move_to_element_with_offset(
        _plot(site), int(start[0]), int(start[1])
    ).click_and_hold().move_by_offset(int(0.05 * x_len), 0).move_by_offset(
        int(0.05 * x_len), 0
    ).release().perform()
    site.wait(lambda d: _title(site) != first, "the zoomed view")
    zoomed = _title(site)
    assert "calls in view" in zoomed
    zoomed_total = int(zoomed.split(" calls")[0].replace(",", ""))
    assert 0 < zoomed_total < 200_000

    # Zoom to 3 ms (as a relayout from the modebar would): every call is drawn as itself.
    site.drv.execute_script("Plotly.relayout(arguments[0], {'xaxis.range': [2.0, 2.003]})", _plot(site))
    site.wait(lambda d: "each drawn" in _title(site), "single calls after zooming in")
    site.shot("timeline-zoomed")

    # Click one drawn call: the panel shows its arguments, return value and duration.
    target = site.drv.execute_script(
        "const gd=arguments[0], xa=gd._fullLayout.xaxis, ya=gd._fullLayout.yaxis,"
        " r=gd.getBoundingClientRect();"
        "const t=gd._fullData.find(t => t.type==='scattergl' && t.mode==='markers' && t.x && t.x.length>0);"
        "const i=Math.floor(t.x.length/2);"
        "return [xa._offset+xa.l2p(t.x[i]) - r.width/2, ya._offset+ya.l2p(t.y[i]) - r.height/2,"
        " t.customdata[i][1]];",
        _plot(site),
    )
    ActionChains(site.drv).move_to_element_with_offset(_plot(site), int(target[0]), int(target[1])).pause(
        0.3
    ).click().perform()
    info = site.wait_text(ids.TIMELINE_INFO, "returned")
    assert info.splitlines()[0] in names_of(site.traces[3])
    assert "duration" in info and "task" in info
    site.shot("timeline-click")


def test_timeline_box_selection_counts_calls(site: Site) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    site.open("?view=timeline&trace=2")
    site.wait(
        lambda d: d.find_elements(By.CSS_SELECTOR, f"#{ids.TIMELINE_GRAPH} .js-plotly-plot"), "the plot"
    )
    site.wait(lambda d: "calls in view" in _title(site), "the timeline")
    tar = site.traces[2]
    assert _title(site).startswith(f"{len(tar.events):,} calls in view")
    legend = site.text_of(ids.TIMELINE_GRAPH)
    for mark in ("fork", "exec", "exit"):
        assert mark in legend
    site.drv.execute_script("Plotly.relayout(arguments[0], {dragmode: 'select'})", _plot(site))
    box = site.drv.execute_script(
        "const gd=arguments[0], xa=gd._fullLayout.xaxis, ya=gd._fullLayout.yaxis,"
        " r=gd.getBoundingClientRect();"
        "return [r.width, r.height, xa._offset, xa._length, ya._offset, ya._length];",
        _plot(site),
    )
    w, h, x_off, x_len, y_off, y_len = box
    ActionChains(site.drv).move_to_element_with_offset(
        _plot(site), int(x_off + 0.02 * x_len - w / 2), int(y_off + 0.02 * y_len - h / 2)
    ).click_and_hold().move_by_offset(int(0.5 * x_len), int(0.5 * y_len)).move_by_offset(
        int(0.46 * x_len), int(0.46 * y_len)
    ).release().perform()
    top = data.syscall_counts(tar.events)["name"].iloc[0]
    sel = site.wait_text(ids.TIMELINE_SELECTION, "Calls in the selected range")
    site.wait_text(ids.TIMELINE_SELECTION + "-table", top)  # the table of counts, rendered
    total = int(sel.splitlines()[1].split(" calls")[0].replace(",", ""))
    assert 0 < total <= len(tar.events)
    site.shot("timeline-selection")


def test_policy_toggles_and_download(site: Site) -> None:
    from selenium.webdriver.common.by import By

    site.open("?view=policy&trace=0")
    preview = site.wait_text(ids.POLICY_JSON, '"read"')
    assert '"defaultAction": "SCMP_ACT_ERRNO"' in preview
    assert "connect" in preview

    def toggle(container: str, value: str) -> None:
        box = site.drv.find_element(By.CSS_SELECTOR, f"#{container} input[value='{value}']")
        box.find_element(By.XPATH, "./ancestor::label").click()

    toggle(ids.POLICY_SYSCALLS, "read")
    site.wait(lambda d: '"read"' not in site.text_of(ids.POLICY_JSON), "read removed from the JSON")
    # bind/listen come from --static and start off, so @network-io starts unchecked: the first
    # click allows the whole group, the second removes it.
    assert '"bind"' not in site.text_of(ids.POLICY_JSON)
    toggle(ids.POLICY_GROUPS, "@network-io")
    site.wait(lambda d: '"bind"' in site.text_of(ids.POLICY_JSON), "@network-io members added")
    toggle(ids.POLICY_GROUPS, "@network-io")
    site.wait(lambda d: '"connect"' not in site.text_of(ids.POLICY_JSON), "@network-io members removed")
    text = site.text_of(ids.POLICY_JSON)
    assert '"socket"' not in text and '"openat"' in text
    assert "of" in site.text_of(ids.POLICY_COUNT)
    site.shot("policy")
    for old in site.downloads.glob("*.json"):
        old.unlink()
    site.drv.find_element(By.ID, ids.POLICY_DOWNLOAD_BUTTON).click()
    deadline = time.monotonic() + TIMEOUT
    files: list[Path] = []
    while time.monotonic() < deadline and not files:
        files = [f for f in site.downloads.glob("*.json") if f.stat().st_size > 0]
        time.sleep(0.1)
    assert files, "no download"
    downloaded = policy_mod.load(files[0])
    assert files[0].name == "seccomp-curl.json"
    assert policy_mod.evaluate(downloaded, "read")[0] == "SCMP_ACT_ERRNO"
    assert policy_mod.evaluate(downloaded, "connect")[0] == "SCMP_ACT_ERRNO"
    assert policy_mod.evaluate(downloaded, "openat")[0] == "SCMP_ACT_ALLOW"


def test_compare_view(site: Site) -> None:
    from selenium.webdriver.common.by import By

    site.open("?view=compare&trace=0")
    curl, ls = site.traces[0], site.traces[1]
    body = site.wait_text(ids.COMPARE_BODY, "Only in A (curl)")
    only_a = sorted(names_of(curl) - names_of(ls))
    only_b = sorted(names_of(ls) - names_of(curl))
    assert f"Only in A (curl): {len(only_a)}" in body and f"Only in B (ls): {len(only_b)}" in body
    chips = {c.text for c in site.drv.find_elements(By.CSS_SELECTOR, f"#{ids.COMPARE_BODY} .chip.only-a")}
    assert chips == set(only_a)
    site.wait(lambda d: d.find_elements(By.CSS_SELECTOR, f"#{ids.COMPARE_GRAPH} .main-svg"), "the bars")
    site.shot("compare")


def test_no_path_reaches_the_server(site: Site) -> None:
    """A crafted URL can only pick among the served traces: the first one answers."""
    site.open("?view=overview&trace=../../etc/passwd")
    text = site.wait_text(ids.OVERVIEW_CARDS, "curl")
    assert "root:" not in text


def test_seen_vs_missed_under_another_traces_profile(site: Site) -> None:
    """curl under the profile committed for ls: what curl needs beyond ls is denied, call by call."""
    curl = site.traces[0]
    ls_profile = Path(__file__).resolve().parents[2] / "sample_traces" / "ls.json"
    if not ls_profile.is_file():
        pytest.skip("sample_traces/ls.json is missing")
    pol = policy_mod.load(ls_profile)
    expected = data.seen_vs_missed(curl.events, pol)
    denied = expected[expected["status"] == data.STATUS_DENIED]
    assert len(denied) > 0
    server, _thread = serve_in_thread(create_app([curl], pol), "127.0.0.1", 0)
    try:
        site.drv.get(f"http://127.0.0.1:{server.port}/?view=seen")
        summary = site.wait_text(ids.SEEN_SUMMARY, "seen · denied").replace("\n", " ")
        assert f"{len(denied)} seen · denied" in summary
        table = site.wait_text(ids.SEEN_TABLE, "seen · denied")
        first = denied.iloc[0]
        assert first["name"] in table and "--policy ls.json" in site.text_of(ids.VIEW)
        assert str(ls_profile.parent) not in site.drv.page_source
        site.shot("seen-other-profile")
    finally:
        server.shutdown()


def test_trace_picker_switches_every_view(site: Site) -> None:
    from selenium.webdriver.common.by import By

    site.open("?view=overview&trace=0")
    site.wait_text(ids.OVERVIEW_CARDS, "curl -sS")
    site.click(lambda d: d.find_elements(By.ID, ids.TRACE), "the trace picker")
    site.click(
        lambda d: [
            e
            for e in d.find_elements(By.CSS_SELECTOR, "[role=option], .dash-dropdown-option, label")
            if e.text.strip() == "1: ls"
        ],
        "the ls option",
    )
    ls = site.traces[1]
    text = site.wait_text(ids.OVERVIEW_CARDS, ls.meta["command"])
    assert f"{len(ls.events):,}" in text
