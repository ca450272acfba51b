"""The dashboard in a real browser (Debian's headless Chromium driven by Playwright) against the
running services loaded with example posts: every page shows real data, a search finds posts,
acknowledging an alert changes it, a change made elsewhere arrives live. Screenshots of each page are
saved under tests/screenshots/ (or CIVIC_SCREENSHOTS_DIR)."""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from civic.listening.v1 import (
    alerting_pb2,
    alerting_pb2_grpc,
    ingestion_pb2,
    ingestion_pb2_grpc,
    post_pb2,
    search_pb2,
    search_pb2_grpc,
)
from services.devstack.launch import free_port, stop_pid
from tests.fixtures.pipeline import make_post
from tests.fixtures.stack_dashboard import DashboardStack, ingest_and_wait, insert_dead_letter, start_gateway

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

TENANT = "city-transit"
SCREENSHOTS = Path(os.environ.get("CIVIC_SCREENSHOTS_DIR") or Path(__file__).resolve().parents[1] / "screenshots")
WAIT_MS = 60_000


def chromium_path() -> str:
    """Debian's Chromium (apt-get install chromium); Playwright never downloads a browser here."""
    found = os.environ.get("CIVIC_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("Chromium is not installed: `apt-get install -y chromium` (make install does it)")
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path(), headless=True,
                                              args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, dashboard_stack: DashboardStack) -> Iterator[Page]:
    """A laptop-sized page whose viewer is a city-transit analyst named Tester, in German, so that
    numbers and dates must follow the viewer's locale."""
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="de-DE", timezone_id="UTC")
    tab = context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda error: problems.append(str(error)))
    tab.goto(f"{dashboard_stack.url}/?tenant={TENANT}#/overview")
    tab.fill("#viewer-name", "Tester")
    tab.click("#viewer-form button[type=submit]")
    yield tab
    context.close()
    assert not problems, f"script errors in the page: {problems}"


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def api(stack: DashboardStack, path: str) -> dict:  # type: ignore[type-arg]
    reply = httpx.get(stack.url + path, headers={"X-Civic-Tenant": TENANT}, timeout=60)
    reply.raise_for_status()
    return reply.json()  # type: ignore[no-any-return]


def test_overview_shows_the_agencys_figures_and_charts(page: Page, dashboard_stack: DashboardStack) -> None:
    page.goto(f"{dashboard_stack.url}/#/overview?period=1d")
    expected = api(dashboard_stack, "/api/overview?period=1d")["totals"]["posts"]
    posts = page.locator(".kpi", has_text="Posts").locator(".value")
    expect(posts).to_have_text(f"{expected:,}".replace(",", "."), timeout=WAIT_MS)  # German grouping
    expect(page.locator("text=13.11.2026").first).to_be_visible()  # German date order
    for title in ("Volume and sentiment over time", "Share of voice by channel", "CX index per topic", "Tone"):
        expect(page.get_by_role("heading", name=title)).to_be_visible()
    expect(page.locator(".js-plotly-plot .main-svg").first).to_be_visible(timeout=WAIT_MS)
    assert page.locator(".js-plotly-plot").count() >= 3
    expect(page.locator("section[aria-label='Top emerging terms'] tbody tr").first).to_be_visible()
    expect(page.get_by_text("vs previous period").first).to_be_visible()
    shot(page, "overview")

    page.fill("input[name=from]", "2026-11-13")
    page.fill("input[name=to]", "2026-11-13")
    page.click("form[aria-label='Period and query'] button[type=submit]")
    day = api(dashboard_stack, "/api/overview?from=2026-11-13&to=2026-11-14")["totals"]["posts"]
    assert day != expected
    expect(posts).to_have_text(f"{day:,}".replace(",", "."), timeout=WAIT_MS)
    expect(page.get_by_text(re.compile(r"13\.11\.2026, 00:00 . 14\.11\.2026, 00:00, compared with"))).to_be_visible()

    term = page.locator("section[aria-label='Top emerging terms'] tbody a").first
    word = term.text_content() or ""
    term.click()
    expect(page.locator("li.hit").first).to_be_visible(timeout=WAIT_MS)
    assert (page.input_value("input[name=q]"), page.input_value("input[name=from]"),
            page.input_value("input[name=to]")) == (word, "2026-11-13", "2026-11-13")


