"""A safe, vectorised expression language for rules over several measurements.

Expressions are parsed with :mod:`ast` and only a whitelist of node types is accepted:
numbers, ``true``/``false``, measurement names, arithmetic, comparisons (chained too),
``and``/``or``/``not`` and the functions ``abs``, ``min``, ``max``, ``sqrt``. There are
no attribute access, subscripts, calls of anything else, loops, lambdas or assignments,
so an expression always terminates in time linear in its size and can reach nothing
but the values it is given. It is never passed to ``eval``: the tree is compiled to a
closure over numpy arrays, so one call evaluates a whole batch of rows.

We chose this over CEL (``cel-python``) because a CEL program evaluates one activation
at a time in Python (tens of µs per row), while the rule engine must evaluate about
200 000 rows a second; the subset here is the arithmetic/boolean part of CEL with the
same syntax for everything but ``&&``/``||``/``!`` (which are accepted as aliases).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ironbridge.model import InvalidInput

Array = npt.NDArray[np.float64]
Env = Mapping[str, Array]
_Fn = Callable[[Env], Array]

MAX_LENGTH = 500
MAX_NODES = 200
MAX_VARIABLES = 8

_BIN: dict[type[ast.operator], Callable[[Array, Array], Array]] = {
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,
    ast.Div: np.divide,
    ast.Mod: np.mod,
}
_CMP: dict[type[ast.cmpop], Callable[[Array, Array], Array]] = {
    ast.Lt: np.less,
    ast.LtE: np.less_equal,
    ast.Gt: np.greater,
    ast.GtE: np.greater_equal,
    ast.Eq: np.equal,
    ast.NotEq: np.not_equal,
}
_FUNCS: dict[str, tuple[int, Callable[..., Array]]] = {
    "abs": (1, np.abs),
    "sqrt": (1, np.sqrt),
    "min": (2, np.minimum),
    "max": (2, np.maximum),
}
_CEL_ALIASES = ((re.compile(r"&&"), " and "), (re.compile(r"\|\|"), " or "))


@dataclass(frozen=True, slots=True)
class Expression:
    """A compiled expression: its source, the measurements it reads, and the program."""

    source: str
    variables: tuple[str, ...]
    _fn: _Fn

    def evaluate(self, env: Env) -> npt.NDArray[np.bool_]:
        """Evaluate over arrays of equal length; NaN inputs make the row False."""
        with np.errstate(all="ignore"):
            out = np.asarray(self._fn(env), dtype=np.float64)
        n = len(next(iter(env.values()))) if env else 1
        out = np.broadcast_to(out, (n,))
        return np.asarray((out != 0.0) & ~np.isnan(out), dtype=np.bool_)


def compile_expression(source: str, field: str = "expression") -> Expression:
    """Parse and check ``source``; raise :class:`InvalidInput` naming ``field`` if bad."""
    if not isinstance(source, str) or not source.strip():
        raise InvalidInput(field, "must be a non-empty expression")
    if len(source) > MAX_LENGTH:
        raise InvalidInput(field, f"must be at most {MAX_LENGTH} characters")
    text = source
    for pattern, repl in _CEL_ALIASES:
        text = pattern.sub(repl, text)
    text = re.sub(r"!(?!=)", " not ", text)
    text = re.sub(r"\btrue\b", "True", re.sub(r"\bfalse\b", "False", text))
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise InvalidInput(field, f"syntax error at column {exc.offset}: {exc.msg}") from exc
    nodes = sum(1 for _ in ast.walk(tree))
    if nodes > MAX_NODES:
        raise InvalidInput(field, f"is too complex ({nodes} nodes, at most {MAX_NODES})")
    names: list[str] = []
    fn = _compile(tree.body, field, names)
    if len(names) > MAX_VARIABLES:
        raise InvalidInput(field, f"reads {len(names)} measurements, at most {MAX_VARIABLES}")
    return Expression(source, tuple(names), fn)


def _const(value: float) -> _Fn:
    arr = np.float64(value)
    return lambda env: arr  # type: ignore[return-value]


def _compile(node: ast.expr, field: str, names: list[str]) -> _Fn:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool | int | float):
            return _const(float(node.value))
        raise InvalidInput(field, f"constant {node.value!r} is not a number or boolean")
    if isinstance(node, ast.Name):
        name = node.id
        if name in _FUNCS:
            raise InvalidInput(field, f"{name} is a function, call it as {name}(...)")
        if name not in names:
            names.append(name)
        return lambda env: env[name]
    if isinstance(node, ast.BinOp):
        op = _BIN.get(type(node.op))
        if op is None:
            raise InvalidInput(field, f"operator {type(node.op).__name__} is not allowed")
        left, right = _compile(node.left, field, names), _compile(node.right, field, names)
        return lambda env: op(left(env), right(env))
    if isinstance(node, ast.UnaryOp):
        operand = _compile(node.operand, field, names)
        if isinstance(node.op, ast.Not):
            return lambda env: np.where(operand(env) != 0.0, 0.0, 1.0)
        if isinstance(node.op, ast.USub):
            return lambda env: np.negative(operand(env))
        if isinstance(node.op, ast.UAdd):
            return operand
        raise InvalidInput(field, "operator ~ is not allowed")
    if isinstance(node, ast.BoolOp):
        parts = [_compile(v, field, names) for v in node.values]
        is_and = isinstance(node.op, ast.And)

        def boolop(env: Env) -> Array:
            acc = np.asarray(parts[0](env)) != 0.0
            for p in parts[1:]:
                nxt = np.asarray(p(env)) != 0.0
                acc = (acc & nxt) if is_and else (acc | nxt)
            return np.asarray(acc, dtype=np.float64)

        return boolop
    if isinstance(node, ast.Compare):
        terms = [_compile(node.left, field, names)] + [
            _compile(c, field, names) for c in node.comparators
        ]
        ops = []
        for o in node.ops:
            cmp = _CMP.get(type(o))
            if cmp is None:
                raise InvalidInput(field, f"comparison {type(o).__name__} is not allowed")
            ops.append(cmp)

        def compare(env: Env) -> Array:
            values = [t(env) for t in terms]
            acc = np.asarray(ops[0](values[0], values[1]), dtype=np.bool_)
            for i, cmp in enumerate(ops[1:], start=1):
                acc = acc & np.asarray(cmp(values[i], values[i + 1]), dtype=np.bool_)
            return np.asarray(acc, dtype=np.float64)

        return compare
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCS:
            raise InvalidInput(
                field, f"only the functions {', '.join(sorted(_FUNCS))} may be called"
            )
        arity, impl = _FUNCS[node.func.id]
        if node.keywords or len(node.args) != arity:
            raise InvalidInput(field, f"{node.func.id} takes {arity} argument(s)")
        args = [_compile(a, field, names) for a in node.args]
        return lambda env: np.asarray(impl(*(a(env) for a in args)), dtype=np.float64)
    raise InvalidInput(field, f"{type(node).__name__} is not allowed in a rule expression")
