import numpy as np
import pytest

from clip_arena.analyzer.scores import scores_from_cosine, scores_from_cosines


@pytest.mark.parametrize("cos,sim,clip", [(0.3, 0.65, 30.0), (-0.2, 0.4, 0.0), (1.0, 1.0, 100.0), (0.123456, 0.5617, 12.3456)])
def test_score_definitions(cos, sim, clip):
    s = scores_from_cosine(cos)
    assert s["cosine"] == pytest.approx(cos)
    assert s["similarity"] == sim
    assert s["clip_score"] == pytest.approx(clip)


def test_vectorised_scores_match_scalar():
    cosines = np.array([-1.0, -0.3, 0.0, 0.27, 0.99])
    vec = scores_from_cosines(cosines)
    for i, c in enumerate(cosines):
        one = scores_from_cosine(c)
        assert vec["similarity"][i] == one["similarity"]
        assert vec["clip_score"][i] == pytest.approx(one["clip_score"])
