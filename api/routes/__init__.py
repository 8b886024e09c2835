"""One module per resource; each handler is short and calls store.queries."""
