"""Topic relevance from post embeddings: one scorer for every place that tags posts.

The search service tags each post against its tenant's topics when it indexes it and re-tags history
when a definition changes; the inference service scores against the default topics; `civic
classify` scores against a topics file. All of them go through this package, so a score means the
same everywhere. Plain numpy (and scikit-learn for the classifier): no model, no network; callers
hand in the embeddings.
"""
