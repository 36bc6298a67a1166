"""Web sources: ``urls:FILE`` (a list of image URLs) and ``crawl:URL``
(gallery pages whose images are found first).

- ``options``: the one frozen dataclass of web options and its parser;
- ``guard``: URL checks (scheme, SSRF) and content checks (magic bytes);
- ``fetch``: the polite async client (robots.txt, retries by cause, size cap);
- ``hosts``: per-host adaptive concurrency (AIMD window), pauses, give-up and
  figures, shared by every worker process;
- ``cache``: the download cache that makes re-runs resume;
- ``urls``: URL list readers; ``crawl``: HTML extraction and the crawler;
- ``source``: the Source objects the registry opens.
"""
