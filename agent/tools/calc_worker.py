"""Expression checking and evaluation for the calculator tool.

This module has two roles:

* imported by :mod:`agent.tools.calculator` for :func:`check_expression` (pure, no processes);
* run as a script (``python -I calc_worker.py MEMORY_MB TIMEOUT MAX_LENGTH``) as a sandboxed
  worker process.  It must therefore depend on nothing but the standard library and asteval.

Evaluation pipeline (worker side):

1. ``ast.parse(mode="eval")`` and an allow-list walk (:func:`parse_checked`).
2. An AST rewrite: every binary operator becomes a call to a guarded helper (``_add``, ``_div``,
   ``_pow`` ...), and float literals become exact :class:`~fractions.Fraction` values, so integer and
   decimal arithmetic stays exact while explosive operations (``9**9**9``, ``factorial(10**6)``) are
   refused before they are computed.
3. asteval walks the rewritten tree with a symbol table holding only the allow-listed names and the
   helpers.
4. The result is formatted for a model: integers, terminating decimals, ``p/q``, floats, ``True``.

Protocol: one JSON object per line.  The worker prints ``{"ready": true}`` once, then answers each
``{"id": N, "expr": "..."}`` with ``{"id": N, "result": "...", "fatal": false}``, where ``result``
is either the formatted value or a message starting with ``Error:``.  ``fatal`` asks the parent to
replace the worker (after a MemoryError, whose aftermath is not trusted).
"""

from __future__ import annotations

import ast
import json
import math
import sys
from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import Any, NoReturn

__all__ = [
    "CONSTANTS",
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_DIGITS",
    "MAX_LENGTH",
    "CalculatorError",
    "check_expression",
    "Evaluator",
    "format_value",
    "parse_checked",
]

MAX_LENGTH = 2000
"""Default cap on the length of an expression, in characters."""
MAX_DEPTH = 1000
"""Cap on the nesting depth of the parsed expression (a sum of ~1000 terms is still fine)."""
MAX_DIGITS = 100_000
"""Largest exact number (numerator or denominator) the calculator will compute, in decimal digits."""
MAX_BITS = int(MAX_DIGITS * math.log2(10))
DISPLAY_DIGITS = 1000
"""Exact results longer than this are shown in scientific notation (``≈1.234567890e+2567``)."""
MAX_ROUND_DIGITS = 1000
_LOG10_2 = math.log10(2)
_LOG10_E = math.log10(math.e)

Number = int | Fraction | float


class CalculatorError(Exception):
    """An expression was rejected or could not be evaluated; ``str(exc)`` is the user-facing reason."""


# --------------------------------------------------------------------------------------------------
# Allow-list
# --------------------------------------------------------------------------------------------------

# name -> (min args, max args or None for "any number")
FUNCTIONS: dict[str, tuple[int, int | None]] = {
    "sqrt": (1, 1),
    "sin": (1, 1),
    "cos": (1, 1),
    "tan": (1, 1),
    "asin": (1, 1),
    "acos": (1, 1),
    "atan": (1, 1),
    "atan2": (2, 2),
    "sinh": (1, 1),
    "cosh": (1, 1),
    "tanh": (1, 1),
    "log": (1, 2),
    "log10": (1, 1),
    "log2": (1, 1),
    "exp": (1, 1),
    "factorial": (1, 1),
    "gcd": (1, None),
    "lcm": (1, None),
    "floor": (1, 1),
    "ceil": (1, 1),
    "trunc": (1, 1),
    "abs": (1, 1),
    "round": (1, 2),
    "min": (1, None),
    "max": (1, None),
    "comb": (2, 2),
    "perm": (1, 2),
    "hypot": (1, None),
    "degrees": (1, 1),
    "radians": (1, 1),
    "isqrt": (1, 1),
}
CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e, "tau": math.tau}

_BINOPS: dict[type[ast.operator], str] = {
    ast.Add: "_add",
    ast.Sub: "_sub",
    ast.Mult: "_mul",
    ast.Div: "_div",
    ast.FloorDiv: "_floordiv",
    ast.Mod: "_mod",
    ast.Pow: "_pow",
}
_UNARYOPS = (ast.UAdd, ast.USub, ast.Not)
_CMPOPS = (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE)

