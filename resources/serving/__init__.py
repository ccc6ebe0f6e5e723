"""Scoring on request: the production model served over HTTP (``make serve``) with the batch
feature code over the published catalog. ``requests`` reads and checks a request, ``service``
holds the verified model and the catalog state, ``app`` is the Starlette application."""
