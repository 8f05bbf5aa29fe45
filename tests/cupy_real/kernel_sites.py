"""Every CUDA kernel gpunet defines, found by reading the package's source (no hand list).

A *site* is a call to `ElementwiseKernel`, `ReductionKernel`, `RawKernel` or `RawModule`
(however the module reaches CuPy: `cp.`, `cupy.`, a bare imported name). Its arguments are
evaluated in the module's namespace, which resolves literals, module constants and f-strings
of them. Names the module does not define are resolved, in this order:
  - a name assigned once in the enclosing function (`src = _SRC % k`): its expression inlined;
  - a name used as a key of a module-level dict in the arguments (`*SPECS[name]`): every key;
  - a name iterated by an enclosing `for name in <module constant>`: every item;
  - a parameter of the enclosing module-level function: that function is a *factory* (as
    `gpunet.kernels._registry.elementwise`), and each call of it anywhere in the package is
    resolved the same way, its arguments bound to the parameters.
What stays unresolved is reported (never skipped), so a kernel cannot escape the compile test.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import itertools
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

KINDS = ("ElementwiseKernel", "ReductionKernel", "RawKernel", "RawModule")


@dataclass(frozen=True)
class KernelSpec:
    """One kernel as CuPy would be asked to build it: `cupy.<kind>(*args, **kwargs)`."""

    kind: str
    args: tuple
    kwargs: tuple  # sorted (key, value) pairs, hashable
    where: str  # "gpunet/kernels/activations.py:31"

    @property
    def name(self) -> str:
        """The kernel's name as CuPy sees it (RawModule: its `code`'s first 40 characters)."""
        kw = dict(self.kwargs)
        if self.kind == "RawModule":
            return kw.get("name") or self.where
        position = {"ElementwiseKernel": 3, "ReductionKernel": 6, "RawKernel": 1}[self.kind]
        if len(self.args) > position:
            return self.args[position]
        default = "reduce_kernel" if self.kind == "ReductionKernel" else "kernel"
        return kw.get("name", default)


@dataclass
class Found:
    specs: list[KernelSpec] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)  # "file:line: why"


@dataclass
class _Module:
    module: ModuleType
    tree: ast.Module
    rel: str
    parents: dict[ast.AST, ast.AST]


class _Unresolved(Exception):
    pass


def _load(package: ModuleType, root: Path) -> list[_Module]:
    mods = []
    infos = pkgutil.walk_packages(package.__path__, package.__name__ + ".")
    for name in [package.__name__] + sorted(i.name for i in infos):
        module = importlib.import_module(name)
        path = Path(module.__file__)
        tree = ast.parse(path.read_text(), str(path))
        parents = {c: p for p in ast.walk(tree) for c in ast.iter_child_nodes(p)}
        mods.append(_Module(module, tree, path.relative_to(root).as_posix(), parents))
    return mods


def _callee_name(call: ast.Call) -> str | None:
    f = call.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None


def _enclosing(node: ast.AST, mod: _Module, kinds: tuple) -> list[ast.AST]:
    out, cur = [], mod.parents.get(node)
    while cur is not None:
        if isinstance(cur, kinds):
            out.append(cur)
        cur = mod.parents.get(cur)
    return out


def _free_names(nodes: list[ast.AST], known: dict) -> list[str]:
    names = []
    for node in nodes:
        for n in ast.walk(node):
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id not in known \
                    and not hasattr(builtins, n.id) and n.id not in names:
                names.append(n.id)
    return names


def _eval(node: ast.AST, mod: _Module, env: dict) -> Any:
    code = compile(ast.Expression(body=node), mod.rel, "eval")
    return eval(code, vars(mod.module), dict(env))  # noqa: S307 - the package's own source


def _single_assignment(name: str, func: ast.AST) -> ast.AST | None:
    values = [n.value for n in ast.walk(func) if isinstance(n, ast.Assign)
              and any(isinstance(t, ast.Name) and t.id == name for t in n.targets)]
    return values[0] if len(values) == 1 else None


def _domain(name: str, nodes: list[ast.AST], node: ast.AST, mod: _Module, env: dict) -> list:
    """The values `name` can take: keys of a module dict it indexes, or a loop's items."""
    for sub in (n for x in nodes for n in ast.walk(x) if isinstance(n, ast.Subscript)):
        if isinstance(sub.slice, ast.Name) and sub.slice.id == name:
            try:
                table = _eval(sub.value, mod, env)
            except Exception:
                continue
            if isinstance(table, dict):
                return list(table)
    for loop in _enclosing(node, mod, (ast.For, ast.comprehension)):
        if isinstance(loop.target, ast.Name) and loop.target.id == name:
            try:
                return list(_eval(loop.iter, mod, env))
            except Exception:
                continue
    raise _Unresolved(name)