_REJECTED: dict[type[ast.AST], str] = {
    ast.Attribute: "attribute access ('.') is not allowed",
    ast.Subscript: "indexing and slicing are not allowed",
    ast.Slice: "indexing and slicing are not allowed",
    ast.List: "lists are not allowed",
    ast.Tuple: "tuples are not allowed (use one expression; separate calculations need separate calls)",
    ast.Set: "sets are not allowed",
    ast.Dict: "dicts are not allowed",
    ast.JoinedStr: "f-strings are not allowed",
    ast.FormattedValue: "f-strings are not allowed",
    ast.Lambda: "lambdas are not allowed",
    ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "generator expressions are not allowed",
    ast.IfExp: "conditional expressions (x if c else y) are not allowed",
    ast.NamedExpr: "assignment (:=) is not allowed; variables are not supported",
    ast.Starred: "starred arguments are not allowed",
    ast.Await: "await is not allowed",
    ast.Yield: "yield is not allowed",
    ast.YieldFrom: "yield is not allowed",
}

_OP_SYMBOLS: dict[type[ast.AST], str] = {
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.MatMult: "@",
    ast.Invert: "~",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.In: "in",
    ast.NotIn: "not in",
}


def _allowed_names() -> str:
    return ", ".join(sorted(FUNCTIONS)) + "; constants: " + ", ".join(sorted(CONSTANTS))


def parse_checked(expression: str, *, max_length: int = MAX_LENGTH) -> ast.Expression:
    """Parse ``expression`` and check it against the allow-list; raise :class:`CalculatorError`."""
    if not isinstance(expression, str):
        raise CalculatorError("the expression must be a string")
    if len(expression) > max_length:
        raise CalculatorError(
            f"expression is too long ({len(expression)} characters; the limit is {max_length})"
        )
    text = expression.strip()
    if not text:
        raise CalculatorError("empty expression")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise CalculatorError(f"invalid syntax: {exc.msg}") from None
    except (ValueError, MemoryError, RecursionError, OverflowError) as exc:
        raise CalculatorError(f"could not parse the expression ({type(exc).__name__})") from None

    # Iterative walk (no recursion limit concerns), tracking depth.
    stack: list[tuple[ast.AST, int, ast.AST | None]] = [(tree.body, 1, None)]
    while stack:
        node, depth, parent = stack.pop()
        if depth > MAX_DEPTH:
            raise CalculatorError(f"expression is nested too deeply (more than {MAX_DEPTH} levels)")
        _check_node(node, parent)
        for child in _children(node):
            stack.append((child, depth + 1, node))
    return tree


def check_expression(expression: str, *, max_length: int = MAX_LENGTH) -> None:
    """Raise :class:`CalculatorError` if ``expression`` is not an allowed calculator expression.

    Pure: parses with :mod:`ast` and walks the tree; evaluates nothing and starts no process.
    """
    parse_checked(expression, max_length=max_length)


def _children(node: ast.AST) -> Iterator[ast.AST]:
    # Only the fields that hold sub-expressions of allowed nodes; ops/contexts are checked in place.
    if isinstance(node, ast.BinOp):
        yield node.left
        yield node.right
    elif isinstance(node, ast.UnaryOp):
        yield node.operand
    elif isinstance(node, ast.BoolOp):
        yield from node.values
    elif isinstance(node, ast.Compare):
        yield node.left
        yield from node.comparators
    elif isinstance(node, ast.Call):
        yield node.func
        yield from node.args


def _reject(message: str) -> NoReturn:
    raise CalculatorError(message)


