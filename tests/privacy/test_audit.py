"""tinysplit audit: its measures against their definitions, and a small audit end to end."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest

from tinysplit.host.cli import main
from tinysplit.host.privacy import audit as audit_mod
from tinysplit.host.privacy.audit import (
    AuditData,
    distance_correlation,
    score,
    unbiased_distance_correlation,
)


def _dcor_by_definition(x: np.ndarray, y: np.ndarray) -> float:
    """Szekely's sample distance correlation: double-centred distance matrices."""

    def centred(a: np.ndarray) -> np.ndarray:
        d = np.sqrt(((a[:, None, :] - a[None, :, :]) ** 2).sum(-1))
        return d - d.mean(0)[None, :] - d.mean(1)[:, None] + d.mean()

    a, b = centred(x.reshape(len(x), -1)), centred(y.reshape(len(y), -1))
    v = (a * b).mean() / np.sqrt((a * a).mean() * (b * b).mean())
    return float(np.sqrt(max(v, 0.0)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_distance_correlation_is_szekelys_and_dcors(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, f, k = rng.integers(20, 60), rng.integers(2, 30), rng.integers(1, 20)
    x = rng.normal(size=(n, f))
    s = np.tanh(x[:, :1] * rng.normal(size=(1, k))) + 0.3 * rng.normal(size=(n, k))
    import dcor  # the maintained package, as a reference on inputs small enough for it

    got, want = distance_correlation(x, s), _dcor_by_definition(x, s)
    assert abs(got - want) < 1e-9, (got, want)
    assert abs(got - float(dcor.distance_correlation(x, s))) < 1e-9
    u = float(dcor.u_distance_correlation_sqr(x, s))
    assert abs(unbiased_distance_correlation(x, s) - np.sqrt(max(u, 0.0))) < 1e-9


def test_the_unbiased_dcor_sees_independence_in_many_dimensions() -> None:
    rng = np.random.default_rng(0)
    x, s = rng.normal(size=(300, 784)), rng.normal(size=(300, 1000))
    assert distance_correlation(x, s) > 0.8  # the plain statistic's bias
    assert unbiased_distance_correlation(x, s) < 0.15
    assert unbiased_distance_correlation(x, np.tanh(x[:, :50])) > 0.3
    assert abs(distance_correlation(x, 3 * x + 1) - 1.0) < 1e-9


def test_perfect_reconstruction_scores_perfectly() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((20, 64)).astype(np.float32)
    y = rng.integers(0, 3, 20)
    data = AuditData(x, y, x, y, (8, 8), 0.0, 1.0)
    logits = np.eye(3)[y]
    perfect = score(data, data.unit(x), lambda _: logits)
    assert perfect.mse == 0 and perfect.psnr == audit_mod.MAX_PSNR
    assert perfect.ssim == pytest.approx(1.0) and perfect.accuracy == 1.0
    noisy = score(data, np.clip(data.unit(x) + 0.3 * rng.normal(size=x.shape), 0, 1)
                  .astype(np.float32), lambda _: logits)  # fmt: skip
    assert noisy.ssim < 0.9 and noisy.mse > 0.01 and noisy.psnr < perfect.psnr


def test_noise_on_the_board_lowers_dcor_and_inversion(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit_mod, "DECODER_STEPS", 300)
    a = audit_mod.audit("digits-mlp", cuts=[1], epochs=3, noise_scales=(0.0, 0.4), seed=0)
    clean, noisy = a.cuts
    assert (clean.noise_scale, noisy.noise_scale) == (0.0, 0.4)
    assert 0.5 < clean.dcor <= 1.0 and noisy.dcor < clean.dcor
    assert noisy.known.ssim < clean.known.ssim and noisy.known.mse > clean.known.mse
    assert clean.known.ssim > 0.3  # the attack works on the clean cut at all


def test_audit_cli_json_and_picture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit_mod, "DECODER_STEPS", 100)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(["audit", "digits-mlp", "--all-cuts", "--epochs", "1", "--noise-levels",
                     "1", "--board", "none", "--out", str(tmp_path), "--json", "--leaked",
                     "64"])  # fmt: skip
    assert code == 0
    r = json.loads(out.getvalue())
    assert [c["cut"] for c in r["cuts"]] == [1, 1, 2]  # noise levels at the first cut
    for c in r["cuts"]:
        for who in ("known_weights", "leaked_pairs"):
            assert set(c[who]) == {"mse", "psnr", "ssim", "accuracy"}
        assert 0.0 <= c["dcor"] <= 1.0
    assert [row["noise_scale"] for row in r["noise"]] == [0.0, 0.02]
    for row in r["noise"]:
        want = {"noise_scale", "accuracy", "accuracy_cost", "dcor", "mse", "psnr", "ssim"}
        assert want <= set(row)
    assert Path(r["png"]).is_file() and Path(r["png"]).stat().st_size > 10_000


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--cut", "7"], "not a candidate cut"),
        (["--leaked", "1"], "--leaked"),
        (["--noise-levels", "9"], "--noise-levels"),
        (["--noise-levels", "1", "--noise", "cauchy"], "--noise cauchy"),
    ],
)
def test_audit_bad_input_is_one_line(argv: list[str], words: str, tmp_path: Path) -> None:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["audit", "digits-mlp", "--epochs", "0", "--out", str(tmp_path), *argv])
    lines = err.getvalue().strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error:") and words in lines[0]


def test_plan_takes_the_audit_as_a_privacy_column(tmp_path: Path) -> None:
    audit_json = {
        "model": "digits-mlp",
        "cuts": [
            {"cut": 1, "noise_scale": 0.0, "dcor": 0.93, "known_weights": {"ssim": 0.96}},
            {"cut": 1, "noise_scale": 0.1, "dcor": 0.5, "known_weights": {"ssim": 0.2}},
            {"cut": 2, "noise_scale": 0.0, "dcor": 0.89, "known_weights": {"ssim": 0.94}},
        ],
    }
    f = tmp_path / "audit.json"
    f.write_text(json.dumps(audit_json))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        assert main(["plan", "digits-mlp", "--board", "mps2_an386", "--audit", str(f),
                     "--json"]) == 0  # fmt: skip
    plan = json.loads(out.getvalue())
    privacy = {c["cut"]: c.get("privacy") for c in plan["cuts"]}
    assert privacy[1] == {"dcor": 0.93, "ssim": 0.96} and privacy[2] == {"dcor": 0.89, "ssim": 0.94}
    assert "dCor" in err.getvalue() and "0.930" in err.getvalue()
    audit_json["model"] = "mnist-cnn"
    f.write_text(json.dumps(audit_json))
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        assert main(["plan", "digits-mlp", "--board", "mps2_an386", "--audit", str(f)]) == 2
    assert "audit of mnist-cnn" in err.getvalue()
