"""What a first-hour user saw in the browser (issue #21): one rounding per score, model specs that are
not mail links, messages worded for what was given and for a web user, a CSV dropped on an image box
said, and the Batch preview's error column inside the page."""

import pytest
from PIL import Image

from tests.browser_helpers import upload_image

pytestmark = pytest.mark.browser


def _score(page, url_text=None, image=None, caption="a green square"):
    if image is not None:
        upload_image(page, "sim-image", image)
    if url_text is not None:
        page.locator("#sim-url textarea, #sim-url input").first.fill(url_text)
    page.locator("#sim-captions textarea").fill(caption)
    page.locator("#sim-run").click()


def test_similarity_tab_messages_and_rounding(serve_app, page, tmp_path):
    # The default model cannot load offline: the demo model stands in and the notice gives the reason.
    page.goto(serve_app(env={"CLIP_ARENA_MODEL": "", "HF_HOME": str(tmp_path / "hf")}))
    page.get_by_role("tab", name="Similarity").click()
    notice = page.locator("#sim-model-notice")
    notice.get_by_text("offline mode").wait_for(timeout=60_000)
    assert notice.locator("a").count() == 0  # CONFIG.json@WEIGHTS.safetensors was a mailto: link
    codes = notice.locator("code").all_inner_texts()
    assert "open_clip:CONFIG.json@WEIGHTS.safetensors" in codes and "open_clip:ViT-B-32@openai" in codes

    page.evaluate("""() => {
        const dt = new DataTransfer();
        dt.items.add(new File(["image,caption\\na.png,x\\n"], "pairs.csv", {type: "text/csv"}));
        const box = document.querySelector('#sim-image input[type=file]').parentElement;
        for (const type of ['dragenter', 'dragover', 'drop'])
            box.dispatchEvent(new DragEvent(type, {bubbles: true, cancelable: true, dataTransfer: dt}));
    }""")
    page.get_by_text("pairs.csv is a table: this box takes an image").wait_for()
    assert "Batch CSV tab" in page.locator(".image-drop-hint").inner_text()
    assert page.get_by_text("Invalid file type").count() == 0

    summary = page.locator("#sim-summary")
    _score(page, url_text="not a url at all")
    summary.get_by_text("is neither an image URL").wait_for()
    assert "not found under" not in summary.inner_text()
    _score(page, url_text="http://127.0.0.1:9/x.png")
    summary.get_by_text("this server does not fetch images from private").wait_for()
    assert "pass --allow-private-urls" not in summary.inner_text()

    image = tmp_path / "green.png"
    Image.new("RGB", (72, 72), (20, 160, 40)).save(image)
    page.locator("#sim-url textarea, #sim-url input").first.fill("")
    _score(page, image=image)
    summary.get_by_text("Best match").wait_for()
    cosine = float(page.locator("#sim-table [data-testid=cell-0-2]").inner_text())
    clip_score = float(page.locator("#sim-table [data-testid=cell-0-4]").inner_text())
    text = summary.inner_text()
    assert f"cosine {cosine:.4f}," in text and f"CLIPScore {clip_score:.2f};" in text


def test_batch_preview_error_column_fits_the_page(serve_app, page, tmp_path):
    Image.new("RGB", (30, 30), "red").save(tmp_path / "red.png")
    source = tmp_path / "upload" / "pairs.csv"
    source.parent.mkdir()
    source.write_text("url,title\nred.png,a red square\nnot a url at all,words\nnope.png,missing\n")
    page.goto(serve_app("--model", "demo:base"))
    page.get_by_role("tab", name="Batch CSV").click()
    page.locator("#batch-upload input[type=file]").set_input_files(str(source))
    page.wait_for_function("() => document.querySelector('#batch-image-col input').value === 'url'")
    page.locator("#batch-run").click()
    page.locator("#batch-summary").get_by_text("Done:").wait_for(timeout=60_000)
    preview = page.locator("#batch-preview")
    cell = preview.get_by_text("Image file nope.png was not found").locator("visible=true").first  # a hidden copy too
    cell.wait_for()
    page.screenshot(path=str(tmp_path / "batch_preview.png"), full_page=True)
    box, table = cell.bounding_box(), preview.bounding_box()
    assert box["x"] + box["width"] <= table["x"] + table["width"] + 1  # the sentence wraps inside the table
    assert page.evaluate("() => { const t = document.querySelector('#batch-preview table');"
                         " return t.scrollWidth <= t.parentElement.clientWidth + 1; }")