def _check_node(node: ast.AST, parent: ast.AST | None) -> None:
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool | int):
            return
        if isinstance(value, float):
            if not math.isfinite(value):
                _reject("number literal out of range")
            return
        if isinstance(value, complex):
            _reject("complex numbers are not supported")
        if isinstance(value, str | bytes):
            _reject("strings are not allowed; the calculator only works with numbers")
        _reject(f"the constant {value!r} is not allowed")
    elif isinstance(node, ast.BinOp):
        if type(node.op) in _BINOPS:
            return
        if isinstance(node.op, ast.BitXor):
            _reject("'^' is bitwise XOR in Python and is not supported; use ** for powers, e.g. 2**3")
        _reject(f"the operator '{_OP_SYMBOLS.get(type(node.op), type(node.op).__name__)}' is not supported")
    elif isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, _UNARYOPS):
            _reject(
                f"the operator '{_OP_SYMBOLS.get(type(node.op), type(node.op).__name__)}' is not supported"
            )
    elif isinstance(node, ast.BoolOp):
        return
    elif isinstance(node, ast.Compare):
        for op in node.ops:
            if not isinstance(op, _CMPOPS):
                _reject(f"the comparison '{_OP_SYMBOLS.get(type(op), type(op).__name__)}' is not supported")
    elif isinstance(node, ast.Call):
        func = node.func
        if not isinstance(func, ast.Name):
            if type(func) in _REJECTED:
                _reject(_REJECTED[type(func)])
            if isinstance(func, ast.Constant | ast.BinOp | ast.UnaryOp | ast.Call):
                _reject("only named functions can be called; for multiplication write the '*', e.g. 2*(3+4)")
            _reject("only the calculator's own functions can be called: " + _allowed_names())
        name = func.id
        if name not in FUNCTIONS:
            if name.startswith("_"):
                _reject("names starting with '_' are not allowed")
            if name in CONSTANTS:
                _reject(f"'{name}' is a constant, not a function; for multiplication write {name}*(...)")
            _reject(f"unknown function '{name}'; allowed: " + _allowed_names())
        if node.keywords:
            _reject(f"keyword arguments are not supported; call {name}() with positional arguments")
        lo, hi = FUNCTIONS[name]
        n = len(node.args)
        if n < lo or (hi is not None and n > hi):
            if hi is None:
                expected = f"at least {lo}"
            elif lo == hi:
                expected = str(lo)
            else:
                expected = f"{lo} or {hi}"
            plural = "" if expected == "1" else "s"
            _reject(f"{name}() takes {expected} argument{plural} ({n} given)")
    elif isinstance(node, ast.Name):
        name = node.id
        if not isinstance(node.ctx, ast.Load):
            _reject("assignment is not allowed")
        if name.startswith("_"):
            _reject("names starting with '_' are not allowed")
        if name in CONSTANTS:
            return
        if name in FUNCTIONS:
            if isinstance(parent, ast.Call) and parent.func is node:
                return
            _reject(f"'{name}' is a function; call it like {name}(x)")
        _reject(f"unknown name '{name}'; variables are not supported. Allowed: " + _allowed_names())
    else:
        reason = _REJECTED.get(type(node))
        if reason is None:
            reason = f"'{type(node).__name__}' expressions are not allowed"
        _reject(reason)


# --------------------------------------------------------------------------------------------------
# Guarded arithmetic
# --------------------------------------------------------------------------------------------------


def _bits(x: int | Fraction) -> int:
    if isinstance(x, Fraction):
        return max(abs(x.numerator).bit_length(), x.denominator.bit_length())
    return abs(x).bit_length()


def _norm(x: Number) -> Number:
    """Fractions with denominator 1 become ints; floats must be finite."""
    if isinstance(x, Fraction):
        return x.numerator if x.denominator == 1 else x
    if isinstance(x, float):
        if math.isnan(x):
            raise CalculatorError("the result is undefined (not a number)")
        if math.isinf(x):
            raise CalculatorError("the result is too large for floating point (overflow)")
    return x


def _too_large(digits: float, what: str = "the exact result") -> NoReturn:
    digits = max(digits, MAX_DIGITS + 1)
    if math.isinf(digits):
        size = "astronomically many"
    elif digits >= 1e15:
        size = f"about 10^{math.log10(digits):.0f}"
    else:
        size = f"about {int(digits):,}"
    raise CalculatorError(f"{what} is too large: it would have {size} digits (the limit is {MAX_DIGITS:,})")


def _guard_bits(bits: float, what: str = "the exact result") -> None:
    if bits > MAX_BITS:
        _too_large(bits * _LOG10_2, what)


def _to_float(x: Number) -> float:
    if isinstance(x, float):
        return x
    try:
        return float(x)
    except OverflowError:
        raise CalculatorError("a number is too large to convert to floating point") from None


def _short(x: Number) -> str:
    """A number for an error message: exact if short, else an approximation."""
    text = format_value(x)
    if len(text) <= 40:
        return text
    if isinstance(x, int | Fraction):
        return ("≈-" if x < 0 else "≈") + _scientific(abs(Fraction(x)))
    return text[:40] + "…"


def _to_int(x: Number, fname: str) -> int:
    if isinstance(x, bool):
        return int(x)
    if isinstance(x, int):
        return x
    if isinstance(x, Fraction) and x.denominator == 1:
        return x.numerator
    if isinstance(x, float) and x.is_integer():
        return int(x)
    raise CalculatorError(f"{fname}() needs whole numbers (got {_short(x)})")


def _add(a: Number, b: Number) -> Number:
    return _norm(a + b)


def _sub(a: Number, b: Number) -> Number:
    return _norm(a - b)


def _mul(a: Number, b: Number) -> Number:
    return _norm(a * b)


def _div(a: Number, b: Number) -> Number:
    if isinstance(a, int | Fraction) and isinstance(b, int | Fraction):
        return _norm(Fraction(a) / Fraction(b))
    return _norm(a / b)


