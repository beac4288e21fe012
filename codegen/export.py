"""`tinysplit export`: quantize the client segment of a Keras model and emit its firmware data.

The client segment (layers 0..cut-1) is converted by the TFLite converter (full int8: per-channel
symmetric weights, per-tensor asymmetric activations, int32 bias), read back, and written as C
arrays with the client's private data shard, a model hash and a static memory plan. The server
segment and the whole initial model are saved as Keras files for the host.
"""

from __future__ import annotations

import os

# Before anything imports TensorFlow: its C++ start-up chatter is not for the user.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import contextlib
import hashlib
import io
import json
import sys
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from tinysplit.codegen.data import Dataset, load_npz
from tinysplit.codegen.emit_c import CModel, write_c
from tinysplit.codegen.golden import FCLayer
from tinysplit.codegen.memory_plan import LayerShape, MemoryPlan, plan_memory
from tinysplit.codegen.models import REGISTRY, Hyperparameters, load_model
from tinysplit.host.errors import BadInput, UnsupportedLayer

if TYPE_CHECKING:
    import keras

#: Training samples the converter calibrates activation ranges on.
CALIBRATION_SAMPLES = 300
#: Bytes of SHA-256 kept as the model hash (HELLO carries 8).
HASH_BYTES = 8
#: Sample counts and the batch travel as u16 on the wire (HELLO, TRAIN_STEP indices).
MAX_SAMPLES = 0xFFFF
MANIFEST_FORMAT = 1

SUPPORTED = "Dense with activation 'relu' or 'linear' (an Input layer may precede them)"


def tool_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tinysplit")
    except PackageNotFoundError:
        return "0+unknown"


@dataclass(frozen=True)
class ExportResult:
    out_dir: Path
    manifest: dict[str, Any]
    plan: MemoryPlan


