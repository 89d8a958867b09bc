"""The web config's ``basic_auth_users``: bcrypt checks, bounded so guesses cannot starve."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
from collections import OrderedDict
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Final

from exporter.security.auth import decode_basic

# exporter-toolkit checks unknown users against a fixed bcrypt hash at cost 10 (its own is of
# "fakepassword"); this one is of 32 random bytes nobody kept. A fixed cost keeps a guess at an
# unknown user as cheap as exporter-toolkit's, whatever costs the configured hashes have.
DUMMY_HASH: Final = b"$2b$10$a3z3q0FEiIb1GlDjobVkw.Pt7WnH9AIjDjmVSX4uhIw/6b19fYoem"
CACHE_SIZE: Final = 256
MAX_PASSWORD_BYTES: Final = 72
#: bcrypt checks run at once, and checks allowed to wait for one; beyond that, 503.
BCRYPT_WORKERS: Final = 2
BCRYPT_WAITING: Final = 8


class PasswordChecksBusy(Exception):
    """Too many uncached password checks are in progress: answer 503 and let the client retry."""


class BasicAuthUsers:
    """The ``basic_auth_users`` of the web config: bcrypt-verified, with verdicts cached.

    The cache key is an HMAC of user, configured hash and password under a per-process random
    key, so the cache never holds a password or a fast hash of one that outlives the process,
    and a changed hash is checked afresh. Wrong passwords are cached too, apart from the right
    ones and bounded, so retrying one does not cost a bcrypt each time and no number of guesses
    evicts a verified user; identical checks in progress share one bcrypt.

    bcrypt is slow on purpose, so a flood of guesses must not make it a denial of service: at
    most ``BCRYPT_WORKERS`` checks run at once, on their own threads (not the default executor
    the rest of the exporter uses); at most ``BCRYPT_WAITING`` more wait; any further uncached
    check raises ``PasswordChecksBusy`` at once. Cached verdicts never wait, so a scraper whose
    credentials were verified once is served while guesses are being checked.
    """

    def __init__(self) -> None:
        self._cache_key = secrets.token_bytes(32)
        # Admitted and refused credentials in caches of their own: guesses (any number of
        # unknown users and wrong passwords) evict only other guesses, never a verified user.
        self._verdicts: dict[bool, OrderedDict[bytes, None]] = {True: OrderedDict(),
                                                                False: OrderedDict()}
        self._pending: dict[bytes, asyncio.Future[bool]] = {}
        self.in_progress = 0
        self._executor = ThreadPoolExecutor(max_workers=BCRYPT_WORKERS,
                                            thread_name_prefix="bcrypt")

    async def admits(self, headers: Mapping[str, str], hashes: Mapping[str, str]) -> bool:
        """True when ``headers`` carry HTTP Basic credentials of a user in ``hashes``."""
        scheme, _, value = headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        credentials = decode_basic(value.strip())
        if credentials is None:
            return False
        user, password = credentials
        hashed = hashes.get(user)
        key = hmac.new(self._cache_key, json.dumps([user, hashed, password]).encode(),
                       hashlib.sha256).digest()
        if key in self._verdicts[True]:
            return True
        if key in self._verdicts[False]:
            return False
        pending = self._pending.get(key)
        if pending is None:
            pending = self._start(key, hashed, password)
        return await asyncio.shield(pending)

    def _start(self, key: bytes, hashed: str | None, password: str) -> asyncio.Future[bool]:
        if self.in_progress >= BCRYPT_WORKERS + BCRYPT_WAITING:
            raise PasswordChecksBusy
        self.in_progress += 1
        future = asyncio.get_running_loop().run_in_executor(self._executor, _verify, hashed,
                                                            password)
        self._pending[key] = future

        def done(f: asyncio.Future[bool]) -> None:
            self.in_progress -= 1
            del self._pending[key]
            if not f.cancelled() and f.exception() is None:
                cache = self._verdicts[f.result()]
                cache[key] = None
                if len(cache) > CACHE_SIZE:
                    cache.popitem(last=False)

        future.add_done_callback(done)
        return future

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _verify(hashed: str | None, password: str) -> bool:
    import bcrypt  # here: only a web config's users need it, and only once someone logs in

    secret = password.encode("utf-8", "surrogateescape")
    # bcrypt reads at most 72 bytes; refuse longer rather than accept a truncated match.
    if len(secret) > MAX_PASSWORD_BYTES:
        return False
    ok = bcrypt.checkpw(secret, hashed.encode() if hashed is not None else DUMMY_HASH)
    return ok and hashed is not None
