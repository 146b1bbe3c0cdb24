"""Video creatives: the image analysis run over time (analyzer/content on keyframes), shots, text on
screen with first-seen times, CLIP alignment over time, audio loudness and an ABCD-style rubric.

Entry points (import them from their modules; this package imports nothing heavy):
- report.analyze_video(source, text, settings, ...) -> the report dict (see its docstring)
- report.video_text_similarity(source, text, encoder, ...) -> mean and max cosine over sampled frames
- plot.alignment_figure(report) -> a plotly figure of alignment over time with the shots marked
"""
