"""Image-text analysis: safe image loading, similarity, batch CSV scoring, content analysis."""
