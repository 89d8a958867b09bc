"""The command line: flags and environment into ``Settings`` (``settings``, whose flag types and
secret-file helpers the tools share) and serving (``serve``: logging, loop, sockets, signals).

Nothing is imported here: the tools need ``settings`` without the server.
"""

__all__ = ["serve", "settings"]
