"""The labeling service: storage opened from settings, the REST API, the worker, rounds.

``activelabel serve`` runs :func:`activelabel.service.app.create_app` under uvicorn and starts a
worker process beside it; ``activelabel worker`` runs the worker alone.
"""
