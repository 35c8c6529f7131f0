"""Live controls of chapters 3 and 4 (they recompute in a running kernel; the book uses the plotly twins
in :mod:`elasticity_lab.plots.theory`)."""

from __future__ import annotations

import ipywidgets as W
from IPython.display import display

from elasticity_lab.info import theory as th
from elasticity_lab.plots import theory as figs


def describe_theorem(model: th.LeafModel, k: float, l: float, model_depth: int | None = None) -> str:
    """Two lines: the rates' slopes at (k, l) and their ratio against k."""
    der = th.rate_derivatives(model, k, l, model_depth)
    ratio = th.slope_ratio(model, k, l, model_depth)
    return (f"k = {k:g}, l = {l:g}, model depth d′ = {model_depth or model.depth}: "
            f"dγ_a/dl = {der['a']:.3e}, dγ_p/dl = {der['p']:.3e}\n"
            f"slope ratio −(dγ_a/dl)/(dγ_p/dl) = {ratio:.4g} = {ratio / k:.4f} × k")


def theorem_explorer(model: th.LeafModel, k: float = 1000.0, l: float = 1e-3) -> W.VBox:
    """Sliders for k, l, the model depth d′ and how much the perturbation looks like pre-training data
    (weight w: P_t ← (1 − w)·P_t + w·P_p, see :func:`elasticity_lab.info.theory.toward_pretraining`);
    prints the slopes and their ratio."""
    ks = W.FloatLogSlider(value=k, base=10, min=0, max=6, step=0.1, description="k")
    ls = W.FloatLogSlider(value=l, base=10, min=-6, max=1, step=0.1, description="l")
    ds = W.IntSlider(value=model.depth, min=1, max=model.depth, description="depth d′")
    ws = _weight_slider()
    out = W.Output()

    def show(change: dict | None = None) -> None:
        out.clear_output(wait=True)
        with out:
            print(describe_theorem(th.toward_pretraining(model, ws.value), ks.value, ls.value, ds.value))

    for s in (ks, ls, ds, ws):
        s.observe(show, names="value")
    show()
    return W.VBox([ks, ls, ds, ws, out])


def _weight_slider() -> W.FloatSlider:
    return W.FloatSlider(value=0.0, min=0.0, max=1.0, step=0.001, readout_format=".3f",
                         description="P_t → P_p", style={"description_width": "initial"})


def spring_explorer(model: th.LeafModel, n_p: float = 1e4, n_a: float = 100.0, n_t: float = 1.0) -> W.VBox:
    """Sliders for |D_p|, |D_a|, the pull |D_t| and how much the perturbation looks like pre-training
    data (weight w, as in :func:`theorem_explorer`), redrawing the springs and forces live."""
    ps = W.FloatLogSlider(value=n_p, base=10, min=1, max=7, step=0.1, description="|D_p|")
    as_ = W.FloatLogSlider(value=n_a, base=10, min=0, max=5, step=0.1, description="|D_a|")
    ts = W.FloatLogSlider(value=n_t, base=10, min=-2, max=4, step=0.1, description="|D_t|")
    ws = _weight_slider()
    out = W.Output()

    def show(change: dict | None = None) -> None:
        out.clear_output(wait=True)
        with out:
            m = th.toward_pretraining(model, ws.value)
            fig = figs.springs_slider(m, [(ps.value, as_.value)], [ts.value])
            fig.update_layout(sliders=[])
            display(fig)
            s = th.spring_state(m, ps.value, as_.value, ts.value)
            print(", ".join(f"ΔKL_{n} = {s['deformation'][n]:.3e}" for n in ("p", "a"))
                  + " | " + ", ".join(f"|D_{n}|·ΔKL_{n} = {s['force'][n]:.3e}" for n in ("p", "a")))

    for s in (ps, as_, ts, ws):
        s.observe(show, names="value")
    show()
    return W.VBox([W.HBox([ps, as_, ts]), ws, out])
