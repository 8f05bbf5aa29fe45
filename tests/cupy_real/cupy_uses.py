"""Every CuPy attribute and call gpunet's GPU path makes, read from the source, and the check
of each against the installed CuPy (its attributes and signatures).

A use is rooted at a name that holds CuPy or NumPy-or-CuPy: `cp`, `cupy`, `cupyx`, `xp`, or an
attribute called `xp`/`cp` (`self.xp`, `model.xp`). Method calls on objects the walk cannot
type (`stream.wait_event(e)`, `dev[:n].set(pin, stream=s)`) are checked against every CuPy
class of the GPU path that has a method of that name (ndarray, Stream, Event, MemoryPool,
Graph): at least one must accept the call. Cython callables without an introspectable
signature are checked against the signature CuPy embeds in their docstring.
"""

from __future__ import annotations

import ast
import inspect
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOTS = {"cp": "cupy", "cupy": "cupy", "cupyx": "cupyx", "xp": "cupy"}


@dataclass(frozen=True)
class Use:
    where: str
    root: str  # "cupy" or "cupyx"; "" for a method call on an untyped object
    chain: tuple[str, ...]  # attribute path below the root, or (method,)
    call: bool
    n_args: int | None  # positional arguments; None when *args is passed
    keywords: tuple[str, ...]

    def __str__(self) -> str:
        name = ".".join((self.root or "<object>", *self.chain))
        args = "" if not self.call else \
            "(" + ", ".join(["_"] * (self.n_args or 0) + [f"{k}=" for k in self.keywords]) + ")"
        return f"{self.where}: {name}{args}"


def _chain(node: ast.AST, imported: set[str]) -> tuple[str | None, list[str]]:
    """(root, attributes) of `a.b.c`; root is a ROOTS value, "" (untyped), or None (skip)."""
    attrs: list[str] = []
    while isinstance(node, ast.Attribute):
        if node.attr in ("xp", "cp") and attrs:
            return "cupy", attrs[::-1]
        attrs.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        if node.id in ROOTS:
            return ROOTS[node.id], attrs[::-1]
        if node.id in imported:  # another module (numpy, json, gpunet.backend, ...)
            return None, []
    return "", attrs[::-1]


def find_uses(files: list[Path], root: Path) -> list[Use]:
    uses: list[Use] = []
    for path in files:
        tree = ast.parse(path.read_text(), str(path))
        calls = {id(n.func): n for n in ast.walk(tree) if isinstance(n, ast.Call)}
        imported = {(a.asname or a.name).split(".")[0] for n in ast.walk(tree)
                    if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute):
                continue
            parent_call = calls.get(id(node))
            base, attrs = _chain(node, imported)
            if base is None or not attrs:
                continue
            if base == "" and parent_call is None:
                continue  # untyped objects: only their method calls are checked
            if base == "":
                attrs = attrs[-1:]
            where = f"{path.relative_to(root).as_posix()}:{node.lineno}"
            if parent_call is None:
                uses.append(Use(where, base, tuple(attrs), False, None, ()))
                continue
            starred = any(isinstance(a, ast.Starred) for a in parent_call.args)
            kw = tuple(k.arg for k in parent_call.keywords if k.arg is not None)
            uses.append(Use(where, base, tuple(attrs), True,
                            None if starred else len(parent_call.args), kw))
    # `a.b.c` is walked as a.b.c, a.b and a: keep the longest chain for each place
    longest = {}
    for u in uses:
        key = (u.where, u.root, u.chain[:1])
        if key not in longest or len(u.chain) > len(longest[key].chain) or u.call:
            longest[key] = u
    return sorted(set(longest.values()), key=str)


def _doc_signature(obj: Any) -> inspect.Signature | None:
    """The signature Cython embeds as the docstring's first line: `name(a, b=1, *, c=None)`."""
    first = (getattr(obj, "__doc__", None) or "").strip().splitlines()[:1]
    match = re.match(r"^[\w.]+\((.*)\)", first[0]) if first else None
    if not match:
        return None
    params, kind = [], inspect.Parameter.POSITIONAL_OR_KEYWORD
    for raw in (p.strip().replace("\\", "") for p in _split(match.group(1))):
        if raw in ("", "self"):
            continue
        if raw == "/":
            params = [p.replace(kind=inspect.Parameter.POSITIONAL_ONLY) for p in params]
        elif raw == "*":
            kind = inspect.Parameter.KEYWORD_ONLY
        elif raw.startswith("**"):
            params.append(inspect.Parameter(raw[2:], inspect.Parameter.VAR_KEYWORD))
        elif raw.startswith("*"):
            params.append(inspect.Parameter(raw[1:], inspect.Parameter.VAR_POSITIONAL))
            kind = inspect.Parameter.KEYWORD_ONLY
        else:
            name, _, default = raw.partition("=")
            name = name.split(":")[0].split()[-1]
            params.append(inspect.Parameter(name, kind, default=default or inspect._empty))
    return inspect.Signature(params)


def _split(text: str) -> list[str]:
    out, depth, cur = [], 0, ""
    for ch in text:
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    return [*out, cur]


def signature(obj: Any) -> inspect.Signature | None:
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return _doc_signature(obj) or _doc_signature(getattr(obj, "__init__", None))
    if list(sig.parameters)[:1] == ["self"]:
        sig = sig.replace(parameters=list(sig.parameters.values())[1:])
    return sig


def accepts(obj: Any, use: Use) -> str | None:
    """None if CuPy's `obj` accepts the call `use` makes, else why not."""
    if not use.call:
        return None
    sig = signature(obj)
    if sig is None:
        return f"no signature to check {obj!r} against"
    try:
        if use.n_args is None:
            sig.bind_partial(**dict.fromkeys(use.keywords))
        else:
            sig.bind(*[None] * use.n_args, **dict.fromkeys(use.keywords))
    except TypeError as exc:
        return f"{exc} (CuPy: {sig})"
    return None


def method_owners(cupy: Any) -> list[Any]:
    """The CuPy classes whose methods the GPU path calls on objects it holds."""
    cuda = cupy.cuda
    return [cupy.ndarray, cuda.Stream, cuda.Event, cuda.MemoryPool, cuda.PinnedMemoryPool,
            getattr(cuda, "Graph", object)]


def check(use: Use, cupy: Any, cupyx: Any) -> str | None:
    """None if the installed CuPy has what `use` needs, else the problem."""
    if use.root == "":
        owners = [getattr(c, use.chain[0]) for c in method_owners(cupy)
                  if hasattr(c, use.chain[0])]
        if not owners:
            return None  # not a CuPy method name: a Python object's own method
        problems = [accepts(m, use) for m in owners]
        return None if None in problems else "; ".join(p for p in problems if p)
    obj = cupy if use.root == "cupy" else cupyx
    for i, attr in enumerate(use.chain):
        if not hasattr(obj, attr):
            return f"{use.root}.{'.'.join(use.chain[:i + 1])} does not exist"
        obj = getattr(obj, attr)
    return accepts(obj, use)
