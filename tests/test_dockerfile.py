"""Static checks of the Dockerfile and .dockerignore (CI has no Docker engine to build with).

Each `check_*` function returns the problems it finds (empty when fine). The real files must
have none, and every check is also run against a deliberately broken copy of the Dockerfile, to
show that it can fail."""

from __future__ import annotations

import ast
import io
import itertools
import json
import re
import shlex
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, as a package
    tomllib = pytest.importorskip("tomli")

dockerfile_parse = pytest.importorskip("dockerfile_parse")

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
PYPROJECT = REPO / "pyproject.toml"

# nvidia/cuda:<12.x.y>-[cudnn-]runtime-<distro><version>, optionally pinned by digest as well.
CUDA_RUNTIME_IMAGE = re.compile(
    r"^nvidia/cuda:12\.\d+\.\d+-(?:cudnn\d*-)?runtime-[a-z]+\d+(?:\.\d+)?(?:@sha256:[0-9a-f]{64})?$"
)
ENTRYPOINT = ["gpunet-train"]
BASE = "nvidia/cuda:12.6.3-runtime-ubuntu24.04"  # the FROM of the real Dockerfile, for BREAKAGES


class Dockerfile:
    """The instructions of one Dockerfile, as parsed by dockerfile_parse."""

    def __init__(self, text: str):
        self.parser = dockerfile_parse.DockerfileParser(fileobj=io.BytesIO(text.encode()))
        self.instructions = [i for i in self.parser.structure if i["instruction"] != "COMMENT"]

    def values(self, instruction: str) -> list[str]:
        return [i["value"] for i in self.instructions if i["instruction"] == instruction]

    def index(self, instruction: str, last: bool = False) -> int | None:
        found = [n for n, i in enumerate(self.instructions) if i["instruction"] == instruction]
        return (found[-1] if last else found[0]) if found else None

    def exec_form(self, instruction: str) -> list[str] | None:
        """The JSON array of the last `instruction` (None if absent or in shell form)."""
        values = self.values(instruction)
        if not values:
            return None
        try:
            parsed = json.loads(values[-1])
        except json.JSONDecodeError:
            return None
        return parsed if isinstance(parsed, list) else None


def _words(run: str) -> list[str]:
    return shlex.split(run.replace("\\\n", " "))


# --- checks -----------------------------------------------------------------------------------


def check_base_image(df: Dockerfile) -> list[str]:
    froms = df.values("FROM")
    if not froms:
        return ["no FROM instruction"]
    image = froms[-1].split()[0]  # the final stage ("FROM img AS name" -> img)
    if not CUDA_RUNTIME_IMAGE.match(image):
        return [f"base image {image!r} is not a pinned nvidia/cuda 12.x.y runtime tag"]
    return []


def check_apt(df: Dockerfile) -> list[str]:
    problems = []
    for run in df.values("RUN"):
        if "apt-get install" in run:
            if "--no-install-recommends" not in run:
                problems.append("apt-get install without --no-install-recommends")
            if "rm -rf /var/lib/apt/lists" not in run:
                problems.append("apt lists not removed in the same RUN as apt-get install")
    return problems


def check_pip_install(df: Dockerfile) -> list[str]:
    for run in df.values("RUN"):
        words = _words(run)
        if "pip" in words and "install" in words and ".[gpu]" in words:
            return [] if "--no-cache-dir" in words else ["pip install without --no-cache-dir"]
    return ["no RUN step does `pip install .[gpu]`"]


def check_user(df: Dockerfile) -> list[str]:
    users = df.values("USER")
    if not users:
        return ["no USER instruction: the container would run as root"]
    user = users[-1].split(":")[0].strip()
    if user in ("root", "0"):
        return [f"the last USER is root ({users[-1]!r})"]
    entrypoint = df.index("ENTRYPOINT")
    if entrypoint is not None and df.index("USER", last=True) > entrypoint:
        return ["USER comes after ENTRYPOINT"]
    created = any(
        "useradd" in words
        and (
            user in words
            or any(a in ("-u", "--uid") and b == user for a, b in itertools.pairwise(words))
        )
        for words in map(_words, df.values("RUN"))
    )
    return [] if created else [f"user {user!r} is not created by a `useradd` in the Dockerfile"]


def check_entrypoint(df: Dockerfile) -> list[str]:
    form = df.exec_form("ENTRYPOINT")
    if form != ENTRYPOINT:
        return [f"ENTRYPOINT is not exec-form {json.dumps(ENTRYPOINT)}: {df.values('ENTRYPOINT')}"]
    return []


