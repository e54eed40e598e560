"""One FastAPI ``APIRouter`` per resource; :func:`..app.create_app` includes them.

Each router reads the store and settings from ``request.app.state`` (see :mod:`._common`),
so a router module holds its routes and nothing else.
"""
