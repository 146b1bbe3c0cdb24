"""Image-text alignment with the CLIP model the other tabs use: cosine, similarity, clip_score
(one definition, analyzer.scores) and the percentile among mismatched pairs (analyzer.similarity)."""

from __future__ import annotations

from clip_arena.analyzer.content.component import Backend, Component, Context, demo_model_caveat
from clip_arena.analyzer.similarity import score_image_texts


def align(ctx: Context) -> dict:
    result = score_image_texts(ctx.encoder, None, [ctx.text], image_vec=ctx.image_vector)[0]
    return {"cosine": round(result.cosine, 4), "similarity": result.similarity,
            "clip_score": round(result.clip_score, 2), "percentile": result.percentile}


def component(model: str) -> Component:
    return Component(
        name="alignment",
        needs_image=True,
        caveat=demo_model_caveat,
        needs_text=True,
        backends=(Backend(f"clip:{model}", align),),
    )
