"""How much the smashed data gives away, measured on the user's own model, data and cut.

For each cut, with the int8 client the exporter would put on the board (golden model, bit-exact
with the firmware) and the model's trained weights:

    dcor        distance correlation between raw inputs and the int8 cut activations of the
                held-out set (NoPeek's measure: 0 independent, 1 a deterministic function),
                and its bias-corrected form (the plain one drifts towards 1 in many dimensions)
    known       a curious server that knows the client weights (the default mode: checkpoints
                copy them to the host) runs the client on an auxiliary set disjoint from the
                held-out one and trains a decoder smashed -> raw on all of it
    leaked      a server that does not (--private) but holds a leaked set of (raw, smashed)
                pairs of a given size, and trains the same decoder on those only

Each attacker is scored on the held-out set: MSE and PSNR on inputs scaled to [0, 1], SSIM
(`scikit-image`, on the sample's own image or signal shape) and the accuracy the trained model
reaches on the reconstructions. With a noise scale the activations are the board's noisy ones
(core/golden/noise.py); the attacker knows the scale but not the board's key.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tinysplit.core.errors import BadInput

#: Held-out samples scored (dCor is O(n^2) in memory), auxiliary samples an attacker trains on.
MAX_HELD_OUT = 1000
MAX_AUX = 4000
DEFAULT_LEAKED = 256
DECODER_STEPS = 3000  # minibatches of 64 each decoder trains for
MAX_PSNR = 100.0  # dB reported for an exact reconstruction (its PSNR is infinite)


@dataclass
class Attack:
    """One attacker's reconstructions of the held-out set, scored."""

    mse: float
    psnr: float
    ssim: float
    accuracy: float  # of the trained model on the reconstructions

    def to_json(self) -> dict[str, float]:
        return {k: round(float(v), 4) for k, v in vars(self).items()}


@dataclass
class CutAudit:
    cut: int
    layer: str
    cut_size: int
    noise_scale: float
    dcor: float
    dcor_unbiased: float
    known: Attack
    leaked: Attack
    model_accuracy: float  # the float model on the raw held-out set
    samples: dict[str, npt.NDArray[np.float32]] = field(default_factory=dict, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "cut": self.cut,
            "layer": self.layer,
            "cut_size": self.cut_size,
            "noise_scale": self.noise_scale,
            "dcor": round(self.dcor, 4),
            "dcor_unbiased": round(self.dcor_unbiased, 4),
            "known_weights": self.known.to_json(),
            "leaked_pairs": self.leaked.to_json(),
            "model_accuracy": round(self.model_accuracy, 4),
        }