def test_search_finds_posts_with_highlights_and_links(page: Page, dashboard_stack: DashboardStack) -> None:
    page.click("nav >> text=Search")
    page.fill("input[name=q]", '"line 3"')
    page.check("input[name=sentiments][value=negative]")
    page.click("form[role=search] button[type=submit]")
    hits = page.locator("li.hit")
    expect(hits.first).to_be_visible(timeout=WAIT_MS)
    assert hits.count() == 20
    expect(hits.first.locator("mark").first).to_have_text(re.compile("line|3", re.I))
    expect(hits.first.locator(".badge.negative")).to_be_visible()
    link = hits.first.get_by_role("link", name=re.compile("Open the original post"))
    assert (link.get_attribute("href") or "").startswith("https://example.org/synthetic/")
    expect(page.get_by_text(re.compile(r"[\d.]+ posts match"))).to_be_visible()
    total = api(dashboard_stack, '/api/search?q="line 3"&sentiments=negative')["total"]
    page.click("text=More results")
    expect(hits).to_have_count(min(total, 40), timeout=WAIT_MS)
    shot(page, "search")

    page.fill("input[name=q]", '"line 3" AND (')
    page.click("form[role=search] button[type=submit]")
    expect(page.locator(".state.error")).to_contain_text("query", timeout=WAIT_MS)

    page.fill("input[name=q]", "trains stopped between stations")
    page.check("input[name=semantic]")
    page.click("form[role=search] button[type=submit]")
    expect(page.get_by_text("closest in meaning")).to_be_visible(timeout=WAIT_MS)
    assert hits.count() > 0


def test_alerts_explain_priority_take_actions_and_update_live(page: Page, dashboard_stack: DashboardStack) -> None:
    page.click("nav >> text=Alerts")
    cards = page.locator("article.alert-card")
    expect(cards.first).to_be_visible(timeout=WAIT_MS)
    expect(page.locator(".live.on")).to_be_visible(timeout=WAIT_MS)
    firing = page.locator("article.alert-card[data-state=firing]").filter(
        has=page.locator("button[data-action=acknowledge]:not([disabled])"))
    card = firing.first
    alert_id = card.get_attribute("data-alert-id")
    card.get_by_text(re.compile(r"Why priority")).click()
    alerts = {a["id"]: a for a in api(dashboard_stack, "/api/alerts?state=firing")["alerts"]}
    factors = alerts[alert_id]["priority_factors"]
    assert factors
    expect(card.locator("table.factors tbody tr")).to_have_count(len(factors))
    expect(card.locator("table.factors tbody tr").first).to_contain_text(factors[0]["name"])

    card.locator("button[data-action=acknowledge]").click()
    mine = page.locator(f"article[data-alert-id='{alert_id}']")
    expect(mine.locator("[data-role=status]")).to_contain_text("Acknowledged by Tester", timeout=WAIT_MS)
    expect(mine.locator("button[data-action=acknowledge]")).to_be_disabled()
    with grpc.insecure_channel(dashboard_stack.alerting_target) as channel:
        alerting = alerting_pb2_grpc.AlertingServiceStub(channel)
        stored = {a.id: a for a in alerting.ListAlerts(alerting_pb2.ListAlertsRequest(tenant=TENANT, limit=500)).alerts}
        assert stored[alert_id].acknowledged_by == "Tester"
        # A colleague assigns it from elsewhere (the CLI, another browser): the page shows it unreloaded.
        alerting.AssignAlert(alerting_pb2.AssignAlertRequest(
            tenant=TENANT, alert_id=alert_id, assignee="metro night crew", by="colleague"))
    expect(mine.locator("[data-role=status]")).to_contain_text("Assigned to metro night crew by colleague",
                                                              timeout=WAIT_MS)
    expect(page.locator("section[aria-label=Silences] h2")).to_have_text("Silences")
    shot(page, "alerts")


def test_sources_show_each_connector_and_its_state(page: Page, dashboard_stack: DashboardStack) -> None:
    with grpc.insecure_channel(dashboard_stack.ingestion_target) as channel:
        ingestion = ingestion_pb2_grpc.IngestionServiceStub(channel)
        created = ingestion.CreateSource(ingestion_pb2.CreateSourceRequest(spec=ingestion_pb2.SourceSpec(
            tenant=TENANT, name="metro-newsroom", kind="rss", url=f"http://127.0.0.1:{free_port()}/feed.xml",
            interval_s=60))).source
    page.click("nav >> text=Sources")
    row = page.locator(f"tr[data-source-id='{created.id}']")
    expect(row).to_contain_text("metro-newsroom", timeout=WAIT_MS)
    expect(row).to_contain_text("rss")
    expect(row).to_contain_text("active")
    row.get_by_role("button", name="Pause metro-newsroom").click()
    expect(row.get_by_role("button", name="Resume metro-newsroom")).to_be_visible(timeout=WAIT_MS)
    expect(page.locator(f"tr[data-source-id='{created.id}']")).to_contain_text("paused")
    shot(page, "sources")


