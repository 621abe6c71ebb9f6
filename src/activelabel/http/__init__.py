"""The HTTP face of the service: the FastAPI app, its routes, authentication and roles, one
error shape, the middleware and the web app's pages.

Routes are thin: they authenticate the caller, check the role, call one function of
:mod:`activelabel.labeling` (or a repository function of :mod:`activelabel.store`) and return a
schema. :func:`activelabel.http.app.create_app` builds the app over an opened storage.
"""
