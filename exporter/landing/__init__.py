"""Did the export land? Listing a run's destination after its Completed (docs/landing.md).

``lister`` is the small interface each store implements and the bounded tally of a listing;
``s3``, ``gcs`` and ``azure`` implement it with the clouds' own aiohttp-based async clients,
each imported only when a destination of its kind is configured; ``check`` retries a listing
into a ``LandingResult`` and runs checks off the request path, a bounded number at once;
``dispatcher`` claims the checks the webhooks stored and records their results.
"""

__all__ = ["check", "credentials", "dispatcher", "lister"]
