"""The command line: flags and environment into ``Settings`` (``flags``, whose flag types and
secret-file helpers the tools share) and serving (``serve``: logging, loop, sockets, signals).

Nothing is imported here: the tools need ``flags`` without the server.
"""

__all__ = ["flags", "serve"]
