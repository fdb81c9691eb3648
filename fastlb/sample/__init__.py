"""HAProxy's sample engine: one compiled representation of ``fetch[,converter]*`` behind
ACLs, conditions, rule values, log-format ``%[...]`` fields and variables.

Layout: ``types`` (what a sample is, the casts), ``registry`` (the keyword tables and
argument parsing), ``fetches`` and ``converters`` (the keywords, each registered where
it is implemented), ``maps`` (map files), ``stream`` (what samples are fetched from),
``expr`` (compiling an expression or a value string, once).
"""
from .expr import (Checked, Expr, Format, check_expr, compile_expr, compile_format,  # noqa: F401
                   find_sample_end)
from .registry import CONVERTERS, FETCHES, Context, NotAvailable, SampleError  # noqa: F401
from .stream import PROC_VARS, Stream  # noqa: F401
from .types import as_bytes  # noqa: F401