def export_client(
    model: str | Path,
    cut: int | None,
    out_dir: Path,
    data: Path | None = None,
    seed: int = 0,
    max_batch: int = 32,
    stack_bytes: int = 4096,
) -> ExportResult:
    """Exports the client segment (layers 0..cut-1) of `model` into out_dir.

    model: a bundled model name (built from `seed`) or a .keras file. cut: None takes the
    bundled model's default cut. data: a .npz file (data.load_npz), required for a .keras
    model, else the bundled model's data set.
    Raises BadInput / UnsupportedLayer with a one-line message the CLI prints as is.
    """
    if not 1 <= max_batch <= MAX_SAMPLES:
        raise BadInput(f"max batch {max_batch} must be in 1..{MAX_SAMPLES}")
    if stack_bytes <= 0 or stack_bytes % 8:
        raise BadInput(f"stack size {stack_bytes} must be a positive multiple of 8 bytes")
    spec = REGISTRY.get(model) if isinstance(model, str) else None
    name = spec.name if spec is not None else Path(model).name
    net = load_model(model, seed)
    if spec is None and data is None:
        raise BadInput(f"model {name} has no bundled data set: give one with --data FILE.npz")
    if cut is None:
        if spec is None:
            raise BadInput(f"model {name} has no default cut: give one with --cut N")
        cut = spec.default_cut
    layers = chain_layers(net)
    check_client(layers, cut)
    input_size = int(net.inputs[0].shape[-1])
    n_outputs = int(net.outputs[0].shape[-1])

    if data is not None:
        dataset = load_npz(data, n_classes=n_outputs)
    else:
        assert spec is not None  # checked above
        dataset = spec.dataset()
    _check_dataset(dataset, input_size, n_outputs)

    client = _segment(layers[:cut], input_size, "client", "ts_client_input")
    cut_size = int(client.outputs[0].shape[-1])
    server = _segment(layers[cut:], cut_size, "server", "ts_server_input")

    rng = np.random.default_rng(seed)
    calib = dataset.x_train[rng.permutation(len(dataset.x_train))[:CALIBRATION_SAMPLES]]
    tflite = convert_int8(client, calib)
    qlayers = _quantized_layers(tflite, layers[:cut])

    q = qlayers[0]
    shard = (
        quantize_input(dataset.x_train, q.in_scale, q.in_zp),
        dataset.y_train.astype(np.uint8),
        quantize_input(dataset.x_test, q.in_scale, q.in_zp),
        dataset.y_test.astype(np.uint8),
    )
    layer_config = [_layer_config(layer) for layer in qlayers]
    config = {
        "cut": cut,
        "input_size": input_size,
        "cut_size": cut_size,
        "n_classes": dataset.n_classes,
        "layers": layer_config,
    }
    model_hash = compute_model_hash(config, tflite, qlayers, shard)
    hyper = spec.hyperparameters if spec is not None else Hyperparameters()
    hyper = Hyperparameters(hyper.batch, hyper.lr, hyper.epochs, seed)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "client.tflite").write_bytes(tflite)
    version = tool_version()
    write_c(
        CModel(
            layers=qlayers,
            model_hash=model_hash,
            train_x=shard[0],
            train_y=shard[1],
            test_x=shard[2],
            test_y=shard[3],
            max_batch=max_batch,
            stack_bytes=stack_bytes,
            model_name=name,
            cut=cut,
            tool_version=version,
        ),
        out_dir,
    )
    with quiet():  # Keras's saving warns about its own numpy 2 use
        server.save(out_dir / "server.keras")
        net.save(out_dir / "full.keras")
    dataset.save_npz(out_dir / "data.npz")

    plan = plan_memory(
        [LayerShape("fc", layer.in_features, layer.out_features) for layer in qlayers],
        input_size=input_size,
        n_train=len(dataset.y_train),
        n_test=len(dataset.y_test),
        max_batch=max_batch,
        stack_bytes=stack_bytes,
    )
    (out_dir / "plan.json").write_text(json.dumps(plan.to_json(), indent=2) + "\n")
    manifest: dict[str, Any] = {
        "format": MANIFEST_FORMAT,
        "tool_version": version,
        "model": name,
        "model_hash": model_hash.hex(),
        "cut": cut,
        "input_size": input_size,
        "cut_size": cut_size,
        "n_classes": dataset.n_classes,
        "n_train": len(dataset.y_train),
        "n_test": len(dataset.y_test),
        "max_batch": max_batch,
        "dataset": dataset.name,
        "layers": layer_config,
        "hyperparameters": hyper.to_dict(),
        "ram_peak": plan.ram_peak,
        "flash": plan.flash,
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return ExportResult(out_dir, manifest, plan)


# ---- validation -------------------------------------------------------------------------


def chain_layers(net: keras.Model) -> list[keras.Layer]:
    """The model's layers in order (InputLayer dropped), checking the model is one plain chain
    with rank-1 features in and out."""
    import keras

    if len(net.inputs) != 1 or len(net.outputs) != 1:
        raise UnsupportedLayer(
            f"model {net.name} has {len(net.inputs)} inputs and {len(net.outputs)} outputs; "
            "tinysplit splits models with one input and one output"
        )
    in_shape, out_shape = tuple(net.inputs[0].shape), tuple(net.outputs[0].shape)
    if len(in_shape) != 2:
        raise UnsupportedLayer(
            f"model input has shape {in_shape}; the client takes rank-1 features [batch, n] "
            "(flatten the input before export)"
        )
    if len(out_shape) != 2:
        raise UnsupportedLayer(f"model output has shape {out_shape}; expected [batch, classes]")
    layers = [layer for layer in net.layers if not isinstance(layer, keras.layers.InputLayer)]
    if not layers:
        raise BadInput(f"model {net.name} has no layers to split")
    if not isinstance(net, keras.Sequential):
        # A functional model must be the same function as its layers applied in order.
        probe = np.random.default_rng(0).random((4, in_shape[1]), dtype=np.float32)
        try:
            chain = keras.Sequential([keras.Input(in_shape[1:]), *layers])
            same = np.array_equal(
                np.asarray(net(probe, training=False)), np.asarray(chain(probe, training=False))
            )
        except Exception:  # a layer that needs several inputs (Add, Concatenate, ...)
            same = False
        if not same:
            raise UnsupportedLayer(
                f"model {net.name} is not a single chain of layers (branches or skip "
                "connections); tinysplit splits sequential models"
            )
    return layers


def check_client(layers: Sequence[keras.Layer], cut: int) -> None:
    """Cut in 1..len(layers)-1 and every client layer supported by the firmware."""
    import keras

    if not 1 <= cut <= len(layers) - 1:
        raise BadInput(
            f"cut {cut} is out of range: the model has {len(layers)} layers, so the cut must be "
            f"1..{len(layers) - 1} (layers 0..cut-1 run on the client)"
        )
    supported_acts = (keras.activations.relu, keras.activations.linear)
    for i, layer in enumerate(layers[:cut]):
        kind = type(layer).__name__
        if type(layer) is not keras.layers.Dense:
            raise UnsupportedLayer(
                f"client layer {i} {layer.name!r} ({kind}) is not supported on the client; "
                f"supported: {SUPPORTED}. Move the cut before it or change the layer"
            )
        if layer.activation not in supported_acts:
            act = getattr(layer.activation, "__name__", repr(layer.activation))
            raise UnsupportedLayer(
                f"client layer {i} {layer.name!r} (Dense) has activation {act!r}; "
                f"supported: {SUPPORTED}"
            )
        if not layer.use_bias:
            raise UnsupportedLayer(
                f"client layer {i} {layer.name!r} (Dense) has no bias; the firmware trains a "
                "bias in every client layer: use use_bias=True"
            )
        if layer.dtype_policy.compute_dtype != "float32":
            raise UnsupportedLayer(
                f"client layer {i} {layer.name!r} (Dense) computes in "
                f"{layer.dtype_policy.compute_dtype}; export a float32 model"
            )
        if len(layer.kernel.shape) != 2:
            raise UnsupportedLayer(
                f"client layer {i} {layer.name!r} (Dense) gets a rank-{len(layer.kernel.shape)} "
                "input; the client takes rank-1 features"
            )


def _check_dataset(d: Dataset, input_size: int, n_outputs: int) -> None:
    if d.input_size != input_size:
        raise BadInput(
            f"data set {d.name} has {d.input_size} features but the model takes {input_size}"
        )
    if d.n_classes > n_outputs:
        raise BadInput(
            f"data set {d.name} has {d.n_classes} classes but the model outputs {n_outputs}"
        )
    for split, n in (("train", len(d.y_train)), ("test", len(d.y_test))):
        if n > MAX_SAMPLES:
            raise BadInput(
                f"data set {d.name} has {n} {split} samples; the protocol indexes at most "
                f"{MAX_SAMPLES}: subsample it"
            )


# ---- conversion ------------------------------------------------------------------------


def _segment(
    layers: Sequence[keras.Layer], input_size: int, name: str, input_name: str
) -> keras.Model:
    """A model made of existing layers (shared weights), with a rank-1 input. Everything is
    named: names end up in the .tflite, and Keras's own numbering depends on the process."""
    import keras

    return keras.Sequential([keras.Input((input_size,), name=input_name), *layers], name=name)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silences TensorFlow, the converter and Keras: Python output, warnings and the C++ logs
    written straight to file descriptors 1 and 2."""
    import absl.logging
    import tensorflow as tf

    absl.logging.set_verbosity(absl.logging.ERROR)
    tf.get_logger().setLevel("ERROR")
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    try:
        with (
            tempfile.TemporaryFile() as sink,
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
        ):
            warnings.simplefilter("ignore")
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
    finally:
        os.close(saved[0])
        os.close(saved[1])


def convert_int8(client: keras.Model, calibration: npt.NDArray[np.float32]) -> bytes:
    """Full-integer TFLite conversion: int8 in/out, per-channel int8 weights, int32 bias."""
    import tensorflow as tf

    def representative() -> Iterator[list[npt.NDArray[np.float32]]]:
        for i in range(len(calibration)):
            yield [calibration[i : i + 1]]

    with quiet():
        converter = tf.lite.TFLiteConverter.from_keras_model(client)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
        out: bytes = converter.convert()
    return out


def _quantized_layers(tflite: bytes, layers: Sequence[keras.Layer]) -> list[FCLayer]:
    """The tflite's FC layers as golden FCLayers, with the Keras float weights as master copy."""
    from tinysplit.codegen.tflite_reader import read_fc_layers, read_io_quant

    specs = read_fc_layers(tflite)
    (in_scale, in_zp), (out_scale, out_zp) = read_io_quant(tflite)
    if (specs[0].input_scale, specs[0].input_zp) != (in_scale, in_zp) or (
        specs[-1].output_scale,
        specs[-1].output_zp,
    ) != (out_scale, out_zp):
        raise UnsupportedLayer("the client tflite's input/output are not its first/last layer's")
    if len(specs) != len(layers):
        raise UnsupportedLayer(
            f"the converter turned {len(layers)} client layers into {len(specs)} fully "
            "connected ops; tinysplit needs one op per layer"
        )
    out: list[FCLayer] = []
    for i, (s, layer) in enumerate(zip(specs, layers, strict=True)):
        kernel = np.asarray(layer.kernel.numpy(), dtype=np.float32)  # [K, C]
        k, c = kernel.shape
        if (s.in_features, s.out_features) != (k, c):
            raise UnsupportedLayer(
                f"client layer {i} {layer.name!r}: the tflite has {s.in_features} -> "
                f"{s.out_features}, Keras {k} -> {c}"
            )
        want_relu = layer.activation is not None and layer.activation.__name__ == "relu"
        if bool(s.relu) != want_relu:
            raise UnsupportedLayer(
                f"client layer {i} {layer.name!r}: the converter did not keep the activation "
                "fused into the fully connected op"
            )
        bias = np.asarray(layer.bias.numpy(), dtype=np.float32)
        out.append(
            FCLayer.from_quantized(
                w=s.weights,
                bias=s.bias,
                w_scale=s.weight_scales,
                in_scale=s.input_scale,
                in_zp=s.input_zp,
                out_scale=s.output_scale,
                out_zp=s.output_zp,
                relu=bool(s.relu),
                master_w=np.ascontiguousarray(kernel.T),
                master_b=bias,
            )
        )
    for i in range(1, len(out)):
        prev, cur = out[i - 1], out[i]
        if (prev.out_scale, prev.out_zp) != (cur.in_scale, cur.in_zp):
            raise UnsupportedLayer(
                f"client layer {i}: its input quantization differs from layer {i - 1}'s output "
                "(the converter inserted a requantize op)"
            )
    return out


# ---- data shard and hash -----------------------------------------------------------------


def quantize_input(
    x: npt.NDArray[np.float32], scale: float | np.float32, zero_point: int
) -> npt.NDArray[np.int8]:
    """TFLite's input quantization: zp + round(x / scale) (float32 division, half away from
    zero), clamped to int8."""
    v = (np.asarray(x, dtype=np.float32) / np.float32(scale)).astype(np.float64)
    r = np.where(v >= 0, np.floor(v + 0.5), np.ceil(v - 0.5))  # exact in float64
    q = np.clip(r + int(zero_point), -128, 127)
    return np.ascontiguousarray(q.astype(np.int8))


def _layer_config(layer: FCLayer) -> dict[str, Any]:
    return {
        "kind": "fc",
        "in": layer.in_features,
        "out": layer.out_features,
        "relu": layer.relu,
        "in_scale": float(layer.in_scale),
        "in_zp": layer.in_zp,
        "out_scale": float(layer.out_scale),
        "out_zp": layer.out_zp,
    }


def compute_model_hash(
    config: dict[str, Any],
    tflite: bytes,
    layers: Sequence[FCLayer],
    shard: Sequence[npt.NDArray[Any]],
) -> bytes:
    """First HASH_BYTES of SHA-256 over length-prefixed parts: the layer config (canonical
    JSON), the client tflite, the float master weights and the data shard."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    parts: list[bytes] = [b"tinysplit-model-v1", canonical, tflite]
    for layer in layers:
        parts += [layer.master_w.astype("<f4").tobytes(), layer.master_b.astype("<f4").tobytes()]
    parts += [np.ascontiguousarray(a).tobytes() for a in shard]
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return h.digest()[:HASH_BYTES]


# ---- reading an export back ----------------------------------------------------------------


@dataclass
class ClientState:
    """An export's client as the board boots with it: golden layers and the int8 data shard."""

    layers: list[FCLayer]
    x_train: npt.NDArray[np.int8]
    y_train: npt.NDArray[np.uint8]
    x_test: npt.NDArray[np.int8]
    y_test: npt.NDArray[np.uint8]


def load_client_state(out_dir: Path) -> ClientState:
    """Rebuilds the golden model of an export's client (for tests and host-side simulation)."""
    import keras

    manifest = json.loads((Path(out_dir) / "manifest.json").read_text())
    with quiet():
        net = keras.models.load_model(Path(out_dir) / "full.keras", compile=False)
    layers = _quantized_layers(
        (Path(out_dir) / "client.tflite").read_bytes(), chain_layers(net)[: manifest["cut"]]
    )
    data = load_npz(Path(out_dir) / "data.npz")
    first = layers[0]
    return ClientState(
        layers,
        quantize_input(data.x_train, first.in_scale, first.in_zp),
        data.y_train.astype(np.uint8),
        quantize_input(data.x_test, first.in_scale, first.in_zp),
        data.y_test.astype(np.uint8),
    )