def _inline_locals(nodes: list[ast.AST], func: ast.AST | None, mod: _Module) -> list[ast.AST]:
    """Replace names assigned once in the enclosing function by their expressions."""
    if func is None:
        return nodes
    params = {a.arg for a in ast.walk(func.args) if isinstance(a, ast.arg)}

    class Inline(ast.NodeTransformer):
        def visit_Name(self, n: ast.Name) -> ast.AST:
            if isinstance(n.ctx, ast.Load) and n.id not in params \
                    and n.id not in vars(mod.module):
                value = _single_assignment(n.id, func)
                if value is not None:
                    return self.visit(ast.parse(ast.unparse(value), mode="eval").body)
            return n

    return [Inline().visit(ast.parse(ast.unparse(n), mode="eval").body) for n in nodes]


def _envs(nodes: list[ast.AST], node: ast.AST, mod: _Module, env: dict) -> list[dict]:
    """Every binding of the free names that the arguments can see; raise for the others."""
    known = {**vars(mod.module), **env}
    domains, missing = {}, []
    for n in _free_names(nodes, known):
        try:
            domains[n] = _domain(n, nodes, node, mod, env)
        except _Unresolved:
            missing.append(n)
    if missing:
        raise _Unresolved(",".join(missing))
    keys = list(domains)
    return [{**env, **dict(zip(keys, combo, strict=True))}
            for combo in itertools.product(*(domains[k] for k in keys))]


def _eval_call(call: ast.Call, mod: _Module, env: dict) -> tuple[tuple, dict]:
    args: list[Any] = []
    for a in call.args:
        if isinstance(a, ast.Starred):
            args.extend(_eval(a.value, mod, env))
        else:
            args.append(_eval(a, mod, env))
    kwargs: dict[str, Any] = {}
    for k in call.keywords:
        if k.arg is None:
            kwargs.update(_eval(k.value, mod, env))
        else:
            kwargs[k.arg] = _eval(k.value, mod, env)
    return tuple(args), kwargs


def _call_nodes(call: ast.Call) -> list[ast.AST]:
    return [*call.args, *(k.value for k in call.keywords)]


class _Opaque:
    """An argument of a factory call that the walk cannot know (an array, say)."""

    def __repr__(self) -> str:
        return "<opaque>"


OPAQUE = _Opaque()


def _function_of(node: ast.AST, mod: _Module) -> ast.FunctionDef | None:
    funcs = _enclosing(node, mod, (ast.FunctionDef, ast.AsyncFunctionDef))
    return funcs[0] if funcs else None


