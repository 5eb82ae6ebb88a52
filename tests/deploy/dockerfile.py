"""A Dockerfile read the way BuildKit reads it, for the checks that follow a recipe without Docker.

Only what services/Dockerfile uses: continuation lines and comments, stages, ``ARG``
and ``ENV`` with their scoping (a global ``ARG`` reaches a stage only where the stage
declares it again), ``${VAR}`` substitution in the instructions that get it (never in
``RUN`` or ``CMD``, whose variables the shell expands when they run), exec (JSON) and
shell forms, and ``.dockerignore`` patterns.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

#: The instructions whose arguments Docker substitutes variables in before running them.
_SUBSTITUTED = {"ADD", "ARG", "COPY", "ENV", "EXPOSE", "FROM", "LABEL", "USER", "WORKDIR"}
_VARIABLE = re.compile(r"\$(?:\{(\w+)(?::([-+])([^}]*))?\}|(\w+))")


@dataclass(frozen=True)
class Instruction:
    """One instruction, continuation lines joined: ``COPY --from=build /opt/venv /opt/venv``."""

    keyword: str
    arguments: str

    def exec_form(self) -> list[str] | None:
        """The JSON array of ``CMD ["sh", "-c", "..."]`` (``None`` in shell form)."""
        text = self.arguments.strip()
        if text.startswith("["):
            try:
                words = json.loads(text)
            except json.JSONDecodeError:
                return None
            if isinstance(words, list) and all(isinstance(w, str) for w in words):
                return words
        return None

    def command(self) -> list[str]:
        """What ``CMD``, ``ENTRYPOINT`` or ``HEALTHCHECK ... CMD`` runs, as an argv."""
        text = self.arguments
        if self.keyword == "HEALTHCHECK":
            text = re.sub(r"^(?:--\S+\s+)*CMD\s+", "", text)
        words = Instruction(self.keyword, text).exec_form()
        return words if words is not None else ["/bin/sh", "-c", text]


@dataclass
class Stage:
    """``FROM base AS name`` and the instructions up to the next ``FROM``."""

    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction | None:
        found = self.all(keyword)
        return found[-1] if found else None


@dataclass
class Dockerfile:
    """The global ``ARG`` defaults and the stages, in order."""

    global_args: dict[str, str]
    stages: list[Stage]

    @classmethod
    def parse(cls, text: str) -> Dockerfile:
        global_args: dict[str, str] = {}
        stages: list[Stage] = []
        for instruction in _instructions(text):
            if instruction.keyword == "FROM":
                words = substitute(instruction.arguments, global_args).split()
                words = [w for w in words if not w.startswith("--")]
                name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
                stages.append(Stage(words[0], name))
            elif stages:
                stages[-1].instructions.append(instruction)
            elif instruction.keyword == "ARG":
                declared = _declared(instruction.arguments, global_args)
                global_args.update({key: value or "" for key, value in declared.items()})
        return cls(global_args, stages)

    def resolve(
        self, stage: Stage, build_args: Mapping[str, str], base_env: Mapping[str, str]
    ) -> Resolved:
        """Walk ``stage`` as ``docker build --build-arg`` ``build_args`` would, on a base
        image whose environment is ``base_env``."""
        args: dict[str, str] = {}
        env = dict(base_env)
        steps: list[Instruction] = []
        for instruction in stage.instructions:
            scope = {**args, **env}
            if instruction.keyword == "ARG":
                for key, default in _declared(instruction.arguments, scope).items():
                    fallback = self.global_args.get(key, "") if default is None else default
                    args[key] = build_args.get(key, fallback)
            elif instruction.keyword == "ENV":
                env.update(_assignments(substitute(instruction.arguments, scope)))
            if instruction.keyword in _SUBSTITUTED:
                instruction = Instruction(
                    instruction.keyword, substitute(instruction.arguments, scope)
                )
            steps.append(instruction)
        return Resolved(args, env, steps)


@dataclass(frozen=True)
class Resolved:
    """A stage as a build sees it: its build arguments, the image's environment and the
    instructions, substituted."""

    args: dict[str, str]
    env: dict[str, str]
    steps: list[Instruction]

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.steps if i.keyword == keyword]


def substitute(text: str, scope: Mapping[str, str]) -> str:
    """``$VAR``, ``${VAR}``, ``${VAR:-word}`` and ``${VAR:+word}`` from ``scope``."""

    def one(match: re.Match[str]) -> str:
        braced, operator, word, bare = match.groups()
        value = scope.get(braced or bare, "")
        if operator == "-":
            return value or word
        if operator == "+":
            return word if value else ""
        return value

    return _VARIABLE.sub(one, text)


def ignored(patterns: list[str], path: str) -> bool:
    """Whether ``.dockerignore`` ``patterns`` keep ``path`` (or a folder above it) out of
    the build context; the last pattern that matches decides, ``!`` lets a path back in."""
    parts = path.strip("/").split("/")
    verdict = False
    for raw in patterns:
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        keep = pattern.startswith("!")
        regex = _glob(pattern.lstrip("!").strip("/"))
        if any(regex.fullmatch("/".join(parts[:n])) for n in range(1, len(parts) + 1)):
            verdict = not keep
    return verdict


def _glob(pattern: str) -> re.Pattern[str]:
    out = ""
    for piece in re.split(r"(\*\*/?|\*|\?)", pattern):
        if piece in ("**", "**/"):
            out += "(?:.*/)?" if piece == "**/" else ".*"
        elif piece == "*":
            out += "[^/]*"
        elif piece == "?":
            out += "[^/]"
        else:
            out += re.escape(piece)
    return re.compile(out)


def _instructions(text: str) -> list[Instruction]:
    found: list[Instruction] = []
    pending = ""
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue  # comments, also between continuation lines
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        line, pending = pending + line, ""
        if line.strip():
            keyword, _, arguments = line.strip().partition(" ")
            found.append(Instruction(keyword.upper(), arguments.strip()))
    return found


def _declared(arguments: str, scope: Mapping[str, str]) -> dict[str, str | None]:
    """``ARG A B=2`` -> ``{"A": None, "B": "2"}`` (defaults substituted from ``scope``)."""
    out: dict[str, str | None] = {}
    for word in shlex.split(substitute(arguments, scope)):
        key, equals, default = word.partition("=")
        out[key] = default if equals else None
    return out


def _assignments(arguments: str) -> dict[str, str]:
    words = shlex.split(arguments)
    if words and "=" not in words[0]:  # the legacy ``ENV KEY value with spaces``
        return {words[0]: " ".join(words[1:])}
    return dict(word.partition("=")[::2] for word in words)


def dockerignore(context: Path) -> list[str]:
    """The patterns of ``context/.dockerignore`` (none when there is no such file)."""
    path = context / ".dockerignore"
    return path.read_text().splitlines() if path.is_file() else []