def test_sources_show_the_posts_that_failed_downstream(browser: Browser, dashboard_stack: DashboardStack) -> None:
    tenant = f"dead-{uuid.uuid4().hex[:8]}"
    context = browser.new_context(locale="en-GB", timezone_id="UTC")
    tab = context.new_page()
    tab.goto(f"{dashboard_stack.url}/?tenant={tenant}#/sources")
    panel = tab.locator("section[aria-label='Posts that failed downstream']")
    expect(panel).to_contain_text("None: every accepted post", timeout=WAIT_MS)
    insert_dead_letter(dashboard_stack, tenant, "lost-<b>1</b>", "Enrich: INTERNAL: inference failed (failed 5 times)")
    tab.reload()
    row = panel.locator("tbody tr")
    expect(row).to_have_count(1, timeout=WAIT_MS)
    expect(row).to_contain_text("lost-<b>1</b>")  # shown as text, never as markup
    expect(row).to_contain_text("Enrich: INTERNAL: inference failed (failed 5 times)")
    expect(panel).to_contain_text("1 post was accepted but given up on further down")
    shot(tab, "sources-failed")
    context.close()


def test_a_posts_own_markup_shows_as_text_in_highlights(browser: Browser, dashboard_stack: DashboardStack) -> None:
    tenant = f"markup-{uuid.uuid4().hex[:8]}"
    ingest_and_wait(dashboard_stack, [make_post(tenant, "markup", 'A literal <em>sneaky</em> tag & "quotes"')])
    context = browser.new_context(locale="en-GB", timezone_id="UTC")
    tab = context.new_page()
    tab.goto(f"{dashboard_stack.url}/?tenant={tenant}#/search")
    tab.fill("input[name=q]", "sneaky")
    tab.click("form[role=search] button[type=submit]")
    hit = tab.locator("li.hit")
    expect(hit).to_have_count(1, timeout=WAIT_MS)
    expect(hit).to_contain_text('A literal <em>sneaky</em> tag & "quotes"')
    expect(hit.locator("mark")).to_have_count(1)
    expect(hit.locator("mark")).to_have_text("sneaky")
    assert hit.locator("em").count() == 0
    context.close()


def test_the_page_is_keyboard_navigable_and_never_blank(page: Page, dashboard_stack: DashboardStack) -> None:
    page.goto(f"{dashboard_stack.url}/#/alerts")
    expect(page.locator("article.alert-card").first).to_be_visible(timeout=WAIT_MS)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.closest('main') !== null")
    assert page.evaluate("window.location.hash") == "#/alerts"  # still the Alerts page
    for name in ("Overview", "Search", "Alerts", "Sources"):
        assert page.get_by_role("link", name=name, exact=True).get_attribute("href") == f"#/{name.lower()}"

    page.fill("#viewer-tenant", "")
    page.fill("#viewer-token", "")
    page.click("#viewer-form button[type=submit]")
    expect(page.locator("main .state")).to_contain_text("Choose your agency")
    page.goto(f"{dashboard_stack.url}/#/overview")
    page.fill("#viewer-tenant", "Not An Agency")
    page.click("#viewer-form button[type=submit]")
    expect(page.locator("main .state.error")).to_contain_text("not an agency name", timeout=WAIT_MS)


def test_a_stack_that_is_down_is_explained_not_blank(browser: Browser, tmp_path: Path) -> None:
    dead = {f"CIVIC_{name}_TARGET": f"127.0.0.1:{free_port()}" for name in ("SEARCH", "ALERTING", "INGESTION")}
    gateway, url = start_gateway({**dead, "CIVIC_RPC_TIMEOUT_S": "5"}, tmp_path)
    try:
        context = browser.new_context(locale="en-GB")
        tab = context.new_page()
        tab.goto(f"{url}/?tenant={TENANT}#/overview")
        expect(tab.locator("main .state.error")).to_contain_text("The search service cannot be reached right now",
                                                                 timeout=WAIT_MS)
        tab.goto(f"{url}/#/alerts")
        expect(tab.locator("main .state.error")).to_contain_text("The alerting service cannot be reached",
                                                                 timeout=WAIT_MS)
        shot(tab, "stack-down")
        context.close()
    finally:
        stop_pid(gateway.pid)