class _Walk:
    def __init__(self, mods: list[_Module]) -> None:
        self.mods = mods
        self.found = Found()

    def where(self, node: ast.AST, mod: _Module) -> str:
        return f"{mod.rel}:{node.lineno}"

    def calls_of(self, fobj: Any) -> list[tuple[_Module, ast.Call]]:
        """Every call in the package whose callee, looked up in its module, is `fobj`."""
        out = []
        for mod in self.mods:
            for node in ast.walk(mod.tree):
                if isinstance(node, ast.Call) and isinstance(node.func, (ast.Name, ast.Attribute)):
                    try:
                        callee = _eval(node.func, mod, {})
                    except Exception:
                        continue
                    if callee is fobj:
                        out.append((mod, node))
        return out

    def concrete(self, call: ast.Call, mod: _Module, env: dict, lenient: bool, depth: int = 0):
        """Yield (args, kwargs, where) for every way `call` can be made."""
        func = _function_of(call, mod)
        inlined = _inline_locals([call], func, mod)[0]
        nodes = _call_nodes(inlined)
        if lenient:  # an argument that cannot be known becomes OPAQUE, the rest still resolve
            nodes = [n for n in nodes if self.knowable(n, call, mod, env)]
        try:
            envs = _envs(nodes, call, mod, env)
        except _Unresolved as exc:
            yield from self.via_callers(call, mod, func, str(exc), lenient, depth)
            return
        for e in envs:
            yield (*self.evaluate(inlined, mod, e, lenient), self.where(call, mod))

    @staticmethod
    def knowable(node: ast.AST, call: ast.Call, mod: _Module, env: dict) -> bool:
        try:
            _envs([node], call, mod, env)
        except _Unresolved:
            return False
        return True

    def evaluate(self, call: ast.Call, mod: _Module, env: dict, lenient: bool):
        if not lenient:
            return _eval_call(call, mod, env)
        args, kwargs = [], {}
        for a in call.args:
            value = self.try_eval(a.value if isinstance(a, ast.Starred) else a, mod, env)
            if isinstance(a, ast.Starred):
                args.extend(value if value is not OPAQUE else [OPAQUE])
            else:
                args.append(value)
        for k in call.keywords:
            if k.arg is not None:
                kwargs[k.arg] = self.try_eval(k.value, mod, env)
        return tuple(args), kwargs

    @staticmethod
    def try_eval(node: ast.AST, mod: _Module, env: dict) -> Any:
        try:
            return _eval(node, mod, env)
        except Exception:
            return OPAQUE

    def via_callers(self, call, mod, func, names, lenient, depth):
        """`call` depends on parameters of its function: resolve it at each call of that."""
        top_level = func is not None and mod.parents.get(func) is mod.tree
        if not top_level or depth > 4:
            self.found.unresolved.append(f"{self.where(call, mod)}: cannot resolve {names}")
            return
        fobj = getattr(mod.module, func.name)
        callers = self.calls_of(fobj)
        if not callers:
            self.found.unresolved.append(
                f"{self.where(call, mod)}: {func.name}() builds a kernel from its parameters "
                f"({names}) but nothing in the package calls it")
        for cmod, ccall in callers:
            for args, kwargs, where in self.concrete(ccall, cmod, {}, True, depth + 1):
                try:
                    bound = inspect.signature(fobj).bind(*args, **kwargs)
                except TypeError as exc:
                    self.found.unresolved.append(f"{where}: {exc}")
                    continue
                bound.apply_defaults()
                for a, kw, _ in self.concrete(call, mod, dict(bound.arguments), lenient,
                                              depth + 1):
                    yield a, kw, f"{where} -> {self.where(call, mod)}"

    def run(self) -> Found:
        for mod in self.mods:
            for node in ast.walk(mod.tree):
                if isinstance(node, ast.Call) and _callee_name(node) in KINDS:
                    self.site(node, mod)
        return self.found

    def site(self, call: ast.Call, mod: _Module) -> None:
        kind = _callee_name(call)
        for args, kwargs, where in self.concrete(call, mod, {}, False):
            if any(v is OPAQUE for v in (*args, *kwargs.values())):
                self.found.unresolved.append(f"{where}: an argument is only known at run time")
                continue
            spec = KernelSpec(kind, args, tuple(sorted(kwargs.items())), where)
            if all((s.kind, s.args, s.kwargs) != (kind, args, spec.kwargs)
                   for s in self.found.specs):
                self.found.specs.append(spec)


def find_kernels(package: ModuleType | None = None) -> Found:
    """Every kernel the package (default: gpunet) defines, and what could not be resolved."""
    if package is None:
        import gpunet as package
    root = Path(package.__file__).resolve().parent.parent
    return _Walk(_load(package, root)).run()
