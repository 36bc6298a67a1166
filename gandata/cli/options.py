"""Click options made from the option table (gandata/config/options.py), and
the merge of the flags a user gave into the config mapping.

A flag left out is None here, so that a config file's value stands unless a
flag overrides it.
"""

from __future__ import annotations

from typing import Any, Callable

import click

from gandata.config import DEFAULT_SOURCE, OPTIONS, Option
from gandata.config.options import GROUP_TITLES, GROUPS


class TableOption(click.Option):
    """A click option made from the option table; remembers its help group."""

    def __init__(self, *args: Any, group: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.group = group


class GroupedCommand(click.Command):
    """A command whose --help lists the table's options in one section per
    help group (Sources, Image, Cleaning, ...), then its other options under
    "Options"; a long flat list is hard to scan."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        sections: dict[str, list[tuple[str, str]]] = {}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            group = getattr(param, "group", "")
            sections.setdefault(group, []).append(record)
        for group in (*GROUPS, ""):
            if sections.get(group):
                with formatter.section(GROUP_TITLES.get(group, "Options")):
                    formatter.write_dl(sections[group])


def _help(option: Option) -> str:
    default = option.default_help()
    return option.help + (f" [default: {default}]" if default is not None else "")


def _click_option(option: Option) -> Callable[[Any], Any]:
    decls = [d for d in (option.short, option.flag) if d]
    kwargs: dict[str, Any] = {"help": _help(option), "default": None, "cls": TableOption, "group": option.group}
    if option.metavar:
        kwargs["metavar"] = option.metavar
    if option.kind in ("flag", "off"):
        kwargs["is_flag"] = True
    elif option.kind in ("multiple", "pairs"):
        kwargs["multiple"] = True
        kwargs.pop("default")
        if option.choices:
            kwargs["type"] = click.Choice(option.choices)
    elif option.choices:
        kwargs["type"] = click.Choice(option.choices)
    elif option.type in (int, float):
        kwargs["type"] = option.type
    return click.option(*decls, option.dest, **kwargs)


def table_options(command: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A decorator adding every table option of ``command`` (build, clean,
    stats), in help-group order."""
    chosen = [o for o in OPTIONS if o.flag and command in o.commands]
    chosen.sort(key=lambda o: GROUPS.index(o.group))

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(chosen):
            fn = _click_option(option)(fn)
        return fn

    return decorate


def _pairs(values: tuple[str, ...], flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in values:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint=flag)
        out[key.strip()] = value.strip()
    return out


def _source_list(data: dict[str, Any]) -> list[Any]:
    raw = data.get("sources") or [DEFAULT_SOURCE]
    return list(raw) if isinstance(raw, list) else [raw]


def merge_flags(flags: dict[str, Any], data: dict[str, Any], command: str) -> dict[str, Any]:
    """Merge the table flags of ``command`` found in ``flags`` (click's values,
    None when not given) over the config mapping ``data``; returns ``data``.

    Per-source flags (--labels, --license, ...) apply to every source, web
    flags to every urls:/crawl: source; a source's own value in the config
    file wins over both."""
    per_source: dict[str, Any] = {}
    web: dict[str, str] = {}
    for option in OPTIONS:
        if not option.flag or command not in option.commands:
            continue
        value = flags.pop(option.dest, None)
        if value is None or value == ():
            continue
        if option.kind == "flag":
            value = True
        elif option.kind == "off":
            value = False
        elif option.kind == "multiple":
            value = list(value)
        elif option.kind == "pairs":
            value = _pairs(value, option.flag)
        elif option.choices and option.type is int:
            value = int(value)
        section, _, name = option.key.rpartition(".")
        if section == "sources":
            per_source[name] = value
        elif section == "web":
            web.update(value if name == "params" else {name: str(value)})
        elif option.kind == "pairs":
            table = dict(data.setdefault(section, {}) or {})
            table[name] = {**dict(table.get(name) or {}), **value}
            data[section] = table
        elif section:
            data[section] = {**dict(data.get(section) or {}), name: value}
        else:
            data[name] = value
    if per_source:
        data["sources"] = [
            {"uri": s, **per_source} if isinstance(s, str) else {**per_source, **s} for s in _source_list(data)
        ]
    if web:
        data["sources"] = [_with_web_params(s, web) for s in _source_list(data)]
    return data


def _with_web_params(source: Any, web: dict[str, str]) -> Any:
    """Attach web params to urls:/crawl: sources (the source's own params win)."""
    uri = source if isinstance(source, str) else source.get("uri", "")
    if not str(uri).startswith(("urls:", "crawl:")):
        return source
    if isinstance(source, str):
        return {"uri": source, "params": dict(web)}
    return {**source, "params": {**web, **dict(source.get("params", {}) or {})}}