@dataclass
class AuditData:
    """Raw inputs flat; `shape` is a sample's own shape for SSIM and the picture."""

    x_aux: npt.NDArray[np.float32]
    y_aux: npt.NDArray[np.int64]
    x_test: npt.NDArray[np.float32]
    y_test: npt.NDArray[np.int64]
    shape: tuple[int, ...]
    lo: float
    hi: float

    def unit(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Inputs scaled to [0, 1] by the auxiliary set's range."""
        u: npt.NDArray[np.float32] = np.clip((x - self.lo) / (self.hi - self.lo), 0.0, 1.0)
        return u.astype(np.float32)

    def raw(self, u: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        return (u * (self.hi - self.lo) + self.lo).astype(np.float32)


def sample_shape(net: Any) -> tuple[int, ...]:
    """The shape a sample has for the eye: the model's input shape without a trailing channel
    of 1, the target of a leading Reshape, or a square for a flat input of square size."""
    import keras

    shape = tuple(int(d) for d in net.inputs[0].shape[1:])
    first = next((la for la in net.layers if not isinstance(la, keras.layers.InputLayer)), None)
    if len(shape) == 1 and isinstance(first, keras.layers.Reshape):
        shape = tuple(int(d) for d in first.target_shape)
    if len(shape) == 1:
        side = round(float(np.sqrt(shape[0])))
        if side * side == shape[0] and side >= 7:
            shape = (side, side)
    if len(shape) == 3 and shape[-1] == 1:
        shape = shape[:2]
    return shape


def _distances(v: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    from scipy.spatial.distance import cdist

    v = np.asarray(v, np.float64).reshape(len(v), -1)
    return np.asarray(cdist(v, v), np.float64)


def distance_correlation(x: npt.NDArray[Any], s: npt.NDArray[Any]) -> float:
    """Szekely's sample distance correlation (the V-statistic NoPeek and `dcor` report), from
    the two n x n Euclidean distance matrices, double-centred. Computed here because `dcor`
    0.7's multivariate path materialises an n x n x features array (40 GB for 1,000 samples of
    a 5,408-byte cut); tests/privacy compares the two on small inputs. In many dimensions it is
    biased towards 1 even for independent data: see unbiased_distance_correlation."""

    def centred(d: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return np.asarray(d - d.mean(0)[None, :] - d.mean(1)[:, None] + d.mean(), np.float64)

    a, b = centred(_distances(x)), centred(_distances(s))
    dcov2, dvar_x, dvar_y = float(np.mean(a * b)), float(np.mean(a * a)), float(np.mean(b * b))
    if dvar_x <= 0.0 or dvar_y <= 0.0:
        return 0.0
    return float(np.sqrt(max(dcov2, 0.0) / np.sqrt(dvar_x * dvar_y)))


def unbiased_distance_correlation(x: npt.NDArray[Any], s: npt.NDArray[Any]) -> float:
    """The bias-corrected distance correlation (U-centred, Szekely and Rizzo 2014), whose
    square `dcor.u_distance_correlation_sqr` computes: near 0 for independent data in any
    dimension. Reported as the square root of its positive part."""
    n = len(x)

    def u_centred(d: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        u = np.asarray(
            d
            - d.sum(0)[None, :] / (n - 2)
            - d.sum(1)[:, None] / (n - 2)
            + d.sum() / ((n - 1) * (n - 2)),
            np.float64,
        )
        np.fill_diagonal(u, 0.0)
        return u

    a, b = u_centred(_distances(x)), u_centred(_distances(s))
    ab, aa, bb = float(np.sum(a * b)), float(np.sum(a * a)), float(np.sum(b * b))
    if aa <= 0.0 or bb <= 0.0:
        return 0.0
    return float(np.sqrt(max(ab / np.sqrt(aa * bb), 0.0)))


def train_decoder(
    smashed: npt.NDArray[np.float32], target: npt.NDArray[np.float32], seed: int
) -> Any:
    """An MLP decoder smashed -> inputs in [0, 1] (sigmoid out), trained with Adam on MSE."""
    import keras

    keras.utils.set_random_seed(seed)
    n_in, n_out = smashed.shape[1], target.shape[1]
    decoder = keras.Sequential(
        [
            keras.Input((n_in,)),
            keras.layers.Dense(512, activation="relu"),
            keras.layers.Dense(512, activation="relu"),
            keras.layers.Dense(n_out, activation="sigmoid"),
        ]
    )
    decoder.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    import tensorflow as tf

    batch = min(64, len(smashed))
    ds = (
        tf.data.Dataset.from_tensor_slices((smashed, target))
        .shuffle(len(smashed), seed=seed)
        .repeat()
        .batch(batch)
    )
    decoder.fit(ds, epochs=1, steps_per_epoch=DECODER_STEPS, verbose=0, shuffle=False)
    return decoder


def score(
    data: AuditData, recon01: npt.NDArray[np.float32], classify: Callable[[Any], Any]
) -> Attack:
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    truth = data.unit(data.x_test)
    mse = float(np.mean((truth - recon01) ** 2))
    psnr = (
        MAX_PSNR
        if mse == 0.0
        else min(MAX_PSNR, float(peak_signal_noise_ratio(truth, recon01, data_range=1.0)))  # type: ignore[no-untyped-call]
    )
    ssims = []
    for t, r in zip(truth, recon01, strict=True):
        a, b = t.reshape(data.shape), r.reshape(data.shape)
        multichannel = len(data.shape) == 3 or (len(data.shape) == 2 and data.shape[1] < 7)
        spatial = data.shape[:-1] if multichannel else data.shape
        win = min(7, *spatial) | 1 if min(spatial) >= 3 else 3
        ssims.append(
            structural_similarity(  # type: ignore[no-untyped-call]
                a, b, data_range=1.0, win_size=win, channel_axis=-1 if multichannel else None
            )
        )
    logits = np.asarray(classify(data.raw(recon01)))
    accuracy = float(np.mean(np.argmax(logits, axis=1) == data.y_test))
    return Attack(mse, psnr, float(np.mean(ssims)), accuracy)


def audit_cut(
    ops: Sequence[Any],
    cut: int,
    layer: str,
    data: AuditData,
    classify: Callable[[Any], Any],
    *,
    leaked: int,
    noise_scale: float = 0.0,
    noise_kind: str = "laplace",
    seed: int = 0,
) -> CutAudit:
    """Scores one client (golden ops) against both attackers on the held-out set."""
    from tinysplit.codegen.export import quantize_input
    from tinysplit.core.golden.noise import noise_table, with_noise
    from tinysplit.core.golden.ops import in_quant
    from tinysplit.core.golden.step import cut_quant, ops_forward
    from tinysplit.host.transport.link import SmashedBatch

    in_scale, in_zp = in_quant(ops[0])
    out_scale, out_zp, _, _ = cut_quant(ops)
    table = noise_table(noise_scale, noise_kind)

    def smashed(x: npt.NDArray[np.float32], key: int) -> npt.NDArray[np.float32]:
        q = ops_forward(ops, quantize_input(x, in_scale, in_zp))
        if noise_scale > 0:  # one "step" per sample index: what the board's stream would add
            q = with_noise(q, table, key, step=1)
        no_labels = np.zeros(len(q), np.int64)
        return SmashedBatch(q, no_labels, float(out_scale), int(out_zp)).dequantize()

    board_key, attacker_key = 0x5EED0001 + seed, 0xA77AC4ED + seed
    s_test = smashed(data.x_test, board_key)  # what the server receives
    s_aux = smashed(data.x_aux, attacker_key)  # the known-weights attacker's own runs
    dc = distance_correlation(data.x_test, s_test)
    dc_u = unbiased_distance_correlation(data.x_test, s_test)
    known = train_decoder(s_aux, data.unit(data.x_aux), seed)
    rng = np.random.default_rng(seed)
    pick = rng.permutation(len(data.x_aux))[:leaked]
    s_leak = smashed(data.x_aux[pick], board_key + 1)  # pairs leaked from the board itself
    leak = train_decoder(s_leak, data.unit(data.x_aux[pick]), seed + 1)
    r_known = np.asarray(known(s_test), np.float32)
    r_leak = np.asarray(leak(s_test), np.float32)
    acc = float(np.mean(np.argmax(np.asarray(classify(data.x_test)), axis=1) == data.y_test))
    return CutAudit(
        cut=cut,
        layer=layer,
        cut_size=int(s_test.shape[1]),
        noise_scale=noise_scale,
        dcor=dc,
        dcor_unbiased=dc_u,
        known=score(data, r_known, classify),
        leaked=score(data, r_leak, classify),
        model_accuracy=acc,
        samples={
            "original": data.unit(data.x_test[:8]),
            "known": r_known[:8],
            "leaked": r_leak[:8],
        },
    )


def fit_model(net: Any, x: npt.NDArray[np.float32], y: npt.NDArray[np.int64], *, epochs: int,
              batch: int, lr: float, seed: int) -> None:  # fmt: skip
    """Trains the float model in place (minibatch SGD, the reference hyperparameters): the
    audit looks at a trained client, as the server would see it after training."""
    import keras

    keras.utils.set_random_seed(seed)
    net.compile(
        optimizer=keras.optimizers.SGD(lr),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    net.fit(x.reshape((len(x), *net.inputs[0].shape[1:])), y, batch_size=batch, epochs=epochs,
            verbose=0, shuffle=True)  # fmt: skip


@dataclass
class Audit:
    model: str
    trained_epochs: int
    leaked: int
    n_aux: int
    n_held_out: int
    cuts: list[CutAudit]
    data: AuditData

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "trained_epochs": self.trained_epochs,
            "leaked_pairs": self.leaked,
            "aux_samples": self.n_aux,
            "held_out_samples": self.n_held_out,
            "cuts": [c.to_json() for c in self.cuts],
        }


def audit(
    model: str | Path,
    *,
    data: Path | None = None,
    cuts: Sequence[int] | None = None,
    epochs: int | None = None,
    leaked: int | None = None,
    noise_scales: Sequence[float] = (0.0,),
    noise_kind: str = "laplace",
    seed: int = 0,
    say: Callable[[str], None] = lambda text: None,
) -> Audit:
    """cuts None: every candidate cut (the planner's). leaked None: DEFAULT_LEAKED pairs, at
    most half the auxiliary set. epochs None: the bundled workload's
    epochs for a bundled name (built untrained), 0 for a user's .keras (taken as trained).
    Noise scales other than 0 are audited at the first of the cuts a board can train at (one
    sample's cut fits a frame) only."""
    from tinysplit.codegen.data import load_npz
    from tinysplit.codegen.export import plan_client, quiet
    from tinysplit.codegen.models import REGISTRY, load_model
    from tinysplit.host.planner.plan import candidate_cuts

    if leaked is not None and leaked < 2:
        raise BadInput("--leaked must be at least 2 pairs")
    spec = REGISTRY.get(model) if isinstance(model, str) else None
    with quiet():
        net = load_model(model, seed)
    if spec is None and data is None:
        raise BadInput(f"model {model} has no bundled data set: give one with --data FILE.npz")
    d = load_npz(data, n_classes=int(net.outputs[0].shape[-1])) if data else spec.dataset()  # type: ignore[union-attr]
    if epochs is None:
        epochs = spec.hyperparameters.epochs if spec is not None else 0
    candidates = dict(candidate_cuts(model, seed)[0])
    chosen = list(candidates) if cuts is None else list(cuts)
    for c in chosen:
        if c not in candidates:
            raise BadInput(
                f"cut {c} is not a candidate cut of {model}: choose one of "
                f"{', '.join(map(str, candidates))}"
            )
    x_aux, y_aux = d.x_train[:MAX_AUX], d.y_train[:MAX_AUX]
    x_test, y_test = d.x_test[:MAX_HELD_OUT], d.y_test[:MAX_HELD_OUT]
    if leaked is None:  # a small data set (motion-cnn1d has 40): half of what the server holds
        leaked = max(2, min(DEFAULT_LEAKED, len(x_aux) // 2))
    if leaked > len(x_aux):
        raise BadInput(f"--leaked {leaked} is more than the {len(x_aux)} auxiliary samples")
    if epochs > 0:
        hp = spec.hyperparameters if spec is not None else None
        say(f"training {Path(str(model)).name} for {epochs} epochs (float) ...")
        fit_model(net, d.x_train, d.y_train, epochs=epochs, batch=hp.batch if hp else 32,
                  lr=hp.lr if hp else 0.05, seed=seed)  # fmt: skip
    lo, hi = float(x_aux.min()), float(x_aux.max())
    hi = hi if hi > lo else lo + 1.0
    audit_data = AuditData(x_aux, y_aux, x_test, y_test, sample_shape(net), lo, hi)

    def classify(x: npt.NDArray[np.float32]) -> Any:
        return net(x.reshape((len(x), *net.inputs[0].shape[1:])), training=False)

    from tinysplit.core.protocol.spec import grad_per_frame, smashed_per_frame

    results: list[CutAudit] = []
    noise_at: int | None = None  # the first audited cut a board can train at (fits a frame)
    with tempfile.TemporaryDirectory() as tmp:
        trained = Path(tmp) / "trained.keras"
        with quiet():
            net.save(trained)
        npz = Path(tmp) / "data.npz"
        d.save_npz(npz)
        for c in chosen:
            say(f"cut {c} (after {candidates[c]}): int8 client ...")
            plan = plan_client(str(trained), c, data=npz, seed=seed, board=None)
            ops = plan.ops
            trainable = smashed_per_frame(plan.cut_size) >= 1 and grad_per_frame(plan.cut_size) >= 1
            if noise_at is None and trainable:
                noise_at = c
            for scale in noise_scales if c == noise_at else (0.0,):
                say(f"cut {c}: noise {scale:g}: attackers' decoders ...")
                results.append(audit_cut(ops, c, candidates[c], audit_data, classify,
                                         leaked=leaked, noise_scale=scale,
                                         noise_kind=noise_kind, seed=seed))  # fmt: skip
    return Audit(str(model), epochs, leaked, len(x_aux), len(x_test), results, audit_data)
