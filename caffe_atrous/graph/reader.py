"""From a V2 NetParameter message to plain LayerSpecs: name, type, blobs, the
phases a layer runs in (Caffe's include/exclude rules) and the typed record of its
parameters (parameters.py)."""

from __future__ import annotations

from ..core.errors import AtrousError
from ..formats.schema import enum_name
from .parameters import read_params, type_fields
from .records import PHASES, LayerSpec


def _rule_matches(rule, phase: str, state) -> bool:
    """Caffe's StateMeetsRule for a net state of the given phase."""
    if rule.HasField("phase") and enum_name(rule, "phase") != phase:
        return False
    if rule.HasField("min_level") and state.level < rule.min_level:
        return False
    if rule.HasField("max_level") and state.level > rule.max_level:
        return False
    stages = set(state.stage)
    if any(s not in stages for s in rule.stage):
        return False
    if any(s in stages for s in rule.not_stage):
        return False
    return True


_ALL_PHASES = frozenset(PHASES)


def _phases(layer, state) -> frozenset[str]:
    if not layer.include and not layer.exclude:
        return _ALL_PHASES
    if layer.include and layer.exclude:
        raise AtrousError("a layer may have include rules or exclude rules, not both",
                          layer=layer.name)
    if layer.include:
        return frozenset(p for p in PHASES if any(_rule_matches(r, p, state) for r in layer.include))
    return frozenset(p for p in PHASES if not any(_rule_matches(r, p, state) for r in layer.exclude))


def read_layers(net, lines: list[int] | None = None, path: str | None = None) -> list[LayerSpec]:
    """Plain LayerSpecs for a V2 NetParameter, in file order."""
    if getattr(net, "layers", None):
        raise AtrousError("internal: V1 layers must be upgraded before reading")
    specs = []
    state = net.state
    for i, layer in enumerate(net.layer):
        line = lines[i] if lines and i < len(lines) else None
        name = layer.name
        try:
            if not name:
                raise AtrousError(f"layer number {i + 1} has no name; give it one")
            spec = LayerSpec(i, name, layer.type, tuple(layer.bottom), tuple(layer.top),
                             _phases(layer, state), line, read_params(layer))
        except AtrousError as exc:
            raise exc.located(path, line, name or None) from None
        specs.append(spec)
    return specs


def schema_layer_types(schema) -> set[str]:
    """The layer types a schema names: `X` for every XParameter field of its
    LayerParameter (as net_spec derives them), and the V2 name of every type of
    its V1 layer enum."""
    from ..formats.upgrade import V1_TYPES
    types = set(type_fields(schema.LayerParameter.DESCRIPTOR))
    try:
        enum = schema.V1LayerParameter.DESCRIPTOR.fields_by_name["type"].enum_type
    except AttributeError:                  # a fork schema without V1 layers
        return types
    return types | {V1_TYPES.get(v.name, v.name) for v in enum.values if v.name != "NONE"}
