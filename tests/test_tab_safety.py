"""The Similarity, Analyze and Batch tabs under hostile input, without a browser: the server's image
policy on every tab, only configured models, one plain sentence per error, bounded job groups."""

import pytest
from PIL import Image

import clip_arena.analyzer.similarity_view as similarity_view
from clip_arena.analyzer.analyze_view import run_analyze
from clip_arena.analyzer.batch_view import run_batch
from clip_arena.analyzer.similarity_view import run_similarity
from clip_arena.core.errors import UserError
from clip_arena.core.settings import Settings


@pytest.fixture
def secret(tmp_path):
    (tmp_path / "root").mkdir()
    Image.new("RGB", (40, 20), "white").save(tmp_path / "secret.png")
    return tmp_path / "secret.png"


def test_similarity_and_analyze_read_paths_only_under_the_roots(secret, tiny_open_clip_spec):
    settings = Settings(model=tiny_open_clip_spec, image_roots=[str(secret.parent / "root")])
    for run in (lambda: run_similarity(None, str(secret), "a cat", tiny_open_clip_spec, settings),
                lambda: run_analyze(None, str(secret), "", tiny_open_clip_spec, settings)):
        with pytest.raises(UserError, match="outside the allowed image folders") as info:
            run()
        assert str(secret.parent / "root") not in str(info.value)  # a browser is not told server folders


def test_hosted_turns_local_paths_off_on_the_image_tabs(secret, tiny_open_clip_spec, monkeypatch):
    monkeypatch.delenv("CLIP_ARENA_IMAGE_ROOTS", raising=False)
    monkeypatch.setenv("SPACE_ID", "someone/clip-arena")
    monkeypatch.chdir(secret.parent)
    settings = Settings.from_env().with_overrides(model=tiny_open_clip_spec)
    with pytest.raises(UserError, match="Local file paths are not read here"):
        run_similarity(None, "secret.png", "a cat", tiny_open_clip_spec, settings)


def test_the_browser_may_choose_only_configured_models(make_image, tiny_open_clip_spec, monkeypatch, tmp_path):
    loaded = []
    monkeypatch.setattr(similarity_view, "photo_model", lambda *a, **k: loaded.append(a) or 1 / 0)
    settings = Settings(model=tiny_open_clip_spec)
    for spec in ("open_clip:ViT-B-32@openai", "hf:someone/huge-model"):
        with pytest.raises(UserError, match="not offered here"):
            run_similarity(str(make_image()), "", "a cat", spec, settings)
        with pytest.raises(UserError, match="not offered here"):
            run_batch(str(tmp_path / "x.csv"), "", "", spec, settings)
    assert loaded == []  # refused before anything was loaded


def test_the_picker_offers_only_configured_models(tiny_open_clip_spec):
    from clip_arena.analyzer.widgets import model_picker

    picker = model_picker(Settings(model=tiny_open_clip_spec, browser_models=("demo:base",)), "Model", "m")
    assert picker.allow_custom_value is False
    assert [c[0] for c in picker.choices] == [tiny_open_clip_spec, "demo:base"]


def test_a_non_image_upload_is_one_plain_sentence(tmp_path, tiny_open_clip_spec):
    from gradio.data_classes import ImageData

    from clip_arena.analyzer.widgets import ImageInput

    upload = tmp_path / "gradio" / "0123abcd" / "report.png"
    upload.parent.mkdir(parents=True)
    upload.write_text("%PDF-1.4 not an image")
    passed = ImageInput(type="filepath").preprocess(ImageData(path=str(upload), orig_name="report.png"))
    assert passed == str(upload)  # not Gradio's "Could not preprocess input component"
    with pytest.raises(UserError) as info:
        run_similarity(passed, "", "a cat", tiny_open_clip_spec, Settings(model=tiny_open_clip_spec))
    message = str(info.value)
    assert message.endswith(".") and message.count(". ") == 0  # one sentence
    assert "uploaded image" in message and str(tmp_path) not in message


def test_model_work_has_its_own_bounded_groups_and_uploads_are_cleaned(tiny_open_clip_spec, monkeypatch):
    import gradio as gr

    from clip_arena import webapp as app

    settings = Settings(model=tiny_open_clip_spec, batch_jobs=2, model_jobs=3, queue_size=17, upload_max_age_s=600)
    demo = app.build_app(settings)
    assert demo.delete_cache == (150, 600)
    groups = {}
    for fn in demo.fns.values():
        if fn.concurrency_id in ("similarity", "analyze", "batch"):
            groups.setdefault(fn.concurrency_id, set()).add(fn.concurrency_limit)
    assert groups == {"similarity": {3}, "analyze": {3}, "batch": {2}}
    launched = {}
    monkeypatch.setattr(gr.Blocks, "launch", lambda self, **kw: launched.update(max_size=self._queue.max_size))
    monkeypatch.setattr(app, "warm_up", lambda s: None)
    monkeypatch.setattr(app, "build_app", lambda *args, **kwargs: demo)
    app.launch(settings)
    assert launched["max_size"] == 17


def test_similarity_caps_captions_and_characters_per_call_hosted_lower(make_image, monkeypatch, tiny_open_clip_spec):
    """On main one call took 100,000 captions (58 s of CPU, a 19 MB reply), round the hosted batch cap."""
    from clip_arena.core.hosting import HOSTED_MAX_CAPTIONS, MAX_CAPTIONS

    monkeypatch.setattr(similarity_view, "photo_model", lambda *a, **k: 1 / 0)  # refused before any model work
    image = str(make_image())
    monkeypatch.delenv("SPACE_ID", raising=False)
    local = Settings(model=tiny_open_clip_spec)
    with pytest.raises(UserError, match=f"at most {MAX_CAPTIONS:,}"):
        run_similarity(image, "", "\n".join("c" for _ in range(MAX_CAPTIONS + 1)), tiny_open_clip_spec, local)
    with pytest.raises(UserError, match="characters; one call takes at most"):
        run_similarity(image, "", "x" * 200_000, tiny_open_clip_spec, local)
    hosted = Settings(model=tiny_open_clip_spec, hosted=True)
    with pytest.raises(UserError, match=f"That is {HOSTED_MAX_CAPTIONS + 1} captions; one call takes at most "
                                        f"{HOSTED_MAX_CAPTIONS}"):
        run_similarity(image, "", "\n".join(f"c{i}" for i in range(HOSTED_MAX_CAPTIONS + 1)), tiny_open_clip_spec,
                       hosted)
