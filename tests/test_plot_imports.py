"""The app imports what its figures need in the main thread, before serving: a figure drawn in a
request thread must not import plotly (or narwhals) modules, or two first draws at once can
deadlock in the import system (the Results tab showed "Error" in CI when this happened)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Runs in a fresh interpreter: builds the app, then draws every figure the app draws, with data,
# and prints the plotting modules that drawing still had to import.
SCRIPT = r"""
import sys, tempfile
from pathlib import Path
sys.path[:0] = [ROOT, ROOT + "/tests"]
from clip_arena.webapp import build_app
from clip_arena.core.settings import Settings
build_app(Settings())  # what the server runs in its main thread before it serves
before = set(sys.modules)

import gradio as gr
from clip_arena.analyzer.analyze_view import labels_figure, palette_figure
from clip_arena.analyzer.batch_view import histogram
from clip_arena.analyzer.similarity import SimilarityResult
from clip_arena.analyzer.similarity_view import results_figure
from catalog_helpers import write_image_catalog
from clip_arena.index.catalog import read_catalog
from clip_arena.votes.results_view import results
from clip_arena.votes.store import ShownRound, VoteStore

tmp = Path(tempfile.mkdtemp())
catalog = read_catalog(write_image_catalog(tmp))
store = VoteStore(tmp / "v.db")
figures = list(results(store, catalog, None)["figures"])  # the empty figures
for i in range(12):
    r = ShownRound(f"r{i}", "ann", "s", f"img{i % 10}", *(("alphamodel", "omegamodel") if i % 2 else ("omegamodel", "alphamodel")),
                   ["img11", "img13", "img15", "img17"], ["img12", "img14", "img16", "img18"], 0, "fp")
    store.record_round(r)
    store.record_vote(r, "right" if i % 3 else ("left" if i % 4 else "tie"), 300)
figures += results(store, catalog, None)["figures"]
figures.append(results_figure([SimilarityResult("a cat", 0.3, 0.65, 30.0, 95.0), SimilarityResult("a dog", 0.1, 0.55, 10.0, 40.0)]))
report = {"sections": {"image_properties": {"dominant_colours": [{"name": "red", "hex": "#ff0000", "share": 0.6}]},
                       "labels": {"categories": {"objects": [{"label": "a cat", "probability": 0.9}]}}}}
figures += [palette_figure(report), labels_figure(report)]
scored = tmp / "scored.csv"
scored.write_text("url,title,cosine\na.png,a,0.25\nb.png,b,\n")
figures.append(histogram(scored))
plot = gr.Plot()
for fig in figures:
    plot.postprocess(fig)
print(len(figures))
print(" ".join(sorted(m for m in set(sys.modules) - before if m.split(".")[0] in ("plotly", "_plotly_utils", "narwhals"))))
"""


def test_drawing_the_apps_figures_imports_no_plotting_module_once_the_app_is_built():
    out = subprocess.run([sys.executable, "-c", SCRIPT.replace("ROOT", repr(str(ROOT)), 2)],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    count, late = out.stdout.strip().split("\n") + [""] * (2 - len(out.stdout.strip().split("\n")))
    assert int(count) >= 12  # every Results figure (empty and drawn), Similarity, Analyze, Batch
    assert late == "", f"imported while drawing, in a request thread: {late}"
