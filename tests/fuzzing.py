"""Seeded inputs for test_fuzz.py: networks to mutate, their mutations, caffemodel
damage, and random command lines. Every choice comes from a random.Random seeded
with (run seed, case number), so a case is reproduced by its number alone.
"""

from __future__ import annotations

import os
import random
import re

from caffe_atrous.formats.prototxt import layer_blocks

from conftest import EXAMPLE, ZOO, conv, layer, net, pool, zoo_path

SEED = int(os.environ.get("CAFFE_ATROUS_FUZZ_SEED", "0"))
CASES = int(os.environ.get("CAFFE_ATROUS_FUZZ_N", "5000"))
WEIGHT_CASES = int(os.environ.get("CAFFE_ATROUS_FUZZ_WEIGHTS_N", str(max(1000, CASES // 5))))

# Small zoo files used whole, and larger ones of which a prefix of layers is used.
ZOO_WHOLE = ["bvlc-alexnet/deploy.prototxt", "vgg16-ilsvrc/VGG_ILSVRC_16_layers_deploy.prototxt",
             "squeezenet-v1.1/deploy.prototxt"]
ZOO_PREFIX = ["resnet50-kaiming/ResNet-50-deploy.prototxt", "bvlc-googlenet/train_val.prototxt",
              "fcn8s-voc/deploy.prototxt", "deeplabv1-largefov/test.prototxt",
              "pspnet50-ade20k/pspnet50_ADE20K_473.prototxt", "ssd300-vgg16/deploy.prototxt",
              "mobilenet-v1-shicai/mobilenet_deploy.prototxt", "rfcn-resnet101-py/test_agnostic.prototxt",
              "se-resnet50/SE-ResNet-50.prototxt", "deeplabv2-vgg16-aspp-l/train.prototxt"]


def rng(kind: str, case: int) -> random.Random:
    return random.Random(f"{kind}:{SEED}:{case}")


def suite_nets() -> dict[str, str]:
    """Small networks from the test factory: each shape of network the converter handles."""
    bn = lambda n, b: layer(n, "BatchNorm", b, b) + layer(n + "_s", "Scale", b, b,  # noqa: E731
                                                         "scale_param { bias_term: true }")
    relu = lambda b: layer(b + "_relu", "ReLU", b, b)  # noqa: E731
    plain = net(conv("c1", "data", s=2), pool("p1", "c1"), conv("c2", "p1", s=2),
                conv("c3", "c2", s=2), conv("c4", "c3", k=1, s=2), size=65)
    residual = net(conv("c1", "data", s=2, n=8), bn("c1_bn", "c1"), relu("c1"),
                   conv("a", "c1", s=2, n=8), conv("b", "c1", k=1, s=2, n=8),
                   layer("sum", "Eltwise", ["a", "b"]), conv("d", "sum", s=2, group=2, n=8),
                   conv("e", "sum", k=1, s=2, n=8), layer("sum2", "Eltwise", ["d", "e"]),
                   pool("gp", "sum2", extra="global_pooling: true", k=0, s=1).replace(
                       "kernel_size: 0 stride: 1 pad: 0 ", ""),
                   layer("fc", "InnerProduct", "gp", body="inner_product_param { num_output: 10 }"),
                   size=33)
    inception = net(conv("c1", "data", s=2), conv("b1", "c1", k=1), conv("b3", "c1", k=3),
                    pool("bp", "c1", k=3, s=1, p=1), layer("cat", "Concat", ["b1", "b3", "bp"]),
                    pool("p2", "cat", k=3, s=2), conv("c2", "p2", s=2),
                    pool("p3", "c2", k=3, s=1, method="AVE"),
                    layer("fc", "InnerProduct", "p3", body="inner_product_param { num_output: 5 }"),
                    size=33)
    upsample = net(conv("c1", "data", s=2), conv("c2", "c1", s=2), conv("score", "c2", k=1, n=4),
                   layer("up", "Deconvolution", "score", body="convolution_param { num_output: 4 "
                         "kernel_size: 8 stride: 4 bias_term: false }"),
                   layer("crop", "Crop", ["up", "data"], body="crop_param { axis: 2 offset: 2 }"),
                   layer("interp", "Interp", "c2", body="interp_param { zoom_factor: 2 }"),
                   layer("pspool", "Pooling", "c2", body="pooling_param { pool: AVE kernel_size: 4 "
                         "stride: 4 }"),
                   layer("psup", "Interp", ["pspool", "c2"], body="interp_param { }"),
                   layer("loss", "SoftmaxWithLoss", ["crop", "data"]), size=33)
    legacy = ('name: "v1"\ninput: "data"\ninput_dim: 1\ninput_dim: 3\ninput_dim: 33\ninput_dim: 33\n'
              'layers { name: "c1" type: CONVOLUTION bottom: "data" top: "c1"\n'
              '  convolution_param { num_output: 8 kernel_size: 3 stride: 2 pad: 1 } }\n'
              'layers { name: "p1" type: POOLING bottom: "c1" top: "p1"\n'
              '  pooling_param { pool: MAX kernel_size: 2 stride: 2 } }\n'
              'layers { name: "c2" type: CONVOLUTION bottom: "p1" top: "c2"\n'
              '  convolution_param { num_output: 8 kernel_size: 3 pad: 1 stride: 2 hole: 1 } }\n'
              'layers { name: "fc" type: INNER_PRODUCT bottom: "c2" top: "fc"\n'
              '  inner_product_param { num_output: 4 } }\n')
    phases = ('name: "tv"\nlayer { name: "data" type: "Data" top: "data" top: "label" '
              'include { phase: TRAIN } transform_param { crop_size: 33 } data_param { batch_size: 2 } }\n'
              'layer { name: "data" type: "Data" top: "data" top: "label" include { phase: TEST } '
              'transform_param { crop_size: 33 } data_param { batch_size: 1 } }\n'
              + conv("c1", "data", s=2) + pool("p1", "c1") + conv("c2", "p1", s=2)
              + layer("acc", "Accuracy", ["c2", "label"], body="include { phase: TEST }")
              + layer("loss", "SoftmaxWithLoss", ["c2", "label"]))
    return {"plain": plain, "residual": residual, "inception": inception, "upsample": upsample,
            "legacy": legacy, "phases": phases}


def zoo_bases() -> dict[str, str]:
    """Zoo texts (template variables substituted); none where the zoo is absent outside CI."""
    if not ZOO.is_dir() and not os.environ.get("CI"):
        return {}
    out = {}
    for rel in ZOO_WHOLE + ZOO_PREFIX:
        text = re.sub(r"\$\{(\w+)\}", "21", zoo_path(rel).read_text())
        out[rel] = text
    return out


class Bases:
    """Texts to mutate: suite nets, the bundled example, zoo files and zoo prefixes."""

    def __init__(self):
        self.suite = suite_nets()
        self.example = EXAMPLE.read_text()
        self.zoo = zoo_bases()
        self.blocks = {rel: layer_blocks(text) for rel, text in self.zoo.items()}

    def pick(self, r: random.Random) -> tuple[str, str]:
        roll = r.random()
        if roll < 0.6 or not self.zoo:
            name = r.choice(sorted(self.suite))
            return name, self.suite[name]
        if roll < 0.7:
            return "example", self.example
        rel = r.choice(ZOO_WHOLE + ZOO_PREFIX)
        text, blocks = self.zoo[rel], self.blocks[rel]
        if rel in ZOO_WHOLE or len(blocks) < 4:
            return rel, text
        keep = r.randint(3, min(len(blocks), 30))
        return f"{rel}[:{keep}]", text[:blocks[keep - 1][2]] + "\n"


# -- prototxt mutations ----------------------------------------------------------

VALUE_FIELDS = ("stride", "kernel_size", "pad", "dilation", "group", "num_output", "dim",
                "kernel_h", "kernel_w", "stride_h", "stride_w", "pad_h", "pad_w", "zoom_factor",
                "shrink_factor", "height", "width", "input_dim", "axis", "offset", "crop_size",
                "spatial_scale", "step")
VALUES = ("0", "1", "2", "3", "7", "64", "1000", "2147483647", "4294967296", "99999999999999",
          "-1", "-3", "0.5")
TYPES = ("Convolution", "Pooling", "InnerProduct", "Eltwise", "Concat", "ReLU", "Deconvolution",
         "Interp", "Crop", "Input", "Data", "Python", "ROIPooling", "Split", "Flatten", "Reshape",
         "Slice", "BatchNorm", "Scale", "Softmax", "Dropout", "Silence", "PriorBox", "Bogus")
_VALUE = re.compile(r"\b(" + "|".join(VALUE_FIELDS) + r")(\s*:\s*)(-?[0-9.e]+)")
_TYPE = re.compile(r'\btype(\s*:\s*)("?)(\w+)"?')
_WORD = re.compile(r'"[^"\n]*"|[A-Za-z0-9_.+-]+|[{}<>:]')


def _lines(text: str, r: random.Random) -> str:
    lines = text.split("\n")
    i = r.randrange(len(lines))
    if r.random() < 0.5:
        del lines[i]
    else:
        lines.insert(r.randrange(len(lines)), lines[i])
    return "\n".join(lines)


def _block(text: str, r: random.Random) -> str:
    blocks = layer_blocks(text)
    if not blocks:
        return text
    _, start, end = r.choice(blocks)
    at = r.choice([end, len(text), start])
    return text[:at] + "\n" + text[start:end] + "\n" + text[at:]


def _swap(text: str, r: random.Random) -> str:
    words = list(_WORD.finditer(text))
    if len(words) < 2:
        return text
    a, b = sorted(r.sample(words, 2), key=lambda m: m.start())
    return (text[:a.start()] + b.group() + text[a.end():b.start()] + a.group() + text[b.end():])


def _type(text: str, r: random.Random) -> str:
    found = list(_TYPE.finditer(text))
    if not found:
        return text
    m = r.choice(found)
    new = r.choice(TYPES)
    if m.group(2) == "":                    # a V1 enum: upper case
        new = re.sub(r"(?<!^)(?=[A-Z])", "_", new).upper()
        value = new
    else:
        value = f'"{new}"'
    return text[:m.start()] + f"type{m.group(1)}{value}" + text[m.end():]


def _value(text: str, r: random.Random) -> str:
    found = list(_VALUE.finditer(text))
    if not found:
        return text
    m = r.choice(found)
    return text[:m.start(3)] + r.choice(VALUES) + text[m.end(3):]


def _truncate(text: str, r: random.Random) -> str:
    return text[:r.randrange(len(text) + 1)]


def _chars(text: str, r: random.Random) -> str:
    at = r.randrange(len(text) + 1)
    if r.random() < 0.5 and at < len(text):
        return text[:at] + text[at + r.randint(1, 8):]
    return text[:at] + r.choice(['{', '}', ':', '"', '#', ' layer { ', '\\', '\x00', 'é', '[1, 2]',
                                 ' bottom: "data" ', ' top: "x" ', '<', ';']) + text[at:]


MUTATIONS = {"drop or copy a line": _lines, "copy a layer block": _block, "swap two tokens": _swap,
             "change a type": _type, "change a value": _value, "truncate": _truncate,
             "damage characters": _chars}
# Value changes are the most telling: they reach the geometry checks.
WEIGHTS = {"change a value": 4, "change a type": 2}


def mutate(text: str, r: random.Random) -> tuple[str, list[str]]:
    names = list(MUTATIONS)
    done = []
    for _ in range(r.choice((0, 1, 1, 1, 2, 2, 3))):
        name = r.choices(names, weights=[WEIGHTS.get(n, 1) for n in names])[0]
        text = MUTATIONS[name](text, r)
        done.append(name)
    return text, done


def layer_names(text: str) -> list[str]:
    return re.findall(r'\bname:\s*"([^"\n]*)"', text)


# -- caffemodel damage -------------------------------------------------------------

def _flip(data: bytearray, r: random.Random) -> None:
    for _ in range(r.randint(1, 8)):
        i = r.randrange(len(data))
        data[i] ^= 1 << r.randrange(8)


def _cut(data: bytearray, r: random.Random) -> None:
    del data[r.randrange(len(data)):]


def _insert(data: bytearray, r: random.Random) -> None:
    at = r.randrange(len(data) + 1)
    data[at:at] = bytes(r.randrange(256) for _ in range(r.randint(1, 16)))


def _header(data: bytearray, r: random.Random) -> None:
    n = min(len(data), r.randint(1, 12))
    data[:n] = bytes(r.choice((0x00, 0xff, 0x80, r.randrange(256))) for _ in range(n))


def _varint(data: bytearray, r: random.Random) -> None:
    """A length or key byte made long: 0xff continues a varint forever."""
    i = r.randrange(len(data))
    data[i:i + r.randint(1, 11)] = b"\xff" * r.randint(1, 11)


def _chunk(data: bytearray, r: random.Random) -> None:
    a = r.randrange(len(data))
    b = min(len(data), a + r.randint(1, 256))
    if r.random() < 0.5:
        data[a:b] = bytes(b - a)
    else:
        data[b:b] = data[a:b]


DAMAGE = {"flip bits": _flip, "truncate": _cut, "insert bytes": _insert, "damage the header": _header,
          "long varint": _varint, "zero or copy a chunk": _chunk}


def damage(data: bytes, r: random.Random) -> tuple[bytes, list[str]]:
    out, done = bytearray(data), []
    for _ in range(r.choice((0, 1, 1, 1, 2, 3))):
        if not out:
            break
        name = r.choice(sorted(DAMAGE))
        DAMAGE[name](out, r)
        done.append(name)
    return bytes(out), done
