"""Machine-readable opt-outs from AI training beyond ``X-Robots-Tag: noai``.

- The TDM Reservation Protocol (W3C Community Group, TDMRep): a
  ``tdm-reservation: 1`` response header on the image, or a rule of the site's
  ``/.well-known/tdmrep.json`` (a JSON array of ``{"location": PATTERN,
  "tdm-reservation": 0|1, "tdm-policy": URL}``; the first rule whose location
  matches the path applies) reserves text-and-data-mining rights: the sample
  is rejected as ``tdm_reserved``, the detail naming the URL, the rule and any
  ``tdm-policy`` (where the rights holder offers a licence).
- ``ai.txt`` (Spawning): a robots.txt-like file at the site root whose
  ``Disallow`` lines (``/``, ``/images/``, ``*.jpg``) name what may not be used
  for AI training: matching URLs are rejected as ``ai_txt``.

The site files are fetched once per host by the parent process, like
robots.txt (``check_sites``); the header is checked on each image response
(``check_response``). The web option ``optouts`` (default ``tdmrep,ai.txt``)
says which are honoured. A missing or unreadable file reserves nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from dataclasses import dataclass
from typing import Any, Sequence
from urllib.parse import urlsplit

from gandata.sources.web.fetch import origin_of

TDMREP_PATH = "/.well-known/tdmrep.json"
AI_TXT_PATH = "/ai.txt"
OPTOUTS = ("tdmrep", "ai.txt")


def _pattern(path_pattern: str) -> re.Pattern[str]:
    """A robots.txt-style path pattern: ``*`` any run of characters, a final
    ``$`` the end of the path, otherwise a prefix."""
    text = path_pattern.strip()
    anchored = text.endswith("$")
    if anchored:
        text = text[:-1]
    body = ".*".join(re.escape(part) for part in text.split("*"))
    return re.compile(body + ("$" if anchored else ""))


def _path_of(url: str) -> str:
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


@dataclass(frozen=True)
class TdmRule:
    """One rule of a tdmrep.json."""

    location: str
    reserved: bool
    policy: str | None = None


def parse_tdmrep(text: str | None) -> tuple[TdmRule, ...]:
    """The rules of a ``tdmrep.json``; none for a missing or malformed file."""
    if not text:
        return ()
    try:
        data = json.loads(text)
    except ValueError:
        return ()
    if not isinstance(data, list):
        return ()
    rules = []
    for item in data:
        if not isinstance(item, dict) or not isinstance(item.get("location"), str):
            continue
        reserved = str(item.get("tdm-reservation", "0")).strip() == "1"
        policy = item.get("tdm-policy") if isinstance(item.get("tdm-policy"), str) else None
        rules.append(TdmRule(item["location"], reserved, policy))
    return tuple(rules)


def tdmrep_rule(rules: Sequence[TdmRule], url: str) -> TdmRule | None:
    """The first rule whose location matches ``url``'s path, if any."""
    path = _path_of(url)
    for rule in rules:
        location = rule.location if rule.location.startswith(("/", "*")) else "/" + rule.location
        if _pattern(location).match(path):
            return rule
    return None


@dataclass(frozen=True)
class AiTxt:
    """The rules of an ai.txt that apply to our User-Agent: (allow, pattern)."""

    rules: tuple[tuple[bool, str], ...] = ()

    def rule_for(self, url: str) -> tuple[bool, str] | None:
        """The deciding rule for ``url`` (the longest matching pattern; Allow
        wins a tie), or None when no rule matches."""
        path = _path_of(url)
        best: tuple[int, bool, str] | None = None
        for allow, pattern in self.rules:
            if not pattern:
                continue
            anchored = pattern if pattern.startswith(("/", "*")) else "/" + pattern
            if _pattern(anchored).match(path):
                key = (len(pattern), allow, pattern)
                if best is None or key[:2] > best[:2]:
                    best = key
        return None if best is None else (best[1], best[2])


