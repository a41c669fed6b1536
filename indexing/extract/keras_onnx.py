"""Keras' ResNet50 written out as an ONNX graph, layer by layer, with its own weights.

tf2onnx traced the model through TensorFlow's graph tools and its own optimisers, and peaked at 7 GB: each
pass re-serialised the 94 MB of weights into protobuf arenas that are never freed. ResNet50 is seven kinds
of layer, each one ONNX operator, so the graph is written directly: the weights are copied once. The result
is checked against TensorFlow before it is kept (indexing/extract/exported.py).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from indexing.errors import FashionIndexError

OPSET = 17
INPUT, FEATURES, MAPS = "input", "features", "maps"


class Graph:
    """The nodes and weights of an ONNX graph being written, and the names given to Keras' tensors."""

    def __init__(self) -> None:
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes: list[Any] = []
        self.weights: list[Any] = []
        self.names: dict[str, str] = {}

    def weight(self, name: str, value: np.ndarray) -> str:
        self.weights.append(self.numpy_helper.from_array(np.ascontiguousarray(value, dtype=value.dtype), name))
        return name

    def node(self, op: str, inputs: list[str], name: str, **attributes: Any) -> str:
        self.nodes.append(self.helper.make_node(op, inputs, [name], name=name, **attributes))
        return name


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "same": the output is ceil(size / stride), and an odd total pads one more at the end."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def write_layer(graph: Graph, layer: Any) -> None:
    """One layer of the model as ONNX nodes (NCHW), its output named after the Keras tensor."""
    kind = type(layer).__name__
    inputs = layer.input if isinstance(layer.input, list) else [layer.input]
    x = [graph.names[t.name] for t in inputs]
    name = layer.name
    if kind == "ZeroPadding2D":
        (top, bottom), (left, right) = layer.padding
        pads = graph.weight(f"{name}/pads", np.array([0, 0, top, left, 0, 0, bottom, right], np.int64))
        out = graph.node("Pad", [x[0], pads], name)
    elif kind == "Conv2D":
        if layer.dilation_rate != (1, 1) or layer.groups != 1 or layer.activation.__name__ != "linear":
            raise FashionIndexError(f"cannot export {name}: only plain convolutions are written")
        kernel, bias = (w.numpy() for w in layer.weights)
        (kh, kw), (sh, sw) = layer.kernel_size, layer.strides
        pads = [0, 0, 0, 0]
        if layer.padding == "same":
            (top, bottom), (left, right) = (same_padding(layer.input.shape[1], kh, sh),
                                            same_padding(layer.input.shape[2], kw, sw))
            pads = [top, left, bottom, right]
        w = graph.weight(f"{name}/kernel", kernel.transpose(3, 2, 0, 1))  # HWIO -> OIHW
        out = graph.node("Conv", [x[0], w, graph.weight(f"{name}/bias", bias)], name,
                         kernel_shape=[kh, kw], strides=[sh, sw], pads=pads)
    elif kind == "BatchNormalization":
        gamma, beta, mean, variance = (w.numpy() for w in layer.weights)
        out = graph.node("BatchNormalization", [x[0], graph.weight(f"{name}/gamma", gamma),
                                                graph.weight(f"{name}/beta", beta),
                                                graph.weight(f"{name}/mean", mean),
                                                graph.weight(f"{name}/variance", variance)],
                         name, epsilon=float(layer.epsilon))
    elif kind == "Activation" and layer.activation.__name__ == "relu":
        out = graph.node("Relu", x, name)
    elif kind == "MaxPooling2D" and layer.padding == "valid":
        out = graph.node("MaxPool", x, name, kernel_shape=list(layer.pool_size), strides=list(layer.strides))
    elif kind == "Add":
        out = graph.node("Add", x, name)
    elif kind == "GlobalMaxPooling2D":
        pooled = graph.node("GlobalMaxPool", x, f"{name}/pooled")
        out = graph.node("Flatten", [pooled], name)
    else:
        raise FashionIndexError(f"cannot export {name}: a {kind} layer is not one of ResNet50's")
    graph.names[layer.output.name] = out


def resnet_onnx(model: Any, maps_layer: str) -> Any:
    """The model as an ONNX ModelProto: input NHWC float32 (already preprocessed), outputs the pooled
    features (n, 2048) and maps_layer's output summed over its channels (n, h, w)."""
    graph = Graph()
    layers = model.layers
    first = layers[0]
    graph.names[first.output.name] = graph.node("Transpose", [INPUT], "to_nchw", perm=[0, 3, 1, 2])
    for layer in layers[1:]:
        write_layer(graph, layer)
    graph.node("Identity", [graph.names[model.output.name]], FEATURES)
    axes = graph.weight("maps/axes", np.array([1], np.int64))
    graph.node("ReduceSum", [graph.names[model.get_layer(maps_layer).output.name], axes], MAPS, keepdims=0)
    h = graph.helper
    height, width = model.get_layer(maps_layer).output.shape[1:3]
    onnx_graph = h.make_graph(
        graph.nodes, "resnet50",
        [h.make_tensor_value_info(INPUT, 1, ["n", *first.output.shape[1:]])],  # 1: FLOAT
        [h.make_tensor_value_info(FEATURES, 1, ["n", model.output.shape[-1]]),
         h.make_tensor_value_info(MAPS, 1, ["n", height, width])],
        graph.weights,
    )
    return h.make_model(onnx_graph, opset_imports=[h.make_opsetid("", OPSET)], producer_name="fashion-index")
