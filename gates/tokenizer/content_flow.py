"""Where message content can go in a chat template: a proof, from the syntax tree, that it is only pasted.

:func:`content_is_pasted` is true when the text a template renders is, for a fixed *shape* (the
roles and keys of the messages, ``add_generation_prompt``, the special tokens and template
variables), the same literal text around each message's content, with the content pasted in
as it is or through ``| trim`` / ``.strip()`` / ``.lstrip()`` / ``.rstrip()``. Then
:mod:`sftgate.gates.tokenizer.template_skeleton` renders a shape once and fills in the contents
of every other conversation of that shape, which is what a template like ChatML's, Mistral's or
Llama 3's does with them anyway.

The proof is a type inference over the template (flow-insensitive, to a fixed point), with five
kinds of value: ``S`` (depends on the shape only), ``M`` (one message), ``L`` (a list of
messages), ``C`` (one message's content, perhaps stripped) and ``X`` (text that holds content).
Content may be output, concatenated (``+``, ``~``), stored in a variable or a namespace
attribute, chosen by a condition on the shape, stripped, or tested for its type (``is
defined``, ``is string``). Anything else it meets - a comparison, a truth test, a filter other
than ``trim``/``string``/``default``, a method call, indexing, a loop over it, a macro, ``|
tojson`` of a message, ``strftime_now`` - and the answer is false: the caller renders every
conversation in full, as before. Unknown syntax is refused too, so the answer errs only
towards false.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

S, M, L, C, X = "S", "M", "L", "C", "X"
SHAPE = frozenset({S})
TEXT = frozenset({C, X})  # values holding content
STRIPS = frozenset({"strip", "lstrip", "rstrip"})
TYPE_TESTS = frozenset({"defined", "undefined", "none", "string", "mapping", "sequence", "iterable", "boolean",
                        "false", "true", "number", "integer", "float", "callable"})
LIST_FILTERS = {"length": SHAPE, "count": SHAPE, "first": frozenset({M}), "last": frozenset({M}),
                "list": frozenset({L}), "reverse": frozenset({L})}
UNSAFE_NAMES = frozenset({"strftime_now", "lipsum", "self", "caller", "varargs", "kwargs"})  # time, chance, blocks, macros
UNSAFE_FILTERS = frozenset({"random"})
GENERATION = "_generation_support"  # transformers' {% generation %} block: renders its body as it is
MAX_PASSES = 12


class _NotPasted(Exception):
    """Content reaches something other than output, concatenation or a strip."""


def content_is_pasted(environment: Any, source: str) -> bool:
    """True when every message's content in ``source`` is only pasted into the output (module doc)."""
    try:
        tree = environment.parse(source)
    except Exception:
        return False
    flow = _Flow()
    try:
        for _ in range(MAX_PASSES):
            before = flow.state()
            flow.statements(tree.body)
            if flow.state() == before:
                return True
    except (_NotPasted, RecursionError):
        return False
    return False


