"""Configuration: haproxy.cfg text -> typed model."""
from .model import Config, GlobalSettings, Listener, LogTarget, Proxy, Server  # noqa: F401
from .parser import ConfigError, Parser, load_config  # noqa: F401
