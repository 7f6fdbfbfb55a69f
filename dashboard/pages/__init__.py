"""The dashboard's pages: one module per page, each with ``layout(ctx, params)`` and
``register(app, ctx)`` (its callbacks)."""