class _Flow:
    def __init__(self) -> None:
        self.names: dict[str, frozenset[str]] = {"messages": frozenset({L}), "loop": frozenset({S, "loop"})}
        self.attrs: dict[str, frozenset[str]] = {}  # namespace attribute -> kinds stored in it

    def state(self) -> tuple[Any, ...]:
        return tuple(sorted(self.names.items())), tuple(sorted(self.attrs.items()))

    # ------------------------------------------------------------------ statements

    def statements(self, body: Iterable[Any]) -> None:
        for node in body:
            self.statement(node)

    def statement(self, node: Any) -> None:
        from jinja2 import nodes

        if isinstance(node, nodes.Output):
            for child in node.nodes:
                if not isinstance(child, nodes.TemplateData) and not self.expr(child) <= {S, C, X}:
                    raise _NotPasted  # a message or a list of them printed: its repr holds content
        elif isinstance(node, nodes.If):
            self.shape(node.test)
            self.statements(node.body)
            for branch in node.elif_:
                self.statement(branch)
            self.statements(node.else_)
        elif isinstance(node, nodes.For):
            self._loop(node)
        elif isinstance(node, nodes.Assign):
            self.store(node.target, self.expr(node.node))
        elif isinstance(node, nodes.AssignBlock):
            if node.filter is not None:
                raise _NotPasted
            self.statements(node.body)
            self.store(node.target, frozenset({S, X}))
        elif isinstance(node, nodes.With):
            for target, value in zip(node.targets, node.values, strict=True):
                self.store(target, self.expr(value))
            self.statements(node.body)
        elif isinstance(node, nodes.Scope) or (isinstance(node, nodes.CallBlock) and _is_generation(node)):
            self.statements(node.body)
        elif isinstance(node, nodes.ExprStmt):
            self.expr(node.node)
        elif not isinstance(node, nodes.Break | nodes.Continue):
            raise _NotPasted  # macros, call and filter blocks, includes, blocks, autoescape

    def _loop(self, node: Any) -> None:
        if node.recursive:
            raise _NotPasted
        kinds = self.expr(node.iter)
        if kinds & TEXT:
            raise _NotPasted  # a loop over the characters of a content
        item = frozenset({M} if L in kinds else set()) | (SHAPE if kinds - {L} else frozenset())
        if not item:
            item = SHAPE
        self.store(node.target, item)
        if node.test is not None:
            self.shape(node.test)
        self.statements(node.body)
        self.statements(node.else_)

    def store(self, target: Any, kinds: frozenset[str]) -> None:
        from jinja2 import nodes

        if isinstance(target, nodes.Name):
            self.names[target.name] = self.names.get(target.name, frozenset()) | kinds
        elif isinstance(target, nodes.NSRef):
            self.attrs[target.attr] = self.attrs.get(target.attr, frozenset()) | kinds
        elif isinstance(target, nodes.Tuple):
            if kinds != SHAPE:  # unpacking a message or a content
                raise _NotPasted
            for item in target.items:
                self.store(item, SHAPE)
        else:
            raise _NotPasted

    # ------------------------------------------------------------------ expressions

    def shape(self, node: Any) -> None:
        """``node`` must depend on the shape only (a test, a loop filter, an argument)."""
        if self.expr(node) != SHAPE:
            raise _NotPasted

    def expr(self, node: Any) -> frozenset[str]:
        from jinja2 import nodes

        if isinstance(node, nodes.Const | nodes.TemplateData):
            return SHAPE
        if isinstance(node, nodes.Name):
            if node.name in UNSAFE_NAMES:
                raise _NotPasted
            return self.names.get(node.name, SHAPE)
        if isinstance(node, nodes.Getitem):
            return self._item(node.node, node.arg, attribute=False)
        if isinstance(node, nodes.Getattr):
            return self._item(node.node, nodes.Const(node.attr), attribute=True)
        if isinstance(node, nodes.Slice):
            for part in (node.start, node.stop, node.step):
                if part is not None:
                    self.shape(part)
            return SHAPE
        if isinstance(node, nodes.Add | nodes.Concat):
            parts = [node.left, node.right] if isinstance(node, nodes.Add) else node.nodes
            kinds = frozenset().union(*(self.expr(p) for p in parts))
            if kinds & {M, L}:
                raise _NotPasted
            return frozenset({X}) if kinds & TEXT else SHAPE
        if isinstance(node, nodes.CondExpr):
            self.shape(node.test)
            return self.expr(node.expr1) | (SHAPE if node.expr2 is None else self.expr(node.expr2))
        if isinstance(node, nodes.Test):
            return self._test(node)
        if isinstance(node, nodes.Filter):
            return self._filter(node)
        if isinstance(node, nodes.Call):
            return self._call(node)
        if isinstance(node, nodes.Compare):
            return self._compare(node)
        if isinstance(node, nodes.BinExpr | nodes.UnaryExpr):  # arithmetic, and, or, not: on the shape only
            for child in node.iter_child_nodes():
                self.shape(child)
            return SHAPE
        if isinstance(node, nodes.Tuple | nodes.List | nodes.Dict | nodes.Pair | nodes.Keyword):
            for child in node.iter_child_nodes():
                self.shape(child)  # a container holding a message or a content: refused
            return SHAPE
        raise _NotPasted

    def _item(self, base: Any, key: Any, *, attribute: bool) -> frozenset[str]:
        """``base[key]`` / ``base.key``."""
        from jinja2 import nodes

        kinds = self.expr(base)
        const = key.value if isinstance(key, nodes.Const) else None
        if kinds & TEXT:
            raise _NotPasted  # indexing or slicing a content
        out: set[str] = set()
        if M in kinds:
            if const == "content":
                out.add(C)
            elif isinstance(const, str) and not hasattr(dict, const):
                out.add(S)  # role, or a key the shape says is absent (skeletons need role/content only)
            else:
                raise _NotPasted
        if L in kinds:
            if attribute or isinstance(const, str):
                raise _NotPasted  # a list's method (messages.index), not an item
            if isinstance(key, nodes.Slice):
                self.expr(key)
                out.add(L)
            else:
                self.shape(key)
                out.add(M)
        if "loop" in kinds and const in ("previtem", "nextitem"):
            out.add(M)
        if kinds & {S, "loop"}:
            self.shape(key)
            out.add(S)
            # a namespace attribute (ns.x, or ns['x']: Jinja falls back to the attribute)
            if isinstance(const, str):
                out |= self.attrs.get(const, frozenset())
            else:
                out = out.union(*self.attrs.values())
        return frozenset(out)

    def _test(self, node: Any) -> frozenset[str]:
        kinds = self.expr(node.node)
        if node.name not in TYPE_TESTS and kinds != SHAPE:
            raise _NotPasted
        self._arguments(node)
        return SHAPE

    def _filter(self, node: Any) -> frozenset[str]:
        if node.node is None or node.name in UNSAFE_FILTERS:
            raise _NotPasted
        kinds = self.expr(node.node)
        bare = not (node.args or node.kwargs or node.dyn_args or node.dyn_kwargs)
        if kinds & TEXT:
            if node.name == "trim" and bare and kinds <= {C, S}:
                return kinds
            if node.name == "string" and bare:
                return kinds
            if node.name == "default" and len(node.args) <= 1 and not (node.kwargs or node.dyn_args or node.dyn_kwargs):
                fallback = frozenset().union(*(self.expr(a) for a in node.args))
                if fallback & {M, L}:
                    raise _NotPasted
                return kinds | fallback | SHAPE
            raise _NotPasted
        out: set[str] = set()
        for kind in kinds:
            if kind == L:
                out |= self._list_filter(node)
            elif kind == M:
                if node.name not in ("length", "count") or not bare:
                    raise _NotPasted  # items, tojson, string... of a message
                out.add(S)
            else:
                out.add(S)
        self._arguments(node)
        return frozenset(out)

    def _list_filter(self, node: Any) -> frozenset[str]:
        from jinja2 import nodes

        if node.name in LIST_FILTERS and not node.args and not node.kwargs:
            return LIST_FILTERS[node.name]
        first = node.args[0] if node.args else None
        if node.name in ("selectattr", "rejectattr") and isinstance(first, nodes.Const) and first.value == "role":
            return frozenset({L})
        attribute = next((k.value for k in node.kwargs if k.key == "attribute"), None)
        if node.name == "map" and not node.args and isinstance(attribute, nodes.Const) and attribute.value == "role":
            return SHAPE
        raise _NotPasted

    def _call(self, node: Any) -> frozenset[str]:
        from jinja2 import nodes

        func = node.node
        if isinstance(func, nodes.Getattr):
            kinds = self.expr(func.node)
            if kinds & TEXT:
                if func.attr in STRIPS and kinds <= {C, S} and not (node.args or node.kwargs or node.dyn_args or node.dyn_kwargs):
                    return kinds
                raise _NotPasted  # split, replace, startswith... of a content
            if M in kinds and func.attr == "get" and node.args and isinstance(node.args[0], nodes.Const):
                rest = kinds - {M}
                self._arguments(node)
                value = frozenset({C}) if node.args[0].value == "content" else SHAPE
                default = self.expr(node.args[1]) if len(node.args) > 1 else SHAPE
                return value | default | (SHAPE if rest else frozenset())
            if kinds & {M, L}:
                raise _NotPasted
        elif isinstance(func, nodes.Name):
            if func.name in UNSAFE_NAMES:
                raise _NotPasted
            if self.names.get(func.name, SHAPE) != SHAPE:
                raise _NotPasted
        else:
            raise _NotPasted
        self._arguments(node)
        return SHAPE

    def _compare(self, node: Any) -> frozenset[str]:
        operands = [node.expr, *(op.expr for op in node.ops)]
        kinds = [self.expr(o) for o in operands]
        for index, op in enumerate(node.ops):
            left, right = kinds[index], kinds[index + 1]
            if op.op in ("in", "notin") and left == SHAPE and right <= {S, M}:
                continue  # 'content' in message: which keys there are (the shape)
            if left != SHAPE or right != SHAPE:
                raise _NotPasted
        return SHAPE

    def _arguments(self, node: Any) -> None:
        for arg in node.args:
            self.shape(arg)
        for keyword in node.kwargs:
            self.shape(keyword.value)
        for extra in (node.dyn_args, node.dyn_kwargs):
            if extra is not None:
                self.shape(extra)


def _is_generation(node: Any) -> bool:
    from jinja2 import nodes

    call = node.call
    return (isinstance(call, nodes.Call) and isinstance(call.node, nodes.ExtensionAttribute)
            and call.node.name == GENERATION and not call.args and not call.kwargs and not node.args)