def test_tone_shows_beside_sentiment_when_posts_carry_it(page: Page, dashboard_stack: DashboardStack) -> None:
    """Posts indexed with tone (as the tone heads enrich them) get the emotions table and chart."""
    tenant = "tone-agency"
    emotions = [post_pb2.EMOTION_ANGER] * 6 + [post_pb2.EMOTION_JOY] * 3 + [post_pb2.EMOTION_SADNESS]
    posts = []
    for number, emotion in enumerate(emotions):
        post = post_pb2.Post(id=f"tone-{number}", tenant=tenant, channel="webhook", language="en",
                             text=f"Complaint number {number} about the buses", display_text=f"Complaint {number}")
        post.created_at.FromJsonString(f"2026-11-13T{10 + number % 4:02d}:15:00Z")
        enrichment = post_pb2.Enrichment(
            sentiment=post_pb2.SENTIMENT_LABEL_NEGATIVE, emotion=emotion, offensive=number < 2,
            offensive_score=0.9 if number < 2 else 0.1)
        posts.append(post_pb2.EnrichedPost(post=post, enrichment=enrichment))
    with grpc.insecure_channel(dashboard_stack.search_target) as channel:
        indexed = search_pb2_grpc.SearchServiceStub(channel).IndexPosts(search_pb2.IndexPostsRequest(posts=posts))
    assert indexed.indexed == len(posts), indexed.errors

    page.fill("#viewer-tenant", tenant)
    page.click("#viewer-form button[type=submit]")
    page.goto(f"{dashboard_stack.url}/#/overview?period=1d")
    tone = page.locator("section[aria-label=Tone]")
    expect(tone.locator("tbody tr").first).to_contain_text("anger", timeout=WAIT_MS)
    expect(tone.locator("tbody tr").first).to_contain_text("6")
    expect(tone).to_contain_text("Offensive posts: 2 (20 % of posts with tone)")
    expect(tone.locator(".js-plotly-plot .main-svg").first).to_be_visible(timeout=WAIT_MS)
    shot(page, "overview-tone")


def test_topics_are_defined_marked_and_retag_history(page: Page, dashboard_stack: DashboardStack) -> None:
    """An analyst of the passport office defines a topic on the Topics page, history is re-tagged with
    it (the job's progress is shown), and marking a search result records the mark on the topic."""
    tenant = "passport-office"
    page.fill("#viewer-tenant", tenant)
    page.click("#viewer-form button[type=submit]")
    page.click("nav >> text=Topics")
    expect(page.get_by_text("tagged with the shipped defaults")).to_be_visible(timeout=WAIT_MS)
    form = page.locator("form[aria-label='New topic']")
    form.locator("input[name=name]").fill("appointments")
    form.locator("input[name=description]").fill("appointments, queues and walk-ins at the passport office")
    form.locator("textarea[name=examples]").fill("No appointments at the downtown office for weeks.\n"
                                                 "Queued for two hours at the counter.")
    form.locator("button[type=submit]").click()
    row = page.locator("tr[data-topic=appointments]")
    expect(row).to_contain_text("Scored by a classifier taught by its examples and marks", timeout=WAIT_MS)
    expect(row).to_contain_text("Tester")
    expect(page.locator("tr[data-job-state=done]").first).to_contain_text("put topic appointments", timeout=WAIT_MS)
    tagged = httpx.get(f"{dashboard_stack.url}/api/search?topics=appointments&page_size=1",
                       headers={"X-Civic-Tenant": tenant}, timeout=60).json()
    assert tagged["total"] > 0, "history was not re-tagged with the new topic"
    shot(page, "topics")

    page.click("nav >> text=Search")
    page.fill("input[name=topics]", "appointments")
    page.click("form[role=search] button[type=submit]")
    hit = page.locator("li.hit").first
    expect(hit).to_contain_text("topic appointments", timeout=WAIT_MS)
    hit.locator(".marker").get_by_role("button", name="Not relevant").click()
    expect(hit.locator(".marker [role=status]")).to_contain_text("Marked not relevant to appointments",
                                                                 timeout=WAIT_MS)

    page.click("nav >> text=Topics")
    page.locator("tr[data-topic=appointments]").get_by_role("button", name="appointments", exact=True).click()
    marks = page.locator("section[aria-label='Topic appointments'] tbody tr")
    expect(marks.first).to_contain_text("Tester", timeout=WAIT_MS)
    expect(marks.first).to_contain_text("no")