def check_cmd(df: Dockerfile) -> list[str]:
    form = df.exec_form("CMD")
    if form is None or not any(form[n : n + 2] == ["--device", "gpu"] for n in range(len(form))):
        return [f'CMD is not exec-form with "--device", "gpu": {df.values("CMD")}']
    return []


def check_volume(df: Dockerfile) -> list[str]:
    volumes: list[str] = []
    for value in df.values("VOLUME"):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value.split()
        volumes += parsed if isinstance(parsed, list) else [parsed]
    if not volumes:
        return ["no VOLUME for the data cache"]
    data = df.parser.envs.get("GPUNET_DATA")
    if data not in volumes:
        return [f"GPUNET_DATA ({data!r}) is not one of the volumes {volumes}"]
    return []


def check_version_label(df: Dockerfile, pyproject: dict) -> list[str]:
    label = df.parser.labels.get("org.opencontainers.image.version")
    version = pyproject["project"]["version"]
    if label != version:
        return [f"label org.opencontainers.image.version={label!r}, pyproject says {version!r}"]
    return []


def check_copy_sources(df: Dockerfile, ignore: list[str]) -> list[str]:
    problems = []
    for value in df.values("COPY"):
        words = [w for w in value.split() if not w.startswith("--")]
        for source in words[:-1]:
            source = source.rstrip("/")
            if not (REPO / source).exists():
                problems.append(f"COPY source {source!r} does not exist")
            elif dockerignored(source, ignore):
                problems.append(f"COPY source {source!r} is excluded by .dockerignore")
    return problems


# --- .dockerignore ----------------------------------------------------------------------------


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out, n = "", 0
    while n < len(pattern):
        if pattern.startswith("**/", n):
            out, n = out + "(?:.*/)?", n + 3
        elif pattern.startswith("**", n):
            out, n = out + ".*", n + 2
        elif pattern[n] == "*":
            out, n = out + "[^/]*", n + 1
        elif pattern[n] == "?":
            out, n = out + "[^/]", n + 1
        else:
            out, n = out + re.escape(pattern[n]), n + 1
    return re.compile(out + r"\Z")


def dockerignored(path: str, ignore: list[str]) -> bool:
    """Whether .dockerignore `ignore` (its lines) keeps `path` out of the build context: the
    last matching pattern wins, "!" re-includes, and a matched directory excludes its contents.
    A simplified version of Docker's rules, enough for these checks."""
    parts = path.strip("/").split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for line in ignore:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        regex = _pattern_regex(line.lstrip("!").strip().strip("/"))
        if any(regex.match(c) for c in candidates):
            excluded = not negate
    return excluded


def check_dockerignore(ignore: list[str], pyproject: dict) -> list[str]:
    problems = [
        f"{p!r} is not excluded" for p in (".git", "tests", "runs") if not dockerignored(p, ignore)
    ]
    needed = ["pyproject.toml", "gpunet/__init__.py", pyproject["project"]["readme"]]
    needed += [str(p.relative_to(REPO)) for p in (REPO / "gpunet").rglob("*") if p.is_file()]
    problems += [
        f"{p!r} is needed to install the package but excluded"
        for p in needed
        if dockerignored(p, ignore) and "__pycache__" not in p
    ]
    return problems


# --- the real files ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return Dockerfile(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def pyproject() -> dict:
    return tomllib.loads(PYPROJECT.read_text())


@pytest.fixture(scope="module")
def ignore() -> list[str]:
    return DOCKERIGNORE.read_text().splitlines()


DOCKERFILE_CHECKS = [
    check_base_image,
    check_apt,
    check_pip_install,
    check_user,
    check_entrypoint,
    check_cmd,
    check_volume,
]


@pytest.mark.parametrize("check", DOCKERFILE_CHECKS, ids=lambda c: c.__name__)
def test_dockerfile(dockerfile, check):
    assert check(dockerfile) == []


def test_version_label_matches_pyproject(dockerfile, pyproject):
    assert check_version_label(dockerfile, pyproject) == []


def test_copy_sources_exist_and_reach_the_context(dockerfile, ignore):
    assert check_copy_sources(dockerfile, ignore) == []


def test_dockerignore(ignore, pyproject):
    assert check_dockerignore(ignore, pyproject) == []


def test_entrypoint_is_a_console_script(pyproject):
    """ENTRYPOINT runs `gpunet-train`, which exists in the image only as a console script of
    the installed package."""
    scripts = pyproject["project"].get("scripts", {})
    assert ENTRYPOINT[0] in scripts, f"{ENTRYPOINT[0]} is not in [project.scripts]"
    module, _, function = scripts[ENTRYPOINT[0]].partition(":")
    assert module.split(".")[0] == "gpunet", f"{module} is not part of the gpunet package"
    # ... and its target is a function defined in the package's sources (read, not imported).
    base = REPO.joinpath(*module.split("."))
    source = next((f for f in (base.with_suffix(".py"), base / "__init__.py") if f.is_file()), None)
    assert source is not None, f"{module} has no source file in the repository"
    defined = {n.name for n in ast.parse(source.read_text()).body if isinstance(n, ast.FunctionDef)}
    assert function in defined, f"{source.relative_to(REPO)} defines no function {function!r}"
    assert "gpu" in pyproject["project"]["optional-dependencies"], "no `gpu` extra to install"


