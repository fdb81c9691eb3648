"""HTTP/1 mode: framing (C), error pages, request/response head handling."""
