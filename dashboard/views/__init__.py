"""One module per dashboard view; each has ``layout(...)`` returning the view's components."""