def _floordiv(a: Number, b: Number) -> Number:
    return _norm(a // b)


def _mod(a: Number, b: Number) -> Number:
    return _norm(a % b)


def _iroot(n: int, q: int) -> int | None:
    """The exact q-th root of n >= 0 if it is an integer, else None."""
    if n < 2:
        return n
    if q > n.bit_length():
        return None
    if q == 2:
        r = math.isqrt(n)
    elif n.bit_length() < 100:
        r = round(float(n) ** (1.0 / q))
    else:  # integer Newton iteration from above
        x = 1 << ((n.bit_length() + q - 1) // q)
        while True:
            y = ((q - 1) * x + n // x ** (q - 1)) // q
            if y >= x:
                break
            x = y
        r = x
    for cand in (r - 1, r, r + 1):
        if cand >= 0 and cand**q == n:
            return cand
    return None


def _exact_root(x: int | Fraction, q: int) -> int | Fraction | None:
    """Exact real q-th root of a rational, or None if irrational (x < 0 needs odd q)."""
    if q > MAX_BITS:
        return None
    fx = Fraction(x)
    sign = -1 if fx < 0 else 1
    num = _iroot(abs(fx.numerator), q)
    if num is None:
        return None
    den = _iroot(fx.denominator, q)
    if den is None:
        return None
    return _norm(Fraction(sign * num, den))  # type: ignore[return-value]


def _float_pow(a: Number, b: Number) -> float:
    try:
        return math.pow(_to_float(a), _to_float(b))
    except OverflowError:
        raise CalculatorError("the result is too large for floating point (overflow)") from None
    except ValueError:
        raise CalculatorError(
            "math domain error: this power is not a real number (negative base with a fractional exponent)"
        ) from None


def _pow(a: Number, b: Number) -> Number:
    if isinstance(a, int | Fraction) and isinstance(b, int | Fraction):
        if isinstance(b, int) or b.denominator == 1:
            exp = int(b)
            if a == 0:
                if exp < 0:
                    raise ZeroDivisionError("0 cannot be raised to a negative power")
                return 1 if exp == 0 else 0
            if a == 1 or exp == 0:
                return 1
            if a == -1:
                return 1 if exp % 2 == 0 else -1
            if exp.bit_length() > 64:  # and |a| is not 0 or 1: at least 2**64 bits
                _too_large(math.inf)
            fa = Fraction(a)
            log2_base = max(math.log2(abs(fa.numerator)), math.log2(fa.denominator))
            _guard_bits(abs(exp) * log2_base)  # estimate; the exact size is checked afterwards
            return _norm(Fraction(a) ** exp)
        # rational exponent p/q: try an exact root first (8**(1/3) == 2, 16**(3/4) == 8)
        p, q = b.numerator, b.denominator
        if a < 0 and q % 2 == 0:
            raise CalculatorError(
                "math domain error: a negative number to a fractional power with an even denominator "
                "is not a real number"
            )
        root = _exact_root(a, q)
        if root is not None:
            return _pow(root, p)
        if a < 0:  # odd root of a negative number: the real root
            mag = _float_pow(-a, b)
            return _norm(-mag if p % 2 else mag)
        return _norm(_float_pow(a, b))
    if isinstance(b, int) and not isinstance(a, int | Fraction):
        try:
            return _norm(a**b)
        except OverflowError:
            raise CalculatorError("the result is too large for floating point (overflow)") from None
    return _norm(_float_pow(a, b))


# --------------------------------------------------------------------------------------------------
# Functions
# --------------------------------------------------------------------------------------------------


def _float_fn(name: str, fn: Callable[[float], float]) -> Callable[[Number], Number]:
    def wrapper(x: Number) -> Number:
        try:
            return _norm(fn(_to_float(x)))
        except ValueError:
            raise CalculatorError(f"math domain error: {name}({_short(x)}) is undefined") from None

    wrapper.__name__ = name
    return wrapper


def _sqrt(x: Number) -> Number:
    if x < 0:
        raise CalculatorError(
            f"math domain error: sqrt({_short(x)}) is not a real number (negative argument)"
        )
    if isinstance(x, int | Fraction):
        root = _exact_root(x, 2)
        if root is not None:
            return root
        try:
            return _norm(math.sqrt(x))
        except OverflowError:  # too big for a float; the root may still fit
            return _norm(math.exp(_log_pos(x) / 2))
    return _norm(math.sqrt(x))


def _isqrt(x: Number) -> Number:
    n = _to_int(x, "isqrt")
    if n < 0:
        raise CalculatorError(f"math domain error: isqrt({n}) is undefined (negative argument)")
    return math.isqrt(n)


def _log_pos(x: Number) -> float:
    """Natural log of a positive number of any size."""
    if isinstance(x, Fraction):
        return math.log(x.numerator) - math.log(x.denominator)
    return math.log(x)


def _exact_log(x: Number, base: Number) -> int | None:
    if not (isinstance(x, int | Fraction) and isinstance(base, int | Fraction)):
        return None
    approx = _log_pos(x) / _log_pos(base)
    k = round(approx)
    if abs(approx - k) > 1e-6 or (k == 0 and x != 1):
        return None
    if abs(k) > MAX_BITS:  # base**k is about as large as x (|approx - k| is tiny), so this is cheap
        return None
    return k if Fraction(base) ** k == x else None


def _log_any(x: Number, base: Number | None, name: str) -> Number:
    if x <= 0:
        raise CalculatorError(
            f"math domain error: {name} is only defined for positive numbers (got {_short(x)})"
        )
    if base is None:
        if x == 1:
            return 0
        return _norm(_log_pos(x))
    if base <= 0 or base == 1:
        raise CalculatorError(
            f"math domain error: a logarithm base must be positive and not 1 (got {_short(base)})"
        )
    exact = _exact_log(x, base)
    if exact is not None:
        return exact
    return _norm(_log_pos(x) / _log_pos(base))


def _log(x: Number, base: Number | None = None) -> Number:
    return _log_any(x, base, "log")


def _log10(x: Number) -> Number:
    return _log_any(x, 10, "log10")


def _log2(x: Number) -> Number:
    return _log_any(x, 2, "log2")


def _exp(x: Number) -> Number:
    try:
        return _norm(math.exp(_to_float(x)))
    except OverflowError:
        raise CalculatorError(f"exp({_short(x)}) is too large for floating point (overflow)") from None


def _log10_factorial(n: int) -> float:
    """log10(n!) for 0 <= n < 2**64 (lgamma is accurate enough for a size check)."""
    return math.lgamma(n + 1) / math.log(10)


def _comb_digit_bounds(n: int, k: int) -> tuple[float, float]:
    """Bounds on log10(comb(n, k)) for 0 < k <= n/2 and k < 2**64: (n/k)**k <= comb <= (e*n/k)**k."""
    if n < 2**53:  # lgamma is accurate to a few digits here
        exact = (math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)) / math.log(10)
        return exact, exact
    lower = k * (math.log10(n) - math.log10(k))
    return lower, lower + k * _LOG10_E


def _factorial(x: Number) -> Number:
    n = _to_int(x, "factorial")
    if n < 0:
        raise CalculatorError(f"math domain error: factorial({n}) is undefined (negative argument)")
    what = f"factorial({_short(n)})"
    if n.bit_length() > 64:
        _too_large(float(n) * math.log10(n) if n.bit_length() < 1000 else math.inf, what)
    digits = _log10_factorial(n)
    if digits > MAX_DIGITS:
        _too_large(digits, what)
    return math.factorial(n)


def _comb_checked(n: int, k: int, name: str, extra_digits: Callable[[], float]) -> None:
    """Refuse comb/perm results that are certainly over the size limit (the rest is post-checked)."""
    what = f"{name}({_short(n)}, {_short(k)})"
    k = min(k, n - k)
    if k == 0:
        lower = 0.0
    elif k.bit_length() > 64:
        _too_large(math.inf, what)
    else:
        lower = _comb_digit_bounds(n, k)[0]
    lower += extra_digits()
    if lower > MAX_DIGITS:
        _too_large(lower, what)


def _comb(nx: Number, kx: Number) -> Number:
    n, k = _to_int(nx, "comb"), _to_int(kx, "comb")
    if n < 0 or k < 0:
        raise CalculatorError("math domain error: comb() needs non-negative arguments")
    if k > n:
        return 0
    _comb_checked(n, k, "comb", lambda: 0.0)
    return math.comb(n, k)


def _perm(nx: Number, kx: Number | None = None) -> Number:
    n = _to_int(nx, "perm")
    if kx is None:
        return _factorial(n)
    k = _to_int(kx, "perm")
    if n < 0 or k < 0:
        raise CalculatorError("math domain error: perm() needs non-negative arguments")
    if k > n:
        return 0
    # perm(n, k) = comb(n, k) * k!
    if k.bit_length() > 64:
        _too_large(math.inf, f"perm({_short(n)}, {_short(k)})")
    _comb_checked(n, k, "perm", lambda: _log10_factorial(k))
    return math.perm(n, k)


def _gcd(*args: Number) -> Number:
    return math.gcd(*(_to_int(a, "gcd") for a in args))


def _lcm(*args: Number) -> Number:
    ints = [_to_int(a, "lcm") for a in args]
    _guard_bits(sum(i.bit_length() for i in ints))
    return math.lcm(*ints)


def _rounding(name: str, fn: Callable[[Any], int]) -> Callable[[Number], Number]:
    def wrapper(x: Number) -> Number:
        try:
            return fn(x)
        except (OverflowError, ValueError):
            raise CalculatorError(f"{name}({_short(x)}) is undefined") from None

    wrapper.__name__ = name
    return wrapper


def _round(x: Number, ndigits: Number | None = None) -> Number:
    if ndigits is None:
        return _rounding("round", round)(x)
    nd = _to_int(ndigits, "round")
    if abs(nd) > MAX_ROUND_DIGITS:
        raise CalculatorError(f"round() supports at most {MAX_ROUND_DIGITS} digits")
    if isinstance(x, int | Fraction):
        return _norm(round(Fraction(x), nd))
    return _norm(round(x, nd))


def _abs(x: Number) -> Number:
    return -x if x < 0 else x


def _min(*args: Number) -> Number:
    return min(args)


def _max(*args: Number) -> Number:
    return max(args)


def _hypot(*args: Number) -> Number:
    return _norm(math.hypot(*(_to_float(a) for a in args)))


def _atan2(y: Number, x: Number) -> Number:
    return _norm(math.atan2(_to_float(y), _to_float(x)))


_IMPLS: dict[str, Callable[..., Number]] = {
    "sqrt": _sqrt,
    "sin": _float_fn("sin", math.sin),
    "cos": _float_fn("cos", math.cos),
    "tan": _float_fn("tan", math.tan),
    "asin": _float_fn("asin", math.asin),
    "acos": _float_fn("acos", math.acos),
    "atan": _float_fn("atan", math.atan),
    "atan2": _atan2,
    "sinh": _float_fn("sinh", math.sinh),
    "cosh": _float_fn("cosh", math.cosh),
    "tanh": _float_fn("tanh", math.tanh),
    "log": _log,
    "log10": _log10,
    "log2": _log2,
    "exp": _exp,
    "factorial": _factorial,
    "gcd": _gcd,
    "lcm": _lcm,
    "floor": _rounding("floor", math.floor),
    "ceil": _rounding("ceil", math.ceil),
    "trunc": _rounding("trunc", math.trunc),
    "abs": _abs,
    "round": _round,
    "min": _min,
    "max": _max,
    "comb": _comb,
    "perm": _perm,
    "hypot": _hypot,
    "degrees": _float_fn("degrees", math.degrees),
    "radians": _float_fn("radians", math.radians),
    "isqrt": _isqrt,
}
_HELPERS: dict[str, Callable[..., Number]] = {
    "_add": _add,
    "_sub": _sub,
    "_mul": _mul,
    "_div": _div,
    "_floordiv": _floordiv,
    "_mod": _mod,
    "_pow": _pow,
}
_OP_TEXT = {"_add": "+", "_sub": "-", "_mul": "*", "_div": "/", "_floordiv": "//", "_mod": "%", "_pow": "**"}
assert set(_IMPLS) == set(FUNCTIONS)


class _Failure:
    """The first error raised by a guarded function during one evaluation.

    asteval wraps exceptions raised by called functions into its own messages; the original reason
    is recorded here so the model gets a clean message.
    """

    def __init__(self) -> None:
        self.message: str | None = None
        self.fatal = False
        self.inexact_fraction = False  # saw a fraction with no terminating decimal (like 1/3)

    def reset(self) -> None:
        self.message = None
        self.fatal = False
        self.inexact_fraction = False


_failure = _Failure()


def _guarded(name: str, fn: Callable[..., Number]) -> Callable[..., Number]:
    def call(*args: Number) -> Number:
        try:
            result = fn(*args)
            if isinstance(result, int | Fraction):
                if _bits(result) > MAX_BITS:
                    _too_large(_bits(result) * _LOG10_2)
                if (
                    isinstance(result, Fraction)
                    and not _failure.inexact_fraction
                    and _decimal_places(result.denominator) is None
                ):
                    _failure.inexact_fraction = True
            return result
        except CalculatorError as exc:
            message = str(exc)
        except ZeroDivisionError as exc:
            message = "division by zero" + (f" ({exc})" if "negative power" in str(exc) else "")
        except OverflowError:
            message = "the result is too large for floating point (overflow)"
        except ValueError:
            shown = ", ".join(_short(a) for a in args)
            message = f"math domain error in {_OP_TEXT.get(name, name)}({shown})"
        except MemoryError:
            message = "out of memory"
            _failure.fatal = True
        except RecursionError:
            message = "expression is nested too deeply"
        except TypeError as exc:
            message = f"invalid arguments for {_OP_TEXT.get(name, name)}: {exc}"
        if _failure.message is None:
            _failure.message = message
        raise CalculatorError(message)

    call.__name__ = name
    return call


# --------------------------------------------------------------------------------------------------
# AST rewrite and evaluation
# --------------------------------------------------------------------------------------------------


class _Rewriter(ast.NodeTransformer):
    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        func = ast.copy_location(ast.Name(id=_BINOPS[type(node.op)], ctx=ast.Load()), node)
        return ast.copy_location(ast.Call(func=func, args=[node.left, node.right], keywords=[]), node)

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        if isinstance(node.value, float):
            # exact decimal value of the literal as written (0.1 -> 1/10), via the shortest repr
            exact = _norm(Fraction(repr(node.value)))
            return ast.copy_location(ast.Constant(value=exact), node)  # type: ignore[arg-type]
        return node


def _symtable() -> dict[str, Any]:
    table: dict[str, Any] = {name: _guarded(name, fn) for name, fn in {**_IMPLS, **_HELPERS}.items()}
    table.update(CONSTANTS)
    return table


class Evaluator:
    """One asteval interpreter with the calculator's symbol table (lives in a worker process)."""

    def __init__(self, max_length: int = MAX_LENGTH) -> None:
        from asteval import Interpreter  # imported here so check_expression needs no asteval

        self.max_length = max_length
        self._interp = Interpreter(
            symtable=_symtable(),
            minimal=True,
            use_numpy=False,
            max_statement_length=max(max_length, 1),
            writer=_NullWriter(),
            err_writer=_NullWriter(),
        )

    def evaluate(self, expression: str) -> tuple[str, bool]:
        """Return (text, fatal).  ``text`` is the formatted result or ``"Error: ..."``."""
        _failure.reset()
        try:
            tree = parse_checked(expression, max_length=self.max_length)
            body = _Rewriter().visit(tree).body
            module = ast.Module(body=[ast.copy_location(ast.Expr(value=body), body)], type_ignores=[])
            interp = self._interp
            interp.error = []
            interp.error_msg = None
            interp.code_text = []
            interp._interrupt = None
            interp.retval = None
            try:
                result = interp.run(module, expr=expression, lineno=0, with_raise=True)
            except Exception:
                result = None
            if _failure.message is not None:
                return f"Error: {_failure.message}", _failure.fatal
            if interp.error:
                exc_name, msg = interp.error[-1].get_error()
                return f"Error: {exc_name}: {msg}".strip()[:500], False
            if _failure.inexact_fraction:
                return format_value(result, prefer_fraction=True), False
            return format_value(result), False
        except CalculatorError as exc:
            return f"Error: {exc}", _failure.fatal
        except MemoryError:
            return "Error: out of memory", True
        except RecursionError:
            return "Error: expression is nested too deeply", False
        except Exception as exc:  # defensive: never let the worker die on a bad expression
            return f"Error: {type(exc).__name__}: {exc}"[:500], False


class _NullWriter:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


# --------------------------------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------------------------------


def _scientific(x: Fraction) -> str:
    """``≈d.ddddddddde±N`` for a positive rational of any size (10 significant digits)."""
    n, d = x.numerator, x.denominator
    sig = 11
    e = math.floor((n.bit_length() - d.bit_length()) * _LOG10_2)
    scaled = 0
    for _ in range(8):
        shift = sig - 1 - e
        scaled = (n * 10**shift) // d if shift >= 0 else n // (d * 10 ** (-shift))
        if scaled >= 10**sig:
            e += 1
        elif scaled < 10 ** (sig - 1):
            e -= 1
        else:
            break
    rounded = (scaled + 5) // 10
    if rounded >= 10 ** (sig - 1):
        rounded //= 10
        e += 1
    digits = str(rounded)
    return f"{digits[0]}.{digits[1:]}e{e:+d}"


def _decimal_digits(n: int) -> int:
    """Exact number of decimal digits of n > 0 (cheap even for huge n)."""
    est = int(n.bit_length() * _LOG10_2)  # digits - 1 or digits
    return est + 1 if n >= 10**est else est


def _decimal_places(den: int) -> int | None:
    """Digits after the point if 1/den has a terminating decimal (den = 2**a * 5**b), else None."""
    twos = (den & -den).bit_length() - 1
    rest = den >> twos
    fives = 0
    if rest != 1:
        if rest % 5:
            return None
        est = int(rest.bit_length() / math.log2(5))
        for cand in (est - 1, est, est + 1, est + 2):
            if cand > 0 and 5**cand == rest:
                fives = cand
                break
        else:
            return None
    return max(twos, fives)


def format_value(value: object, *, prefer_fraction: bool = False) -> str:
    """Format a calculator result for a model (exact where possible).

    Integers print in full (up to 1000 digits).  A fraction whose denominator has only the factors 2
    and 5 prints as a terminating decimal (``2.5``), other fractions as ``p/q``; with
    ``prefer_fraction`` (used when the calculation involved a fraction like 1/3) terminating fractions
    print as ``p/q`` too unless the denominator is a power of ten, so ``1/3 + 1/6`` gives ``1/2`` and
    ``round(1/3, 4)`` gives ``0.3333``.  Floats print with ``repr``, except
    whole floats below 1e16, which print without ``.0``.  Booleans print as ``True``/``False``.
    """
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        if value.bit_length() <= 3300:  # < 1000 digits, well within str()'s digit limit
            return str(value)
        digits = _decimal_digits(abs(value))
        sign = "-" if value < 0 else ""
        if digits <= DISPLAY_DIGITS:
            return str(value)
        approx = _scientific(Fraction(abs(value)))
        return f"≈{sign}{approx} (an integer with {digits:,} digits; too long to show exactly)"
    if isinstance(value, Fraction):
        if value.denominator == 1:
            return format_value(value.numerator)
        sign = "-" if value < 0 else ""
        num, den = abs(value.numerator), value.denominator
        places = _decimal_places(den)
        if prefer_fraction and places is not None and den != 10**places:
            places = None  # 1/3 + 1/6 -> 1/2, but round(1/3, 4) -> 0.3333
        if places is not None:
            if places <= DISPLAY_DIGITS and num.bit_length() <= 3300:
                text = str(num * 10**places // den).rjust(places + 1, "0")
                if len(text) <= DISPLAY_DIGITS:
                    return f"{sign}{text[:-places]}.{text[-places:]}"
        elif num.bit_length() + den.bit_length() <= 3300:
            return f"{sign}{num}/{den}"
        return f"≈{sign}{_scientific(abs(value))} (exact fraction too long to show)"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e16:
            return str(int(value))
        return repr(value)
    return f"Error: unexpected result type {type(value).__name__}"


# --------------------------------------------------------------------------------------------------
# Worker process
# --------------------------------------------------------------------------------------------------


def _set_limits(memory_mb: int) -> None:
    try:
        import resource
    except ImportError:  # pragma: no cover - non-POSIX
        return
    for limit, value in ((resource.RLIMIT_CORE, 0), (resource.RLIMIT_AS, memory_mb * 1024 * 1024)):
        try:
            _soft, hard = resource.getrlimit(limit)
            if hard != resource.RLIM_INFINITY and value > hard:
                value = hard
            resource.setrlimit(limit, (value, hard))
        except (ValueError, OSError):  # pragma: no cover - platform refuses
            pass


def _set_cpu_budget(seconds: float) -> None:
    """Backstop: SIGXCPU kills this process if one evaluation burns more than ~``seconds`` CPU."""
    try:
        import resource

        usage = resource.getrusage(resource.RUSAGE_SELF)
        used = usage.ru_utime + usage.ru_stime
        _soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
        soft = math.ceil(used + seconds) + 1
        if hard != resource.RLIM_INFINITY:
            soft = min(soft, hard)
        resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
    except (ImportError, ValueError, OSError):  # pragma: no cover
        pass


def main(argv: list[str]) -> int:
    memory_mb = int(argv[1]) if len(argv) > 1 else 256
    timeout = float(argv[2]) if len(argv) > 2 else 2.0
    max_length = int(argv[3]) if len(argv) > 3 else MAX_LENGTH
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20 * MAX_DEPTH))
    out = sys.stdout
    sys.stdout = sys.stderr  # anything printed by accident must not corrupt the protocol
    evaluator = Evaluator(max_length=max_length)
    evaluator.evaluate("1+1")  # warm up
    _set_limits(memory_mb)
    out.write('{"ready": true}\n')
    out.flush()
    for line in sys.stdin:
        try:
            request = json.loads(line)
            req_id = request["id"]
            expression = request["expr"]
        except (ValueError, KeyError, TypeError):
            out.write(json.dumps({"id": None, "result": "Error: bad request", "fatal": True}) + "\n")
            out.flush()
            return 2
        _set_cpu_budget(timeout)
        text, fatal = evaluator.evaluate(expression)
        out.write(json.dumps({"id": req_id, "result": text, "fatal": fatal}) + "\n")
        out.flush()
        if fatal:
            return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
