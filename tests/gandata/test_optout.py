"""Opt-outs beyond noai: the TDM Reservation Protocol (tdm-reservation header,
/.well-known/tdmrep.json) and ai.txt, on a local server (127.0.0.1 only)."""

from __future__ import annotations

import json
from collections import Counter
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest

from gandata.config import BuildConfig, CleanConfig, ImageConfig, SourceSpec
from gandata.pipeline import build
from gandata.sources.web.optout import (
    SiteOptOuts,
    parse_ai_txt,
    parse_tdmrep,
    tdmrep_rule,
)
from tests.common.web_server import LocalServer, QuietHandler, png_bytes

TDMREP = [
    {"location": "/reserved/*", "tdm-reservation": 1, "tdm-policy": "https://rights.example/policy.json"},
    {"location": "/reserved/open.png", "tdm-reservation": 0},  # never reached: the first match applies
    {"location": "/*", "tdm-reservation": 0},
]
AI_TXT = "# Spawning ai.txt\nUser-Agent: *\nDisallow: /no-ai/\nDisallow: *.gif\nAllow: /no-ai/allowed.png\n"
IMAGES = ["/img/ok.png", "/reserved/a.png", "/reserved/open.png", "/no-ai/b.png", "/no-ai/allowed.png", "/hdr/c.png"]


class OptOutServer(LocalServer):
    """Serves the images above; /hdr/ answers with ``tdm-reservation: 1``."""

    def __init__(self, tdmrep: Any = TDMREP, ai_txt: str | None = AI_TXT) -> None:
        self.counts: Counter[str] = Counter()
        files: dict[str, tuple[bytes, str]] = {p: (png_bytes((40 * i % 256, 90, 200 - 20 * i)), "image/png") for i, p in enumerate(IMAGES)}
        if tdmrep is not None:
            files["/.well-known/tdmrep.json"] = (json.dumps(tdmrep).encode(), "application/json")
        if ai_txt is not None:
            files["/ai.txt"] = (ai_txt.encode(), "text/plain")
        server = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                server.counts[self.path] += 1
                body, kind = files.get(self.path, (b"not found", "text/plain"))
                self.send_response(200 if self.path in files else 404)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                if self.path.startswith("/hdr/"):
                    self.send_header("tdm-reservation", "1")
                    self.send_header("tdm-policy", "https://rights.example/hdr.json")
                self.end_headers()
                self.wfile.write(body)

        self._serve(ThreadingHTTPServer(("127.0.0.1", 0), Handler))


@pytest.fixture()
def server() -> Iterator[OptOutServer]:
    with OptOutServer() as s:
        yield s


def _build(tmp_path: Path, server: OptOutServer, params: dict[str, str] | None = None) -> tuple[dict[str, tuple[str, str]], dict]:
    listing = tmp_path / "urls.txt"
    listing.write_text("".join(server.url(p) + "\n" for p in IMAGES))
    out = tmp_path / "out"
    build(BuildConfig(sources=(SourceSpec(f"urls:{listing}", params=params or {}),), output=str(out),
                      image=ImageConfig(size_px=16, min_size_px=8), allow_private_network=True, executor="serial",
                      clean=CleanConfig(enabled=False)))
    rejected = {}
    for line in (out / "rejected.jsonl").read_text().splitlines():
        rec = json.loads(line)
        rejected[rec["source"].split(":", 2)[2].split("/", 1)[1]] = (rec["reason"], rec["detail"])
    return rejected, json.loads((out / "manifest.json").read_text())


def test_tdm_reservation_and_ai_txt_on_a_local_server(tmp_path: Path, server: OptOutServer) -> None:
    rejected, manifest = _build(tmp_path, server)
    assert {k: v[0] for k, v in rejected.items()} == {
        "reserved/a.png": "tdm_reserved", "reserved/open.png": "tdm_reserved", "no-ai/b.png": "ai_txt", "hdr/c.png": "tdm_reserved",
    }
    assert manifest["num_samples"] == 2 and manifest["rejections"] == {"ai_txt": 1, "tdm_reserved": 3}
    # Each detail names the URL and what reserved it.
    url = server.url("/reserved/a.png")
    assert rejected["reserved/a.png"][1] == (f"{url}: TDM rights reserved by /.well-known/tdmrep.json "
                                              "(location '/reserved/*'; tdm-policy https://rights.example/policy.json)")
    assert rejected["no-ai/b.png"][1] == f"{server.url('/no-ai/b.png')}: disallowed by /ai.txt (Disallow: /no-ai/)"
    assert rejected["hdr/c.png"][1] == f"{server.url('/hdr/c.png')}: tdm-reservation: 1 header; tdm-policy https://rights.example/hdr.json"
    # Site files are fetched once; files they reserve are never requested.
    assert server.counts["/.well-known/tdmrep.json"] == 1 and server.counts["/ai.txt"] == 1
    assert server.counts["/reserved/a.png"] == 0 and server.counts["/no-ai/b.png"] == 0


def test_optouts_option_switches_them_off(tmp_path: Path, server: OptOutServer) -> None:
    rejected, _ = _build(tmp_path, server, {"optouts": "ai.txt"})
    assert {k: v[0] for k, v in rejected.items()} == {"no-ai/b.png": "ai_txt"}
    assert server.counts["/.well-known/tdmrep.json"] == 0


def test_no_site_files_reserve_nothing(tmp_path: Path) -> None:
    with OptOutServer(tdmrep=None, ai_txt=None) as server:
        rejected, manifest = _build(tmp_path, server)
    assert {k: v[0] for k, v in rejected.items()} == {"hdr/c.png": "tdm_reserved"}
    assert manifest["num_samples"] == 5


def test_parsers() -> None:
    rules = parse_tdmrep(json.dumps(TDMREP))
    assert tdmrep_rule(rules, "http://h/reserved/x.png").reserved
    assert not tdmrep_rule(rules, "http://h/img/x.png").reserved
    assert parse_tdmrep("not json") == () and parse_tdmrep('{"location": "/"}') == ()
    anchored = parse_tdmrep('[{"location": "/a.png$", "tdm-reservation": "1"}]')
    assert tdmrep_rule(anchored, "http://h/a.png") and tdmrep_rule(anchored, "http://h/a.png.bak") is None
    ai = parse_ai_txt(AI_TXT, "gandata/0.1 (bot)")
    site = SiteOptOuts(ai_txt=ai)
    assert site.refusal("http://h/x/anim.gif")[0] == "ai_txt"
    assert site.refusal("http://h/no-ai/allowed.png") is None  # the longer Allow wins
    # A group for our own User-Agent replaces the * group.
    own = parse_ai_txt("User-Agent: *\nDisallow: /\n\nUser-Agent: gandata\nDisallow: /private/\n", "gandata/0.1")
    assert SiteOptOuts(ai_txt=own).refusal("http://h/public.png") is None
    assert SiteOptOuts(ai_txt=own).refusal("http://h/private/p.png")[0] == "ai_txt"
    assert SiteOptOuts(ai_txt=parse_ai_txt("User-Agent: *\nDisallow: /\n", "x")).refusal("http://h/a.png")[0] == "ai_txt"
