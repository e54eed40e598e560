"""API routers, one module per resource group (each exposes ``router``)."""
