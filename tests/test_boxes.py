"""Box utilities against cases worked by hand."""
import torch

from pipeline.engine.boxes import box_area, calibrate_boxes, expand_boxes, nms, pairwise_iou, square_boxes


def T(x):
    return torch.tensor(x, dtype=torch.float32)


def test_area_and_iou_by_hand():
    a = T([[0, 0, 10, 10]])
    b = T([[5, 5, 15, 15], [20, 20, 30, 30], [0, 0, 10, 10], [0, 0, 5, 10]])
    assert box_area(b).tolist() == [100, 100, 100, 50]
    iou = pairwise_iou(a, b)[0]
    # overlap 5x5 = 25; union 175
    assert torch.allclose(iou, T([25 / 175, 0, 1, 0.5]))
    # intersection over the smaller box: 25/100, 0, 1, 50/50
    assert torch.allclose(pairwise_iou(a, b, mode="min")[0], T([0.25, 0, 1, 1]))


def test_nms_keeps_best_and_drops_overlaps():
    boxes = T([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 9]])
    scores = T([0.8, 0.9, 0.7, 0.6])
    # [1] vs [0]: IoU 81/119 = 0.68 -> dropped at 0.5; [3] vs [1]: 72/(90+100-72)=0.61 -> dropped
    assert nms(boxes, scores, 0.5).tolist() == [1, 2]
    # at 0.7 nothing overlaps enough except [3] vs [0] (90/100 = 0.9) - but [0] survives [1] (0.68)
    assert nms(boxes, scores, 0.7).tolist() == [1, 0, 2]
    assert nms(boxes[:0], scores[:0], 0.5).numel() == 0


def test_nms_min_mode_removes_nested_box():
    boxes = T([[0, 0, 100, 100], [10, 10, 40, 40]])
    scores = T([0.9, 0.95])
    assert nms(boxes, scores, 0.7).tolist() == [1, 0]          # IoU 0.09: both kept
    assert nms(boxes, scores, 0.7, mode="min").tolist() == [1]  # nested: min-overlap 1.0


def test_calibrate_boxes_both_conventions():
    b = T([[10, 20, 29, 59]])  # w = 19 (+1 = 20), h = 39 (+1 = 40)
    off = T([[0.1, -0.25, 0.5, 0.0]])
    assert calibrate_boxes(b, off).tolist() == [[12, 10, 39, 59]]
    assert torch.allclose(calibrate_boxes(b, off, plus_one=False), T([[11.9, 10.25, 38.5, 59]]))


def test_square_expand():
    b = T([[10, 10, 30, 50]])  # w 20, h 40 -> side 40 about centre (20, 30)
    assert square_boxes(b).tolist() == [[0, 10, 40, 50]]
    assert expand_boxes(T([[10, 10, 30, 50]]), 0.5).tolist() == [[0, -10, 40, 70]]
