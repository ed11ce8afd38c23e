"""training.model_card: the label-noise audit is shown only for the classifier it describes."""
from __future__ import annotations

import json
import shutil

from training import model_card
from training.paths import WEIGHTS


def test_label_audit_only_for_the_audited_classifier(tmp_path, monkeypatch):
    from pipeline.engine.weights import sha256_file

    m = json.loads((WEIGHTS / "metrics.json").read_text())
    assert "**Label noise.**" in model_card.render(m, label_audit=True)
    assert "**Label noise.**" not in model_card.render(m)
    # the audit describes the classifier whose sha256 starts with LABEL_AUDIT_SHA256 (here: the
    # released one, as if it were the audited one); other classifier weights do not get it
    monkeypatch.setattr(model_card, "LABEL_AUDIT_SHA256",
                        sha256_file(WEIGHTS / "classifier" / "model.safetensors")[:8])
    for name, data, want in (("released", None, True), ("other", b"other weights", False)):
        folder = tmp_path / name
        (folder / "classifier").mkdir(parents=True)
        shutil.copy2(WEIGHTS / "metrics.json", folder / "metrics.json")
        src = WEIGHTS / "classifier" / "model.safetensors"
        dst = folder / "classifier" / "model.safetensors"
        shutil.copy2(src, dst) if data is None else dst.write_bytes(data)
        model_card.main(["--weights", str(folder)])
        assert ("**Label noise.**" in (folder / "README.md").read_text()) is want


def test_card_shows_the_views_next_to_the_previous_release():
    from tests.test_metrics_view import _views_doc

    m = json.loads((WEIGHTS / "metrics.json").read_text())
    m["classifier_views"], m["classifier_views_previous"] = _views_doc(0.8), _views_doc(0.4)
    card = model_card.render(m)
    assert "### Small faces, camera frames and the `incorrect` rule" in card
    rows = [l for l in card.splitlines() if l.startswith("| previous release |") or l.startswith("| this release |")]
    assert len(rows) == 6 + 6                     # argmax + rule per view, for both releases
    assert "80.0% / 60.0%" in rows[-1] and "40.0% / 60.0%" in rows[0]
    assert "| small (median face 21 px) |" in card