def parse_ai_txt(text: str | None, user_agent: str) -> AiTxt:
    """The rules of an ai.txt for ``user_agent``: the groups naming a token of
    it, else the ``*`` groups (robots.txt's group rules)."""
    if not text:
        return AiTxt()
    tokens = {t.lower() for t in re.findall(r"[A-Za-z][A-Za-z0-9_-]*", user_agent.split("/")[0])}
    groups: list[tuple[list[str], list[tuple[bool, str]]]] = []
    agents: list[str] = []
    rules: list[tuple[bool, str]] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        field, sep, value = line.partition(":")
        if not sep:
            continue
        field, value = field.strip().lower(), value.strip()
        if field == "user-agent":
            if rules:  # a new group starts
                groups.append((agents, rules))
                agents, rules = [], []
            agents.append(value.lower())
        elif field in ("allow", "disallow"):
            rules.append((field == "allow", value))
    if agents or rules:
        groups.append((agents or ["*"], rules))
    own = [r for names, rs in groups if any(n != "*" and n in tokens for n in names) for r in rs]
    anyone = [r for names, rs in groups if "*" in names for r in rs]
    return AiTxt(tuple(own or anyone))


@dataclass(frozen=True)
class SiteOptOuts:
    """What one site's tdmrep.json and ai.txt say."""

    tdmrep: tuple[TdmRule, ...] = ()
    ai_txt: AiTxt = AiTxt()

    def refusal(self, url: str) -> tuple[str, str] | None:
        """(reason, detail) when the site's files opt ``url`` out, else None."""
        rule = tdmrep_rule(self.tdmrep, url)
        if rule is not None and rule.reserved:
            policy = f"; tdm-policy {rule.policy}" if rule.policy else ""
            return "tdm_reserved", f"{url}: TDM rights reserved by {TDMREP_PATH} (location {rule.location!r}{policy})"
        decided = self.ai_txt.rule_for(url)
        if decided is not None and not decided[0]:
            return "ai_txt", f"{url}: disallowed by {AI_TXT_PATH} (Disallow: {decided[1]})"
        return None


async def _site_file(fetcher: Any, url: str) -> str | None:
    result = await fetcher.fetch(url, image=False)
    if not result.ok or result.body is None or not (result.status and 200 <= result.status < 300):
        return None
    return bytes(result.body).decode("utf-8", "replace")


async def fetch_site(fetcher: Any, origin: str, optouts: Sequence[str], user_agent: str) -> SiteOptOuts:
    """Fetch and parse the opt-out files of ``origin`` that ``optouts`` honours."""
    tdm_text = await _site_file(fetcher, origin + TDMREP_PATH) if "tdmrep" in optouts else None
    ai_text = await _site_file(fetcher, origin + AI_TXT_PATH) if "ai.txt" in optouts else None
    return SiteOptOuts(parse_tdmrep(tdm_text), parse_ai_txt(ai_text, user_agent))


async def check_sites(entries: list[Any], fetcher: Any, origins: Sequence[str], options: Any) -> list[Any]:
    """``entries`` (UrlEntry) with those the sites' opt-out files cover marked
    rejected, so they are never requested. Run once, in the parent."""
    optouts = tuple(getattr(options, "optouts", OPTOUTS))
    if not optouts or not origins:
        return entries
    sites = dict(zip(origins, await asyncio.gather(*(fetch_site(fetcher, o, optouts, options.user_agent) for o in origins))))
    out = []
    for entry in entries:
        site = sites.get(origin_of(entry.url)) if entry.rejected is None and entry.noai is None else None
        refusal = site.refusal(entry.url) if site is not None else None
        out.append(dataclasses.replace(entry, rejected=refusal) if refusal else entry)
    return out


def check_response(result: Any, optouts: Sequence[str] = OPTOUTS) -> Any:
    """The fetch ``result`` of an image, turned into a ``tdm_reserved``
    rejection when its response carries ``tdm-reservation: 1``."""
    headers = getattr(result, "headers", None) or {}
    if "tdmrep" not in optouts or not result.ok or str(headers.get("tdm-reservation", "")).strip() != "1":
        return result
    policy = headers.get("tdm-policy")
    detail = f"{result.url}: tdm-reservation: 1 header" + (f"; tdm-policy {policy}" if policy else "")
    return dataclasses.replace(result, reason="tdm_reserved", detail=detail, body=None)
