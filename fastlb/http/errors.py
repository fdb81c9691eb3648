"""HAProxy 2.6's built-in error pages, and ``errorfile`` responses.

A built-in page is a small HTML document; its status line, headers and the one
sentence per status are HAProxy's (checked against Debian's haproxy 2.6).
"""
from __future__ import annotations

# status -> (reason, sentence)
MESSAGES = {
    200: ("OK", "Service ready."),
    400: ("Bad request", "Your browser sent an invalid request."),
    401: ("Unauthorized", "You need a valid user and password to access this content."),
    403: ("Forbidden", "Request forbidden by administrative rules."),
    404: ("Not Found", "The resource could not be found."),
    405: ("Method Not Allowed", "A request was made of a resource using a request method not supported by that resource"),
    407: ("Unauthorized", "You need a valid user and password to access this content."),
    408: ("Request Time-out", "Your browser didn't send a complete request in time."),
    410: ("Gone", "The resource is no longer available and will not be available again."),
    413: ("Payload Too Large", "The request entity exceeds the maximum allowed."),
    421: ("Misdirected Request", "Request sent to a non-authoritative server."),
    422: ("Unprocessable Content", "The server cannot process the contained instructions."),
    425: ("Too Early", "Your browser sent early data."),
    429: ("Too Many Requests", "You have sent too many requests in a given amount of time."),
    500: ("Internal Server Error", "An internal server error occurred."),
    # sic: HAProxy's 501 sentence starts with a dot
    501: ("Not Implemented", ".The server does not support the functionality required to fulfill the request."),
    502: ("Bad Gateway", "The server returned an invalid or incomplete response."),
    503: ("Service Unavailable", "No server is available to handle this request."),
    504: ("Gateway Time-out", "The server didn't respond in time."),
}

# HAProxy keeps each page as a raw response ("Content-length", "Cache-Control", and
# "Connection: close" for 400 and 408).  Pages produced while a request head is being
# read (400, 408) leave as they are; the others pass through its HTTP layer, which
# writes header names in lower case.
_CLOSES = {400, 408}


def builtin_page(status: int, raw: bool = False) -> bytes:
    """HAProxy's page for ``status``; ``raw`` for errors raised while reading a head."""
    reason, sentence = MESSAGES[status]
    body = f"<html><body><h1>{status} {reason}</h1>\n{sentence}\n</body></html>\n".encode()
    fields = [("Content-length", str(len(body))), ("Cache-Control", "no-cache")]
    if status in _CLOSES:
        fields.append(("Connection", "close"))
    fields.append(("Content-Type", "text/html"))
    if not raw:
        fields = [(name.lower(), value) for name, value in fields]
    head = f"HTTP/1.1 {status} {reason}\r\n" + "".join(f"{n}: {v}\r\n" for n, v in fields) + "\r\n"
    return head.encode() + body


# The reason HAProxy writes after a status it sets itself (return, deny with a body,
# set-status without "reason"); its built-in pages keep the reasons of MESSAGES.
REASONS = {
    100: "Continue", 101: "Switching Protocols", 102: "Processing", 200: "OK",
    201: "Created", 202: "Accepted", 203: "Non-Authoritative Information", 204: "No Content",
    205: "Reset Content", 206: "Partial Content", 207: "Multi-Status",
    210: "Content Different", 226: "IM Used", 300: "Multiple Choices",
    301: "Moved Permanently", 302: "Moved Temporarily", 303: "See Other",
    304: "Not Modified", 305: "Use Proxy", 307: "Temporary Redirect",
    308: "Permanent Redirect", 310: "Too many Redirects", 400: "Bad Request",
    401: "Unauthorized", 402: "Payment Required", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 406: "Not Acceptable", 407: "Proxy Authentication Required",
    408: "Request Time-out", 409: "Conflict", 410: "Gone", 411: "Length Required",
    412: "Precondition Failed", 413: "Request Entity Too Large",
    414: "Request-URI Too Long", 415: "Unsupported Media Type",
    416: "Requested range unsatisfiable", 417: "Expectation failed", 418: "I'm a teapot",
    421: "Misdirected Request", 422: "Unprocessable Content", 423: "Locked",
    424: "Method failure", 425: "Too Early", 426: "Upgrade Required",
    428: "Precondition Required", 429: "Too Many Requests",
    431: "Request Header Fields Too Large", 449: "Retry With",
    450: "Blocked by Windows Parental Controls", 451: "Unavailable For Legal Reasons",
    456: "Unrecoverable Error", 499: "client has closed connection",
    500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway or Proxy Error",
    503: "Service Unavailable", 504: "Gateway Time-out", 505: "HTTP Version not supported",
    506: "Variant also negotiate", 507: "Insufficient storage", 508: "Loop detected",
    509: "Bandwidth Limit Exceeded", 510: "Not extended",
    511: "Network authentication required", 520: "Web server is returning an unknown error",
}
_CLASS_REASONS = {1: "Informational", 2: "Success", 3: "Redirection", 4: "Client Error",
                  5: "Server Error"}


def reason_phrase(status: int) -> str:
    """HAProxy's reason for a status it sets: its table, else one per class."""
    return REASONS.get(status) or _CLASS_REASONS.get(status // 100, "Other")