# --- the checks can fail ----------------------------------------------------------------------

# (the check, what to replace in the real Dockerfile, the replacement) -> that check must fail.
BREAKAGES = [
    (check_base_image, BASE, "nvidia/cuda:latest"),
    (check_base_image, BASE, "nvidia/cuda:12.6.3-devel-ubuntu24.04"),
    (check_base_image, BASE, "nvidia/cuda:11.8.0-runtime-ubuntu22.04"),
    (check_base_image, BASE, "python:3.12-slim"),
    (check_apt, "--no-install-recommends ", ""),
    (check_apt, "&& rm -rf /var/lib/apt/lists/*", ""),
    (check_pip_install, '".[gpu]"', "."),
    (check_pip_install, "--no-cache-dir ", ""),
    (check_user, "USER 1000:1000", "USER root"),
    (check_user, "USER 1000:1000", "USER 0:0"),
    (check_user, "USER 1000:1000", "USER 1234"),
    (check_user, "USER 1000:1000\n", ""),
    (
        check_user,
        'USER 1000:1000\n\nENTRYPOINT ["gpunet-train"]',
        'ENTRYPOINT ["gpunet-train"]\nUSER 1000',
    ),
    (check_entrypoint, 'ENTRYPOINT ["gpunet-train"]', "ENTRYPOINT gpunet-train"),
    (check_entrypoint, 'ENTRYPOINT ["gpunet-train"]', 'ENTRYPOINT ["python", "-m", "gpunet"]'),
    (check_cmd, 'CMD ["--device", "gpu"]', 'CMD ["--device", "cpu"]'),
    (check_cmd, 'CMD ["--device", "gpu"]', "CMD --device gpu"),
    (check_volume, 'VOLUME ["/data"]', ""),
    (check_volume, 'VOLUME ["/data"]', 'VOLUME ["/cache"]'),
]


@pytest.mark.parametrize(
    ("check", "old", "new"),
    BREAKAGES,
    ids=[f"{c.__name__}:{new.strip() or 'removed'}" for c, _, new in BREAKAGES],
)
def test_checks_fail_on_a_broken_dockerfile(check, old, new):
    text = DOCKERFILE.read_text()
    assert old in text, f"the breakage no longer applies: {old!r} is not in the Dockerfile"
    broken = Dockerfile(text.replace(old, new))
    assert check(broken), f"{check.__name__} accepted a Dockerfile with {old!r} -> {new!r}"
    # Only the intended check fails: the others still pass, so each one tests what it names.
    unrelated = [c for c in DOCKERFILE_CHECKS if c is not check and c(broken)]
    assert unrelated == []


def test_other_checks_fail_on_broken_inputs(pyproject, ignore):
    assert check_version_label(
        Dockerfile('LABEL org.opencontainers.image.version="0.0.0"'), pyproject
    )
    assert check_copy_sources(Dockerfile("COPY no-such-file ./\n"), ignore)
    assert check_copy_sources(Dockerfile("COPY tests/ ./tests/\n"), ignore)  # excluded
    assert check_dockerignore(["# nothing excluded"], pyproject)
    assert check_dockerignore(ignore + ["gpunet"], pyproject)
    assert check_dockerignore(ignore + ["*.md"], pyproject)  # README.md is pyproject's readme
    assert check_dockerignore(ignore + ["!.git"], pyproject)


@pytest.mark.parametrize(
    ("path", "patterns", "excluded"),
    [
        (".git/HEAD", [".git"], True),
        ("gpunet/datasets/data/mnist/x.gz", ["data"], False),  # patterns are anchored at the root
        ("data/mnist/x.gz", ["data"], True),
        ("gpunet/layers/__pycache__/a.pyc", ["**/__pycache__"], True),
        ("a/b/c.npz", ["**/*.npz"], True),
        ("c.npz", ["**/*.npz"], True),
        ("gpunet/x.npz", ["**/*.npz", "!gpunet/x.npz"], False),
        ("gpunet/x.py", ["*.py"], False),  # `*` does not cross `/`
    ],
)
def test_dockerignore_matcher(path, patterns, excluded):
    assert dockerignored(path, patterns) is excluded
