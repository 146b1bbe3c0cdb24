"""End to end: a video dropped on the Analyze tab, its keyframes, alignment plot and rubric seen."""

import pytest

from tests.video_helpers import Shot, write_clip

pytestmark = pytest.mark.browser


def test_analyze_tab_shows_keyframes_plot_and_rubric_of_a_video(serve_app, page, tiny_open_clip_spec, tmp_path):
    clip = tmp_path / "upload" / "ad.mp4"
    clip.parent.mkdir()
    # three shots: the brand on the first, a call to action on the second; a tone on the audio track
    write_clip(clip, [Shot(1.0, (200, 40, 40), text="ACME"), Shot(1.0, (40, 40, 200), text="SHOP NOW"),
                      Shot(0.8, (40, 160, 40))], fps=8, size=(240, 136), tone_hz=440)
    page.goto(serve_app("--model", tiny_open_clip_spec))
    page.get_by_role("tab", name="Analyze").click()
    page.locator("#an-video input[type=file]").set_input_files(str(clip))
    page.locator("#an-video video[src*='/gradio_api/file=']").first.wait_for()  # uploaded, as a user sees it
    page.locator("#an-text textarea").fill("Acme sneakers for summer. Shop now")
    page.locator("#an-brand textarea").fill("Acme")
    page.locator("#an-run").click()
    rubric = page.locator("#an-rubric")
    rubric.wait_for(timeout=60_000)
    verdicts = {c.get_attribute("data-check"): c.get_attribute("data-verdict")
                for c in rubric.locator(".an-check").all()}
    assert verdicts["attention"] == "passed" and verdicts["branding"] == "passed"
    assert verdicts["direction"] == "passed" and set(verdicts) == {"attention", "branding", "connection", "direction"}
    branding = rubric.locator("[data-check=branding]").inner_text()
    assert "first on screen at 0.0 s" in branding  # the evidence, with its time
    keyframes = page.locator("#an-keyframes img")
    keyframes.nth(2).wait_for()
    assert keyframes.count() == 3
    captions = page.locator("#an-keyframes").inner_text()
    assert "shot 1" in captions and "shot 3" in captions
    plot = page.locator("#an-timeline .js-plotly-plot")
    plot.wait_for()
    assert plot.locator(".scatterlayer .trace").count() >= 1  # the alignment line over time
    timeline = page.locator('#an-report [data-section="video"]').inner_text()
    assert "ACME (0.0 s)" in timeline and "SHOP NOW (1.0 s)" in timeline.replace("SHOP NoW", "SHOP NOW")
    assert "LUFS" in timeline
    assert page.locator('#an-report [data-section="ocr"]').get_attribute("data-status") == "ok"
    assert "Video of 2.8 s: 3 shots" in page.locator("#an-summary").inner_text()
    assert not page.locator("#an-palette").is_visible()  # the image-only charts step aside
    page.screenshot(path=str(tmp_path / "analyze_video.png"), full_page=True)
    rubric.screenshot(path=str(tmp_path / "analyze_video_rubric.png"))
