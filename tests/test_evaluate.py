"""Evaluation helpers behind the README's figures: held-out metrics and the discriminators' confidence."""
from gioada import GIOAda
from gioada.config import DataConfig
from gioada.evaluate import discriminator_confidence, evaluate, input_discriminator_by_component
from gioada.sim import COMPONENTS

DATA = DataConfig(height=32, width=96)


def test_evaluate_reports_miou_per_class_and_depth(tiny_kwargs):
    m = evaluate(GIOAda(**tiny_kwargs), DATA, "target", scenes=2)
    assert m["scenes"] == 2 and 0 <= m["miou"] <= 100 and len(m["per_class_iou"]) == 10
    assert set(m["depth"]) >= {"abs_rel", "rmse", "delta1"}


def test_discriminator_confidence_is_repeatable_and_each_component_can_be_switched_off(tiny_kwargs):
    model = GIOAda(**tiny_kwargs)
    a = discriminator_confidence(model, DATA, batches=1, batch_size=2)
    assert a == discriminator_confidence(model, DATA, batches=1, batch_size=2)     # G's noise is seeded
    assert all(0 < v < 1 for v in a.values())
    without = input_discriminator_by_component(model, DATA, batches=1)
    assert list(without) == list(COMPONENTS) and all(0 < v < 1 for v in without.values())
    assert len(set(without.values())) > 1                    # each switched-off trait changes the images D_in sees
